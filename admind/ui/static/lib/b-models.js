// Model list and model picker shared by the tokens and settings pages.
// loadModels asks GET /api/models once per page load; pickModels opens a
// dialog with a searchable checkbox list and resolves to the chosen names
// (or null when cancelled). Labels come from the caller, so this file holds
// no UI text.

let cached = null;

// modelNames reads the model list in the shapes a models route may answer:
// {models:[...]}, {data:[...]}, or a bare array; entries are strings or
// objects with id/name ("models/" prefix dropped).
export function modelNames(body) {
  const list = Array.isArray(body) ? body : (body && (body.models || body.data)) || [];
  const out = new Set();
  for (const m of list) {
    let n = typeof m === 'string' ? m : m && (m.id || m.name || m.model);
    if (typeof n !== 'string' || !n) continue;
    out.add(n.replace(/^models\//, ''));
  }
  return [...out].sort();
}

// loadModels resolves to the live model names, or [] when the route fails
// (pickers then accept typed names only).
export function loadModels(api) {
  if (!cached) {
    cached = api('GET', '/api/models').then(modelNames).catch(() => {
      cached = null; // try again next time
      return [];
    });
  }
  return cached;
}

// datalist returns a <datalist id=id> of the names, for free-text model inputs.
export function datalist(h, id, names) {
  return h('datalist', { id }, names.map((n) => h('option', { value: n })));
}

// pickModels shows a modal list of names with checkboxes. opts: {h, title,
// filterLabel, okLabel, cancelLabel, emptyLabel, addLabel(name), names,
// selected}.
export function pickModels(opts) {
  const { h } = opts;
  const chosen = new Set(opts.selected || []);
  const all = [...new Set([...(opts.names || []), ...chosen])].sort();
  return new Promise((resolve) => {
    const list = h('div', { class: 'b-picker-list', role: 'group', 'aria-label': opts.title });
    const filter = h('input', { type: 'search', class: 'b-picker-filter', 'aria-label': opts.filterLabel, placeholder: opts.filterLabel });
    const render = () => {
      const q = filter.value.trim().toLowerCase();
      list.replaceChildren();
      const shown = all.filter((n) => !q || n.toLowerCase().includes(q));
      const typed = filter.value.trim();
      // A name the live list lacks (or no list at all) can still be chosen.
      if (typed && opts.addLabel && !all.includes(typed)) {
        const add = h('button', { type: 'button', class: 'btn small' }, opts.addLabel(typed));
        add.addEventListener('click', () => {
          all.push(typed);
          all.sort();
          chosen.add(typed);
          filter.value = '';
          render();
          filter.focus();
        });
        list.append(add);
      } else if (!shown.length) list.append(h('p', { class: 'muted' }, opts.emptyLabel));
      for (const n of shown) {
        const cb = h('input', { type: 'checkbox', value: n });
        cb.checked = chosen.has(n);
        cb.addEventListener('change', () => (cb.checked ? chosen.add(n) : chosen.delete(n)));
        list.append(h('label', { class: 'b-picker-item' }, cb, ' ', n));
      }
    };
    filter.addEventListener('input', render);
    filter.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        list.querySelector('button')?.click();
      }
    });
    const dlg = h('dialog', { class: 'dialog', 'aria-label': opts.title });
    const done = (v) => {
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    const ok = h('button', { type: 'button', class: 'btn primary' }, opts.okLabel);
    ok.addEventListener('click', () => done(all.filter((n) => chosen.has(n))));
    const cancel = h('button', { type: 'button', class: 'btn' }, opts.cancelLabel);
    cancel.addEventListener('click', () => done(null));
    dlg.addEventListener('cancel', (e) => {
      e.preventDefault();
      done(null);
    });
    dlg.append(h('h2', {}, opts.title), filter, list, h('div', { class: 'dialog-actions' }, cancel, ok));
    render();
    document.body.append(dlg);
    dlg.showModal();
    filter.focus();
  });
}
