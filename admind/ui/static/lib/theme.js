// Theme: "system" (default, follows prefers-color-scheme), "light" or "dark",
// remembered in localStorage gb.theme. The resolved theme is data-theme on
// <html>; a "gb-theme" event tells charts to recolour.
const KEY = 'gb.theme';
const media = window.matchMedia('(prefers-color-scheme: dark)');

export function getTheme() {
  const v = safeGet(KEY);
  return v === 'light' || v === 'dark' ? v : 'system';
}

// resolvedTheme is what is on screen: "light" or "dark".
export function resolvedTheme() {
  const v = getTheme();
  if (v !== 'system') return v;
  return media.matches ? 'dark' : 'light';
}

export function setTheme(v) {
  if (v === 'system') safeRemove(KEY); else safeSet(KEY, v);
  apply();
}

function apply() {
  const r = resolvedTheme();
  if (document.documentElement.getAttribute('data-theme') !== r) {
    document.documentElement.setAttribute('data-theme', r);
  }
  window.dispatchEvent(new CustomEvent('gb-theme', { detail: r }));
}

export function initTheme() {
  media.addEventListener('change', () => { if (getTheme() === 'system') apply(); });
  apply();
}

function safeGet(k) { try { return localStorage.getItem(k); } catch { return null; } }
function safeSet(k, v) { try { localStorage.setItem(k, v); } catch { /* private mode */ } }
function safeRemove(k) { try { localStorage.removeItem(k); } catch { /* private mode */ } }
