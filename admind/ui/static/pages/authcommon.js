// Pieces shared by the login and setup pages (no navigation shell there).
import { h } from '../lib/dom.js';
import { getLang, setLang } from '../lib/i18n.js';
import { getTheme, setTheme } from '../lib/theme.js';

export function brand() {
  const svg = h('svg', { viewBox: '0 0 24 24', width: 24, height: 24, 'aria-hidden': 'true' });
  svg.append(h('path', { fill: 'currentColor', d: 'M12 2l2.6 7.4L22 12l-7.4 2.6L12 22l-2.6-7.4L2 12l7.4-2.6z' }));
  return h('div', { class: 'brand' }, svg, h('span', {}, 'Gemini Balance'));
}

// tools are the language and theme pickers under the form.
export function tools(page, ctx) {
  const { t } = ctx;
  const lang = h('select', { id: `${page}-lang`, 'aria-label': t('common.language'), onchange: () => {
    setLang(lang.value);
    ctx.navigate(location.pathname + location.search, { replace: true });
  } },
  h('option', { value: 'en' }, 'English'), h('option', { value: 'zh' }, '中文'));
  lang.value = getLang();
  const theme = h('select', { id: `${page}-theme`, 'aria-label': t('common.theme'), onchange: () => setTheme(theme.value) },
    ['system', 'light', 'dark'].map((v) => h('option', { value: v }, t(`common.theme.${v}`))));
  theme.value = getTheme();
  return h('div', { class: 'auth-tools' }, lang, theme);
}

// safeNext keeps the post-login redirect on this site.
export function safeNext(v) {
  if (!v || !v.startsWith('/') || v.startsWith('//') || v.startsWith('/\\')) return '/dashboard';
  if (v.startsWith('/login') || v.startsWith('/setup')) return '/dashboard';
  return v;
}
