// Small DOM helpers shared by every page: an element builder, toasts, a
// confirmation dialog, clipboard and formatting. No innerHTML anywhere:
// text from the API is always set as text.
import { t, locale } from './i18n.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'indeterminate', 'hidden', 'open', 'multiple', 'readOnly', 'required']);

// h(tag, attrs, ...children). attrs: class, id, on<event> (function),
// aria-*, data-*, style (string or object), value/checked/disabled (set as
// properties), anything else as an attribute (false/null/undefined skip it).
// Children: strings, numbers, nodes, arrays; null/false are skipped.
export function h(tag, attrs, ...children) {
  const el = tag === 'svg' || tag === 'path' ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') {
        el.addEventListener(k.slice(2).toLowerCase(), v);
      } else if (k === 'class') {
        el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
      } else if (k === 'style' && typeof v === 'object') {
        Object.assign(el.style, v);
      } else if (PROPS.has(k)) {
        el[k] = v;
      } else {
        el.setAttribute(k, v === true ? '' : String(v));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// clear empties an element, appends children (as h() takes them: null and
// false skipped, arrays flattened) and returns it.
export function clear(el, ...children) {
  while (el.firstChild) el.firstChild.remove();
  append(el, children);
  return el;
}

const ICONS = {
  copy: 'M16 1H4a2 2 0 0 0-2 2v14h2V3h12zm3 4H8a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h11a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2zm0 16H8V7h11z',
  close: 'M19 6.4 17.6 5 12 10.6 6.4 5 5 6.4 10.6 12 5 17.6 6.4 19 12 13.4 17.6 19 19 17.6 13.4 12z',
  refresh: 'M17.65 6.35A7.96 7.96 0 0 0 12 4a8 8 0 1 0 7.74 10h-2.08A6 6 0 1 1 12 6c1.66 0 3.14.69 4.22 1.78L13 11h7V4z',
  plus: 'M19 13h-6v6h-2v-6H5v-2h6V5h2v6h6z',
  check: 'M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z',
  search: 'M15.5 14h-.8l-.3-.3A6.5 6.5 0 1 0 14 15.5l.3.3v.8l5 5 1.5-1.5zm-6 0a4.5 4.5 0 1 1 0-9 4.5 4.5 0 0 1 0 9z',
};

// icon returns an inline SVG icon (decorative: aria-hidden).
export function icon(name, size = 16) {
  const svg = h('svg', { viewBox: '0 0 24 24', width: size, height: size, 'aria-hidden': 'true', class: 'icon' });
  svg.append(h('path', { d: ICONS[name] || '', fill: 'currentColor' }));
  return svg;
}

// toast shows a short message; kind is "info", "ok" or "error".
export function toast(msg, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'toast-msg' }, msg),
    h('button', { type: 'button', class: 'btn ghost icon-btn', 'aria-label': t('common.close'), onclick: () => el.remove() }, icon('close')));
  box.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 9000 : 4000);
}

// confirmDialog asks before an action; resolves true when confirmed.
export function confirmDialog({ title, body, confirmLabel, cancelLabel, danger } = {}) {
  return new Promise((resolve) => {
    const ok = h('button', { type: 'button', class: danger ? 'btn danger' : 'btn primary', id: 'confirm-ok' }, confirmLabel || t('common.confirm'));
    const cancel = h('button', { type: 'button', class: 'btn', id: 'confirm-cancel' }, cancelLabel || t('common.cancel'));
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'confirm-title' },
      h('h2', { id: 'confirm-title' }, title || t('common.confirm')),
      body ? h('div', { class: 'dialog-body' }, body) : null,
      h('div', { class: 'dialog-actions' }, cancel, ok));
    let result = false;
    ok.addEventListener('click', () => { result = true; dlg.close(); });
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    document.body.append(dlg);
    dlg.showModal();
    (danger ? cancel : ok).focus();
  });
}

let dialogSeq = 0;

// openDialog shows a modal with arbitrary content; returns {dialog, close}.
// onClose runs once when it closes (Escape included).
export function openDialog({ title, body, actions, wide, onClose, id }) {
  const closeBtn = h('button', { type: 'button', class: 'btn ghost icon-btn', 'aria-label': t('common.close') }, icon('close', 18));
  const titleId = `dialog-title-${++dialogSeq}`;
  const dlg = h('dialog', { class: ['dialog', wide && 'wide'], id, 'aria-labelledby': titleId },
    h('div', { class: 'dialog-head' }, h('h2', { id: titleId }, title), closeBtn),
    h('div', { class: 'dialog-body' }, body),
    actions ? h('div', { class: 'dialog-actions' }, actions) : null);
  closeBtn.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => { dlg.remove(); onClose?.(); });
  document.body.append(dlg);
  dlg.showModal();
  return { dialog: dlg, close: () => dlg.close() };
}

// copyText puts text on the clipboard; resolves true on success.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h('textarea', { 'aria-hidden': 'true', style: { position: 'fixed', opacity: '0' } });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    ta.remove();
    return ok;
  }
}

// isZeroTime treats missing and Go zero times as "never".
function isZeroTime(iso) { return !iso || iso.startsWith('0001-01-01'); }

// fmtTime formats an ISO time in the user's locale ("—" when unset).
export function fmtTime(iso) {
  if (isZeroTime(iso)) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(locale(), { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

// fmtAgo is "3 min ago" style relative time.
export function fmtAgo(iso) {
  if (isZeroTime(iso)) return '—';
  const secs = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto', style: 'short' });
  const a = Math.abs(secs);
  if (a < 60) return rtf.format(secs, 'second');
  if (a < 3600) return rtf.format(Math.round(secs / 60), 'minute');
  if (a < 86400) return rtf.format(Math.round(secs / 3600), 'hour');
  return rtf.format(Math.round(secs / 86400), 'day');
}

// fmtNum formats a number with the locale's grouping ("—" when not a number).
export function fmtNum(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '—';
  return Number(n).toLocaleString(locale());
}

// fmtDuration is a short countdown: "45s", "3m 05s", "2h 04m".
export function fmtDuration(secs) {
  secs = Math.max(0, Math.round(secs));
  const hrs = Math.floor(secs / 3600), m = Math.floor((secs % 3600) / 60), s = secs % 60;
  if (hrs > 0) return `${hrs}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(s).padStart(2, '0')}s`;
  return `${s}s`;
}

// countdown is a live "time left until iso" element; app.js ticks every
// [data-until] element once a second.
export function countdown(iso) {
  const el = h('span', { class: 'countdown', 'data-until': iso });
  tickCountdown(el, Date.now());
  return el;
}

export function tickCountdown(el, now) {
  const left = (new Date(el.dataset.until).getTime() - now) / 1000;
  el.textContent = left > 0 ? fmtDuration(left) : t('common.now');
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// field wraps a control with a visible label.
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hint ? h('small', { class: 'hint' }, hint) : null);
}

// statusChip is a key status with text and colour (never colour alone).
export function statusChip(status, label) {
  return h('span', { class: 'chip', 'data-status': status }, label || t(`common.status.${status}`));
}

// spinner is an accessible loading indicator.
export function spinner(label) {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spin', 'aria-hidden': 'true' }), label || t('common.loading'));
}

// errorBox is an inline error that names what failed.
export function errorBox(what, err) {
  return h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, what), ' ', err?.message || String(err));
}
