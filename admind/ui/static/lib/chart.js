// A thin wrapper over uPlot (vendored, loaded on first use): a time-series
// chart that fills its container's width and takes its colours from the
// theme's CSS variables, redrawing when the theme changes.
//
//   const c = await timeChart(el, { series: [{ label: 'Requests', color: '--chart-1' }], height: 220 });
//   c.setData([[unixSeconds...], [values...]]);
import { locale } from './i18n.js';

const BASE = '/assets/vendor/uplot/';
let loading = null;
// Counts are whole numbers: y ticks never fall between them.
const COUNT_INCRS = [1, 2, 5].flatMap((m) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9].map((p) => m * p)).sort((a, b) => a - b);

// loadUPlot adds the library's script and stylesheet once.
export function loadUPlot() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  loading ||= new Promise((resolve, reject) => {
    const css = document.createElement('link');
    css.rel = 'stylesheet';
    css.href = BASE + 'uPlot.min.css';
    document.head.append(css);
    const s = document.createElement('script');
    s.src = BASE + 'uPlot.iife.min.js';
    s.onload = () => resolve(window.uPlot);
    s.onerror = () => { loading = null; reject(new Error('could not load the chart library')); };
    document.head.append(s);
  });
  return loading;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

// timeChart draws series over a time axis (x in Unix seconds). Options:
// series [{label, color (a CSS variable name), fill, bars}], height,
// timeLabel (the legend's x label), fmt(value) for the legend values.
export async function timeChart(el, opts) {
  const uPlot = await loadUPlot();
  let data = [[], ...opts.series.map(() => [])];
  let plot = null;
  const height = opts.height || 220;
  const fmt = opts.fmt || ((v) => (v == null ? '—' : Number(v).toLocaleString()));

  function build() {
    plot?.destroy();
    const axisStroke = cssVar('--muted');
    const grid = { stroke: cssVar('--grid'), width: 1 };
    const width = Math.max(200, Math.floor(el.clientWidth || el.getBoundingClientRect().width || 600));
    const series = [{ label: opts.timeLabel || 'Time' }].concat(opts.series.map((s) => {
      const color = cssVar(s.color || '--chart-1');
      const out = { label: s.label, stroke: color, width: 2, value: (u, v) => fmt(v), points: { show: false } };
      if (s.fill) out.fill = color + '22';
      if (s.bars) {
        out.paths = uPlot.paths.bars({ size: [0.7, 40] });
        out.fill = color + 'cc';
        out.width = 0;
      }
      return out;
    }));
    plot = new uPlot({
      width,
      height,
      series,
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [
        { stroke: axisStroke, grid, ticks: grid, values: (u, splits, ax, space) => splits.map((v) => timeTick(v, space)) },
        { stroke: axisStroke, grid, ticks: grid, size: 56, incrs: COUNT_INCRS, values: (u, vals) => vals.map((v) => compact(v)) },
      ],
      legend: { live: true },
    }, data, el);
  }

  build();
  const ro = new ResizeObserver(() => {
    const w = Math.floor(el.clientWidth);
    if (plot && w > 0 && Math.abs(w - plot.width) > 2) plot.setSize({ width: w, height });
  });
  ro.observe(el);
  const onTheme = () => build();
  window.addEventListener('gb-theme', onTheme);

  return {
    setData(d) { data = d; plot.setData(d); },
    destroy() { ro.disconnect(); window.removeEventListener('gb-theme', onTheme); plot?.destroy(); },
  };
}

// timeTick labels an x tick in the user's language: the date for day-wide
// ticks (and at midnight), else the 24-hour time.
function timeTick(secs, space) {
  if (secs == null) return '';
  const d = new Date(secs * 1000);
  const date = d.toLocaleDateString(locale(), { month: 'numeric', day: 'numeric' });
  if (space >= 86400) return date;
  const time = d.toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit', hour12: false });
  return d.getHours() === 0 && d.getMinutes() === 0 ? `${date}\n${time}` : time;
}

// compact shortens axis numbers: 1200 → 1.2k, 3400000 → 3.4M.
export function compact(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1).replace(/\.0$/, '') + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1).replace(/\.0$/, '') + 'M';
  if (a >= 1e3) return (v / 1e3).toFixed(a >= 1e4 ? 0 : 1).replace(/\.0$/, '') + 'k';
  return String(Math.round(v * 100) / 100);
}
