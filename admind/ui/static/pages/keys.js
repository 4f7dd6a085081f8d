// Keys: the pool, paged by the server (fast at 30,000 keys). Filters live
// in the URL so a filtered view can be linked (the dashboard does).
import { h, clear, field, fmtNum, fmtAgo, fmtTime, debounce, errorBox, toast } from '../lib/dom.js';
import { createTable } from '../lib/table.js';
import { verifyKeys, copyKeys, changeKeys, keyStatus, openKeyDetail } from '../lib/keyactions.js';

const STATUSES = ['', 'active', 'cooling', 'disabled', 'valid', 'invalid'];
const KINDS = ['', 'gemini', 'vertex', 'paid'];

export async function mount(root, ctx) {
  const { t, api, params } = ctx;
  const f = { search: params.get('search') || '', status: params.get('status') || '', kind: params.get('kind') || '', failures: params.get('fail_count_threshold') || '' };
  if (!STATUSES.includes(f.status)) f.status = '';
  if (!KINDS.includes(f.kind)) f.kind = '';

  // ---- counts ----
  const counts = h('div', { class: 'row', id: 'keys-counts', 'aria-live': 'polite' });
  async function loadCounts() {
    try {
      const s = await api('GET', '/api/keys/stats');
      const by = { active: 0, cooling: 0, disabled: 0 };
      for (const st of Object.values(s.counts || {})) for (const [k, n] of Object.entries(st)) by[k] = (by[k] || 0) + n;
      clear(counts, 
        countBtn('', t('keys.count.total', { n: fmtNum(s.total) })),
        ...['active', 'cooling', 'disabled'].map((st) => countBtn(st, `${t(`common.status.${st}`)} ${fmtNum(by[st])}`)));
    } catch (e) {
      clear(counts, errorBox(t('common.load_failed', { what: t('keys.counts') }), e));
    }
  }
  const countBtn = (st, label) => h('button', { type: 'button', class: 'chip-btn', 'data-status': st || 'all', 'aria-pressed': String(f.status === st), onclick: () => { statusSel.value = st; apply(); } }, label);

  // ---- add ----
  const addText = h('textarea', { id: 'keys-add-text', rows: 3, class: 'short', placeholder: t('keys.add.placeholder'), spellcheck: 'false', autocomplete: 'off' });
  const addKind = h('select', { id: 'keys-add-kind' }, KINDS.slice(1).map((k) => h('option', { value: k }, t(`keys.kind.${k}`))));
  const addResult = h('div', { id: 'keys-add-result', 'aria-live': 'polite' });
  const addBtn = h('button', { type: 'submit', class: 'btn primary', id: 'keys-add-submit' }, t('keys.add.submit'));
  const addForm = h('form', { class: 'stack', onsubmit: async (e) => {
    e.preventDefault();
    clear(addResult);
    if (!addText.value.trim()) { addText.setAttribute('aria-invalid', 'true'); addResult.append(h('p', { class: 'err' }, t('keys.add.empty'))); addText.focus(); return; }
    addText.removeAttribute('aria-invalid');
    addBtn.disabled = true;
    try {
      const rep = await api('POST', '/api/keys', { text: addText.value, kind: addKind.value });
      showAdd(rep);
      if (rep.added_count > 0) addText.value = '';
      tbl.reload();
      loadCounts();
    } catch (err) {
      if (err.body && typeof err.body === 'object' && 'added_count' in err.body) showAdd(err.body);
      addResult.append(errorBox(t('keys.add.failed'), err));
    } finally {
      addBtn.disabled = false;
    }
  } },
  field(t('keys.add.label'), addText, t('keys.add.hint')),
  h('div', { class: 'row' }, h('div', { class: 'field compact-row' }, h('label', { for: 'keys-add-kind' }, t('keys.add.kind')), addKind), addBtn),
  addResult);
  function showAdd(rep) {
    addResult.append(h('p', { class: 'row' },
      h('span', { class: 'chip', 'data-status': 'active', 'data-count': 'added' }, t('keys.add.added', { n: fmtNum(rep.added_count) })),
      h('span', { class: 'chip', 'data-status': 'cooling', 'data-count': 'duplicate' }, t('keys.add.duplicates', { n: fmtNum(rep.duplicate_count) })),
      h('span', { class: 'chip', 'data-status': 'disabled', 'data-count': 'invalid' }, t('keys.add.invalid', { n: fmtNum(rep.invalid_count) }))),
    rep.invalid?.length ? h('p', { class: 'muted mono' }, t('keys.add.invalid_list', { list: rep.invalid.slice(0, 10).join(', ') })) : null);
    toast(t('keys.add.added', { n: fmtNum(rep.added_count) }), rep.added_count ? 'ok' : 'info');
  }

  // ---- filters ----
  const search = h('input', { type: 'search', id: 'keys-search', value: f.search, placeholder: t('keys.filter.search_placeholder'), oninput: debounce(() => apply(), 300) });
  const statusSel = h('select', { id: 'keys-status', onchange: () => apply() }, STATUSES.map((s) => h('option', { value: s }, s ? t(`keys.status.${s}`) : t('common.all'))));
  statusSel.value = f.status;
  const kindSel = h('select', { id: 'keys-kind', onchange: () => apply() }, KINDS.map((k) => h('option', { value: k }, k ? t(`keys.kind.${k}`) : t('common.all'))));
  kindSel.value = f.kind;
  const failSel = h('input', { type: 'number', id: 'keys-failures', min: 0, step: 1, value: f.failures, placeholder: '0', onchange: () => apply() });
  function apply() {
    f.search = search.value.trim();
    f.status = statusSel.value;
    f.kind = kindSel.value;
    f.failures = failSel.value && Number(failSel.value) > 0 ? String(Math.floor(Number(failSel.value))) : '';
    const q = new URLSearchParams();
    if (f.search) q.set('search', f.search);
    if (f.status) q.set('status', f.status);
    if (f.kind) q.set('kind', f.kind);
    if (f.failures) q.set('fail_count_threshold', f.failures);
    history.replaceState(null, '', '/keys' + (q.toString() ? '?' + q : ''));
    for (const b of counts.querySelectorAll('.chip-btn')) b.setAttribute('aria-pressed', String((b.dataset.status === 'all' ? '' : b.dataset.status) === f.status));
    tbl.reload({ resetPage: true });
  }

  // ---- table ----
  const refresh = () => { tbl.reload(); loadCounts(); };
  const columns = [
    { key: 'hint', label: t('keys.col.key'), render: (k) => h('button', { type: 'button', class: 'link mono nowrap', onclick: () => openKeyDetail(k.id, refresh), title: t('keys.open_detail'), 'aria-label': t('keys.open_detail_one', { key: k.hint }) }, k.hint) },
    { key: 'kind', label: t('keys.col.kind'), render: (k) => h('span', { class: 'tag' }, k.kind) },
    { key: 'status', label: t('keys.col.status'), render: keyStatus },
    { key: 'reason', label: t('keys.col.reason'), class: 'reason', render: (k) => reason(k) },
    { key: 'failures', label: t('keys.col.failures'), class: 'num', render: (k) => fmtNum(k.failures) },
    { key: 'last_used', label: t('keys.col.last_used'), render: (k) => h('span', { class: 'nowrap', title: fmtTime(k.last_used) }, fmtAgo(k.last_used)) },
    { key: 'usage', label: t('keys.col.usage'), class: 'num nowrap', render: (k) => h('span', { title: t('keys.usage_title') }, h('span', { class: 'ok-text' }, fmtNum(k.successes)), ' / ', h('span', { class: 'bad-text' }, fmtNum(k.failures_total))) },
    { key: 'weight', label: t('keys.col.weight'), class: 'num', render: (k) => String(k.weight || 1) },
    { key: 'actions', label: t('common.actions'), hideLabel: true, render: (k) => h('div', { class: 'cell-actions' },
      h('button', { type: 'button', class: 'btn small', 'aria-label': t('keys.action.verify_one', { key: k.hint }), onclick: async () => { await verifyKeys([k.id]); refresh(); } }, t('keys.action.verify'))) },
  ];
  const bulk = h('div', { class: 'bulkbar', id: 'keys-bulk', hidden: true });
  const tbl = createTable({
    id: 'keys-table', t, columns, selectable: true, rowId: (k) => k.id, rowLabel: (k) => k.hint, caption: t('keys.title'),
    emptyText: t('keys.empty'),
    fetch: async ({ page, pageSize, signal }) => {
      const r = await api('GET', '/api/keys', null, { signal, query: { page, limit: pageSize, search: f.search, status: f.status, kind: f.kind, fail_count_threshold: f.failures } });
      return { rows: r.keys || [], total: r.total_items || 0 };
    },
    onSelect: (ids) => paintBulk(ids),
  });
  function paintBulk(ids) {
    bulk.hidden = ids.length === 0;
    if (!ids.length) return;
    const rows = tbl.selectedRows();
    const hints = rows.map((r) => r?.hint).filter(Boolean);
    const run = (action) => async () => { if (await changeKeys(action, ids, hints)) { if (action === 'delete') tbl.clearSelection(); refresh(); } };
    clear(bulk, 
      h('strong', {}, t('common.table.selected', { n: fmtNum(ids.length) })),
      h('button', { type: 'button', class: 'btn small', id: 'keys-bulk-verify', onclick: async () => { await verifyKeys(ids); refresh(); } }, t('keys.action.verify')),
      h('button', { type: 'button', class: 'btn small', id: 'keys-bulk-reset', onclick: run('reset') }, t('keys.action.reset')),
      h('button', { type: 'button', class: 'btn small', id: 'keys-bulk-enable', onclick: run('enable') }, t('keys.action.enable')),
      h('button', { type: 'button', class: 'btn small', id: 'keys-bulk-disable', onclick: run('disable') }, t('keys.action.disable')),
      h('button', { type: 'button', class: 'btn small', id: 'keys-bulk-copy', onclick: () => copyKeys({ ids }, ids.length) }, t('keys.action.copy')),
      h('button', { type: 'button', class: 'btn small danger-soft', id: 'keys-bulk-delete', onclick: run('delete') }, t('keys.action.delete')),
      h('button', { type: 'button', class: 'btn small ghost', onclick: () => tbl.clearSelection() }, t('common.table.clear_selection')));
  }

  // ---- page actions ----
  const verifyAll = h('button', { type: 'button', class: 'btn', id: 'keys-verify-all', onclick: async () => {
    verifyAll.disabled = true;
    try {
      const all = await api('GET', '/api/keys/all');
      const ids = [...(all.valid_keys || []), ...(all.invalid_keys || [])].map((k) => k.id);
      if (!ids.length) { toast(t('keys.empty'), 'info'); return; }
      const ok = await ctx.confirmDialog({ title: t('keys.verify_all.title'), body: h('p', {}, t('keys.verify_all.body', { n: fmtNum(ids.length) })), confirmLabel: t('keys.action.verify') });
      if (!ok) return;
      await verifyKeys(ids);
      refresh();
    } catch (e) {
      toast(t('keys.action_failed', { action: t('keys.verify_all.label'), error: e.message }), 'error');
    } finally {
      verifyAll.disabled = false;
    }
  } }, t('keys.verify_all.label'));
  const copyValid = h('button', { type: 'button', class: 'btn', id: 'keys-copy-valid', onclick: () => copyKeys({ status: 'valid' }) }, t('keys.copy.valid'));
  const copyInvalid = h('button', { type: 'button', class: 'btn', id: 'keys-copy-invalid', onclick: () => copyKeys({ status: 'invalid' }) }, t('keys.copy.invalid'));

  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, t('keys.title')), h('div', { class: 'actions' }, verifyAll, copyValid, copyInvalid)),
    h('div', { class: 'grid keys-top' },
      h('section', { class: 'card', 'aria-labelledby': 'keys-add-h' }, h('h2', { id: 'keys-add-h' }, t('keys.add.title')), addForm)),
    h('section', { class: 'card', 'aria-labelledby': 'keys-list-h' },
      h('div', { class: 'card-head' }, h('h2', { id: 'keys-list-h' }, t('keys.list')), counts),
      h('div', { class: 'toolbar', role: 'search' },
        h('div', { class: 'field search' }, h('label', { for: 'keys-search' }, t('common.search')), search),
        field(t('keys.filter.status'), statusSel),
        field(t('keys.filter.kind'), kindSel),
        field(t('keys.filter.failures'), failSel),
        h('button', { type: 'button', class: 'btn', id: 'keys-refresh', onclick: refresh }, t('common.refresh'))),
      bulk,
      tbl.el));
  loadCounts();
  tbl.reload();
  const timer = setInterval(() => { if (!document.querySelector('dialog[open]') && !document.hidden) tbl.reload(); }, 30000);
  return () => { clearInterval(timer); tbl.destroy(); };

  function reason(k) {
    const txt = k.disabled_reason || (k.status === 'cooling' ? t('keys.reason.cooling', { models: (k.cooldowns || []).map((c) => c.model).join(', ') }) : '') || k.last_error || '';
    return txt ? h('span', { class: 'clip', title: txt }, txt) : h('span', { class: 'muted' }, '—');
  }
}
