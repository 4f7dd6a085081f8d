// First-run setup: reachable only while no admin exists. POST /api/setup
// sets the admin password and logs the browser in.
import { h, field } from '../lib/dom.js';
import { brand, tools } from './authcommon.js';

const MIN = 8;

export async function mount(root, ctx) {
  const { t, api } = ctx;
  const pw = h('input', { type: 'password', id: 'setup-password', autocomplete: 'new-password', required: true, minlength: MIN });
  const confirm = h('input', { type: 'password', id: 'setup-confirm', autocomplete: 'new-password', required: true });
  const msg = h('div', { id: 'setup-error', class: 'error-box', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn primary', id: 'setup-submit' }, t('setup.submit'));

  const show = (text, input) => {
    msg.textContent = text;
    msg.hidden = false;
    if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
  };

  const form = h('form', { novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    msg.hidden = true;
    pw.removeAttribute('aria-invalid');
    confirm.removeAttribute('aria-invalid');
    if (pw.value.length < MIN) { show(t('setup.too_short', { min: MIN }), pw); return; }
    if (pw.value !== confirm.value) { show(t('setup.mismatch'), confirm); return; }
    submit.disabled = true;
    try {
      await api('POST', '/api/setup', { password: pw.value });
      ctx.toast(t('setup.done'), 'ok');
      ctx.navigate('/dashboard', { replace: true });
    } catch (err) {
      if (err.status === 409) {
        show(t('setup.exists'));
        msg.append(' ', h('a', { href: '/login' }, t('setup.go_login')));
      } else {
        show(t('setup.failed', { error: err.message }), pw);
      }
    } finally {
      submit.disabled = false;
    }
  } },
  field(t('setup.password'), pw, t('setup.password_hint', { min: MIN })),
  field(t('setup.confirm'), confirm),
  msg,
  submit);

  root.append(h('div', { class: 'auth-wrap' }, h('div', { class: 'auth-card' },
    brand(),
    h('h1', {}, t('setup.title')),
    h('p', {}, t('setup.intro')),
    form,
    tools('setup', ctx))));
  pw.focus();
}
