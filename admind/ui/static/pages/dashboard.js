// Dashboard: counters, charts, key health, keys worth attention, recent
// errors and service health. Every block loads on its own, so one slow or
// missing backend shows its own error and the rest still render.
import { h, clear, field, fmtNum, fmtAgo, fmtTime, countdown, statusChip, spinner, errorBox, debounce } from '../lib/dom.js';
import { timeChart } from '../lib/chart.js';
import { ensureStrings, verifyKeys, copyKeys, changeKeys, soonestCooldown, openKeyDetail } from '../lib/keyactions.js';

const WINDOWS = ['minute', 'hour', 'day', 'month'];
const RANGES = { '6h': 6, '24h': 24, '7d': 168, '30d': 720 };
const CODES = [429, 400, 401, 403, 500, 503];

export async function mount(root, ctx) {
  const { t, api } = ctx;
  await ensureStrings();
  const timers = [];
  const charts = [];

  // ---- counters ----
  const counters = h('div', { class: 'stats', id: 'dashboard-counters', 'aria-live': 'polite' }, spinner());
  async function loadCounters() {
    try {
      const o = await api('GET', '/api/stats/overview');
      clear(counters, ...WINDOWS.map((w) => counterCard(w, o[w] || {})));
    } catch (e) {
      clear(counters, errorBox(t('common.load_failed', { what: t('dashboard.counters') }), e));
    }
  }
  function counterCard(w, v) {
    return h('section', { class: 'stat', 'data-window': w, 'aria-label': t(`dashboard.window.${w}`) },
      h('div', { class: 'label' }, t(`dashboard.window.${w}`)),
      h('div', { class: 'value', 'data-field': 'requests' }, fmtNum(v.requests)),
      h('div', { class: 'sub' }, h('span', {}, t('dashboard.requests', { count: v.requests }))),
      h('div', { class: 'sub' },
        h('span', { class: 'ok', 'data-field': 'successes' }, t('dashboard.successes_n', { n: fmtNum(v.successes) })),
        h('span', { class: v.failures ? 'bad' : '', 'data-field': 'failures' }, t('dashboard.failures_n', { n: fmtNum(v.failures) }))),
      h('div', { class: 'sub tokens' },
        h('span', { 'data-field': 'prompt_tokens' }, t('dashboard.prompt_n', { n: fmtNum(v.prompt_tokens) })),
        h('span', { 'data-field': 'completion_tokens' }, t('dashboard.completion_n', { n: fmtNum(v.completion_tokens) })),
        h('span', { 'data-field': 'thought_tokens' }, t('dashboard.thought_n', { n: fmtNum(v.thought_tokens) }))));
  }

  // ---- charts ----
  const range = h('select', { id: 'dashboard-range' },
    Object.keys(RANGES).map((r) => h('option', { value: r }, t(`dashboard.range.${r}`))), h('option', { value: 'custom' }, t('dashboard.range.custom')));
  range.value = '24h';
  const from = h('input', { type: 'datetime-local', id: 'dashboard-from' });
  const to = h('input', { type: 'datetime-local', id: 'dashboard-to' });
  const custom = h('div', { class: 'row custom-range', hidden: true }, field(t('dashboard.from'), from), field(t('dashboard.to'), to));
  const by = h('select', { id: 'dashboard-filter-by' }, ['', 'key', 'model', 'token'].map((v) => h('option', { value: v }, t(`dashboard.filter.${v || 'all'}`))));
  const list = h('datalist', { id: 'dashboard-filter-options' });
  const value = h('input', { type: 'text', id: 'dashboard-filter-value', list: 'dashboard-filter-options', disabled: true, autocomplete: 'off' });
  const valueField = h('div', { class: 'field search', hidden: true }, h('label', { for: value.id }, t('dashboard.filter.value')), value, list);
  const chartErr = h('div', {});
  const reqEl = h('div', { class: 'chart', id: 'dashboard-chart-requests' });
  const errEl = h('div', { class: 'chart', id: 'dashboard-chart-errors' });
  const tokEl = h('div', { class: 'chart', id: 'dashboard-chart-tokens' });
  const chartTotals = h('p', { class: 'muted', id: 'dashboard-chart-totals' });
  let reqChart, errChart, tokChart;

  by.addEventListener('change', async () => {
    value.value = '';
    value.disabled = !by.value;
    valueField.hidden = !by.value;
    value.placeholder = by.value ? t(`dashboard.filter.placeholder_${by.value}`) : '';
    clear(list);
    if (by.value) await fillOptions(by.value);
    if (!by.value) loadSeries();
  });
  value.addEventListener('input', debounce(() => loadSeries(), 600));
  range.addEventListener('change', () => {
    custom.hidden = range.value !== 'custom';
    if (range.value === 'custom' && !from.value) {
      const now = new Date();
      to.value = localInput(now);
      from.value = localInput(new Date(now.getTime() - 72 * 3600e3));
    }
    loadSeries();
  });
  from.addEventListener('change', () => loadSeries());
  to.addEventListener('change', () => loadSeries());

  async function fillOptions(kind) {
    try {
      let opts = [];
      if (kind === 'model') {
        const m = await api('GET', '/api/models');
        opts = (m.models || []).map((x) => (typeof x === 'string' ? { v: x } : { v: x.name || x.id, l: x.display_name }));
      } else if (kind === 'token') {
        const r = await api('GET', '/api/tokens');
        opts = (r.tokens || []).map((x) => ({ v: x.id, l: `${x.name || ''} ${x.hint || ''}`.trim() }));
      } else {
        const r = await api('GET', '/api/keys', null, { query: { limit: 200 } });
        opts = (r.keys || []).map((x) => ({ v: x.id, l: x.hint }));
      }
      clear(list, ...opts.filter((o) => o.v).map((o) => h('option', { value: o.v, label: o.l || undefined })));
    } catch {
      // Suggestions only: the field still takes any value.
    }
  }

  let gone = false; // unmounted: late answers draw nothing
  async function loadSeries() {
    if (gone) return;
    clear(chartErr);
    const q = {};
    if (range.value === 'custom') {
      if (!from.value || !to.value) return;
      q.from = new Date(from.value).toISOString();
      q.to = new Date(to.value).toISOString();
    } else {
      q.from = new Date(Date.now() - (RANGES[range.value] - 1) * 3600e3).toISOString();
    }
    if (by.value && value.value.trim()) q[by.value] = value.value.trim();
    try {
      const s = await api('GET', '/api/stats/series', null, { query: q });
      const pts = s.points || [];
      const xs = pts.map((p) => Date.parse(`${p.hour}:00:00Z`) / 1000);
      const col = (k) => pts.map((p) => p[k] || 0);
      if (!reqChart) {
        reqChart = await timeChart(reqEl, { height: 200, timeLabel: t('common.chart.time'), series: [
          { label: t('dashboard.series.requests'), color: '--chart-1', fill: true },
          { label: t('dashboard.series.successes'), color: '--chart-3' },
          { label: t('dashboard.series.failures'), color: '--chart-2' }] });
        errChart = await timeChart(errEl, { height: 200, timeLabel: t('common.chart.time'), series: [
          { label: t('dashboard.series.f4xx'), color: '--chart-4', bars: true },
          { label: t('dashboard.series.f5xx'), color: '--chart-2', bars: true },
          { label: t('dashboard.series.fother'), color: '--chart-5', bars: true }] });
        tokChart = await timeChart(tokEl, { height: 200, timeLabel: t('common.chart.time'), series: [
          { label: t('dashboard.series.prompt'), color: '--chart-1', fill: true },
          { label: t('dashboard.series.completion'), color: '--chart-3', fill: true },
          { label: t('dashboard.series.thought'), color: '--chart-5' }] });
        charts.push(reqChart, errChart, tokChart);
        if (gone) { [reqChart, errChart, tokChart].forEach((c) => c.destroy()); return; }
      }
      reqChart.setData([xs, col('requests'), col('successes'), col('failures')]);
      errChart.setData([xs, col('failures_4xx'), col('failures_5xx'), col('failures_other')]);
      tokChart.setData([xs, col('prompt_tokens'), col('completion_tokens'), col('thought_tokens')]);
      const sum = (k) => pts.reduce((a, p) => a + (p[k] || 0), 0);
      chartTotals.textContent = t('dashboard.range_totals', { count: sum('requests'), requests: fmtNum(sum('requests')), failures: fmtNum(sum('failures')), tokens: fmtNum(sum('total_tokens')) });
    } catch (e) {
      chartErr.append(errorBox(t('common.load_failed', { what: t('dashboard.charts') }), e));
    }
  }

  // ---- key health ----
  const health = h('div', { id: 'dashboard-key-health' }, spinner());
  async function loadKeyHealth() {
    try {
      const [s, cooling] = await Promise.all([
        api('GET', '/api/keys/stats'),
        api('GET', '/api/keys', null, { query: { status: 'cooling', limit: 8 } }),
      ]);
      const by = { active: 0, cooling: 0, disabled: 0 };
      for (const st of Object.values(s.counts || {})) for (const [k, n] of Object.entries(st)) by[k] = (by[k] || 0) + n;
      const total = s.total || 0;
      const bar = h('div', { class: 'bar', role: 'img', 'aria-label': t('dashboard.health_bar', { active: by.active, cooling: by.cooling, disabled: by.disabled }) },
        ...['active', 'cooling', 'disabled'].map((st) => h('span', { class: `bar-${st}`, style: { width: total ? `${(100 * by[st]) / total}%` : '0' } })));
      const tiles = h('div', { class: 'health-tiles' }, ...['active', 'cooling', 'disabled'].map((st) =>
        h('a', { class: 'health-tile', href: `/keys?status=${st}`, 'data-status': st },
          h('span', { class: 'n' }, fmtNum(by[st])), statusChip(st))));
      const rows = cooling.keys || [];
      clear(health, tiles, bar,
        h('h3', { class: 'mt' }, t('dashboard.cooling_keys')),
        rows.length ? h('ul', { class: 'plain cooling-list' }, ...rows.map((k) => {
          const c = soonestCooldown(k);
          return h('li', {}, h('button', { type: 'button', class: 'link mono', onclick: () => openKeyDetail(k.id, refreshAll) }, k.hint),
            h('span', { class: 'muted mono clip' }, c ? c.model : ''),
            c ? h('span', { class: 'cd' }, countdown(c.until)) : null);
        })) : h('p', { class: 'muted' }, t('dashboard.no_cooling')),
        cooling.total_items > rows.length ? h('a', { href: '/keys?status=cooling' }, t('dashboard.all_cooling', { n: fmtNum(cooling.total_items) })) : null);
    } catch (e) {
      clear(health, errorBox(t('common.load_failed', { what: t('dashboard.key_health') }), e));
    }
  }

  // ---- keys worth attention ----
  let code = 429;
  const codeTabs = h('div', { class: 'tabs', role: 'group', 'aria-label': t('dashboard.attention_code') }, ...CODES.map((c) =>
    h('button', { type: 'button', 'aria-pressed': String(c === code), 'data-code': c, onclick: () => { code = c; otherCode.value = ''; for (const b of codeTabs.children) b.setAttribute('aria-pressed', String(Number(b.dataset.code) === c)); loadAttention(); } }, String(c))));
  const otherCode = h('input', { type: 'number', id: 'dashboard-attention-code', min: 100, max: 599, step: 1, class: 'code-input', 'aria-label': t('dashboard.attention_other'), placeholder: t('dashboard.attention_other_short'), onchange: () => {
    const c = Number(otherCode.value);
    if (!Number.isInteger(c) || c < 100 || c > 599) { otherCode.setAttribute('aria-invalid', 'true'); return; }
    otherCode.removeAttribute('aria-invalid');
    code = c;
    for (const b of codeTabs.children) b.setAttribute('aria-pressed', String(Number(b.dataset.code) === c));
    loadAttention();
  } });
  const attention = h('div', { id: 'dashboard-attention' }, spinner());
  const attBar = h('div', { class: 'row', id: 'dashboard-attention-actions' });
  let attRows = [];
  const attSel = new Set();
  async function loadAttention() {
    try {
      const r = await api('GET', '/api/stats/attention-keys', null, { query: { status_code: code, limit: 20 } });
      attRows = r.keys || [];
      for (const id of [...attSel]) if (!attRows.some((k) => k.key_id === id)) attSel.delete(id);
      paintAttention();
    } catch (e) {
      clear(attention, errorBox(t('common.load_failed', { what: t('dashboard.attention') }), e));
    }
  }
  function paintAttention() {
    if (!attRows.length) {
      clear(attention, h('p', { class: 'empty' }, t('dashboard.attention_none', { code })));
      clear(attBar);
      return;
    }
    const all = h('input', { type: 'checkbox', 'aria-label': t('common.table.select_all'), checked: attRows.every((k) => attSel.has(k.key_id)), onchange: () => {
      for (const k of attRows) if (all.checked) attSel.add(k.key_id); else attSel.delete(k.key_id);
      paintAttention();
    } });
    clear(attention, h('div', { class: 'table-wrap' }, h('table', { class: 'data', id: 'dashboard-attention-table' },
      h('thead', {}, h('tr', {}, h('th', { class: 'sel', scope: 'col' }, all), h('th', { scope: 'col' }, t('dashboard.col.key')), h('th', { scope: 'col' }, t('dashboard.col.status')), h('th', { scope: 'col', class: 'num' }, t('dashboard.col.count', { code })))),
      h('tbody', {}, ...attRows.map((k) => {
        const cb = h('input', { type: 'checkbox', 'aria-label': t('common.table.select_row', { id: k.hint || k.key_id }), checked: attSel.has(k.key_id), onchange: () => { if (cb.checked) attSel.add(k.key_id); else attSel.delete(k.key_id); paintAttention(); } });
        return h('tr', { 'data-id': k.key_id, class: attSel.has(k.key_id) ? 'selected' : '' },
          h('td', { class: 'sel' }, cb),
          h('td', {}, h('button', { type: 'button', class: 'link mono nowrap', onclick: () => openKeyDetail(k.key_id, refreshAll) }, k.hint || k.key_id)),
          h('td', {}, k.status ? statusChip(k.status) : '—'),
          h('td', { class: 'num' }, fmtNum(k.count)));
      })))));
    const ids = attSel.size ? [...attSel] : attRows.map((k) => k.key_id);
    const hints = attRows.filter((k) => ids.includes(k.key_id)).map((k) => k.hint || k.key_id);
    const scope = attSel.size ? t('dashboard.selected_n', { n: attSel.size }) : t('dashboard.all_n', { n: attRows.length });
    clear(attBar, 
      h('span', { class: 'muted' }, scope),
      h('button', { type: 'button', class: 'btn small', id: 'dashboard-attention-verify', onclick: async () => { await verifyKeys(ids); refreshAll(); } }, t('keys.action.verify')),
      h('button', { type: 'button', class: 'btn small', id: 'dashboard-attention-copy', onclick: () => copyKeys({ ids }, ids.length) }, t('keys.action.copy')),
      h('button', { type: 'button', class: 'btn small danger-soft', id: 'dashboard-attention-disable', onclick: async () => { if (await changeKeys('disable', ids, hints)) refreshAll(); } }, t('keys.action.disable')));
  }

  // ---- recent errors ----
  const errors = h('div', { id: 'dashboard-errors' }, spinner());
  async function loadErrors() {
    try {
      const r = await api('GET', '/api/logs/errors', null, { query: { limit: 8 } });
      const logs = r.logs || [];
      clear(errors, logs.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
        h('thead', {}, h('tr', {}, ...['time', 'key', 'model', 'code', 'error'].map((c) => h('th', { scope: 'col' }, t(`dashboard.col.${c}`))))),
        h('tbody', {}, ...logs.map((l) => h('tr', { 'data-id': l.id },
          h('td', { class: 'nowrap', title: fmtTime(l.time) }, l.request_id ? h('a', { href: `/logs?tab=errors&request_id=${encodeURIComponent(l.request_id)}` }, fmtAgo(l.time)) : fmtAgo(l.time)),
          h('td', { class: 'mono nowrap' }, l.key_hint || '—'),
          h('td', { class: 'mono nowrap' }, l.model || '—'),
          h('td', {}, h('span', { class: 'chip', 'data-status': l.error_code === 429 ? 'cooling' : 'disabled' }, String(l.error_code || l.class || '?'))),
          h('td', {}, h('span', { class: 'clip', title: [l.class, l.error_type, l.route].filter(Boolean).join(' · ') }, l.class || l.error_type || '')))))))
        : h('p', { class: 'empty' }, t('dashboard.no_errors')));
    } catch (e) {
      clear(errors, errorBox(t('common.load_failed', { what: t('dashboard.recent_errors') }), e));
    }
  }

  // ---- service health ----
  const services = h('div', { id: 'dashboard-services' }, spinner());
  async function loadServices() {
    try {
      const r = await api('GET', '/api/health');
      clear(services, h('ul', { class: 'plain services' }, ...(r.services || []).map((s) =>
        h('li', { 'data-service': s.name },
          h('span', { class: 'svc-name' }, s.name),
          statusChip(s.status === 'up' ? 'ok' : 'down', t(`dashboard.service.${s.status === 'up' ? 'up' : 'down'}`)),
          h('span', { class: 'muted' }, t('dashboard.replicas', { n: s.replicas }))))));
    } catch (e) {
      clear(services, errorBox(t('common.load_failed', { what: t('dashboard.services') }), e));
    }
  }

  const refreshAll = () => { loadCounters(); loadKeyHealth(); loadAttention(); loadErrors(); loadServices(); };

  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, t('dashboard.title')),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn', id: 'dashboard-refresh', onclick: () => { refreshAll(); loadSeries(); } }, t('common.refresh')))),
    counters,
    h('section', { class: 'card', 'aria-labelledby': 'dash-charts-h' },
      h('div', { class: 'card-head' }, h('h2', { id: 'dash-charts-h' }, t('dashboard.charts')), chartTotals),
      h('div', { class: 'toolbar' }, field(t('dashboard.range'), range), field(t('dashboard.filter.by'), by), valueField),
      custom, chartErr,
      h('div', { class: 'grid three charts' },
        h('figure', {}, h('figcaption', {}, t('dashboard.chart.requests')), reqEl),
        h('figure', {}, h('figcaption', {}, t('dashboard.chart.errors')), errEl),
        h('figure', {}, h('figcaption', {}, t('dashboard.chart.tokens')), tokEl))),
    h('div', { class: 'grid two' },
      h('section', { class: 'card', 'aria-labelledby': 'dash-health-h' }, h('div', { class: 'card-head' }, h('h2', { id: 'dash-health-h' }, t('dashboard.key_health')), h('a', { href: '/keys' }, t('dashboard.manage_keys'))), health),
      h('section', { class: 'card', 'aria-labelledby': 'dash-att-h' },
        h('div', { class: 'card-head' }, h('h2', { id: 'dash-att-h' }, t('dashboard.attention')), h('div', { class: 'row' }, codeTabs, otherCode)),
        attention, attBar)),
    h('div', { class: 'grid two' },
      h('section', { class: 'card', 'aria-labelledby': 'dash-err-h' }, h('div', { class: 'card-head' }, h('h2', { id: 'dash-err-h' }, t('dashboard.recent_errors')), h('a', { href: '/logs?tab=errors' }, t('dashboard.all_logs'))), errors),
      h('section', { class: 'card', 'aria-labelledby': 'dash-svc-h' }, h('h2', { id: 'dash-svc-h' }, t('dashboard.services')), services)));

  refreshAll();
  loadSeries();
  timers.push(setInterval(() => { if (!document.hidden && !document.querySelector('dialog[open]')) { loadCounters(); loadKeyHealth(); loadServices(); loadErrors(); } }, 15000));
  return () => { gone = true; timers.forEach(clearInterval); charts.forEach((c) => c.destroy()); };
}

// localInput formats a Date for <input type="datetime-local">.
function localInput(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
