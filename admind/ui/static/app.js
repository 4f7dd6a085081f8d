// The shell's router: picks the page module by location.pathname, loads its
// strings, and calls mount(root, ctx). Links to page paths navigate with
// history.pushState; a page may return unmount() to stop timers and streams.
import { api } from './lib/api.js';
import { t, setLang, getLang, loadStrings, locale } from './lib/i18n.js';
import { initTheme, setTheme, getTheme } from './lib/theme.js';
import { h, clear, toast, confirmDialog, tickCountdown, errorBox } from './lib/dom.js';

export const PAGES = {
  '/login': 'login', '/setup': 'setup', '/dashboard': 'dashboard', '/keys': 'keys',
  '/tokens': 'tokens', '/logs': 'logs', '/live': 'live', '/settings': 'settings',
};
const BARE = new Set(['login', 'setup']); // no navigation around these

const root = document.getElementById('app');
let unmount = null;
let seq = 0;

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path); else history.pushState(null, '', path);
  window.scrollTo(0, 0);
  render({ focus: true });
}

function translateShell() {
  document.documentElement.lang = locale();
  document.getElementById('lang-switch').value = getLang();
  document.getElementById('theme-switch').value = getTheme();
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
}

async function render({ focus = false } = {}) {
  const my = ++seq;
  if (unmount) {
    try { unmount(); } catch (e) { console.error(e); }
    unmount = null;
  }
  for (const d of document.querySelectorAll('dialog[open]')) d.close(); // a dialog belongs to the page it opened on
  const name = PAGES[location.pathname] || 'dashboard';
  document.body.classList.toggle('bare', BARE.has(name));
  closeMenu();
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  try {
    const [mod] = await Promise.all([import(`./pages/${name}.js`), loadStrings(['common', name])]);
    if (my !== seq) return;
    translateShell();
    document.title = `${t(`common.nav.${name}`)} · Gemini Balance`;
    clear(root);
    const ctx = { api, t, h, toast, confirmDialog, navigate, params: new URLSearchParams(location.search), page: name };
    const r = await mod.mount(root, ctx);
    if (typeof r === 'function') {
      if (my === seq) unmount = r; else r();
    }
    // After an in-app navigation, screen readers start at the new page.
    if (focus && my === seq && !root.contains(document.activeElement)) root.focus({ preventScroll: true });
  } catch (e) {
    if (my !== seq) return;
    console.error(e);
    clear(root).append(errorBox(`${name}:`, e));
  }
}

function closeMenu() {
  document.getElementById('shell')?.classList.remove('open');
  document.getElementById('nav-toggle')?.setAttribute('aria-expanded', 'false');
}

function wireShell() {
  const lang = document.getElementById('lang-switch');
  lang.value = getLang();
  lang.addEventListener('change', () => { setLang(lang.value); render(); });

  const theme = document.getElementById('theme-switch');
  theme.value = getTheme();
  theme.addEventListener('change', () => setTheme(theme.value));

  document.getElementById('logout').addEventListener('click', async () => {
    try { await api('POST', '/auth/logout'); } catch (e) { toast(e.message, 'error'); }
    location.assign('/login');
  });

  const shell = document.getElementById('shell');
  const toggle = document.getElementById('nav-toggle');
  toggle.addEventListener('click', () => {
    const open = !shell.classList.contains('open');
    shell.classList.toggle('open', open);
    toggle.setAttribute('aria-expanded', String(open));
  });

  // Same-origin links to page paths stay in the app.
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target.closest?.('a[href]');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !PAGES[url.pathname]) return;
    e.preventDefault();
    if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
    else closeMenu();
  });
  window.addEventListener('popstate', () => render());

  // One ticker for every live countdown on screen.
  setInterval(() => {
    const now = Date.now();
    for (const el of document.querySelectorAll('[data-until]')) tickCountdown(el, now);
  }, 1000);
}

initTheme();
wireShell();
render();
