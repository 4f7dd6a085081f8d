// Runs before first paint (a classic script, not a module) so a dark
// page never flashes light. lib/theme.js owns the logic after that.
(function () {
  var v = null;
  try { v = localStorage.getItem('gb.theme'); } catch (e) { /* storage off */ }
  if (v !== 'light' && v !== 'dark') {
    v = window.matchMedia && matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  }
  document.documentElement.setAttribute('data-theme', v);
})();
