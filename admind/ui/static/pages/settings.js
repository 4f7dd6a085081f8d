// Settings: every setting of GET /api/config, grouped, each with an editor
// for its type. Save sends only the changed settings (PUT /api/config is a
// partial update), so an untouched secret is never sent back; the API's
// validation error is shown under the setting it names.
import { loadModels, datalist, pickModels } from '../lib/b-models.js';
import { has, locale } from '../lib/i18n.js';

// Editors: int, bool, string, url, secret (masked string), secretlist,
// list, models (list with picker), model (one model), map, budget (model →
// int), safety, select, json. Settings the API returns that are not listed
// here still appear, under "other", with an editor inferred from the value.
const FIELDS = {
  API_KEYS: { type: 'secretlist' },
  VERTEX_API_KEYS: { type: 'secretlist' },
  ALLOWED_TOKENS: { type: 'secretlist' },
  AUTH_TOKEN: { type: 'secret' },
  PAID_KEY: { type: 'secret' },
  BASE_URL: { type: 'url' },
  VERTEX_EXPRESS_BASE_URL: { type: 'url' },
  CUSTOM_HEADERS: { type: 'map' },
  PROXIES: { type: 'list', placeholder: 'socks5://user:pass@host:1080' },
  PROXIES_USE_CONSISTENCY_HASH_BY_API_KEY: { type: 'bool' },
  TIME_OUT: { type: 'int', min: 1 },
  MAX_FAILURES: { type: 'int', min: 1 },
  MAX_RETRIES: { type: 'int', min: 1 },
  COOLDOWN_SECONDS: { type: 'int', min: 1 },
  TEST_MODEL: { type: 'model' },
  CHECK_INTERVAL_HOURS: { type: 'int', min: 0 },
  TIMEZONE: { type: 'string', options: 'timezones' },
  SEARCH_MODELS: { type: 'models' },
  IMAGE_MODELS: { type: 'models' },
  THINKING_MODELS: { type: 'models' },
  THINKING_BUDGET_MAP: { type: 'budget' },
  FILTERED_MODELS: { type: 'models' },
  URL_CONTEXT_MODELS: { type: 'models' },
  MODEL_ALIASES: { type: 'map', valueModels: true },
  SAFETY_SETTINGS: { type: 'safety' },
  SHOW_THINKING_PROCESS: { type: 'bool' },
  SHOW_SEARCH_LINK: { type: 'bool' },
  TOOLS_CODE_EXECUTION_ENABLED: { type: 'bool' },
  URL_CONTEXT_ENABLED: { type: 'bool' },
  TTS_MODEL: { type: 'model' },
  TTS_VOICE_NAME: {
    type: 'select',
    options: ['Zephyr', 'Puck', 'Charon', 'Kore', 'Fenrir', 'Leda', 'Orus', 'Aoede', 'Callirrhoe', 'Autonoe',
      'Enceladus', 'Iapetus', 'Umbriel', 'Algieba', 'Despina', 'Erinome', 'Algenib', 'Rasalgethi', 'Laomedeia',
      'Achernar', 'Alnilam', 'Schedar', 'Gacrux', 'Pulcherrima', 'Achird', 'Zubenelgenubi', 'Vindemiatrix',
      'Sadachbia', 'Sadaltager', 'Sulafat'],
  },
  TTS_SPEED: { type: 'select', options: ['slow', 'normal', 'fast'], translate: true },
  CREATE_IMAGE_MODEL: { type: 'model' },
  FAKE_STREAM_ENABLED: { type: 'bool' },
  FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS: { type: 'int', min: 1 },
  LOG_LEVEL: { type: 'select', options: ['debug', 'info', 'warn', 'warning', 'error', 'critical'] },
  ERROR_LOG_RECORD_REQUEST_BODY: { type: 'bool' },
  AUTO_DELETE_ERROR_LOGS_ENABLED: { type: 'bool' },
  AUTO_DELETE_ERROR_LOGS_DAYS: { type: 'int', min: 1 },
  AUTO_DELETE_REQUEST_LOGS_ENABLED: { type: 'bool' },
  AUTO_DELETE_REQUEST_LOGS_DAYS: { type: 'int', min: 1 },
  ROLLUP_RETENTION_DAYS: { type: 'int', min: 1 },
  FILES_USER_ISOLATION_ENABLED: { type: 'bool' },
  ADMIN_SESSION_EXPIRE: { type: 'int', min: 300 },
};

const GROUPS = [
  ['keys', ['API_KEYS', 'VERTEX_API_KEYS', 'PAID_KEY', 'ALLOWED_TOKENS', 'AUTH_TOKEN']],
  ['upstream', ['BASE_URL', 'VERTEX_EXPRESS_BASE_URL', 'CUSTOM_HEADERS', 'PROXIES', 'PROXIES_USE_CONSISTENCY_HASH_BY_API_KEY', 'TIME_OUT']],
  ['models', ['TEST_MODEL', 'SEARCH_MODELS', 'IMAGE_MODELS', 'THINKING_MODELS', 'THINKING_BUDGET_MAP', 'FILTERED_MODELS', 'URL_CONTEXT_MODELS', 'MODEL_ALIASES']],
  ['retries', ['MAX_RETRIES', 'MAX_FAILURES', 'COOLDOWN_SECONDS', 'CHECK_INTERVAL_HOURS', 'TIMEZONE']],
  ['safety', ['SAFETY_SETTINGS']],
  ['features', ['SHOW_THINKING_PROCESS', 'SHOW_SEARCH_LINK', 'TOOLS_CODE_EXECUTION_ENABLED', 'URL_CONTEXT_ENABLED', 'TTS_MODEL', 'TTS_VOICE_NAME', 'TTS_SPEED', 'CREATE_IMAGE_MODEL', 'FAKE_STREAM_ENABLED', 'FAKE_STREAM_EMPTY_DATA_INTERVAL_SECONDS']],
  ['logging', ['LOG_LEVEL', 'ERROR_LOG_RECORD_REQUEST_BODY', 'AUTO_DELETE_ERROR_LOGS_ENABLED', 'AUTO_DELETE_ERROR_LOGS_DAYS', 'AUTO_DELETE_REQUEST_LOGS_ENABLED', 'AUTO_DELETE_REQUEST_LOGS_DAYS', 'ROLLUP_RETENTION_DAYS']],
  ['files', ['FILES_USER_ISOLATION_ENABLED']],
  ['admin', ['ADMIN_SESSION_EXPIRE']],
];

const SAFETY_CATEGORIES = ['HARM_CATEGORY_HARASSMENT', 'HARM_CATEGORY_HATE_SPEECH', 'HARM_CATEGORY_SEXUALLY_EXPLICIT',
  'HARM_CATEGORY_DANGEROUS_CONTENT', 'HARM_CATEGORY_CIVIC_INTEGRITY'];
const SAFETY_THRESHOLDS = ['OFF', 'BLOCK_NONE', 'BLOCK_ONLY_HIGH', 'BLOCK_MEDIUM_AND_ABOVE', 'BLOCK_LOW_AND_ABOVE',
  'HARM_BLOCK_THRESHOLD_UNSPECIFIED'];

// Long lists (thousands of seed keys) show this many rows until expanded.
const LIST_PREVIEW = 50;

// inferType picks an editor for a setting this page does not know.
function inferType(v) {
  if (typeof v === 'boolean') return { type: 'bool' };
  if (typeof v === 'number') return { type: 'int' };
  if (typeof v === 'string') return { type: 'string' };
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return { type: 'list' };
  if (v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string')) return { type: 'map' };
  return { type: 'json' };
}

// withEmptyMaps adds the maps the API leaves out when empty (MODEL_ALIASES),
// so they stay editable.
function withEmptyMaps(cfg) {
  for (const [n, sp] of Object.entries(FIELDS)) if (!(n in cfg) && (sp.type === 'map' || sp.type === 'budget')) cfg[n] = {};
  return cfg;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

// fieldErrors reads which settings an error answer names: a machine-readable
// {field}/{fields:{NAME: msg}} when the API gives one, else every known name
// written as "NAME:" or "Settings.NAME" or "\"NAME\"" in the message.
export function fieldErrors(err, names) {
  const body = (err && err.body) || {};
  const msg = (err && err.message) || String(err);
  const out = {};
  if (body.fields && typeof body.fields === 'object') {
    for (const [k, v] of Object.entries(body.fields)) out[k] = String(v);
  }
  if (typeof body.field === 'string') out[body.field] = msg;
  if (Object.keys(out).length) return out;
  for (const n of [...names].sort((a, b) => b.length - a.length)) {
    const re = new RegExp(`(^|[^A-Z_])(${n})(:|"|'|\\s+of type|$)`);
    if (re.test(msg) && !Object.keys(out).some((k) => k.includes(n))) {
      // "invalid settings: NAME: must be …" reads better as "must be …".
      const i = msg.indexOf(`${n}: `);
      out[n] = i >= 0 ? msg.slice(i + n.length + 2) : msg;
    }
  }
  return out;
}

export async function mount(root, ctx) {
  const { api, t, h, toast, confirmDialog } = ctx;
  const tf = (key, fallback) => (has(key) ? t(key) : fallback);
  let orig = {}; // last saved settings, as the API returned them
  let cur = {}; // edited values; a secret string is absent until typed
  let errors = {}; // NAME → message from the API or the client checks
  let models = [];
  let expanded = new Set(); // long lists shown in full
  let saving = false;
  let lastSaved = ''; // confirmation of the last save, shown in the save bar

  const status = h('p', { id: 'settings-status', class: 'muted', role: 'status', 'aria-live': 'polite' });
  const form = h('form', { id: 'settings-form', class: 'b-settings', novalidate: '' });
  const filter = h('input', { id: 'settings-filter', type: 'search', placeholder: t('settings.filter'), 'aria-label': t('settings.filter') });
  const nav = h('nav', { class: 'b-settings-nav', 'aria-label': t('settings.groups') });
  const saveBtn = h('button', { id: 'settings-save', type: 'submit', class: 'btn primary', form: 'settings-form' }, t('settings.save'));
  const discardBtn = h('button', { id: 'settings-discard', type: 'button', class: 'btn' }, t('settings.discard'));
  const resetBtn = h('button', { id: 'settings-reset', type: 'button', class: 'btn danger-soft' }, t('settings.reset'));
  const dirtyNote = h('span', { id: 'settings-dirty', class: 'muted', 'aria-live': 'polite' });
  const bar = h('div', { class: 'b-savebar' }, dirtyNote, discardBtn, saveBtn);
  const head = h('div', { class: 'page-head' },
    h('h1', {}, t('settings.title')),
    h('div', { class: 'actions' }, resetBtn));
  const lists = h('div', { hidden: true }); // datalists for model inputs
  root.replaceChildren(head, h('p', { class: 'muted' }, t('settings.intro')), h('div', { class: 'b-settings-tools' }, filter), nav, status, form, bar, lists);

  const names = () => Object.keys(orig);
  const specOf = (n) => FIELDS[n] || inferType(orig[n]);
  const dirtyNames = () => names().filter((n) => cur[n] !== undefined && !same(cur[n], orig[n]));

  function groups() {
    const known = new Set(GROUPS.flatMap(([, f]) => f));
    const out = GROUPS.map(([g, f]) => [g, f.filter((n) => n in orig)]);
    const other = names().filter((n) => !known.has(n)).sort();
    if (other.length) out.push(['other', other]);
    return out.filter(([, f]) => f.length);
  }

  function updateBar() {
    const d = dirtyNames();
    dirtyNote.textContent = d.length ? t('settings.unsaved', { n: d.length }) : lastSaved || t('settings.noChanges');
    saveBtn.disabled = saving || !d.length;
    discardBtn.disabled = saving || !d.length;
    for (const el of form.querySelectorAll('.b-field')) el.classList.toggle('b-dirty', d.includes(el.dataset.field));
  }

  function set(n, v) {
    cur[n] = v;
    if (errors[n]) {
      delete errors[n];
      showError(n);
    }
    updateBar();
  }

  function showError(n) {
    const p = form.querySelector(`#settings-${n}-error`);
    if (!p) return;
    p.textContent = errors[n] || '';
    p.hidden = !errors[n];
    const input = form.querySelector(`#settings-${n}`);
    if (input) {
      if (errors[n]) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    }
  }

  // --- editors -------------------------------------------------------------

  function input(n, attrs, value, onValue) {
    const el = h('input', { id: `settings-${n}`, name: n, 'aria-describedby': `settings-${n}-help settings-${n}-error`, ...attrs });
    el.value = value ?? '';
    el.addEventListener('input', () => onValue(el.value));
    return el;
  }

  function removeBtn(label, onClick) {
    const b = h('button', { type: 'button', class: 'btn icon', 'aria-label': label, title: label }, '✕');
    b.addEventListener('click', onClick);
    return b;
  }

  function listEditor(n, spec) {
    const secret = spec.type === 'secretlist';
    const wrap = h('div', { class: 'b-list' });
    const rows = h('ul', { class: 'b-rows' });
    const items = () => cur[n] ?? orig[n] ?? [];
    const render = () => {
      const all = items();
      const shown = expanded.has(n) ? all : all.slice(0, LIST_PREVIEW);
      rows.replaceChildren(...shown.map((v, i) => {
        const label = t('settings.item', { name: n, n: i + 1 });
        let field;
        if (secret) {
          field = h('code', { class: 'b-secret', 'aria-label': label }, v);
        } else {
          field = h('input', { type: 'text', 'aria-label': label, list: spec.type === 'models' ? 'settings-models' : null });
          field.value = v;
          field.addEventListener('change', () => {
            const next = [...items()];
            next[i] = field.value.trim();
            set(n, next.filter((x) => x !== ''));
          });
        }
        return h('li', {}, field, removeBtn(t('settings.removeItem', { item: secret ? v : v || String(i + 1) }), () => {
          const next = [...items()];
          next.splice(i, 1);
          set(n, next);
          render();
        }));
      }));
      more.hidden = all.length <= shown.length;
      more.textContent = t('settings.showAll', { n: all.length });
      count.textContent = t('settings.count', { n: all.length });
    };
    const count = h('span', { class: 'muted' });
    const more = h('button', { type: 'button', class: 'btn link' });
    more.addEventListener('click', () => {
      expanded.add(n);
      render();
    });
    const add = h('input', {
      id: `settings-${n}`, type: secret ? 'password' : 'text', autocomplete: 'off',
      'aria-label': t('settings.addItemTo', { name: tf(`settings.f.${n}`, n) }),
      'aria-describedby': `settings-${n}-help settings-${n}-error`,
      placeholder: secret ? t('settings.addSecret') : spec.placeholder || t('settings.addItem'),
      list: spec.type === 'models' ? 'settings-models' : null,
    });
    const addBtn = h('button', { type: 'button', class: 'btn' }, t('settings.add'));
    const doAdd = () => {
      // Pasted text may hold several entries, one a line or comma-separated.
      const vals = add.value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
      if (!vals.length) return;
      const have = new Set(items());
      set(n, [...items(), ...vals.filter((v) => !have.has(v))]);
      add.value = '';
      render();
    };
    addBtn.addEventListener('click', doAdd);
    add.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        doAdd();
      }
    });
    const tools = [add, addBtn];
    if (spec.type === 'models') {
      const pick = h('button', { type: 'button', class: 'btn' }, t('settings.pick'));
      pick.addEventListener('click', async () => {
        const res = await pickModels({
          h, names: models, selected: items(), title: t('settings.pickTitle', { name: n }),
          filterLabel: t('settings.pickFilter'), okLabel: t('settings.pickOk'), cancelLabel: t('settings.cancel'),
          emptyLabel: t('settings.pickEmpty'), addLabel: (name) => t('settings.pickAdd', { name }),
        });
        if (res) {
          set(n, res);
          render();
        }
      });
      tools.push(pick);
    }
    wrap.append(h('div', { class: 'b-list-head' }, count), rows, more, h('div', { class: 'b-add' }, ...tools));
    render();
    return wrap;
  }

  function mapEditor(n, spec) {
    const budget = spec.type === 'budget';
    const wrap = h('div', { class: 'b-list' });
    const rows = h('ul', { class: 'b-rows' });
    // Rows keep their order and may be half-filled while typing; the value
    // set on the setting is the object of the complete rows.
    let pairs = Object.entries(cur[n] ?? orig[n] ?? {}).map(([k, v]) => [k, String(v)]);
    const commit = () => {
      const obj = {};
      for (const [k, v] of pairs) {
        if (!k.trim()) continue;
        obj[k.trim()] = budget ? (v.trim() === '' || isNaN(Number(v)) ? v : Number(v)) : v;
      }
      set(n, obj);
    };
    const render = () => {
      rows.replaceChildren(...pairs.map((p, i) => {
        const k = h('input', { type: 'text', 'aria-label': t(budget ? 'settings.mapModel' : 'settings.mapKey', { n: i + 1 }), list: budget || spec.valueModels ? 'settings-models' : null, placeholder: t(budget ? 'settings.mapModel' : 'settings.mapKey', { n: i + 1 }) });
        k.value = p[0];
        k.addEventListener('input', () => {
          p[0] = k.value;
          commit();
        });
        const v = h('input', { type: budget ? 'number' : 'text', 'aria-label': t(budget ? 'settings.mapBudget' : 'settings.mapValue', { n: i + 1 }), list: spec.valueModels ? 'settings-models' : null, placeholder: t(budget ? 'settings.mapBudget' : 'settings.mapValue', { n: i + 1 }) });
        v.value = p[1];
        v.addEventListener('input', () => {
          p[1] = v.value;
          commit();
        });
        return h('li', { class: 'b-pair' }, k, v, removeBtn(t('settings.removeItem', { item: p[0] || String(i + 1) }), () => {
          pairs.splice(i, 1);
          commit();
          render();
        }));
      }));
    };
    const addBtn = h('button', { type: 'button', class: 'btn', id: `settings-${n}`, 'aria-describedby': `settings-${n}-help settings-${n}-error` }, t('settings.addRow'));
    addBtn.addEventListener('click', () => {
      pairs.push(['', '']);
      render();
      rows.querySelector('li:last-child input')?.focus();
    });
    wrap.append(rows, h('div', { class: 'b-add' }, addBtn));
    render();
    return wrap;
  }

  function selectOf(label, options, value, translate) {
    const s = h('select', { 'aria-label': label });
    const opts = options.includes(value) || !value ? options : [value, ...options];
    for (const o of opts) {
      const op = h('option', { value: o }, translate ? tf(`settings.opt.${o}`, o) : o);
      s.append(op);
    }
    s.value = value ?? '';
    return s;
  }

  function safetyEditor(n) {
    const wrap = h('div', { class: 'b-list' });
    const rows = h('ul', { class: 'b-rows' });
    const json = h('textarea', { rows: 8, class: 'b-json', spellcheck: 'false', 'aria-label': t('settings.jsonOf', { name: n }) });
    const jsonErr = h('p', { class: 'b-error', hidden: true });
    let asJSON = false;
    const items = () => cur[n] ?? orig[n] ?? [];
    const render = () => {
      rows.hidden = asJSON;
      addBtn.hidden = asJSON;
      json.hidden = !asJSON;
      toggle.textContent = asJSON ? t('settings.asRows') : t('settings.asJSON');
      toggle.setAttribute('aria-pressed', String(asJSON));
      if (asJSON) {
        json.value = JSON.stringify(items(), null, 2);
        return;
      }
      rows.replaceChildren(...items().map((it, i) => {
        const update = (patch) => {
          const next = clone(items());
          next[i] = { ...next[i], ...patch };
          set(n, next);
        };
        const c = selectOf(t('settings.safetyCategory', { n: i + 1 }), SAFETY_CATEGORIES, it.category, true);
        c.addEventListener('change', () => update({ category: c.value }));
        const th = selectOf(t('settings.safetyThreshold', { n: i + 1 }), SAFETY_THRESHOLDS, it.threshold);
        th.addEventListener('change', () => update({ threshold: th.value }));
        return h('li', { class: 'b-pair' }, c, th, removeBtn(t('settings.removeItem', { item: it.category }), () => {
          const next = clone(items());
          next.splice(i, 1);
          set(n, next);
          render();
        }));
      }));
    };
    json.addEventListener('input', () => {
      try {
        const v = JSON.parse(json.value);
        if (!Array.isArray(v)) throw new Error(t('settings.wantArray'));
        jsonErr.hidden = true;
        set(n, v);
      } catch (e) {
        jsonErr.textContent = t('settings.badJSON', { msg: e.message });
        jsonErr.hidden = false;
      }
    });
    const addBtn = h('button', { type: 'button', class: 'btn', id: `settings-${n}`, 'aria-describedby': `settings-${n}-help settings-${n}-error` }, t('settings.addRow'));
    addBtn.addEventListener('click', () => {
      const used = new Set(items().map((x) => x.category));
      set(n, [...clone(items()), { category: SAFETY_CATEGORIES.find((c) => !used.has(c)) || SAFETY_CATEGORIES[0], threshold: 'BLOCK_NONE' }]);
      render();
    });
    const toggle = h('button', { type: 'button', class: 'btn link' });
    toggle.addEventListener('click', () => {
      asJSON = !asJSON;
      render();
    });
    wrap.append(rows, json, jsonErr, h('div', { class: 'b-add' }, addBtn, toggle));
    render();
    return wrap;
  }

  function jsonEditor(n) {
    const ta = h('textarea', { id: `settings-${n}`, rows: 6, class: 'b-json', spellcheck: 'false', 'aria-describedby': `settings-${n}-help settings-${n}-error` });
    ta.value = JSON.stringify(cur[n] ?? orig[n], null, 2);
    ta.addEventListener('input', () => {
      try {
        set(n, JSON.parse(ta.value));
      } catch (e) {
        errors[n] = t('settings.badJSON', { msg: e.message });
        showError(n);
      }
    });
    return ta;
  }

  function editor(n) {
    const spec = specOf(n);
    const v = cur[n] ?? orig[n];
    switch (spec.type) {
      case 'bool': {
        const cb = h('input', { id: `settings-${n}`, type: 'checkbox', role: 'switch', class: 'b-switch', 'aria-describedby': `settings-${n}-help settings-${n}-error` });
        cb.checked = !!v;
        cb.addEventListener('change', () => set(n, cb.checked));
        return cb;
      }
      case 'int':
        return input(n, { type: 'number', inputmode: 'numeric', step: '1', min: spec.min ?? null }, v, (s) => set(n, s.trim() === '' || !/^-?\d+$/.test(s.trim()) ? s : Number(s)));
      case 'url':
        return input(n, { type: 'url', autocomplete: 'off', spellcheck: 'false' }, v, (s) => set(n, s.trim()));
      case 'secret': {
        // Empty means "keep": the API returned only a hint, which is the placeholder.
        const el = input(n, { type: 'password', autocomplete: 'new-password', placeholder: v ? t('settings.keepSecret', { hint: v }) : t('settings.noSecret') }, '', (s) => {
          if (s === '') {
            delete cur[n];
            updateBar();
          } else set(n, s);
        });
        const show = h('button', { type: 'button', class: 'btn', 'aria-pressed': 'false', 'aria-label': t('settings.showSecret', { name: n }) }, t('settings.show'));
        show.addEventListener('click', () => {
          const on = el.type === 'password';
          el.type = on ? 'text' : 'password';
          show.setAttribute('aria-pressed', String(on));
          show.textContent = on ? t('settings.hide') : t('settings.show');
        });
        return h('div', { class: 'b-inline' }, el, show);
      }
      case 'model':
        return input(n, { type: 'text', list: 'settings-models', autocomplete: 'off', spellcheck: 'false' }, v, (s) => set(n, s.trim()));
      case 'select': {
        const s = selectOf(null, spec.options, v, spec.translate);
        s.id = `settings-${n}`;
        s.removeAttribute('aria-label');
        s.setAttribute('aria-describedby', `settings-${n}-help settings-${n}-error`);
        s.addEventListener('change', () => set(n, s.value));
        return s;
      }
      case 'list':
      case 'models':
      case 'secretlist':
        return listEditor(n, spec);
      case 'map':
      case 'budget':
        return mapEditor(n, spec);
      case 'safety':
        return safetyEditor(n);
      case 'json':
        return jsonEditor(n);
      default: {
        const attrs = { type: 'text', spellcheck: 'false' };
        if (spec.options === 'timezones' && Intl.supportedValuesOf) attrs.list = 'settings-timezones';
        return input(n, attrs, v, (s) => set(n, s));
      }
    }
  }

  function field(n) {
    const spec = specOf(n);
    const composite = ['list', 'models', 'secretlist', 'map', 'budget', 'safety'].includes(spec.type);
    const labelText = tf(`settings.f.${n}`, n);
    const help = tf(`settings.h.${n}`, '');
    const ed = editor(n);
    const label = composite
      ? h('span', { class: 'b-label', id: `settings-${n}-label` }, labelText)
      : h('label', { class: 'b-label', for: `settings-${n}` }, labelText);
    const parts = [
      h('div', { class: 'b-field-head' }, label, h('code', { class: 'b-env' }, n)),
      help ? h('p', { class: 'b-help', id: `settings-${n}-help` }, help) : h('span', { id: `settings-${n}-help`, hidden: true }),
      ed,
      h('p', { class: 'b-error', id: `settings-${n}-error`, role: 'alert', hidden: true }),
    ];
    const box = composite
      ? h('div', { class: 'b-field', 'data-field': n, role: 'group', 'aria-labelledby': `settings-${n}-label` }, ...parts)
      : h('div', { class: 'b-field', 'data-field': n, 'data-type': spec.type }, ...parts);
    return box;
  }

  function render() {
    const gs = groups();
    // The router takes over same-page links, so the group links scroll themselves.
    nav.replaceChildren(...gs.map(([g]) => h('a', {
      href: `#settings-group-${g}`, class: 'chip',
      onclick: (e) => {
        e.preventDefault();
        const sec = form.querySelector(`#settings-group-${g}`);
        sec?.scrollIntoView({ block: 'start' });
        sec?.querySelector('h2')?.focus({ preventScroll: true });
      },
    }, t(`settings.group.${g}`))));
    form.replaceChildren(...gs.map(([g, fs]) => h('section', { class: 'card b-group', id: `settings-group-${g}`, 'aria-labelledby': `settings-group-${g}-title` },
      h('h2', { id: `settings-group-${g}-title`, tabindex: '-1' }, t(`settings.group.${g}`)),
      ...fs.map(field))));
    for (const n of Object.keys(errors)) showError(n);
    applyFilter();
    updateBar();
  }

  function applyFilter() {
    const q = filter.value.trim().toLowerCase();
    for (const sec of form.querySelectorAll('section')) {
      let any = false;
      for (const f of sec.querySelectorAll('.b-field')) {
        const hit = !q || f.textContent.toLowerCase().includes(q);
        f.hidden = !hit;
        any ||= hit;
      }
      sec.hidden = !any;
    }
  }
  filter.addEventListener('input', applyFilter);

  // validate runs the checks the API would, so most mistakes show at once.
  function validate(patch) {
    const out = {};
    for (const [n, v] of Object.entries(patch)) {
      const spec = specOf(n);
      if (spec.type === 'int') {
        if (typeof v !== 'number' || !Number.isInteger(v)) out[n] = t('settings.wantInt');
        else if (spec.min != null && v < spec.min) out[n] = t('settings.wantMin', { min: spec.min });
      } else if (spec.type === 'url' && !/^https?:\/\/[^/\s]+/.test(v)) {
        out[n] = t('settings.wantURL');
      } else if (spec.type === 'budget') {
        for (const [k, x] of Object.entries(v)) if (typeof x !== 'number' || !Number.isInteger(x)) out[n] = t('settings.wantBudget', { model: k });
      }
    }
    return out;
  }

  function focusError() {
    const n = Object.keys(errors)[0];
    if (!n) return;
    const el = form.querySelector(`#settings-${n}`) || form.querySelector(`[data-field="${n}"]`);
    const box = form.querySelector(`[data-field="${n}"]`);
    if (box && box.hidden) {
      filter.value = '';
      applyFilter();
    }
    box?.scrollIntoView({ block: 'center' });
    el?.focus({ preventScroll: true });
  }

  async function save(e) {
    e?.preventDefault();
    const d = dirtyNames();
    if (!d.length || saving) return;
    const patch = Object.fromEntries(d.map((n) => [n, cur[n]]));
    errors = validate(patch);
    if (Object.keys(errors).length) {
      for (const n of names()) showError(n);
      status.textContent = t('settings.fixErrors', { n: Object.keys(errors).length });
      focusError();
      return;
    }
    saving = true;
    updateBar();
    status.textContent = t('settings.saving');
    try {
      const saved = await api('PUT', '/api/config', patch);
      orig = withEmptyMaps(saved && typeof saved === 'object' ? saved : await api('GET', '/api/config'));
      cur = {};
      errors = {};
      render();
      const when = new Date().toLocaleTimeString(locale(), { hour12: false });
      status.textContent = t('settings.saved', { names: d.join(', '), time: when });
      lastSaved = status.textContent;
      toast(t('settings.savedToast', { n: d.length }), 'ok');
    } catch (err) {
      errors = fieldErrors(err, names());
      if (!Object.keys(errors).length) {
        status.textContent = t('settings.saveFailed', { msg: err.message });
        toast(t('settings.saveFailed', { msg: err.message }), 'error');
      } else {
        for (const n of names()) showError(n);
        status.textContent = t('settings.fixErrors', { n: Object.keys(errors).length });
        focusError();
      }
    } finally {
      saving = false;
      updateBar();
    }
  }
  form.addEventListener('submit', save);

  discardBtn.addEventListener('click', () => {
    cur = {};
    errors = {};
    render();
    status.textContent = t('settings.discarded');
  });

  resetBtn.addEventListener('click', async () => {
    const ok = await confirmDialog({ title: t('settings.resetTitle'), body: t('settings.resetBody'), confirmLabel: t('settings.resetConfirm'), danger: true });
    if (!ok) return;
    try {
      await api('POST', '/api/config/reset');
      orig = withEmptyMaps(await api('GET', '/api/config'));
      cur = {};
      errors = {};
      render();
      status.textContent = t('settings.resetDone');
      toast(t('settings.resetDone'), 'ok');
    } catch (err) {
      toast(t('settings.resetFailed', { msg: err.message }), 'error');
    }
  });

  const beforeUnload = (e) => {
    if (dirtyNames().length) {
      e.preventDefault();
      e.returnValue = '';
    }
  };
  window.addEventListener('beforeunload', beforeUnload);
  // In-app links (the nav) would drop unsaved edits silently: ask first.
  // This runs in the capture phase, before the router's own click handler.
  const leaveGuard = async (e) => {
    const a = e.target.closest?.('a[href]');
    if (!a || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target || !dirtyNames().length) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname === location.pathname) return;
    e.preventDefault();
    e.stopPropagation();
    const ok = await confirmDialog({ title: t('settings.leaveTitle'), body: t('settings.leaveBody', { n: dirtyNames().length }), confirmLabel: t('settings.leaveConfirm'), danger: true });
    if (ok) {
      cur = {};
      ctx.navigate(url.pathname + url.search);
    }
  };
  document.addEventListener('click', leaveGuard, true);
  const cleanup = () => {
    window.removeEventListener('beforeunload', beforeUnload);
    document.removeEventListener('click', leaveGuard, true);
  };

  status.textContent = t('settings.loading');
  try {
    orig = await api('GET', '/api/config');
  } catch (err) {
    status.textContent = '';
    form.replaceChildren(h('p', { class: 'b-error', role: 'alert' }, t('settings.loadFailed', { msg: err.message })));
    saveBtn.disabled = true;
    return cleanup;
  }
  status.textContent = '';
  orig = withEmptyMaps(orig);
  if (Intl.supportedValuesOf) lists.append(datalist(h, 'settings-timezones', ['UTC', ...Intl.supportedValuesOf('timeZone')]));
  lists.append(datalist(h, 'settings-models', []));
  render();
  loadModels(api).then((m) => {
    models = m;
    lists.querySelector('#settings-models')?.replaceWith(datalist(h, 'settings-models', m));
  });
  return cleanup;
}
