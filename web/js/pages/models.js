// #/models — the base model this node serves (its shape, and the engine's figures refreshed
// every few seconds) and its LoRA adapters: where each sits (device / host / cold), its
// counters, load / unload / remove, a link to chat with it in the Playground, and an upload
// form for the two PEFT files.

import * as api from '../api.js';
import { h, mount, pageHeader, card, errorBox, loading, empty, badge, fmtNum, fmtBytes, toast, modal, busy } from '../ui.js';
import { modelAccess, accessNotice, modelState, modelStateNotice, RETRY_MS } from './serving.js';

const REFRESH_MS = 3000;

const TIERS = {
  device: ['ok', 'Parsed and ready for the kernels: requests use it at once.'],
  host: ['info', 'Its files are in host memory: the first request parses them (a load).'],
  cold: ['', 'Only in the blob store: the first request fetches and loads it.'],
};

/** The badge of an adapter's tier. */
export function tierBadge(tier) {
  const [kind, title] = TIERS[tier] || ['', 'Unknown tier'];
  const b = badge(tier || 'unknown', kind);
  b.classList.add('tier');
  b.title = title;
  return b;
}

/** "1.2 M" parameters. */
export function fmtParams(n) {
  const v = Number(n);
  if (!Number.isFinite(v)) return '—';
  for (const [div, unit] of [[1e9, 'B'], [1e6, 'M'], [1e3, 'K']]) {
    if (v >= div) return `${(v / div).toFixed(v / div < 10 ? 2 : 1)} ${unit}`;
  }
  return String(v);
}

function kv(k, v) {
  return [h('dt', {}, k), h('dd', {}, v)];
}

function figure(id, label) {
  const value = h('div', { class: 'big-stat-value', id }, '—');
  return { el: h('div', { class: 'big-stat' }, value, h('div', { class: 'big-stat-label' }, label)), value };
}

export async function render(ctx) {
  const header = pageHeader({
    title: 'Models',
    subtitle: 'The base model this node serves and the LoRA adapters registered on it. Requests name an adapter as their model; chat with any of them in the Playground.',
    actions: h('a', { class: 'btn', href: '#/playground' }, 'Open the Playground'),
  });
  const access = await modelAccess();
  if (!access) {
    ctx.mount(header, accessNotice(null, 'see and manage the models'));
    return;
  }
  const headers = access.headers;

  // --- the base model ---
  const baseBody = h('div', { id: 'model-base' }, loading('Asking for the base model…'));
  const updated = h('span', { class: 'muted small', id: 'engine-updated' });
  const figures = {
    running: figure('engine-running', 'running'),
    waiting: figure('engine-waiting', 'waiting'),
    kv: figure('engine-kv', 'KV blocks free / total'),
    adapters: figure('engine-adapters', 'resident adapters (device · host)'),
    tokens: figure('engine-tokens', 'tokens generated'),
    steps: figure('engine-steps', 'forward steps'),
  };
  let shownBase = null; // the base id drawn in baseBody, or null when it shows a state
  let state = 'loading';

  function drawBase(b) {
    const c = h(
      'div',
      { class: 'base-model', dataset: { model: b.id } },
      h(
        'dl',
        { class: 'kv kv-wide' },
        kv('Model', h('code', { id: 'base-id' }, b.id)),
        kv('Architecture', h('span', { id: 'base-arch' }, b.arch)),
        kv('Parameters', h('span', { id: 'base-params', title: fmtNum(b.parameters) }, fmtParams(b.parameters))),
        kv('Context', h('span', { id: 'base-context' }, `${fmtNum(b.max_position_embeddings)} tokens`)),
        kv('Weights', h('code', { id: 'base-dtype' }, b.dtype)),
        kv('Shape', `${b.layers} layers · hidden ${fmtNum(b.hidden_size)} · ${b.heads} heads (${b.kv_heads} KV) · vocabulary ${fmtNum(b.vocab_size)}`),
        kv('Chat template', b.chat_template ? 'yes' : h('span', { class: 'muted' }, 'none: chat requests are refused')),
        kv('Directory', h('code', { class: 'small' }, b.dir)),
      ),
      h('div', { class: 'engine-head' }, h('h3', {}, 'Engine'), updated),
      h('div', { class: 'stat-grid engine-grid', id: 'engine' }, Object.values(figures).map((f) => f.el)),
    );
    mount(baseBody, c);
    shownBase = b.id;
  }

  function updateEngine(e) {
    figures.running.value.textContent = fmtNum(e.running);
    figures.waiting.value.textContent = fmtNum(e.waiting);
    figures.kv.value.textContent = `${fmtNum(e.kv_blocks_free)} / ${fmtNum(e.kv_blocks_total)}`;
    figures.kv.value.title = `${e.kv_block_size} positions per block`;
    figures.adapters.value.textContent = `${fmtNum(e.device_adapters)} · ${fmtNum(e.host_adapters)}`;
    figures.adapters.value.title = `${fmtBytes(e.device_adapter_bytes)} parsed · ${fmtBytes(e.host_adapter_bytes)} of files in host memory`;
    figures.tokens.value.textContent = fmtNum(e.tokens_generated);
    figures.steps.value.textContent = fmtNum(e.steps);
    figures.steps.value.title = `${fmtNum(e.preemptions)} preemptions`;
    updated.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
  }

  async function refreshBase() {
    try {
      const b = await api.baseModel(headers);
      if (!ctx.alive()) return;
      if (shownBase !== b.id) drawBase(b);
      updateEngine(b.engine || {});
      state = 'ready';
    } catch (e) {
      if (!ctx.alive()) return;
      shownBase = null;
      state = modelState(e) || 'error';
      mount(baseBody, modelState(e) ? modelStateNotice(e, () => tick()) : errorBox(e, { title: 'Could not read the base model', retry: () => tick() }));
    }
  }

  // --- adapters ---
  const actionMsg = h('div', { id: 'adapter-action-result' });
  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'table adapters-table', id: 'adapter-table' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Adapter'),
        h('th', { class: 'col-num' }, 'Rank'),
        h('th', {}, 'Targets'),
        h('th', { class: 'col-num' }, 'Size'),
        h('th', {}, 'Added by'),
        h('th', {}, 'Tier'),
        h('th', { class: 'col-num' }, 'Requests'),
        h('th', { class: 'col-num', title: 'Completion tokens generated with it' }, 'Tokens'),
        h('th', { class: 'col-num' }, 'Loads'),
        h('th', { class: 'col-num', title: 'How long its last load into the kernels took' }, 'Last load'),
        h('th', { class: 'col-actions' }, h('span', { class: 'visually-hidden' }, 'Actions')),
      ),
    ),
    tbody,
  );
  const noAdapters = empty('No adapters yet', 'Upload the two files of a PEFT LoRA adapter trained for this base model below; chat requests then name it as their model.');
  const adaptersBody = h('div', { id: 'adapters' }, loading());
  // Rows by adapter name: names are unique, ids are not (two names may register the same files).
  /** @type {Map<string, {tr: HTMLElement, cells: object, name: string}>} */
  const rows = new Map();

  function fillStats(row, st) {
    const { cells } = row;
    const tier = st ? st.tier : null;
    row.tr.dataset.tier = tier || 'unknown';
    mount(cells.tier, st ? tierBadge(tier) : h('span', { class: 'muted', title: 'The model is not ready' }, '—'));
    cells.requests.textContent = st ? fmtNum(st.requests) : '—';
    cells.tokens.textContent = st ? fmtNum(st.completion_tokens) : '—';
    cells.tokens.title = st ? `${fmtNum(st.prompt_tokens)} prompt tokens read` : '';
    cells.loads.textContent = st ? fmtNum(st.loads) : '—';
    cells.lastLoad.textContent = st && st.loads ? `${Number(st.last_load_ms).toFixed(1)} ms` : '—';
    cells.lastLoad.title = st && st.loads ? `${Number(st.load_ms_total).toFixed(1)} ms over ${st.loads} loads` : '';
  }

  function adapterRow(a) {
    const cells = {
      tier: h('td', { class: 'col-tier' }),
      requests: h('td', { class: 'col-num' }),
      tokens: h('td', { class: 'col-num' }),
      loads: h('td', { class: 'col-num' }),
      lastLoad: h('td', { class: 'col-num' }),
    };
    const label = a.name;
    const loadBtn = h('button', { class: 'btn btn-small', type: 'button', title: 'Warm it into host memory now', attrs: { 'aria-label': `Load ${label}` }, onClick: () => act(loadBtn, 'Loading…', a, 'load') }, 'Load');
    const unloadBtn = h('button', { class: 'btn btn-small', type: 'button', title: 'Free its memory (it stays registered and loads again on its next request)', attrs: { 'aria-label': `Unload ${label}` }, onClick: () => act(unloadBtn, 'Unloading…', a, 'unload') }, 'Unload');
    const removeBtn = h('button', { class: 'btn btn-small btn-danger', type: 'button', attrs: { 'aria-label': `Remove ${label}` }, onClick: () => remove(removeBtn, a) }, 'Remove');
    const short = (t) => t.replace(/_proj$/, '');
    const tr = h(
      'tr',
      { class: 'adapter-row', dataset: { id: a.id, name: a.name } },
      h('td', {}, h('div', { class: 'strong adapter-name' }, a.name), h('code', { class: 'muted small', title: `content hash ${a.hash}` }, a.id)),
      h('td', { class: 'col-num' }, String(a.rank)),
      h('td', { title: a.targets.join(', ') }, h('span', { class: 'targets' }, a.targets.map(short).join(' '))),
      h('td', { class: 'col-num' }, fmtBytes(a.size)),
      h('td', {}, a.added_by),
      cells.tier,
      cells.requests,
      cells.tokens,
      cells.loads,
      cells.lastLoad,
      h(
        'td',
        { class: 'col-actions' },
        h(
          'div',
          { class: 'row-actions' },
          h('a', { class: 'btn btn-small btn-primary', href: `#/playground?model=${encodeURIComponent(a.name)}`, attrs: { 'aria-label': `Chat with ${label} in the Playground` } }, 'Chat'),
          loadBtn,
          unloadBtn,
          removeBtn,
        ),
      ),
    );
    const row = { tr, cells, name: a.name };
    fillStats(row, a.stats);
    return row;
  }

  function drawAdapters(list) {
    const seen = new Set();
    for (const a of list) {
      seen.add(a.name);
      let row = rows.get(a.name);
      if (row && row.tr.dataset.id !== a.id) {
        row.tr.remove(); // replaced under the same name (replace=true): new files, new id
        row = null;
      }
      if (row) fillStats(row, a.stats);
      else rows.set(a.name, (row = adapterRow(a)));
      tbody.appendChild(row.tr); // moves an existing row into the server's order
    }
    for (const [name, row] of rows) {
      if (!seen.has(name)) {
        row.tr.remove();
        rows.delete(name);
      }
    }
    const want = rows.size ? table : noAdapters;
    if (want.parentNode !== adaptersBody) mount(adaptersBody, want);
  }

  async function refreshAdapters() {
    try {
      const r = await api.adapters(headers);
      if (ctx.alive()) drawAdapters(r.adapters || []);
    } catch (e) {
      if (!ctx.alive()) return;
      mount(adaptersBody, errorBox(e, { title: 'Could not list the adapters', retry: () => refreshAdapters() }));
    }
  }

  async function act(button, label, a, what) {
    mount(actionMsg);
    try {
      await busy(button, label, async () => {
        const r = what === 'load' ? await api.loadAdapter(a.name, headers) : await api.unloadAdapter(a.name, headers);
        const row = rows.get(a.name);
        if (row) fillStats(row, r.stats);
      });
      toast(what === 'load' ? `${a.name}: loading into memory` : `${a.name}: memory freed`, 'ok');
      refreshAdapters();
    } catch (e) {
      mount(actionMsg, errorBox(e, { title: `Could not ${what} ${a.name}` }));
    }
  }

  async function remove(button, a) {
    const ok = await modal({
      title: `Remove ${a.name}?`,
      text: `The adapter ${a.name} (${a.id}) is unregistered from this node and its memory freed: requests naming it fail from now on. Upload its files again to bring it back.`,
      confirmLabel: 'Remove',
      danger: true,
    });
    if (!ok) return;
    mount(actionMsg);
    try {
      await busy(button, 'Removing…', () => api.removeAdapter(a.name, headers));
      toast(`Removed ${a.name}`, 'ok');
      await refreshAdapters();
    } catch (e) {
      mount(actionMsg, errorBox(e, { title: `Could not remove ${a.name}` }));
    }
  }

  // --- upload ---
  const upload = uploadForm(headers, async (a) => {
    await refreshAdapters();
    const row = rows.get(a.name);
    if (row) {
      row.tr.classList.add('row-added');
      setTimeout(() => row.tr.classList.remove('row-added'), 4000);
    }
  });

  ctx.mount(
    header,
    accessNotice(access),
    card('Base model', baseBody),
    card('Adapters', actionMsg, adaptersBody),
    card('Add an adapter', upload),
  );

  // One refresh loop while the page is open: the base model and the adapters' figures.
  let timer = null;
  let running = false;
  async function tick() {
    clearTimeout(timer);
    if (!ctx.alive() || running) return;
    running = true;
    try {
      if (!document.hidden) await Promise.all([refreshBase(), refreshAdapters()]);
    } finally {
      running = false;
    }
    if (ctx.alive()) timer = setTimeout(tick, RETRY_MS[state] || REFRESH_MS);
  }
  await tick();
}

/** The upload form: a name and the two PEFT files (one multi-file input, or two picks). */
function uploadForm(headers, onAdded) {
  const files = { config: null, weights: null, other: [] };
  const name = h('input', { type: 'text', name: 'name', id: 'adapter-name', maxlength: 64, autocomplete: 'off', placeholder: 'e.g. legal-v1', required: true, attrs: { 'aria-describedby': 'adapter-name-hint' } });
  const replace = h('input', { type: 'checkbox', name: 'replace', id: 'adapter-replace' });
  const input = h('input', { type: 'file', multiple: true, id: 'adapter-files', accept: '.json,.safetensors,application/json', class: 'visually-hidden' });
  const list = h('ul', { class: 'adapter-files', id: 'adapter-file-list' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'adapter-submit', disabled: true }, 'Upload adapter');
  const hint = h('span', { class: 'muted small', id: 'adapter-submit-hint' });
  const result = h('div', { id: 'adapter-upload-result' });

  const drop = h(
    'label',
    { class: 'dropzone', for: 'adapter-files', id: 'adapter-dropzone' },
    h('div', { class: 'dropzone-icon' }, '⇪'),
    h('div', { class: 'dropzone-title' }, 'Drop the adapter’s files here or click to choose'),
    h('div', { class: 'muted small' }, 'adapter_config.json and adapter_model.safetensors (PEFT’s output directory)'),
    input,
  );
  for (const ev of ['dragenter', 'dragover']) drop.addEventListener(ev, (e) => (e.preventDefault(), drop.classList.add('over')));
  for (const ev of ['dragleave', 'drop']) drop.addEventListener(ev, () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) pick([...e.dataTransfer.files]);
  });
  input.addEventListener('change', () => {
    pick([...input.files]);
    input.value = '';
  });
  name.addEventListener('input', sync);

  /** Sort picked files into the config and the weights; a later pick replaces an earlier one. */
  function pick(chosen) {
    files.other = [];
    for (const f of chosen) {
      const n = f.name.toLowerCase();
      if (n.endsWith('.json')) files.config = f;
      else if (n.endsWith('.safetensors')) files.weights = f;
      else files.other.push(f);
    }
    mount(result);
    sync();
  }

  function fileLine(kind, f, expected) {
    return h(
      'li',
      { dataset: { kind } },
      h('span', { class: 'file-icon' }, kind === 'config' ? 'JSON' : 'ST'),
      f
        ? h('span', {}, h('span', { class: 'file-name' }, f.name), ' ', h('span', { class: 'muted small' }, `${fmtBytes(f.size)} · sent as ${expected}`))
        : h('span', { class: 'muted' }, `${expected}: not chosen yet`),
    );
  }

  function sync() {
    mount(
      list,
      fileLine('config', files.config, 'adapter_config.json'),
      fileLine('weights', files.weights, 'adapter_model.safetensors'),
      files.other.length
        ? h('li', { class: 'hint-error' }, `Not used: ${files.other.map((f) => f.name).join(', ')} — only adapter_config.json and adapter_model.safetensors are read (pickled .bin/.pt weights are not loaded).`)
        : null,
    );
    const missing = !files.config || !files.weights;
    submit.disabled = missing || !name.value.trim();
    hint.textContent = missing ? 'Choose both files.' : !name.value.trim() ? 'Name the adapter.' : '';
  }

  async function send(e) {
    e.preventDefault();
    if (submit.disabled) return;
    mount(result);
    const n = name.value.trim();
    try {
      const a = await busy(submit, 'Uploading…', () => api.addAdapter({ name: n, config: files.config, weights: files.weights, replace: replace.checked }, headers));
      mount(
        result,
        h(
          'div',
          { class: 'alert alert-ok', id: 'adapter-added' },
          h('div', { class: 'alert-msg' }, h('span', { class: 'strong' }, `Added ${a.name}`), ` · id ${a.id} · rank ${a.rank} · ${a.targets.length} target modules · ${fmtBytes(a.size)}`),
          h('div', { class: 'alert-actions' }, h('a', { class: 'btn btn-small btn-primary', href: `#/playground?model=${encodeURIComponent(a.name)}` }, 'Chat with it')),
        ),
      );
      name.value = '';
      replace.checked = false;
      files.config = null;
      files.weights = null;
      files.other = [];
      sync();
      await onAdded(a);
    } catch (err) {
      sync();
      mount(result, errorBox(err, { title: `The node refused the adapter${n ? ` ${n}` : ''}` }));
    }
  }

  sync();
  return h(
    'form',
    { class: 'form', id: 'adapter-upload', onSubmit: send, attrs: { 'aria-label': 'Add an adapter' } },
    h(
      'label',
      { class: 'field' },
      h('span', { class: 'label' }, 'Name ', h('span', { class: 'req' }, '*')),
      name,
      h('span', { class: 'hint', id: 'adapter-name-hint' }, '1–64 letters, digits and - _ . : / — requests name the adapter by it (its id works too).'),
    ),
    drop,
    list,
    h('label', { class: 'inline-check' }, replace, h('span', {}, 'Replace an adapter of the same name')),
    h('div', { class: 'form-actions' }, submit, hint),
    result,
  );
}
