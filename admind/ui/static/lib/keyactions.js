// Key actions shared by the keys page and the dashboard: bulk verify with
// progress, copy (export), enable/disable/reset/delete with confirmation,
// and the per-key view. Strings come from the "keys" namespace.
import { api } from './api.js';
import { t, loadStrings } from './i18n.js';
import { h, clear, toast, confirmDialog, openDialog, copyText, fmtTime, fmtAgo, fmtNum, countdown, statusChip, spinner, errorBox, field } from './dom.js';

export const ensureStrings = () => loadStrings(['keys']);

const CHUNK = 10; // keys per verify call: small enough to show progress
const PARALLEL = 2;

// verifyKeys tests keys live, chunk by chunk, showing progress, then groups
// the failures by upstream error. Resolves with the results when done (the
// dialog stays open with the summary).
export async function verifyKeys(ids) {
  if (!ids.length) return;
  const bar = h('progress', { class: 'progress', max: ids.length, value: 0, 'aria-label': t('keys.verify.progress_label') });
  const status = h('p', { 'aria-live': 'polite', id: 'keys-verify-status' });
  const result = h('div', { id: 'keys-verify-result' });
  let stopped = false;
  const { dialog } = openDialog({
    id: 'keys-verify-dialog', title: t('keys.verify.title', { n: fmtNum(ids.length) }), wide: true,
    body: h('div', { class: 'stack' }, bar, status, result),
    onClose: () => { stopped = true; },
  });
  const results = [];
  const errors = [];
  let checked = 0;
  const paint = () => {
    bar.value = checked;
    const failed = results.filter((r) => !r.ok).length;
    status.textContent = t('keys.verify.status', { checked: fmtNum(checked), total: fmtNum(ids.length), ok: fmtNum(checked - failed - errors.length), failed: fmtNum(failed) });
  };
  paint();
  const chunks = [];
  for (let i = 0; i < ids.length; i += CHUNK) chunks.push(ids.slice(i, i + CHUNK));
  let next = 0;
  const worker = async () => {
    while (!stopped && next < chunks.length) {
      const c = chunks[next++];
      try {
        const rep = await api('POST', '/api/keys/verify', { ids: c });
        results.push(...(rep.results || []));
      } catch (e) {
        errors.push({ ids: c, message: e.message });
      }
      checked += c.length;
      if (!stopped) paint();
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  if (!stopped) {
    paint();
    result.append(verifySummary(results, errors));
    dialog.querySelector('.dialog-head h2').textContent = t('keys.verify.done_title');
  }
  return results;
}

// verifySummary groups failures by upstream status and error text.
function verifySummary(results, errors) {
  const groups = new Map();
  for (const r of results) {
    if (r.ok) continue;
    const k = `${r.status || ''}|${r.class || ''}|${r.error || ''}`;
    if (!groups.has(k)) groups.set(k, { status: r.status, cls: r.class, error: r.error, keys: [] });
    groups.get(k).keys.push(r);
  }
  const ok = results.filter((r) => r.ok).length;
  const box = h('div', { class: 'stack' },
    h('p', {}, statusChip('active', t('keys.verify.ok_n', { n: fmtNum(ok) })), ' ',
      groups.size ? statusChip('disabled', t('keys.verify.failed_n', { n: fmtNum(results.length - ok) })) : null));
  if (errors.length) {
    box.append(errorBox(t('keys.verify.call_failed', { n: fmtNum(errors.reduce((a, e) => a + e.ids.length, 0)) }), { message: errors[0].message }));
  }
  if (groups.size) {
    const sorted = [...groups.values()].sort((a, b) => b.keys.length - a.keys.length);
    box.append(h('h3', {}, t('keys.verify.groups')), h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'keys-verify-groups' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('keys.verify.col_error')), h('th', { scope: 'col', class: 'num' }, t('keys.verify.col_count')), h('th', { scope: 'col' }, t('keys.verify.col_keys')))),
      h('tbody', {}, sorted.map((g) => h('tr', {},
        h('td', {}, h('strong', {}, [g.status || '', g.cls].filter(Boolean).join(' · ')), g.error ? h('div', { class: 'muted clamp3', title: g.error }, g.error) : null),
        h('td', { class: 'num' }, fmtNum(g.keys.length)),
        h('td', { class: 'mono hints' }, g.keys.slice(0, 8).map((k) => h('span', { class: 'nowrap' }, k.hint)), g.keys.length > 8 ? h('span', {}, `+${g.keys.length - 8}`) : null)))))));
  } else if (!errors.length) {
    box.append(h('p', {}, t('keys.verify.all_ok')));
  }
  return box;
}

// copyKeys exports keys in full (after a confirmation) onto the clipboard.
// sel is {ids} or {status: "valid"|"invalid"|"all"}.
export async function copyKeys(sel, count) {
  const ok = await confirmDialog({
    title: t('keys.copy.title'),
    body: h('p', {}, count != null ? t('keys.copy.body_n', { n: fmtNum(count) }) : t('keys.copy.body')),
    confirmLabel: t('keys.copy.confirm'),
  });
  if (!ok) return;
  try {
    const text = sel.ids
      ? await api('POST', '/api/keys/export', { ids: sel.ids }, { text: true })
      : await api('GET', '/api/keys/export', null, { text: true, query: { status: sel.status } });
    await deliver(text);
  } catch (e) {
    if (sel.ids && (e.status === 404 || e.status === 405) && sel.ids.length <= 200) {
      // Export not on this server yet: reveal key by key.
      const keys = [];
      for (const id of sel.ids) keys.push((await api('GET', `/api/keys/${encodeURIComponent(id)}/reveal`)).key);
      await deliver(keys.join('\n'));
      return;
    }
    toast(t('keys.copy.failed', { error: e.message }), 'error');
  }
}

// deliver puts exported keys on the clipboard, or, when the browser refuses,
// shows them selected in a dialog to copy by hand.
async function deliver(text) {
  const n = text.split('\n').filter(Boolean).length;
  if (await copyText(text)) {
    toast(t('keys.copy.done', { n: fmtNum(n) }), 'ok');
    return;
  }
  const ta = h('textarea', { id: 'keys-export-text', readonly: true, rows: Math.min(12, Math.max(3, n)), spellcheck: 'false' });
  ta.value = text;
  const copy = h('button', { type: 'button', class: 'btn primary', onclick: async () => {
    ta.select();
    if (await copyText(text)) { toast(t('keys.copy.done', { n: fmtNum(n) }), 'ok'); dlg.close(); }
  } }, t('common.copy'));
  const dlg = openDialog({ title: t('keys.copy.manual_title', { n: fmtNum(n) }), body: h('div', { class: 'stack' }, h('p', {}, t('keys.copy.manual')), ta), actions: copy });
  ta.focus();
  ta.select();
}

const CONFIRM = { disable: true, delete: true };

// changeKeys runs reset, enable, disable or delete on ids (confirming the
// destructive ones). Resolves true when something was done.
export async function changeKeys(action, ids, hints) {
  if (!ids.length) return false;
  if (CONFIRM[action] || (action === 'reset' && ids.length > 1)) {
    const ok = await confirmDialog({
      title: t(`keys.confirm.${action}.title`, { n: fmtNum(ids.length) }),
      body: h('div', {}, h('p', {}, t(`keys.confirm.${action}.body`, { n: fmtNum(ids.length) })),
        hints?.length ? h('p', { class: 'mono muted' }, hints.slice(0, 10).join(', ') + (hints.length > 10 ? ` +${hints.length - 10}` : '')) : null),
      confirmLabel: t(`keys.action.${action}`),
      danger: !!CONFIRM[action],
    });
    if (!ok) return false;
  }
  try {
    const rep = action === 'delete'
      ? await api('DELETE', '/api/keys', { ids })
      : await api('POST', `/api/keys/${action}`, { ids });
    toast(t(`keys.done.${action}`, { n: fmtNum(rep.changed ?? ids.length) }), 'ok');
    return true;
  } catch (e) {
    toast(t('keys.action_failed', { action: t(`keys.action.${action}`), error: e.message }), 'error');
    return false;
  }
}

// keyStatus is the status chip plus the soonest cooldown's countdown.
export function keyStatus(k) {
  const soon = soonestCooldown(k);
  return h('span', { class: 'nowrap status-cell' }, statusChip(k.status),
    k.status === 'cooling' && soon ? h('span', { class: 'muted', title: soon.model }, countdown(soon.until)) : null);
}

export function soonestCooldown(k) {
  const now = Date.now();
  return (k.cooldowns || []).filter((c) => new Date(c.until).getTime() > now).sort((a, b) => new Date(a.until) - new Date(b.until))[0];
}

// openKeyDetail is the per-key view: facts, usage by model, recent
// errors, weight and note editor, and the actions. onChange runs after any change.
export async function openKeyDetail(id, onChange) {
  await ensureStrings();
  const body = h('div', { class: 'stack' }, spinner());
  const dlg = openDialog({ id: 'key-detail', title: t('keys.detail.title'), body, wide: true });
  const changed = () => { onChange?.(); render(); };
  async function render() {
    let k;
    try {
      k = await api('GET', `/api/keys/${encodeURIComponent(id)}`);
    } catch (e) {
      clear(body, errorBox(t('common.load_failed', { what: t('keys.detail.title') }), e));
      return;
    }
    dlg.dialog.querySelector('.dialog-head h2').textContent = k.hint;
    const act = (action) => async () => { if (await changeKeys(action, [k.id], [k.hint])) { if (action === 'delete') { dlg.close(); onChange?.(); } else changed(); } };
    const actions = h('div', { class: 'row' },
      h('button', { type: 'button', class: 'btn', id: 'key-verify', onclick: async () => { await verifyKeys([k.id]); changed(); } }, t('keys.action.verify')),
      h('button', { type: 'button', class: 'btn', id: 'key-reset', onclick: act('reset') }, t('keys.action.reset')),
      k.status === 'disabled'
        ? h('button', { type: 'button', class: 'btn', id: 'key-enable', onclick: act('enable') }, t('keys.action.enable'))
        : h('button', { type: 'button', class: 'btn', id: 'key-disable', onclick: act('disable') }, t('keys.action.disable')),
      h('button', { type: 'button', class: 'btn', id: 'key-copy', onclick: () => copyKeys({ ids: [k.id] }, 1) }, t('keys.action.copy')),
      h('button', { type: 'button', class: 'btn danger-soft', id: 'key-delete', onclick: act('delete') }, t('keys.action.delete')));

    const cooldowns = (k.cooldowns || []).length
      ? h('ul', { class: 'plain' }, k.cooldowns.map((c) => h('li', {}, h('span', { class: 'mono' }, c.model), ' — ', countdown(c.until), ' ', h('span', { class: 'muted' }, t('keys.detail.strikes', { n: c.strikes })))))
      : t('common.none');
    const facts = h('dl', { class: 'kv' },
      h('dt', {}, t('keys.col.status')), h('dd', {}, statusChip(k.status)),
      h('dt', {}, t('keys.col.kind')), h('dd', {}, k.kind),
      h('dt', {}, 'ID'), h('dd', { class: 'mono' }, k.id),
      h('dt', {}, t('keys.col.failures')), h('dd', {}, fmtNum(k.failures)),
      h('dt', {}, t('keys.col.usage')), h('dd', {}, t('keys.usage_cell', { ok: fmtNum(k.successes), bad: fmtNum(k.failures_total) })),
      h('dt', {}, t('keys.col.last_used')), h('dd', { title: fmtTime(k.last_used) }, fmtAgo(k.last_used)),
      h('dt', {}, t('keys.detail.created')), h('dd', {}, fmtTime(k.created)),
      k.disabled_reason ? [h('dt', {}, t('keys.col.reason')), h('dd', {}, k.disabled_reason, k.disabled_at ? h('span', { class: 'muted' }, ` (${fmtTime(k.disabled_at)})`) : null)] : null,
      k.last_error ? [h('dt', {}, t('keys.detail.last_error')), h('dd', {}, k.last_error)] : null,
      h('dt', {}, t('keys.detail.cooldowns')), h('dd', {}, cooldowns));

    const weight = h('input', { type: 'number', id: 'key-weight', min: 0, max: 100, step: 1, value: String(k.weight || 1) });
    const note = h('textarea', { id: 'key-note', rows: 2, maxlength: 500 });
    note.value = k.note || '';
    const save = h('button', { type: 'submit', class: 'btn primary', id: 'key-save' }, t('common.save'));
    const editor = h('form', { class: 'stack', onsubmit: async (e) => {
      e.preventDefault();
      const w = Number(weight.value);
      if (!Number.isInteger(w) || w < 0 || w > 100) { weight.setAttribute('aria-invalid', 'true'); toast(t('keys.detail.weight_range'), 'error'); return; }
      weight.removeAttribute('aria-invalid');
      save.disabled = true;
      try {
        await api('PATCH', `/api/keys/${encodeURIComponent(k.id)}`, { weight: w, note: note.value });
        toast(t('common.saved'), 'ok');
        onChange?.();
      } catch (err) {
        toast(t('keys.detail.save_failed', { error: err.message }), 'error');
      } finally {
        save.disabled = false;
      }
    } }, field(t('keys.col.weight'), weight, t('keys.detail.weight_hint')), field(t('keys.detail.note'), note), h('div', {}, save));

    const hours = h('select', { id: 'key-usage-hours' }, [24, 168, 720].map((n) => h('option', { value: n }, t(`keys.detail.hours_${n}`))));
    const usage = h('div', {}, spinner());
    const loadUsage = async () => {
      clear(usage, spinner());
      try {
        const u = await api('GET', `/api/key-usage-details/${encodeURIComponent(k.id)}`, null, { query: { hours: hours.value } });
        const models = Object.entries(u.models || {}).sort((a, b) => (b[1].requests || 0) - (a[1].requests || 0));
        clear(usage, models.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'key-usage-table' },
          h('thead', {}, h('tr', {}, [t('keys.detail.model'), t('keys.detail.requests'), t('keys.detail.failures'), t('keys.detail.tokens')].map((c, i) => h('th', { scope: 'col', class: i ? 'num' : '' }, c)))),
          h('tbody', {}, models.map(([m, v]) => h('tr', {}, h('td', { class: 'mono' }, m), h('td', { class: 'num' }, fmtNum(v.requests)), h('td', { class: 'num' }, fmtNum(v.failures)), h('td', { class: 'num' }, fmtNum(v.total_tokens)))))))
          : h('p', { class: 'empty' }, t('keys.detail.no_usage')));
      } catch (e) {
        clear(usage, errorBox(t('common.load_failed', { what: t('keys.detail.usage') }), e));
      }
    };
    hours.addEventListener('change', loadUsage);

    const errs = h('div', {}, spinner());
    (async () => {
      try {
        const r = await api('GET', '/api/logs/errors', null, { query: { key: k.id, limit: 10 } });
        const logs = r.logs || [];
        clear(errs, logs.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
          h('thead', {}, h('tr', {}, [t('keys.detail.time'), t('keys.detail.code'), t('keys.detail.model'), t('keys.detail.error')].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, logs.map((l) => h('tr', {}, h('td', { class: 'nowrap', title: fmtTime(l.time) }, fmtAgo(l.time)), h('td', {}, String(l.error_code || '')), h('td', { class: 'mono' }, l.model || ''), h('td', { title: l.error_type || '' }, l.class || l.error_type || '')))))) : h('p', { class: 'empty' }, t('keys.detail.no_errors')),
        h('a', { href: `/logs?tab=errors&key=${encodeURIComponent(k.id)}` }, t('keys.detail.all_errors')));
      } catch (e) {
        clear(errs, errorBox(t('common.load_failed', { what: t('keys.detail.errors') }), e));
      }
    })();

    clear(body, actions,
      h('div', { class: 'grid two' },
        h('section', { class: 'card' }, h('h3', {}, t('keys.detail.facts')), facts),
        h('section', { class: 'card' }, h('h3', {}, t('keys.detail.edit')), editor)),
      h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h3', {}, t('keys.detail.usage')), field(t('keys.detail.range'), hours)), usage),
      h('section', { class: 'card' }, h('h3', {}, t('keys.detail.errors')), errs));
    loadUsage();
  }
  render();
}
