// #/sql?q=… — run read-only SQL on the node (POST /api/v1/sql): an editor, the result as a
// table, a chart of the result (bars, or a line over a time column), and CSV export.

import * as api from '../api.js';
import { h, mount, pageHeader, card, errorBox, loading, empty, fmtNum } from '../ui.js';

const EXAMPLES = [
  ['Datanets', 'SELECT id, slug, name, latest_version, row_count, contribution_count\nFROM datanets\nORDER BY row_count DESC\nLIMIT 20'],
  ['Top contributors', 'SELECT contributor, count(*) AS rows\nFROM rows\nGROUP BY 1\nORDER BY 2 DESC\nLIMIT 10'],
  ['Rows per datanet', 'SELECT d.slug, count(*) AS rows\nFROM rows r JOIN datanets d ON d.id = r.datanet\nWHERE r.removed_in IS NULL\nGROUP BY 1\nORDER BY 2 DESC'],
  ['Acceptance', 'SELECT address, contributions, accepted, rejected, acceptance_ratio\nFROM contributors\nORDER BY contributions DESC\nLIMIT 20'],
  ['Versions', 'SELECT datanet, number, rows_added, rows_removed, row_count, created_at\nFROM versions\nORDER BY created_at'],
  ['Search', "SELECT s.score, r.datanet, r.contributor, s.snippet\nFROM search('data', 10) s JOIN rows r ON r.id = s.row_id\nORDER BY s.score DESC"],
];

const NUMERIC = new Set(['bigint', 'integer', 'smallint', 'real', 'double precision']);
const TIME = new Set(['timestamptz', 'timestamp', 'date']);
const SHOWN = 1000;

/** POST the SQL; answers the parsed JSON or throws an ApiError. */
async function runSql(sql) {
  return api.request('POST', '/sql', { body: { sql, max_rows: 10000 } });
}

function csvField(v) {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The result as CSV text (header line, then rows; nulls are empty fields). */
export function toCsv(result) {
  const lines = [result.columns.map((c) => csvField(c.name)).join(',')];
  for (const r of result.rows) lines.push(r.map(csvField).join(','));
  return `${lines.join('\n')}\n`;
}

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function cellText(v) {
  if (v === null || v === undefined) return h('span', { class: 'muted' }, 'NULL');
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 300 ? `${s.slice(0, 299)}…` : s;
}

function resultTable(result) {
  const cols = result.columns;
  const rows = result.rows.slice(0, SHOWN);
  return h(
    'table',
    { class: 'table', id: 'sql-result' },
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { title: c.type, class: NUMERIC.has(c.type) ? 'num' : null }, c.name)))),
    h(
      'tbody',
      {},
      rows.map((r) =>
        h(
          'tr',
          {},
          r.map((v, i) => h('td', { class: NUMERIC.has(cols[i].type) ? 'num' : null, style: NUMERIC.has(cols[i].type) ? { textAlign: 'right' } : null }, cellText(v))),
        ),
      ),
    ),
  );
}

/** Which columns make a chart: a label (or time) column and the numeric columns. */
export function chartSpec(result) {
  const cols = result.columns;
  const nums = cols.map((c, i) => (NUMERIC.has(c.type) ? i : -1)).filter((i) => i >= 0);
  if (!nums.length || !result.rows.length) return null;
  const timeIdx = cols.findIndex((c) => TIME.has(c.type));
  const labelIdx = timeIdx >= 0 ? timeIdx : cols.findIndex((c) => !NUMERIC.has(c.type));
  const series = nums.filter((i) => i !== labelIdx);
  if (!series.length) return null;
  return { kind: timeIdx >= 0 ? 'line' : 'bar', label: labelIdx, series };
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  return el;
}

const COLORS = ['#3b6fd8', '#e07b39', '#3aa676', '#b54fc4', '#d64545', '#7a8899'];

function chart(result) {
  const spec = chartSpec(result);
  if (!spec) return h('p', { class: 'muted' }, 'A chart needs a numeric column (and a label or time column).');
  const rows = result.rows.slice(0, spec.kind === 'bar' ? 50 : 2000);
  const W = 760;
  const H = 280;
  const pad = { l: 56, r: 12, t: 12, b: spec.kind === 'bar' ? 70 : 30 };
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const vals = rows.flatMap((r) => spec.series.map((i) => Number(r[i]) || 0));
  const max = Math.max(0, ...vals);
  const min = Math.min(0, ...vals);
  const y = (v) => pad.t + ih - ((v - min) / (max - min || 1)) * ih;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', 'aria-label': 'Chart of the result', id: 'sql-chart' });
  for (let k = 0; k <= 4; k++) {
    const v = min + ((max - min) * k) / 4;
    svg.appendChild(s('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), stroke: '#e6e8eb' }));
    svg.appendChild(s('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#6b7280' }, fmtNum(Math.round(v * 100) / 100)));
  }
  if (spec.kind === 'bar') {
    const band = iw / rows.length;
    const bw = Math.max(2, (band * 0.8) / spec.series.length);
    rows.forEach((r, j) => {
      spec.series.forEach((i, k) => {
        const v = Number(r[i]) || 0;
        const x = pad.l + j * band + band * 0.1 + k * bw;
        svg.appendChild(s('rect', { x, y: Math.min(y(v), y(0)), width: bw, height: Math.abs(y(0) - y(v)), fill: COLORS[k % COLORS.length] }, s('title', {}, `${r[spec.label]}: ${v}`)));
      });
      const label = String(r[spec.label] ?? '');
      const lx = pad.l + j * band + band / 2;
      svg.appendChild(s('text', { x: lx, y: H - pad.b + 12, 'font-size': 10, fill: '#6b7280', 'text-anchor': 'end', transform: `rotate(-40 ${lx} ${H - pad.b + 12})` }, label.length > 18 ? `${label.slice(0, 17)}…` : label));
    });
  } else {
    const ts = rows.map((r) => Date.parse(r[spec.label]));
    const t0 = Math.min(...ts);
    const t1 = Math.max(...ts);
    const x = (t) => pad.l + ((t - t0) / (t1 - t0 || 1)) * iw;
    spec.series.forEach((i, k) => {
      const pts = rows.map((r, j) => `${x(ts[j])},${y(Number(r[i]) || 0)}`).join(' ');
      svg.appendChild(s('polyline', { points: pts, fill: 'none', stroke: COLORS[k % COLORS.length], 'stroke-width': 2 }));
    });
    svg.appendChild(s('text', { x: pad.l, y: H - 8, 'font-size': 11, fill: '#6b7280' }, new Date(t0).toISOString().slice(0, 19).replace('T', ' ')));
    svg.appendChild(s('text', { x: W - pad.r, y: H - 8, 'font-size': 11, fill: '#6b7280', 'text-anchor': 'end' }, new Date(t1).toISOString().slice(0, 19).replace('T', ' ')));
  }
  const legend = h(
    'div',
    { class: 'muted small' },
    spec.series.map((i, k) => h('span', { style: { marginRight: '14px' } }, h('span', { style: { display: 'inline-block', width: '10px', height: '10px', background: COLORS[k % COLORS.length], marginRight: '5px' } }), result.columns[i].name)),
    ` by ${result.columns[spec.label].name}`,
  );
  return h('div', {}, svg, legend);
}

export async function render(ctx) {
  const initial = ctx.query.get('q') || EXAMPLES[0][1];
  const editor = h('textarea', {
    id: 'sql-editor',
    spellcheck: 'false',
    rows: 8,
    value: initial,
    attrs: { 'aria-label': 'SQL' },
    style: { width: '100%', fontFamily: 'var(--mono, monospace)', fontSize: '13px' },
  });
  const out = h('div', { id: 'sql-output' });
  const status = h('span', { class: 'muted small', id: 'sql-status' });
  let last = null;
  let view = 'table';

  const runBtn = h('button', { class: 'btn btn-primary', type: 'button', id: 'sql-run', onClick: () => run() }, 'Run');
  const csvBtn = h('button', { class: 'btn', type: 'button', id: 'sql-csv', disabled: true, onClick: () => last && download('result.csv', toCsv(last), 'text/csv') }, 'Export CSV');
  const tabTable = h('button', { class: 'seg active', type: 'button', id: 'sql-view-table', onClick: () => show('table') }, 'Table');
  const tabChart = h('button', { class: 'seg', type: 'button', id: 'sql-view-chart', onClick: () => show('chart') }, 'Chart');
  editor.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
      e.preventDefault();
      run();
    }
  });

  function show(which) {
    view = which;
    tabTable.classList.toggle('active', which === 'table');
    tabChart.classList.toggle('active', which === 'chart');
    if (last) draw();
  }

  function draw() {
    if (!last.rows.length) {
      mount(out, empty('No rows', 'The query ran and returned no rows.'));
      return;
    }
    const note = last.rows.length > SHOWN && view === 'table' ? h('p', { class: 'muted small' }, `Showing the first ${fmtNum(SHOWN)} of ${fmtNum(last.rows.length)} rows; Export CSV has them all.`) : null;
    mount(out, view === 'table' ? h('div', {}, resultTable(last), note) : chart(last));
  }

  async function run() {
    const sql = editor.value.trim();
    if (!sql) return;
    history.replaceState(null, '', `#/sql?q=${encodeURIComponent(sql)}`);
    runBtn.disabled = true;
    mount(out, loading('Running…'));
    status.textContent = '';
    try {
      last = await runSql(sql);
      csvBtn.disabled = false;
      status.textContent = `${fmtNum(last.row_count)} row${last.row_count === 1 ? '' : 's'}${last.truncated ? ' (truncated)' : ''} · ${last.elapsed_ms} ms`;
      draw();
    } catch (e) {
      last = null;
      csvBtn.disabled = true;
      mount(out, errorBox(e, { title: 'The query failed', plain: true }));
    } finally {
      runBtn.disabled = false;
    }
  }

  const examples = h(
    'div',
    { class: 'toolbar' },
    h('span', { class: 'muted small' }, 'Examples:'),
    EXAMPLES.map(([label, q]) =>
      h('button', { class: 'btn btn-small btn-ghost', type: 'button', onClick: () => ((editor.value = q), run()) }, label),
    ),
  );

  ctx.mount(
    pageHeader({
      title: 'SQL',
      subtitle: 'Read-only SQL over this node: datanets, datanet_tags, contributions, rows, versions, version_rows, contributors, edits, and search(\'query\', limit). PostgreSQL clients can connect too (commons serve --pg).',
    }),
    card(null, editor, h('div', { class: 'toolbar', style: { marginTop: '10px', marginBottom: 0 } }, runBtn, h('span', { class: 'muted small' }, 'Ctrl+Enter'), h('span', { class: 'tabs-spacer' }), status, h('div', { class: 'segmented' }, tabTable, tabChart), csvBtn)),
    examples,
    card(null, out),
  );
  if (ctx.query.get('q')) run();
  else mount(out, h('p', { class: 'muted' }, 'Write a query and press Run.'));
}
