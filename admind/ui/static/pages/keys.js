// Placeholder while the page is built.
export async function mount(root, ctx) {
  const { h, t } = ctx;
  root.append(h('div', { class: 'page-head' }, h('h1', {}, t('common.nav.keys'))));
}
