// Tokens: client tokens for the public API. Create one (name, expiry, model
// allow-list) and see its secret once, beside a copy button; enable, disable,
// edit the allow-list or revoke (after a confirmation); usage per token.
import { copyText, fmtTime, fmtNum, fmtAgo, statusChip, openDialog } from '../lib/dom.js';
import { loadModels, datalist, pickModels } from '../lib/b-models.js';

const EXPIRY_PRESETS = [['never', 0], ['1d', 1], ['7d', 7], ['30d', 30], ['90d', 90], ['365d', 365], ['custom', -1]];

// tokenState is the chip status of a token.
function tokenState(tk) {
  if (tk.disabled) return 'disabled';
  if (tk.expired || (tk.expires_at && new Date(tk.expires_at) <= new Date())) return 'expired';
  return 'active';
}

// usageOf reads the usage counters, whatever subset the API sends.
function usageOf(tk) {
  const u = tk.usage || {};
  const pick = (...names) => names.map((n) => u[n]).find((v) => v !== undefined && v !== null);
  return {
    req24: pick('requests_24h'),
    fail24: pick('failures_24h'),
    tok24: pick('tokens_24h'),
    req30: pick('requests_30d'),
    tok30: pick('tokens_30d'),
    last: pick('last_used'),
  };
}

export async function mount(root, ctx) {
  const { api, t, h, toast, confirmDialog } = ctx;
  let models = [];
  let tokens = [];
  let chosen = []; // allow-list of the token being created

  // --- create form ---------------------------------------------------------
  const name = h('input', { id: 'tokens-create-name', type: 'text', required: true, maxlength: '100', autocomplete: 'off', placeholder: t('tokens.namePlaceholder') });
  const preset = h('select', { id: 'tokens-create-expiry-preset' }, EXPIRY_PRESETS.map(([k]) => h('option', { value: k }, t(`tokens.expiry.${k}`))));
  const expiry = h('input', { id: 'tokens-create-expiry', type: 'datetime-local', 'aria-label': t('tokens.expiryAt') });
  const expiryWrap = h('div', { class: 'field', hidden: true }, h('label', { for: 'tokens-create-expiry' }, t('tokens.expiryAt')), expiry);
  preset.addEventListener('change', () => {
    expiryWrap.hidden = preset.value !== 'custom';
    if (!expiryWrap.hidden) expiry.focus();
  });
  const modelInput = h('input', { id: 'tokens-create-model', type: 'text', list: 'tokens-models', autocomplete: 'off', placeholder: t('tokens.modelPlaceholder') });
  const modelAdd = h('button', { type: 'button', class: 'btn', id: 'tokens-create-model-add' }, t('tokens.add'));
  const modelPick = h('button', { type: 'button', class: 'btn', id: 'tokens-create-models-pick' }, t('tokens.pickModels'));
  const chips = h('ul', { class: 'b-chips', id: 'tokens-create-models', 'aria-label': t('tokens.allowList') });
  const formErr = h('p', { class: 'b-error', id: 'tokens-create-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn primary', id: 'tokens-create-submit' }, t('tokens.create'));
  const secretBox = h('div', { id: 'tokens-secret-box', hidden: true });

  const renderChips = () => {
    chips.replaceChildren(...(chosen.length
      ? chosen.map((m) => h('li', { class: 'chip b-chip' }, m, h('button', {
        type: 'button', class: 'b-chip-x', 'aria-label': t('tokens.removeModel', { model: m }),
        onclick: () => {
          chosen = chosen.filter((x) => x !== m);
          renderChips();
        },
      }, '✕')))
      : [h('li', { class: 'muted' }, t('tokens.allModels'))]));
  };
  const addTyped = () => {
    const vals = modelInput.value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
    chosen = [...new Set([...chosen, ...vals])];
    modelInput.value = '';
    renderChips();
  };
  modelAdd.addEventListener('click', addTyped);
  modelInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      addTyped();
    }
  });
  const picker = (selected, title) => pickModels({
    h, names: models, selected, title, filterLabel: t('tokens.pickFilter'), okLabel: t('tokens.pickOk'),
    cancelLabel: t('tokens.cancel'), emptyLabel: t('tokens.pickEmpty'), addLabel: (name) => t('tokens.pickAdd', { name }),
  });
  modelPick.addEventListener('click', async () => {
    const res = await picker(chosen, t('tokens.allowList'));
    if (res) {
      chosen = res;
      renderChips();
    }
  });

  function expiryValue() {
    const p = EXPIRY_PRESETS.find(([k]) => k === preset.value);
    if (!p || p[1] === 0) return undefined;
    if (p[1] > 0) return new Date(Date.now() + p[1] * 86400e3).toISOString();
    if (!expiry.value) throw new Error(t('tokens.expiryMissing'));
    const d = new Date(expiry.value);
    if (Number.isNaN(d.getTime()) || d <= new Date()) throw new Error(t('tokens.expiryPast'));
    return d.toISOString();
  }

  function showSecret(tk, secret) {
    const value = h('input', { id: 'tokens-secret', type: 'text', readonly: true, class: 'b-secret-value', 'aria-label': t('tokens.secretLabel') });
    value.value = secret;
    value.addEventListener('focus', () => value.select());
    const copy = h('button', { type: 'button', class: 'btn primary', id: 'tokens-secret-copy' }, t('tokens.copy'));
    copy.addEventListener('click', async () => {
      const ok = await copyText(secret);
      toast(ok ? t('tokens.copied') : t('tokens.copyFailed'), ok ? 'ok' : 'error');
      if (ok) copy.textContent = t('tokens.copiedShort');
    });
    const done = h('button', { type: 'button', class: 'btn', id: 'tokens-secret-done' }, t('tokens.secretDone'));
    done.addEventListener('click', () => {
      secretBox.replaceChildren();
      secretBox.hidden = true;
      name.focus();
    });
    const base = `${location.origin}`;
    secretBox.replaceChildren(h('div', { class: 'card b-secret-card', role: 'status' },
      h('h2', {}, t('tokens.secretTitle', { name: tk.name })),
      h('p', { class: 'b-warn' }, t('tokens.secretOnce')),
      h('div', { class: 'b-inline' }, value, copy),
      h('p', { class: 'muted' }, t('tokens.secretUse')),
      h('pre', { class: 'b-code' }, `export GB_TOKEN=<token>\ncurl ${base}/v1beta/models -H "x-goog-api-key: $GB_TOKEN"\n# OpenAI SDK: base_url="${base}/v1", api_key=$GB_TOKEN`),
      h('div', { class: 'actions' }, done)));
    secretBox.hidden = false;
    copy.focus();
  }

  const form = h('form', { id: 'tokens-create', class: 'card b-form', novalidate: true },
    h('h2', {}, t('tokens.createTitle')),
    h('div', { class: 'b-form-grid' },
      h('div', { class: 'field' }, h('label', { for: 'tokens-create-name' }, t('tokens.name')), name),
      h('div', { class: 'field' }, h('label', { for: 'tokens-create-expiry-preset' }, t('tokens.expiry')), preset),
      expiryWrap),
    h('div', { class: 'field' },
      h('label', { for: 'tokens-create-model' }, t('tokens.allowList')),
      h('p', { class: 'b-help' }, t('tokens.allowListHelp')),
      chips,
      h('div', { class: 'b-add' }, modelInput, modelAdd, modelPick)),
    formErr,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    formErr.hidden = true;
    if (modelInput.value.trim()) addTyped();
    const body = { name: name.value.trim() };
    try {
      if (!body.name) throw new Error(t('tokens.nameMissing'));
      const exp = expiryValue();
      if (exp) body.expires_at = exp;
    } catch (err) {
      formErr.textContent = err.message;
      formErr.hidden = false;
      (body.name ? (preset.value === 'custom' ? expiry : preset) : name).focus();
      return;
    }
    if (chosen.length) body.models = chosen;
    submit.disabled = true;
    try {
      const created = await api('POST', '/api/tokens', body);
      showSecret(created, created.token);
      name.value = '';
      chosen = [];
      preset.value = 'never';
      expiryWrap.hidden = true;
      renderChips();
      await loadList();
    } catch (err) {
      formErr.textContent = t('tokens.createFailed', { msg: err.message });
      formErr.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });

  // --- list ----------------------------------------------------------------
  const listState = h('div', { id: 'tokens-list-state', role: 'status', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const table = h('table', { id: 'tokens-table', class: 'data' },
    h('caption', { class: 'sr-only' }, t('tokens.listTitle')),
    h('thead', {}, h('tr', {}, ['name', 'status', 'models', 'usage24', 'usage30', 'expires', 'actions']
      .map((c) => h('th', { scope: 'col', class: ['usage24', 'usage30'].includes(c) ? 'num' : null }, t(`tokens.col.${c}`))))),
    tbody);
  const refresh = h('button', { type: 'button', class: 'btn', id: 'tokens-refresh' }, t('tokens.refresh'));
  refresh.addEventListener('click', () => loadList());
  const list = h('section', { class: 'card', 'aria-labelledby': 'tokens-list-title' },
    h('div', { class: 'page-head' }, h('h2', { id: 'tokens-list-title' }, t('tokens.listTitle')), refresh),
    listState,
    h('div', { class: 'table-wrap' }, table));

  async function setDisabled(tk, disabled) {
    try {
      await api('PATCH', `/api/tokens/${encodeURIComponent(tk.id)}`, { disabled });
      toast(t(disabled ? 'tokens.disabledToast' : 'tokens.enabledToast', { name: tk.name }), 'ok');
      await loadList();
    } catch (err) {
      toast(t('tokens.actionFailed', { msg: err.message }), 'error');
    }
  }

  async function revoke(tk) {
    const ok = await confirmDialog({
      title: t('tokens.revokeTitle', { name: tk.name }), body: t('tokens.revokeBody', { hint: tk.hint }),
      confirmLabel: t('tokens.revoke'), danger: true,
    });
    if (!ok) return;
    try {
      await api('DELETE', `/api/tokens/${encodeURIComponent(tk.id)}`);
      toast(t('tokens.revokedToast', { name: tk.name }), 'ok');
      await loadList();
    } catch (err) {
      toast(t('tokens.actionFailed', { msg: err.message }), 'error');
    }
  }

  async function editModels(tk) {
    const res = await picker(tk.models || [], t('tokens.editModelsTitle', { name: tk.name }));
    if (!res) return;
    try {
      await api('PATCH', `/api/tokens/${encodeURIComponent(tk.id)}`, { models: res });
      toast(t('tokens.modelsSaved', { name: tk.name }), 'ok');
      await loadList();
    } catch (err) {
      toast(t('tokens.actionFailed', { msg: err.message }), 'error');
    }
  }

  function details(tk) {
    const u = usageOf(tk);
    const row = (k, v) => [h('dt', {}, t(k)), h('dd', {}, v)];
    openDialog({
      title: tk.name,
      body: h('dl', { class: 'kv' },
        row('tokens.col.id', h('code', {}, tk.id)),
        row('tokens.col.hint', h('code', {}, tk.hint)),
        row('tokens.col.status', statusChip(tokenState(tk), t(`tokens.state.${tokenState(tk)}`))),
        row('tokens.col.models', (tk.models || []).length ? tk.models.join(', ') : t('tokens.allModels')),
        row('tokens.col.req24', fmtNum(u.req24)),
        row('tokens.col.fail24', fmtNum(u.fail24)),
        row('tokens.col.tok24', fmtNum(u.tok24)),
        row('tokens.col.req30', fmtNum(u.req30)),
        row('tokens.col.tok30', fmtNum(u.tok30)),
        row('tokens.col.lastUsed', u.last ? fmtTime(u.last) : '—'),
        row('tokens.col.created', fmtTime(tk.created_at)),
        row('tokens.col.expires', tk.expires_at ? fmtTime(tk.expires_at) : t('tokens.never'))),
      actions: h('a', { class: 'btn', href: `/logs?tab=requests&token=${encodeURIComponent(tk.id)}` }, t('tokens.viewLogs')),
    });
  }

  function renderRows() {
    if (!tokens.length) {
      tbody.replaceChildren(h('tr', {}, h('td', { colspan: 7, class: 'empty' }, t('tokens.empty'))));
      return;
    }
    tbody.replaceChildren(...tokens.map((tk) => {
      const st = tokenState(tk);
      const u = usageOf(tk);
      const toggle = h('button', { type: 'button', class: 'btn small', 'data-action': tk.disabled ? 'enable' : 'disable', 'aria-label': t(tk.disabled ? 'tokens.enableNamed' : 'tokens.disableNamed', { name: tk.name }) },
        t(tk.disabled ? 'tokens.enable' : 'tokens.disable'));
      toggle.addEventListener('click', () => setDisabled(tk, !tk.disabled));
      const edit = h('button', { type: 'button', class: 'btn small', 'data-action': 'models', 'aria-label': t('tokens.editModelsNamed', { name: tk.name }) }, t('tokens.editModels'));
      edit.addEventListener('click', () => editModels(tk));
      const rev = h('button', { type: 'button', class: 'btn small danger-soft', 'data-action': 'revoke', 'aria-label': t('tokens.revokeNamed', { name: tk.name }) }, t('tokens.revoke'));
      rev.addEventListener('click', () => revoke(tk));
      const nameBtn = h('button', { type: 'button', class: 'btn link', 'aria-label': t('tokens.detailsNamed', { name: tk.name }) }, tk.name);
      nameBtn.addEventListener('click', () => details(tk));
      const ms = tk.models || [];
      return h('tr', { 'data-id': tk.id },
        h('td', { 'data-label': t('tokens.col.name') }, h('div', {}, nameBtn, h('div', { class: 'nowrap' }, h('code', { class: 'muted' }, tk.hint)))),
        h('td', { 'data-label': t('tokens.col.status') }, statusChip(st, t(`tokens.state.${st}`))),
        h('td', { 'data-label': t('tokens.col.models'), class: 'b-models-cell', title: ms.join(', ') }, ms.length ? (ms.length > 2 ? t('tokens.modelsN', { first: ms.slice(0, 2).join(', '), n: ms.length - 2 }) : ms.join(', ')) : h('span', { class: 'muted' }, t('tokens.allModels'))),
        h('td', { 'data-label': t('tokens.col.usage24'), class: 'num nowrap' }, h('div', {},
          u.req24 !== undefined
            ? h('a', { href: `/logs?tab=requests&token=${encodeURIComponent(tk.id)}`, 'aria-label': t('tokens.viewLogsNamed', { name: tk.name }) }, t('tokens.usageReq', { n: fmtNum(u.req24) }))
            : '—',
          u.fail24 ? h('div', { class: 'b-bad' }, t('tokens.usageFail', { n: fmtNum(u.fail24) })) : null,
          u.tok24 !== undefined ? h('div', { class: 'muted' }, t('tokens.usageTok', { n: fmtNum(u.tok24) })) : null)),
        h('td', { 'data-label': t('tokens.col.usage30'), class: 'num nowrap' }, h('div', {},
          u.req30 !== undefined ? t('tokens.usageReq', { n: fmtNum(u.req30) }) : '—',
          u.tok30 !== undefined ? h('div', { class: 'muted' }, t('tokens.usageTok', { n: fmtNum(u.tok30) })) : null)),
        h('td', { 'data-label': t('tokens.col.expires'), title: t('tokens.createdAgo', { ago: fmtAgo(tk.created_at) }) }, tk.expires_at ? fmtTime(tk.expires_at) : t('tokens.never')),
        h('td', { 'data-label': t('tokens.col.actions') }, h('div', { class: 'cell-actions' }, toggle, edit, rev)));
    }));
  }

  async function loadList() {
    listState.replaceChildren(h('span', { class: 'muted' }, t('tokens.loading')));
    try {
      const res = await api('GET', '/api/tokens');
      tokens = res.tokens || [];
      listState.replaceChildren(h('span', { class: 'muted' }, t('tokens.count', { n: tokens.length })));
      if (res.usage_error) listState.append(h('p', { class: 'b-note' }, t('tokens.usageError', { msg: res.usage_error })));
      renderRows();
    } catch (err) {
      listState.replaceChildren(h('p', { class: 'b-error', role: 'alert' }, t('tokens.loadFailed', { msg: err.message })));
    }
  }

  const lists = h('div', { hidden: true }, datalist(h, 'tokens-models', []));
  root.replaceChildren(
    h('div', { class: 'page-head' }, h('h1', {}, t('tokens.title'))),
    h('p', { class: 'muted' }, t('tokens.intro')),
    secretBox, form, list, lists);
  renderChips();
  tbody.replaceChildren();
  loadModels(api).then((m) => {
    models = m;
    lists.replaceChildren(datalist(h, 'tokens-models', m));
  });
  await loadList();
}
