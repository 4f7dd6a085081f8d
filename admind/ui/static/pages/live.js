// Live: the request events of GET /api/live (server-sent events) as they
// happen, newest on top. At most MAX_ROWS rows are kept, so memory stays flat
// however long the page is open; pause holds new events back (also bounded),
// filters apply in the browser, and a lost connection reconnects by itself.
import { fmtNum, statusChip, openDialog } from '../lib/dom.js';
import { loginPath } from '../lib/api.js';
import { locale } from '../lib/i18n.js';
import { datalist, loadModels } from '../lib/b-models.js';

const MAX_ROWS = 500;
const MAX_BACKOFF_MS = 30000;

// eventOf unwraps a request event from an SSE data payload.
function eventOf(data) {
  const v = JSON.parse(data);
  return v && typeof v === 'object' && (v.request || v.event) && typeof (v.request || v.event) === 'object' ? v.request || v.event : v;
}

// droppedOf reads how many events the server dropped for this client.
function droppedOf(data) {
  try {
    const v = JSON.parse(data);
    if (typeof v === 'number') return v;
    return Number(v.dropped ?? v.count ?? v.n ?? 0) || 0;
  } catch {
    return Number(data) || 0;
  }
}

// statusClass groups a status code for filters and chips.
function statusClass(ev) {
  const s = Number(ev.status) || 0;
  if (ev.success || (s >= 200 && s < 300)) return 'ok';
  if (s === 429) return '429';
  if (s >= 400 && s < 500) return '4xx';
  if (s >= 500) return '5xx';
  return 'other';
}

function tokensOf(ev) {
  const u = ev.usage || {};
  return {
    prompt: u.prompt ?? ev.prompt_tokens ?? 0,
    completion: u.candidates ?? ev.completion_tokens ?? 0,
    thoughts: u.thoughts ?? ev.thought_tokens ?? 0,
    total: u.total ?? ev.total_tokens ?? 0,
  };
}

export async function mount(root, ctx) {
  const { api, t, h, toast } = ctx;
  let rows = []; // events on screen, newest first (≤ MAX_ROWS)
  let held = []; // events received while paused (≤ MAX_ROWS)
  let heldOver = 0; // events that did not fit in held
  let queue = []; // events waiting for the next frame
  let paused = false;
  let received = 0;
  let dropped = 0;
  let es = null;
  let backoff = 1000;
  let retryTimer = 0;
  let frame = 0;
  let closed = false;
  const els = new Map(); // event → its table row
  const tokenNames = new Map();
  let tokenFetch = 0;

  // --- controls ------------------------------------------------------------
  const conn = h('span', { id: 'live-status', class: 'b-conn', 'data-state': 'connecting', role: 'status', 'aria-live': 'polite' });
  const pauseBtn = h('button', { type: 'button', class: 'btn', id: 'live-pause', 'aria-pressed': 'false' }, t('live.pause'));
  const clearBtn = h('button', { type: 'button', class: 'btn', id: 'live-clear' }, t('live.clear'));
  const counts = h('span', { id: 'live-counts', class: 'muted' });
  const heldNote = h('p', { id: 'live-held', class: 'b-note', hidden: true, role: 'status' });
  const droppedNote = h('p', { id: 'live-dropped', class: 'b-warn', hidden: true, role: 'status' });

  const fModel = h('input', { id: 'live-filter-model', type: 'search', list: 'live-models', autocomplete: 'off', placeholder: t('live.anyModel') });
  const fStatus = h('select', { id: 'live-filter-status' }, ['', 'ok', 'err', '4xx', '429', '5xx'].map((v) => h('option', { value: v }, t(`live.status.${v || 'any'}`))));
  const fToken = h('select', { id: 'live-filter-token' }, h('option', { value: '' }, t('live.anyToken')));
  const fRoute = h('input', { id: 'live-filter-route', type: 'search', autocomplete: 'off', placeholder: t('live.anyRoute') });
  const filters = h('form', { class: 'toolbar', role: 'search', 'aria-label': t('live.filters'), onsubmit: (e) => e.preventDefault() },
    h('div', { class: 'field' }, h('label', { for: 'live-filter-model' }, t('live.model')), fModel),
    h('div', { class: 'field' }, h('label', { for: 'live-filter-status' }, t('live.statusLabel')), fStatus),
    h('div', { class: 'field' }, h('label', { for: 'live-filter-token' }, t('live.token')), fToken),
    h('div', { class: 'field' }, h('label', { for: 'live-filter-route' }, t('live.route')), fRoute));

  const tbody = h('tbody');
  const cols = ['time', 'status', 'model', 'latency', 'tokens', 'route', 'key', 'token'];
  const table = h('table', { id: 'live-table', class: 'data' },
    h('caption', { class: 'sr-only' }, t('live.title')),
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', class: ['latency', 'tokens'].includes(c) ? 'num' : null }, t(`live.col.${c}`))))),
    tbody);
  const empty = h('p', { id: 'live-empty', class: 'empty' }, t('live.waiting'));
  const lists = h('div', { hidden: true }, datalist(h, 'live-models', []));

  root.replaceChildren(
    h('div', { class: 'page-head' }, h('h1', {}, t('live.title')), h('div', { class: 'actions' }, conn, pauseBtn, clearBtn)),
    h('p', { class: 'muted' }, t('live.intro', { n: MAX_ROWS })),
    filters, droppedNote, heldNote, counts,
    h('div', { class: 'table-wrap' }, table), empty, lists);

  // --- state ---------------------------------------------------------------
  function setConn(state) {
    conn.dataset.state = state;
    conn.textContent = t(`live.conn.${state}`);
  }

  function matches(ev) {
    const m = fModel.value.trim().toLowerCase();
    if (m && !String(ev.model || '').toLowerCase().includes(m)) return false;
    const r = fRoute.value.trim().toLowerCase();
    if (r && !`${ev.route || ''} ${ev.path || ''}`.toLowerCase().includes(r)) return false;
    const tk = fToken.value;
    if (tk && ev.token_id !== tk) return false;
    const s = fStatus.value;
    if (s) {
      const c = statusClass(ev);
      if (s === 'err' ? c === 'ok' : s === '4xx' ? c !== '4xx' && c !== '429' : c !== s) return false;
    }
    return true;
  }

  function tokenLabel(ev) {
    if (!ev.token_id) return ev.token_hint || '—';
    const n = tokenNames.get(ev.token_id);
    if (n === undefined) refreshTokens();
    return n || ev.token_hint || ev.token_id;
  }

  function row(ev) {
    const c = statusClass(ev);
    const tk = tokensOf(ev);
    const when = new Date(ev.time || Date.now());
    const tr = h('tr', { 'data-id': ev.id || '', 'data-status-class': c, class: 'b-new', tabindex: '0', 'aria-label': t('live.rowLabel', { model: ev.model || '—', status: ev.status }) },
      h('td', { title: when.toISOString() }, when.toLocaleTimeString(locale(), { hour12: false })),
      h('td', {}, statusChip(c === 'ok' ? 'active' : c === '429' ? 'cooling' : 'disabled', String(ev.status || '—')),
        ev.attempts > 1 ? h('span', { class: 'tag', title: t('live.attempts', { n: ev.attempts }) }, `×${ev.attempts}`) : null),
      h('td', {}, ev.model || '—', ev.stream ? h('span', { class: 'tag' }, t('live.stream')) : null),
      h('td', { class: 'num' }, ev.latency_ms != null ? `${fmtNum(Math.round(ev.latency_ms))} ms` : '—'),
      h('td', { class: 'num', title: t('live.tokensTitle', tk) }, tk.total ? fmtNum(tk.total) : '—'),
      h('td', { title: `${ev.method || ''} ${ev.path || ''}` }, ev.route || ev.path || '—'),
      h('td', {}, h('code', {}, ev.key_hint || '—')),
      h('td', {}, tokenLabel(ev)));
    const open = () => details(ev);
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') open();
    });
    return tr;
  }

  function details(ev) {
    const links = [];
    if (ev.id) links.push(h('a', { class: 'btn', href: `/logs?tab=errors&request_id=${encodeURIComponent(ev.id)}` }, t('live.errorsOf')));
    if (ev.model) links.push(h('a', { class: 'btn', href: `/logs?tab=requests&model=${encodeURIComponent(ev.model)}` }, t('live.logsOfModel')));
    openDialog({ title: t('live.detailTitle', { model: ev.model || '—', status: ev.status }), wide: true, body: h('pre', { class: 'json' }, JSON.stringify(ev, null, 2)), actions: links });
  }

  function renderCounts() {
    const shown = tbody.children.length;
    counts.textContent = t('live.counts', { shown, kept: rows.length, received, max: MAX_ROWS });
    empty.hidden = shown > 0;
    empty.textContent = rows.length ? t('live.noMatch') : t('live.waiting');
    heldNote.hidden = !paused;
    heldNote.textContent = t('live.held', { n: held.length + heldOver });
    droppedNote.hidden = dropped === 0;
    droppedNote.textContent = t('live.dropped', { n: fmtNum(dropped) });
  }

  function renderAll() {
    els.clear();
    tbody.replaceChildren(...rows.filter(matches).map((ev) => {
      const tr = row(ev);
      tr.classList.remove('b-new');
      els.set(ev, tr);
      return tr;
    }));
    renderCounts();
  }

  // flush puts queued events on screen, once per animation frame: a burst of
  // hundreds of events costs one layout, not hundreds. Events pushed past
  // MAX_ROWS leave the model and the table together.
  function flush() {
    frame = 0;
    if (!queue.length) return;
    const batch = queue.reverse(); // newest first
    queue = [];
    rows = batch.concat(rows);
    const gone = new Set(rows.length > MAX_ROWS ? rows.splice(MAX_ROWS) : []);
    const frag = document.createDocumentFragment();
    for (const ev of batch) {
      if (gone.has(ev) || !matches(ev)) continue;
      const tr = row(ev);
      els.set(ev, tr);
      frag.append(tr);
    }
    tbody.prepend(frag);
    for (const ev of gone) {
      els.get(ev)?.remove();
      els.delete(ev);
    }
    renderCounts();
  }

  function onEvent(ev) {
    received++;
    if (paused) {
      held.push(ev);
      if (held.length > MAX_ROWS) {
        held.shift();
        heldOver++;
      }
      renderCounts();
      return;
    }
    queue.push(ev);
    if (queue.length > MAX_ROWS) queue.shift();
    if (!frame) frame = requestAnimationFrame(flush);
  }

  // --- connection ----------------------------------------------------------
  function connect() {
    if (closed) return;
    setConn('connecting');
    es = new EventSource('/api/live');
    es.onopen = () => {
      backoff = 1000;
      setConn('open');
    };
    const handle = (e) => {
      try {
        const ev = eventOf(e.data);
        if (ev && typeof ev === 'object') {
          if (ev.dropped && !ev.id) {
            dropped += Number(ev.dropped) || 0;
            renderCounts();
            return;
          }
          onEvent(ev);
        }
      } catch {
        // A malformed event is skipped; the stream goes on.
      }
    };
    es.addEventListener('request', handle);
    es.onmessage = handle;
    es.addEventListener('dropped', (e) => {
      dropped += droppedOf(e.data);
      renderCounts();
    });
    es.onerror = () => {
      if (closed) return;
      if (es.readyState === EventSource.CONNECTING) {
        setConn('reconnecting');
        return; // the browser retries by itself
      }
      // Closed for good (an error status): retry with backoff, after
      // checking that the session is still valid.
      es.close();
      setConn('closed');
      retryTimer = setTimeout(async () => {
        try {
          const s = await api('GET', '/api/session', null, { noRedirect: true });
          if (s && s.authenticated === false) {
            location.assign(loginPath());
            return;
          }
        } catch {
          // No session route, or the server is down: just retry.
        }
        connect();
      }, backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    };
  }

  async function refreshTokens() {
    const now = Date.now();
    if (now - tokenFetch < 10000) return;
    tokenFetch = now;
    try {
      const res = await api('GET', '/api/tokens');
      const cur = fToken.value;
      fToken.replaceChildren(h('option', { value: '' }, t('live.anyToken')));
      for (const tk of res.tokens || []) {
        tokenNames.set(tk.id, tk.name);
        fToken.append(h('option', { value: tk.id }, `${tk.name} (${tk.hint})`));
      }
      if (params.get('token') && !tokenNames.has(params.get('token'))) fToken.append(h('option', { value: params.get('token') }, params.get('token')));
      fToken.value = cur;
      renderAll();
    } catch {
      // Token names are a nicety; ids and hints still show.
    }
  }

  // --- wiring --------------------------------------------------------------
  const params = ctx.params || new URLSearchParams();
  fModel.value = params.get('model') || '';
  fRoute.value = params.get('route') || '';
  if (['ok', 'err', '4xx', '429', '5xx'].includes(params.get('status'))) fStatus.value = params.get('status');

  // Filters are kept in the URL so a copied link opens the same view.
  function syncURL() {
    const q = new URLSearchParams();
    if (fModel.value.trim()) q.set('model', fModel.value.trim());
    if (fStatus.value) q.set('status', fStatus.value);
    if (fToken.value) q.set('token', fToken.value);
    if (fRoute.value.trim()) q.set('route', fRoute.value.trim());
    const s = q.toString();
    history.replaceState(null, '', location.pathname + (s ? `?${s}` : ''));
  }
  for (const el of [fModel, fRoute]) el.addEventListener('input', () => { renderAll(); syncURL(); });
  for (const el of [fStatus, fToken]) el.addEventListener('change', () => { renderAll(); syncURL(); });

  pauseBtn.addEventListener('click', () => {
    paused = !paused;
    pauseBtn.setAttribute('aria-pressed', String(paused));
    pauseBtn.textContent = paused ? t('live.resume') : t('live.pause');
    if (!paused && held.length) {
      queue = queue.concat(held);
      held = [];
      heldOver = 0;
      if (!frame) frame = requestAnimationFrame(flush);
    }
    renderCounts();
  });
  clearBtn.addEventListener('click', () => {
    rows = [];
    held = [];
    heldOver = 0;
    queue = [];
    tbody.replaceChildren();
    renderCounts();
    toast(t('live.cleared'), 'info');
  });

  renderCounts();
  setConn('connecting');
  tokenFetch = 0;
  refreshTokens().then(() => {
    if (params.get('token')) fToken.value = params.get('token');
    renderAll();
  });
  loadModels(api).then((names) => lists.replaceChildren(datalist(h, 'live-models', names)));
  connect();

  return () => {
    closed = true;
    clearTimeout(retryTimer);
    if (frame) cancelAnimationFrame(frame);
    es?.close();
  };
}
