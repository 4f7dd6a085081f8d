// Login: POST /auth with the admin password; on success back to ?next.
// A 429 means too many failed attempts: say how long to wait (Retry-After).
import { h, field } from '../lib/dom.js';
import { brand, tools, safeNext } from './authcommon.js';
import { PAGES } from '../app.js';

export async function mount(root, ctx) {
  const { t, api } = ctx;
  const next = safeNext(ctx.params.get('next'));
  const pw = h('input', { type: 'password', id: 'login-password', name: 'password', autocomplete: 'current-password', required: true });
  const msg = h('div', { id: 'login-error', class: 'error-box', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn primary', id: 'login-submit' }, t('login.submit'));
  const expired = ctx.params.get('next') ? h('div', { class: 'notice' }, t('login.expired')) : null;

  const show = (text) => { msg.textContent = text; msg.hidden = false; pw.setAttribute('aria-invalid', 'true'); };

  const form = h('form', { novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    msg.hidden = true;
    pw.removeAttribute('aria-invalid');
    if (!pw.value) { show(t('login.required')); pw.focus(); return; }
    submit.disabled = true;
    submit.textContent = t('login.submitting');
    try {
      await api('POST', '/auth', { auth_token: pw.value });
      const url = new URL(next, location.origin);
      if (PAGES[url.pathname]) ctx.navigate(next, { replace: true }); else location.assign(next);
      return;
    } catch (err) {
      if (err.status === 429) {
        const secs = Number(err.headers.get('Retry-After')) || 60;
        show(t('login.throttled', { minutes: Math.max(1, Math.ceil(secs / 60)) }));
      } else if (err.status === 401 && err.body?.setup) {
        ctx.navigate('/setup', { replace: true });
        return;
      } else if (err.status === 401) {
        show(t('login.wrong'));
      } else {
        show(t('login.failed', { error: err.message }));
      }
      pw.select();
      pw.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = t('login.submit');
    }
  } },
  expired,
  field(t('login.password'), pw),
  msg,
  submit);

  root.append(h('div', { class: 'auth-wrap' }, h('div', { class: 'auth-card' },
    brand(),
    h('h1', {}, t('login.title')),
    h('p', {}, t('login.intro')),
    form,
    tools('login', ctx))));
  pw.focus();
}
