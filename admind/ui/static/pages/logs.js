// Logs: request logs and error logs (tabs), each with every filter its API
// route takes, sort, server-side paging and a detail view. The view lives in
// the URL query (tab, filters, sort, page), so a copied link reopens it; the
// dashboard links here as e.g. /logs?tab=errors&status_code=429.
import { copyText, fmtTime, fmtNum, statusChip, openDialog } from '../lib/dom.js';
import { datalist, loadModels } from '../lib/b-models.js';

const SIZES = [20, 50, 100, 200];

// URL names (one set for both tabs) → the names each API route takes.
// Other spellings (the API's own) are accepted when a link arrives.
const ALIASES = {
  status: 'status_code', error_code_search: 'status_code', code: 'status_code', error_search: 'q', search: 'q',
  key_search: 'key', key_id: 'key', token_id: 'token', start_date: 'from', end_date: 'to', sort_by: 'sort',
  sort_order: 'order', limit: 'size',
};

const TABS = {
  requests: {
    path: '/api/logs/requests',
    filters: ['key', 'model', 'token', 'status_code', 'success', 'route', 'from', 'to'],
    query: (f) => ({
      key: f.key, model: f.model, token: f.token, status: f.status_code, success: f.success, route: f.route,
      from: f.from, to: f.to, sort: f.sort, order: f.order,
    }),
    // column → the API's sort name (null: not sortable)
    cols: [['time', 'time'], ['status', 'status'], ['model', 'model'], ['latency', 'latency'], ['tokens', null], ['route', null], ['key', null], ['token', null], ['attempts', null], ['actions', null]],
    sorts: ['time', 'latency', 'status', 'model'],
  },
  errors: {
    path: '/api/logs/errors',
    filters: ['key', 'q', 'status_code', 'model', 'request_id', 'from', 'to'],
    query: (f) => ({
      key_search: f.key, error_search: f.q, error_code_search: f.status_code, model: f.model, request_id: f.request_id,
      start_date: f.from, end_date: f.to, sort_by: f.sort, sort_order: f.order,
    }),
    cols: [['sel', null], ['time', 'request_time'], ['code', 'error_code'], ['type', 'error_type'], ['model', 'model_name'], ['key', null], ['route', null], ['attempt', null], ['actions', null]],
    sorts: ['request_time', 'error_code', 'model_name', 'error_type', 'id', 'time', 'code', 'model', 'type'],
  },
};

// readState turns a URL query into the view state.
export function readState(params) {
  const s = {};
  for (const [k, v] of params) {
    const name = ALIASES[k] || k;
    if (v !== '' && s[name] === undefined) s[name] = v;
  }
  if (!TABS[s.tab]) s.tab = s.request_id || s.q ? 'errors' : 'requests';
  s.size = SIZES.includes(Number(s.size)) ? Number(s.size) : SIZES[0];
  s.page = Math.max(1, parseInt(s.page, 10) || 1);
  if (s.order && !['asc', 'desc'].includes(s.order)) delete s.order;
  if (s.sort && !TABS[s.tab].sorts.includes(s.sort)) delete s.sort;
  return s;
}

// writeState is the URL query of a view (defaults left out).
export function writeState(s) {
  const q = new URLSearchParams();
  q.set('tab', s.tab);
  for (const f of TABS[s.tab].filters) if (s[f]) q.set(f, s[f]);
  if (s.sort) q.set('sort', s.sort);
  if (s.order) q.set('order', s.order);
  if (s.size !== SIZES[0]) q.set('size', String(s.size));
  if (s.page > 1) q.set('page', String(s.page));
  return q.toString();
}

// A datetime-local value is local time; the URL and the API carry UTC.
function toLocalInput(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
function fromLocalInput(v) {
  const d = new Date(v);
  return v && !Number.isNaN(d.getTime()) ? d.toISOString() : '';
}

// pretty is JSON text re-indented, or the text itself when it is not JSON.
function pretty(text) {
  if (text === undefined || text === null || text === '') return '';
  if (typeof text !== 'string') return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function chipFor(code, success) {
  const c = Number(code) || 0;
  const st = success || (c >= 200 && c < 300) ? 'active' : c === 429 ? 'cooling' : 'disabled';
  return statusChip(st, String(code || '—'));
}

export async function mount(root, ctx) {
  const { api, t, h, toast, confirmDialog } = ctx;
  let state = readState(ctx.params || new URLSearchParams(location.search));
  let rows = [];
  let total = 0;
  let exact = true; // false when the API estimated the total
  let hasMore; // the API's has_more, when it sends one
  let counted = ''; // the filters the current total was counted for
  let selected = new Set();
  let seq = 0;
  let abort = null;
  let tokens = [];
  let requestDeletes = false; // the API may (later) offer request-log deletes

  // --- skeleton ------------------------------------------------------------
  const tabBtns = Object.keys(TABS).map((k) => {
    const b = h('button', { type: 'button', id: `logs-tab-${k}`, 'aria-pressed': 'false', 'aria-controls': 'logs-panel' }, t(`logs.tab.${k}`));
    b.addEventListener('click', () => {
      if (state.tab === k) return;
      // Filters both tabs share carry over; the rest are dropped.
      const keep = Object.fromEntries(TABS[k].filters.filter((f) => state[f]).map((f) => [f, state[f]]));
      state = { ...keep, tab: k, size: state.size, page: 1 };
      selected.clear();
      build();
      load();
    });
    return b;
  });
  const copyLink = h('button', { type: 'button', class: 'btn', id: 'logs-copy-link' }, t('logs.copyLink'));
  copyLink.addEventListener('click', async () => {
    const ok = await copyText(location.href);
    toast(ok ? t('logs.linkCopied') : t('logs.copyFailed'), ok ? 'ok' : 'error');
  });
  const refresh = h('button', { type: 'button', class: 'btn', id: 'logs-refresh' }, t('logs.refresh'));
  refresh.addEventListener('click', () => load());
  const filterForm = h('form', { id: 'logs-filters', class: 'toolbar', role: 'search', 'aria-label': t('logs.filters') });
  const bulk = h('div', { id: 'logs-bulk', class: 'bulkbar', hidden: true });
  const danger = h('details', { id: 'logs-delete', class: 'b-danger-zone' });
  const tableState = h('div', { id: 'logs-state', role: 'status', 'aria-live': 'polite' });
  const tableWrap = h('div', { class: 'table-wrap' });
  const pager = h('nav', { class: 'pager', id: 'logs-pager', 'aria-label': t('logs.pager') });
  const panel = h('section', { id: 'logs-panel', class: 'card' }, filterForm, bulk, tableState, tableWrap, pager, danger);
  const lists = h('div', { hidden: true }, datalist(h, 'logs-models', []));
  root.replaceChildren(
    h('div', { class: 'page-head' }, h('h1', {}, t('logs.title')), h('div', { class: 'actions' }, copyLink, refresh)),
    h('div', { class: 'tabs', role: 'group', 'aria-label': t('logs.tabs'), style: { marginBottom: '.75rem' } }, tabBtns),
    panel, lists);

  // --- filters -------------------------------------------------------------
  function filterField(f) {
    const id = `logs-f-${f}`;
    let el;
    switch (f) {
      case 'token':
        el = h('select', { id }, h('option', { value: '' }, t('logs.any')),
          tokens.map((tk) => h('option', { value: tk.id }, `${tk.name} (${tk.hint})`)));
        if (state.token && !tokens.some((tk) => tk.id === state.token)) el.append(h('option', { value: state.token }, state.token));
        el.value = state.token || '';
        break;
      case 'success':
        el = h('select', { id }, ['', 'true', 'false'].map((v) => h('option', { value: v }, t(`logs.success.${v || 'any'}`))));
        el.value = state.success || '';
        break;
      case 'status_code':
        el = h('input', { id, type: 'number', min: '100', max: '599', inputmode: 'numeric', placeholder: t('logs.ph.status_code') });
        el.value = state.status_code || '';
        break;
      case 'from':
      case 'to':
        el = h('input', { id, type: 'datetime-local' });
        el.value = toLocalInput(state[f]);
        break;
      default:
        el = h('input', { id, type: 'search', autocomplete: 'off', spellcheck: 'false', placeholder: t(`logs.ph.${f}`), list: f === 'model' ? 'logs-models' : null });
        el.value = state[f] || '';
    }
    el.dataset.filter = f;
    return h('div', { class: ['field', f === 'q' && 'search'] }, h('label', { for: id }, t(`logs.f.${state.tab}.${f}`)), el);
  }

  function readFilters() {
    const out = {};
    for (const el of filterForm.querySelectorAll('[data-filter]')) {
      const f = el.dataset.filter;
      const v = f === 'from' || f === 'to' ? fromLocalInput(el.value) : el.value.trim();
      if (v) out[f] = v;
    }
    return out;
  }

  function buildFilters() {
    const apply = h('button', { type: 'submit', class: 'btn primary', id: 'logs-apply' }, t('logs.apply'));
    const clearBtn = h('button', { type: 'button', class: 'btn', id: 'logs-clear-filters' }, t('logs.clearFilters'));
    clearBtn.addEventListener('click', () => {
      state = { tab: state.tab, size: state.size, page: 1, sort: state.sort, order: state.order };
      build();
      load();
    });
    filterForm.replaceChildren(...TABS[state.tab].filters.map(filterField), h('div', { class: 'row' }, apply, clearBtn));
  }
  filterForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = readFilters();
    if (f.from && f.to && f.to < f.from) {
      tableState.replaceChildren(h('p', { class: 'error-box' }, t('logs.badRange')));
      return;
    }
    state = { tab: state.tab, size: state.size, sort: state.sort, order: state.order, ...f, page: 1 };
    selected.clear();
    load();
  });
  filterForm.addEventListener('change', (e) => {
    if (e.target.tagName === 'SELECT') filterForm.requestSubmit();
  });

  // --- delete (error logs; request logs when the API offers it) ------------
  const deletesHere = () => state.tab === 'errors' || requestDeletes;
  const base = () => TABS[state.tab].path;

  async function del(kind, arg) {
    const n = kind === 'ids' ? arg.length : null;
    const ok = await confirmDialog({
      title: t(`logs.del.${kind}.title`),
      body: t(`logs.del.${kind}.body`, { n, date: arg && kind === 'before' ? fmtTime(arg) : '', what: t(`logs.tab.${state.tab}`) }),
      confirmLabel: t('logs.del.confirm'), danger: true,
    });
    if (!ok) return;
    try {
      let res;
      if (kind === 'ids') res = await api('DELETE', base(), { ids: arg });
      else if (kind === 'all') res = await api('DELETE', `${base()}/all`);
      else res = await api('DELETE', base(), null, { query: { before: arg } });
      const count = res && typeof res === 'object' && res.deleted !== undefined ? res.deleted : n;
      toast(count !== null && count !== undefined ? t('logs.deletedN', { n: fmtNum(count) }) : t('logs.deleted'), 'ok');
      selected.clear();
      load();
    } catch (err) {
      toast(t('logs.deleteFailed', { msg: err.message }), 'error');
    }
  }

  function buildDanger() {
    danger.hidden = !deletesHere();
    if (danger.hidden) return;
    const before = h('input', { id: 'logs-delete-before', type: 'datetime-local' });
    const beforeBtn = h('button', { type: 'button', class: 'btn danger-soft', id: 'logs-delete-before-submit' }, t('logs.del.beforeBtn'));
    beforeBtn.addEventListener('click', () => {
      const iso = fromLocalInput(before.value);
      if (!iso) {
        before.setAttribute('aria-invalid', 'true');
        before.focus();
        toast(t('logs.del.pickDate'), 'error');
        return;
      }
      before.removeAttribute('aria-invalid');
      del('before', iso);
    });
    const allBtn = h('button', { type: 'button', class: 'btn danger', id: 'logs-delete-all' }, t('logs.del.allBtn', { what: t(`logs.tab.${state.tab}`) }));
    allBtn.addEventListener('click', () => del('all'));
    danger.replaceChildren(
      h('summary', {}, t('logs.del.zone')),
      h('div', { class: 'toolbar' },
        h('div', { class: 'field' }, h('label', { for: 'logs-delete-before' }, t('logs.del.beforeLabel')), before),
        beforeBtn),
      h('div', { class: 'row' }, allBtn));
  }

  function renderBulk() {
    bulk.hidden = !deletesHere() || selected.size === 0;
    if (bulk.hidden) return;
    const delBtn = h('button', { type: 'button', class: 'btn danger small', id: 'logs-delete-selected' }, t('logs.del.selectedBtn', { n: selected.size }));
    delBtn.addEventListener('click', () => del('ids', [...selected]));
    const none = h('button', { type: 'button', class: 'btn small' }, t('logs.selectNone'));
    none.addEventListener('click', () => {
      selected.clear();
      renderTable();
    });
    bulk.replaceChildren(h('span', {}, t('logs.selectedN', { n: selected.size })), delBtn, none);
  }

  // --- table ---------------------------------------------------------------
  const tokenName = (id) => tokens.find((tk) => tk.id === id)?.name;

  function sortHeader(col, sortName) {
    const label = t(`logs.col.${col}`);
    if (!sortName) return h('th', { scope: 'col', class: ['latency', 'tokens', 'attempts', 'attempt'].includes(col) ? 'num' : null }, label);
    const names = state.tab === 'errors' ? { request_time: ['id', 'time'], error_code: ['code'], model_name: ['model'], error_type: ['type'] }[sortName] || [] : [];
    const active = (state.sort || (state.tab === 'errors' ? 'request_time' : 'time')) === sortName || names.includes(state.sort);
    const order = state.order || 'desc';
    const btn = h('button', { type: 'button', class: 'b-sort', 'data-sort': sortName }, label, active ? (order === 'asc' ? ' ▲' : ' ▼') : h('span', { class: 'b-sort-idle', 'aria-hidden': 'true' }, ' ↕'));
    btn.addEventListener('click', () => {
      state = { ...state, sort: sortName, order: active && order === 'desc' ? 'asc' : 'desc', page: 1 };
      load();
    });
    return h('th', { scope: 'col', 'aria-sort': active ? (order === 'asc' ? 'ascending' : 'descending') : 'none', class: col === 'latency' ? 'num' : null }, btn);
  }

  function requestRow(r) {
    const view = h('button', { type: 'button', class: 'btn small', 'aria-label': t('logs.viewNamed', { time: fmtTime(r.time) }) }, t('logs.view'));
    view.addEventListener('click', () => requestDetail(r));
    const tok = [r.prompt_tokens, r.completion_tokens, r.thought_tokens].some(Boolean)
      ? t('logs.tokensSplit', { p: fmtNum(r.prompt_tokens || 0), c: fmtNum(r.completion_tokens || 0), th: fmtNum(r.thought_tokens || 0) })
      : (r.total_tokens ? fmtNum(r.total_tokens) : '—');
    const when = h('button', { type: 'button', class: 'btn link', 'aria-label': t('logs.viewNamed', { time: fmtTime(r.time) }) }, fmtTime(r.time));
    when.addEventListener('click', () => requestDetail(r));
    return h('tr', { 'data-id': r.id, class: selected.has(r.id) ? 'selected' : null },
      requestDeletes ? selCell(r) : null,
      h('td', {}, when),
      h('td', {}, chipFor(r.status, r.success)),
      h('td', {}, r.model || '—', r.stream ? h('span', { class: 'tag' }, t('logs.stream')) : null),
      h('td', { class: 'num' }, `${fmtNum(Math.round(r.latency_ms || 0))} ms`),
      h('td', { class: 'num', title: r.total_tokens ? t('logs.totalTokens', { n: r.total_tokens }) : '' }, tok),
      h('td', { title: `${r.method || ''} ${r.path || ''}` }, r.route || r.path || '—'),
      h('td', {}, h('code', {}, r.key_hint || '—')),
      h('td', {}, r.token_id ? (tokenName(r.token_id) || r.token_hint || r.token_id) : '—'),
      h('td', { class: 'num' }, fmtNum(r.attempts)),
      h('td', {}, h('div', { class: 'cell-actions' }, view)));
  }

  function selCell(r) {
    const cb = h('input', { type: 'checkbox', 'aria-label': t('logs.selectRow', { time: fmtTime(r.time) }) });
    cb.checked = selected.has(r.id);
    cb.addEventListener('change', () => {
      if (cb.checked) selected.add(r.id);
      else selected.delete(r.id);
      cb.closest('tr').classList.toggle('selected', cb.checked);
      syncAll();
      renderBulk();
    });
    return h('td', { class: 'sel' }, cb);
  }

  function errorRow(r) {
    const view = h('button', { type: 'button', class: 'btn small', 'aria-label': t('logs.viewNamed', { time: fmtTime(r.time) }) }, t('logs.view'));
    view.addEventListener('click', () => errorDetail(r));
    const rm = h('button', { type: 'button', class: 'btn small danger-soft', 'aria-label': t('logs.deleteNamed', { time: fmtTime(r.time) }) }, t('logs.delete'));
    rm.addEventListener('click', () => del('ids', [r.id]));
    const when = h('button', { type: 'button', class: 'btn link', 'aria-label': t('logs.viewNamed', { time: fmtTime(r.time) }) }, fmtTime(r.time));
    when.addEventListener('click', () => errorDetail(r));
    return h('tr', { 'data-id': r.id, class: selected.has(r.id) ? 'selected' : null },
      selCell(r),
      h('td', {}, when),
      h('td', {}, chipFor(r.error_code, false)),
      h('td', {}, r.error_type || '—'),
      h('td', {}, r.model || '—'),
      h('td', {}, h('code', {}, r.key_hint || r.key_id || '—')),
      h('td', {}, r.route || '—'),
      h('td', { class: 'num' }, fmtNum(r.attempt)),
      h('td', {}, h('div', { class: 'cell-actions' }, view, rm)));
  }

  let allBox = null;
  function syncAll() {
    if (!allBox) return;
    const n = rows.filter((r) => selected.has(r.id)).length;
    allBox.checked = n > 0 && n === rows.length;
    allBox.indeterminate = n > 0 && n < rows.length;
  }

  function renderTable() {
    const tab = TABS[state.tab];
    const cols = state.tab === 'requests' && requestDeletes ? [['sel', null], ...tab.cols] : tab.cols;
    allBox = null;
    const head = cols.map(([c, s]) => {
      if (c !== 'sel') return sortHeader(c, s);
      allBox = h('input', { type: 'checkbox', id: 'logs-select-all', 'aria-label': t('logs.selectPage') });
      allBox.addEventListener('change', () => {
        for (const r of rows) if (allBox.checked) selected.add(r.id); else selected.delete(r.id);
        renderTable();
      });
      return h('th', { scope: 'col', class: 'sel' }, allBox);
    });
    const body = rows.length
      ? rows.map(state.tab === 'errors' ? errorRow : requestRow)
      : [h('tr', {}, h('td', { colspan: cols.length, class: 'empty' }, t('logs.empty')))];
    tableWrap.replaceChildren(h('table', { id: `logs-${state.tab}-table`, class: 'data' },
      h('caption', { class: 'sr-only' }, t(`logs.tab.${state.tab}`)),
      h('thead', {}, h('tr', {}, head)), h('tbody', {}, body)));
    syncAll();
    renderBulk();
    renderPager();
  }

  function renderPager() {
    const pages = Math.max(1, Math.ceil(total / state.size), hasMore ? state.page + 1 : 0);
    const go = (p) => {
      state = { ...state, page: Math.min(Math.max(1, p), pages) };
      load();
    };
    const prev = h('button', { type: 'button', class: 'btn small', id: 'logs-prev', disabled: state.page <= 1 }, t('logs.prev'));
    prev.addEventListener('click', () => go(state.page - 1));
    const next = h('button', { type: 'button', class: 'btn small', id: 'logs-next', disabled: hasMore !== undefined ? !hasMore : state.page >= pages }, t('logs.next'));
    next.addEventListener('click', () => go(state.page + 1));
    const jump = h('input', { type: 'number', id: 'logs-page', min: '1', max: String(pages), style: { width: '5rem' } });
    jump.value = String(state.page);
    jump.addEventListener('change', () => go(parseInt(jump.value, 10) || 1));
    const size = h('select', { id: 'logs-size' }, SIZES.map((n) => h('option', { value: String(n) }, String(n))));
    size.value = String(state.size);
    size.addEventListener('change', () => {
      state = { ...state, size: Number(size.value), page: 1 };
      load();
    });
    pager.replaceChildren(
      h('span', { class: 'muted' }, t(exact ? 'logs.totalN' : 'logs.totalApprox', { n: fmtNum(total) })),
      h('div', { class: 'pages' }, prev,
        h('label', { for: 'logs-page', class: 'sr-only' }, t('logs.pageLabel')), jump,
        h('span', { class: 'muted' }, t(exact ? 'logs.ofPages' : 'logs.ofPagesApprox', { n: fmtNum(pages) })), next),
      h('div', { class: 'field' }, h('label', { for: 'logs-size' }, t('logs.pageSize')), size));
  }

  // --- details -------------------------------------------------------------
  function jsonBlock(id, label, text) {
    const body = pretty(text);
    const copy = h('button', { type: 'button', class: 'btn small' }, t('logs.copy'));
    copy.addEventListener('click', async () => {
      const ok = await copyText(body);
      toast(ok ? t('logs.copied') : t('logs.copyFailed'), ok ? 'ok' : 'error');
    });
    return h('div', { class: 'b-json-block' },
      h('div', { class: 'card-head' }, h('h3', { id: `${id}-label` }, label), copy),
      h('pre', { class: 'json', id, tabindex: '0', 'aria-labelledby': `${id}-label` }, body));
  }

  const kv = (pairs) => h('dl', { class: 'kv' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '').map(([k, v]) => [h('dt', {}, t(`logs.d.${k}`)), h('dd', {}, v)]));

  function linkTo(q, label) {
    const a = h('a', { class: 'btn', href: `/logs?${new URLSearchParams(q)}` }, label);
    a.addEventListener('click', (e) => {
      e.preventDefault();
      e.stopPropagation();
      a.closest('dialog')?.close();
      state = readState(new URLSearchParams(q));
      selected.clear();
      build();
      load();
    });
    return a;
  }

  function requestDetail(r) {
    const acts = [linkTo({ tab: 'errors', request_id: r.id }, t('logs.errorsOfRequest'))];
    if (r.key_id) acts.push(linkTo({ tab: 'requests', key: r.key_id }, t('logs.sameKey')));
    if (r.model) acts.push(linkTo({ tab: 'requests', model: r.model }, t('logs.sameModel')));
    openDialog({
      id: 'logs-detail', wide: true, title: t('logs.requestTitle', { model: r.model || '—', status: r.status }),
      body: [kv([
        ['time', fmtTime(r.time)], ['status', chipFor(r.status, r.success)], ['route', r.route], ['path', r.path && `${r.method || ''} ${r.path}`],
        ['model', r.model], ['upstream', r.upstream_model], ['key', r.key_hint], ['token', r.token_id && (tokenName(r.token_id) || r.token_hint)],
        ['latency', `${fmtNum(Math.round(r.latency_ms || 0))} ms`], ['ttfb', r.ttfb_ms ? `${fmtNum(Math.round(r.ttfb_ms))} ms` : ''],
        ['attempts', fmtNum(r.attempts)], ['error', r.error],
      ]), jsonBlock('logs-detail-json', t('logs.d.raw'), r)],
      actions: acts,
    });
  }

  async function errorDetail(r) {
    const body = h('div', {}, h('p', { class: 'muted' }, t('logs.loading')));
    const rm = h('button', { type: 'button', class: 'btn danger-soft' }, t('logs.delete'));
    const dlg = openDialog({ id: 'logs-detail', wide: true, title: t('logs.errorTitle', { type: r.error_type || '—', code: r.error_code }), body, actions: [rm] });
    rm.addEventListener('click', () => {
      dlg.close();
      del('ids', [r.id]);
    });
    try {
      const d = await api('GET', `/api/logs/errors/${encodeURIComponent(r.id)}/details`);
      const parts = [kv([
        ['time', fmtTime(d.time)], ['code', chipFor(d.error_code, false)], ['type', d.error_type], ['model', d.model],
        ['route', d.route], ['key', d.key_hint || d.key_id], ['attempt', fmtNum(d.attempt)], ['class', d.class],
        ['request', d.request_id && linkTo({ tab: 'errors', request_id: d.request_id }, d.request_id)],
      ]), jsonBlock('logs-detail-error', t('logs.d.errorBody'), d.error_log || '')];
      parts.push(d.request_body
        ? jsonBlock('logs-detail-request', t('logs.d.requestBody'), d.request_body)
        : h('p', { class: 'muted' }, t('logs.noRequestBody')));
      body.replaceChildren(...parts);
    } catch (err) {
      body.replaceChildren(h('div', { class: 'error-box', role: 'alert' }, t('logs.detailFailed', { msg: err.message })));
    }
  }

  // --- loading -------------------------------------------------------------
  function build() {
    for (const b of tabBtns) b.setAttribute('aria-pressed', String(b.id === `logs-tab-${state.tab}`));
    buildFilters();
    buildDanger();
    tableWrap.replaceChildren();
    pager.replaceChildren();
  }

  async function load() {
    const my = ++seq;
    abort?.abort();
    abort = new AbortController();
    const qs = writeState(state);
    history.replaceState(null, '', `${location.pathname}?${qs}`);
    tableState.replaceChildren(h('span', { class: 'muted' }, t('logs.loading')));
    const q = TABS[state.tab].query(state);
    q.limit = state.size;
    q.offset = (state.page - 1) * state.size;
    // Counting a million request logs is the slow part: count once per
    // filter set, then page on with has_more.
    const filterKey = JSON.stringify([state.tab, TABS[state.tab].query(state)]);
    if (state.tab === 'requests' && state.page > 1 && counted === filterKey) q.count = 'none';
    try {
      const res = await api('GET', TABS[state.tab].path, null, { query: q, signal: abort.signal });
      if (my !== seq) return;
      rows = res.logs || [];
      if (res.total !== undefined) {
        total = Number(res.total) || 0;
        // A first page that holds everything is an exact count, whatever the estimate said.
        exact = res.total_exact !== false || (state.page === 1 && res.has_more === false && rows.length === total);
        counted = filterKey;
      }
      hasMore = typeof res.has_more === 'boolean' ? res.has_more : undefined;
      if (!rows.length && total > 0 && state.page > 1) {
        state.page = Math.max(1, Math.ceil(total / state.size));
        load();
        return;
      }
      tableState.replaceChildren();
      renderTable();
    } catch (err) {
      if (err.name === 'AbortError' || my !== seq) return;
      rows = [];
      total = 0;
      counted = '';
      tableWrap.replaceChildren();
      pager.replaceChildren();
      tableState.replaceChildren(h('div', { class: 'error-box', role: 'alert' }, t('logs.loadFailed', { what: t(`logs.tab.${state.tab}`), msg: err.message })));
    }
  }

  build();
  const first = load();
  // Side data: token names for the token filter and column, model names for
  // the model filter, and whether request logs can be deleted.
  api('GET', '/api/tokens').then((res) => {
    tokens = res.tokens || [];
    const sel = filterForm.querySelector('#logs-f-token');
    if (sel) sel.closest('.field').replaceWith(filterField('token'));
    if (rows.length) renderTable();
  }).catch(() => {});
  loadModels(api).then((names) => lists.replaceChildren(datalist(h, 'logs-models', names)));
  api('GET', '/api/openapi.json').then((doc) => {
    requestDeletes = !!doc?.paths?.['/api/logs/requests']?.delete;
    if (requestDeletes && state.tab === 'requests') {
      buildDanger();
      if (rows.length) renderTable();
    }
  }).catch(() => {});
  await first;
  return () => abort?.abort();
}
