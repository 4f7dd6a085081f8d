// A server-paginated table: the server pages and filters, the browser holds
// one page. Row selection survives paging (ids are kept, not rows); the
// page size is remembered per table.
//
//   const tbl = createTable({ id: 'keys-table', t, columns, rowId: (r) => r.id,
//     fetch: async ({ page, pageSize, sort, order, signal }) => ({ rows, total }) });
//   root.append(tbl.el); tbl.reload();
import { h, clear, spinner } from './dom.js';

export const PAGE_SIZES = [20, 50, 100, 200];

// columns: [{ key, label, render(row) → node|string, class, sort (server
// sort name), hideLabel }]. Options: selectable, pageSize, onSelect(ids),
// onRows(rows), emptyText, caption (accessible name of the table).
export function createTable(o) {
  const { t } = o;
  const storeKey = `gb.pagesize.${o.id}`;
  let pageSize = Number(safeGet(storeKey)) || o.pageSize || 50;
  if (!PAGE_SIZES.includes(pageSize)) pageSize = 50;
  let page = 1;
  let total = 0;
  let rows = [];
  let sort = o.sort || '';
  let order = o.order || 'desc';
  let ctrl = null;
  const selected = new Map(); // id -> row (as last seen)
  const key = (r) => String(o.rowId(r));

  const selAll = o.selectable ? h('input', { type: 'checkbox', 'aria-label': t('common.table.select_all'), onchange: () => {
    for (const r of rows) {
      if (selAll.checked) selected.set(key(r), r); else selected.delete(key(r));
    }
    paintSelection();
  } }) : null;

  const headRow = h('tr', {},
    o.selectable ? h('th', { class: 'sel', scope: 'col' }, selAll) : null,
    o.columns.map((c) => {
      const th = h('th', { scope: 'col', class: c.class }, c.hideLabel ? h('span', { class: 'sr-only' }, c.label) : c.label);
      if (c.sort) {
        const btn = h('button', { type: 'button', class: 'btn ghost small sort-btn', onclick: () => {
          if (sort === c.sort) order = order === 'desc' ? 'asc' : 'desc'; else { sort = c.sort; order = 'desc'; }
          page = 1;
          load();
        } }, c.label);
        clear(th, btn);
        th.dataset.sort = c.sort;
      }
      return th;
    }));
  const tbody = h('tbody', {});
  const table = h('table', { class: 'data', id: o.id }, o.caption ? h('caption', { class: 'sr-only' }, o.caption) : null, h('thead', {}, headRow), tbody);
  const info = h('span', { class: 'muted', 'aria-live': 'polite' });
  const sizeSel = h('select', { id: `${o.id}-page-size`, onchange: () => {
    pageSize = Number(sizeSel.value);
    safeSet(storeKey, String(pageSize));
    page = 1;
    load();
  } }, PAGE_SIZES.map((n) => h('option', { value: n }, String(n))));
  sizeSel.value = String(pageSize);
  const navBtn = (label, text, fn) => h('button', { type: 'button', class: 'btn small', 'aria-label': label, onclick: fn }, text);
  const first = navBtn(t('common.table.first'), '«', () => go(1));
  const prev = navBtn(t('common.table.prev'), '‹', () => go(page - 1));
  const next = navBtn(t('common.table.next'), '›', () => go(page + 1));
  const last = navBtn(t('common.table.last'), '»', () => go(pages()));
  const pageInfo = h('span', { class: 'muted nowrap' });
  const pager = h('div', { class: 'pager' },
    info,
    h('div', { class: 'pages' }, first, prev, pageInfo, next, last),
    h('div', { class: 'field' }, h('label', { for: sizeSel.id }, t('common.table.page_size')), sizeSel));
  const wrap = h('div', { class: 'table-wrap' }, table);
  const el = h('div', { class: 'table-box' }, wrap, pager);

  function pages() { return Math.max(1, Math.ceil(total / pageSize)); }
  function go(p) {
    p = Math.min(Math.max(1, p), pages());
    if (p !== page) { page = p; load(); }
  }
  const span = () => o.columns.length + (o.selectable ? 1 : 0);
  function stateRow(node) {
    clear(tbody, h('tr', {}, h('td', { colspan: span(), class: 'table-state' }, node)));
  }

  async function load() {
    ctrl?.abort();
    ctrl = new AbortController();
    const my = ctrl;
    table.setAttribute('aria-busy', 'true');
    if (!rows.length) stateRow(spinner());
    for (const th of headRow.querySelectorAll('th[data-sort]')) {
      th.setAttribute('aria-sort', th.dataset.sort === sort ? (order === 'asc' ? 'ascending' : 'descending') : 'none');
    }
    try {
      const res = await o.fetch({ page, pageSize, offset: (page - 1) * pageSize, sort, order, signal: my.signal });
      if (my !== ctrl) return;
      rows = res.rows || [];
      total = res.total ?? rows.length;
      if (rows.length === 0 && page > 1 && total > 0) { page = pages(); return load(); }
      paint();
    } catch (e) {
      if (e.name === 'AbortError' || my !== ctrl) return;
      rows = [];
      total = 0;
      stateRow(h('div', { class: 'error-box', role: 'alert' }, `${t('common.table.error')} ${e.message} `,
        h('button', { type: 'button', class: 'btn small', onclick: load }, t('common.table.retry'))));
      paintPager();
    } finally {
      if (my === ctrl) table.removeAttribute('aria-busy');
    }
  }

  function paint() {
    clear(tbody);
    if (!rows.length) stateRow(o.emptyText || t('common.table.empty'));
    for (const r of rows) {
      const id = key(r);
      if (selected.has(id)) selected.set(id, r);
      const cb = o.selectable ? h('input', { type: 'checkbox', class: 'row-select', 'aria-label': t('common.table.select_row', { id: o.rowLabel ? o.rowLabel(r) : id }), onchange: () => {
        if (cb.checked) selected.set(id, r); else selected.delete(id);
        paintSelection();
      } }) : null;
      tbody.append(h('tr', { 'data-id': id },
        o.selectable ? h('td', { class: 'sel' }, cb) : null,
        o.columns.map((c) => h('td', { class: c.class, 'data-col': c.key }, c.render ? c.render(r) : fmtCell(r[c.key])))));
    }
    paintPager();
    paintSelection();
    o.onRows?.(rows);
  }

  function paintPager() {
    const from = total ? (page - 1) * pageSize + 1 : 0;
    const to = Math.min(total, page * pageSize);
    info.textContent = t('common.table.range', { from: from.toLocaleString(), to: to.toLocaleString(), total: total.toLocaleString() });
    pageInfo.textContent = t('common.table.page', { page, pages: pages() });
    first.disabled = prev.disabled = page <= 1;
    next.disabled = last.disabled = page >= pages();
  }

  function paintSelection() {
    for (const tr of tbody.querySelectorAll('tr[data-id]')) {
      const on = selected.has(tr.dataset.id);
      tr.classList.toggle('selected', on);
      const cb = tr.querySelector('input.row-select');
      if (cb) cb.checked = on;
    }
    if (selAll) {
      const onPage = rows.filter((r) => selected.has(key(r))).length;
      selAll.checked = rows.length > 0 && onPage === rows.length;
      selAll.indeterminate = onPage > 0 && onPage < rows.length;
    }
    o.onSelect?.([...selected.keys()]);
  }

  return {
    el,
    table,
    // reload fetches the current page again (resetPage: back to page 1, e.g. after a filter change).
    reload({ resetPage = false } = {}) { if (resetPage) page = 1; return load(); },
    selectedIds: () => [...selected.keys()],
    selectedRows: () => [...selected.values()],
    clearSelection() { selected.clear(); paintSelection(); },
    select(ids) { for (const id of ids) { const r = rows.find((x) => key(x) === id); selected.set(id, r); } paintSelection(); },
    rows: () => rows,
    total: () => total,
    destroy() { ctrl?.abort(); },
  };
}

function fmtCell(v) {
  if (v === null || v === undefined || v === '') return '—';
  if (typeof v === 'number') return v.toLocaleString();
  return String(v);
}

function safeGet(k) { try { return localStorage.getItem(k); } catch { return null; } }
function safeSet(k, v) { try { localStorage.setItem(k, v); } catch { /* private mode */ } }
