// Strings live in /assets/i18n/<lang>/<namespace>.js (one per page plus
// common), each `export default { "keys.title": "Keys", ... }`. t() looks a
// key up in the loaded namespaces of the current language and fills {name}
// placeholders. The language is remembered in localStorage gb.lang.
const KEY = 'gb.lang';
export const LANGS = ['en', 'zh'];
const loaded = {}; // lang -> namespace -> true
const strings = {}; // lang -> key -> text
let lang = pick();

function pick() {
  let v = null;
  try { v = localStorage.getItem(KEY); } catch { /* storage off */ }
  if (LANGS.includes(v)) return v;
  return (navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

export function getLang() { return lang; }

// locale is the BCP 47 tag for Intl formatting and <html lang>.
export function locale() { return lang === 'zh' ? 'zh-CN' : 'en'; }

// setLang switches the language; the caller re-renders (app.js does).
export function setLang(l) {
  if (!LANGS.includes(l)) return;
  lang = l;
  try { localStorage.setItem(KEY, l); } catch { /* private mode */ }
  document.documentElement.lang = locale();
}

// loadStrings fetches the namespaces (e.g. ["common", "keys"]) of the
// current language once each.
export async function loadStrings(namespaces) {
  const l = lang;
  loaded[l] ||= {};
  strings[l] ||= {};
  await Promise.all(namespaces.filter((ns) => !loaded[l][ns]).map(async (ns) => {
    const mod = await import(`../i18n/${l}/${ns}.js`);
    Object.assign(strings[l], mod.default);
    loaded[l][ns] = true;
  }));
}

export function t(key, vars) {
  // Singular: a `<key>.one` string, where one exists, for count 1.
  if (vars && Number(vars.count) === 1 && strings[lang]?.[key + '.one'] !== undefined) key += '.one';
  let s = strings[lang]?.[key];
  if (s === undefined) {
    console.warn(`i18n: missing ${lang} string ${key}`);
    s = key;
  }
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, n) => (vars[n] !== undefined && vars[n] !== null ? String(vars[n]) : m));
  return s;
}

// has reports whether a key exists (for optional strings such as error codes).
export function has(key) { return strings[lang]?.[key] !== undefined; }
