// #/datanets/SLUG/contribute — upload files: each is hashed with BLAKE3 in the browser, the
// `Contribute` typed data is signed, and the raw bytes are sent with the signature headers
// (XMLHttpRequest, so each file shows real upload progress).

import * as api from '../api.js';
import * as signer from '../signer.js';
import * as eip712 from '../eip712.js';
import { hashFile } from '../blake3.js';
import { domain, nodeInfo, FORMATS, canReview } from '../context.js';
import { h, mount, card, errorBox, needSignIn, fmtBytes, fmtNum, progressBar, statusBadge, notice } from '../ui.js';
import { datanetHeader } from './common.js';

export async function render(ctx) {
  const d = await api.datanet(ctx.params.slug);
  const base = `#/datanets/${encodeURIComponent(d.slug)}`;
  const header = datanetHeader(d, 'contribute', { title: `Contribute to ${d.name}` , subtitle: 'Upload files; each becomes a contribution that the owner or a reviewer accepts into a new version, or rejects.' });
  if (!signer.address()) {
    ctx.mount(header, needSignIn('contribute files'));
    return;
  }
  let node = null;
  try {
    node = await nodeInfo();
  } catch {
    /* limits unknown: the node still enforces them */
  }
  const maxBytes = node && node.limits ? node.limits.max_upload_bytes : null;

  /** @type {{file: File, el: HTMLElement, bar: any, status: HTMLElement, result: HTMLElement, state: string}[]} */
  let items = [];
  const list = h('div', { class: 'file-list', id: 'file-list' });
  const input = h('input', { type: 'file', multiple: true, id: 'file-input', accept: FORMATS.map((f) => `.${f}`).join(','), class: 'visually-hidden' });
  const uploadBtn = h('button', { type: 'button', class: 'btn btn-primary', id: 'upload-button', disabled: true, onClick: () => uploadAll() }, 'Sign & upload');
  const clearBtn = h('button', { type: 'button', class: 'btn btn-ghost', disabled: true, onClick: () => setFiles([]) }, 'Clear');
  const summary = h('div', { class: 'upload-summary', id: 'upload-summary' });

  const drop = h(
    'label',
    { class: 'dropzone', for: 'file-input', id: 'dropzone' },
    h('div', { class: 'dropzone-icon' }, '⇪'),
    h('div', { class: 'dropzone-title' }, 'Drop files here or click to choose'),
    h('div', { class: 'muted small' }, `${FORMATS.join(', ')}${maxBytes ? ` · up to ${fmtBytes(maxBytes)} each` : ''}`),
    input,
  );
  for (const ev of ['dragenter', 'dragover']) drop.addEventListener(ev, (e) => (e.preventDefault(), drop.classList.add('over')));
  for (const ev of ['dragleave', 'drop']) drop.addEventListener(ev, () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) addFiles([...e.dataTransfer.files]);
  });
  input.addEventListener('change', () => {
    addFiles([...input.files]);
    input.value = '';
  });

  const limits = node && node.limits
    ? h(
        'p',
        { class: 'muted small' },
        `Daily quotas per contributor: ${fmtBytes(node.limits.daily_bytes_per_contributor)} and ${node.limits.daily_files_per_contributor} files; per datanet ${fmtBytes(node.limits.daily_bytes_per_datanet)}.`,
      )
    : null;

  ctx.mount(
    header,
    card(
      'Files',
      d.visibility === 'private' ? notice('This datanet is private: only its owner, reviewers and listed contributors may contribute.', 'info') : null,
      drop,
      list,
      h('div', { class: 'form-actions' }, uploadBtn, clearBtn, h('span', { class: 'muted small' }, `Signed as ${signer.current().username || signer.address()} (${signer.kind()}). Each file is signed separately.`)),
      limits,
      summary,
    ),
  );

  function addFiles(files) {
    const fresh = items.filter((i) => i.state === 'ready' || i.state === 'invalid');
    const names = new Set(fresh.map((i) => i.file.name + i.file.size));
    setFiles([...fresh.map((i) => i.file), ...files.filter((f) => !names.has(f.name + f.size))]);
  }

  function setFiles(files) {
    mount(summary);
    items = files.map((file) => {
      const ext = (file.name.split('.').pop() || '').toLowerCase();
      let problem = null;
      if (!file.name.includes('.') || !FORMATS.includes(ext)) problem = `Unsupported type: use ${FORMATS.join(', ')}.`;
      else if (file.size === 0) problem = 'The file is empty.';
      else if (maxBytes && file.size > maxBytes) problem = `Over the ${fmtBytes(maxBytes)} upload limit.`;
      const bar = progressBar('');
      const status = h('span', { class: 'file-status' }, problem || 'Ready');
      const result = h('div', { class: 'file-result' });
      const el = h(
        'div',
        { class: 'file-item', dataset: { file: file.name, state: problem ? 'invalid' : 'ready' } },
        h('div', { class: 'file-main' }, h('span', { class: 'file-icon' }, ext.toUpperCase().slice(0, 4) || '?'), h('div', { class: 'file-meta' }, h('div', { class: 'file-name' }, file.name), h('div', { class: 'muted small' }, fmtBytes(file.size))), status),
        bar.el,
        result,
      );
      if (problem) el.classList.add('is-invalid');
      return { file, el, bar, status, result, state: problem ? 'invalid' : 'ready' };
    });
    mount(list, items.map((i) => i.el));
    const ready = items.filter((i) => i.state === 'ready').length;
    uploadBtn.disabled = ready === 0;
    uploadBtn.textContent = ready > 1 ? `Sign & upload ${ready} files` : 'Sign & upload';
    clearBtn.disabled = items.length === 0;
  }

  function setState(item, state, text) {
    item.state = state;
    item.el.dataset.state = state;
    item.bar.state(state);
    if (text !== undefined) item.status.textContent = text;
  }

  async function uploadAll() {
    uploadBtn.disabled = true;
    clearBtn.disabled = true;
    input.disabled = true;
    mount(summary);
    let dom;
    try {
      dom = await domain();
    } catch (e) {
      mount(summary, errorBox(e, { title: 'Cannot read the node’s signing domain' }));
      uploadBtn.disabled = false;
      input.disabled = false;
      return;
    }
    const done = [];
    for (const item of items) {
      if (item.state !== 'ready') continue;
      try {
        setState(item, 'hashing', 'Hashing… 0%');
        const fileHash = await hashFile(item.file, (n, total) => {
          item.status.textContent = `Hashing… ${total ? Math.floor((n / total) * 100) : 100}%`;
        });
        setState(item, 'signing', 'Waiting for the signature…');
        const td = eip712.contribute(dom, { datanet: d.slug, fileHash, fileName: item.file.name });
        const auth = await signer.authFor(td);
        setState(item, 'uploading', 'Uploading… 0%');
        const up = api.upload(d.slug, item.file, item.file.name, auth, (sent, total) => {
          const f = total ? sent / total : 1;
          item.bar.set(f, `${Math.floor(f * 100)}%`);
          item.status.textContent = f >= 1 ? 'Processing…' : `Uploading… ${Math.floor(f * 100)}%`;
        });
        const c = await up.promise;
        item.bar.set(1, '100%');
        setState(item, 'done', 'Uploaded');
        mount(
          item.result,
          h(
            'div',
            { class: 'file-ok' },
            h('span', { class: 'strong' }, `Contribution #${c.id}`),
            ' · ',
            h('span', { class: 'row-count' }, `${fmtNum(c.row_count)} row${c.row_count === 1 ? '' : 's'}`),
            ' · ',
            c.format,
            ' · ',
            statusBadge(c.status),
            c.status === 'pending' ? h('span', { class: 'muted small' }, ' waiting for review') : null,
          ),
        );
        done.push(c);
      } catch (e) {
        setState(item, 'error', 'Failed');
        item.el.classList.add('is-error');
        mount(item.result, errorBox(e, { title: `${item.file.name} was not accepted by the node` }));
      }
    }
    input.disabled = false;
    clearBtn.disabled = false;
    uploadBtn.textContent = 'Sign & upload';
    const failed = items.filter((i) => i.state === 'error').length;
    mount(
      summary,
      h(
        'div',
        { class: ['alert', failed ? 'alert-warn' : 'alert-ok'] },
        h('div', { class: 'alert-msg' }, `${done.length} file${done.length === 1 ? '' : 's'} uploaded, ${fmtNum(done.reduce((n, c) => n + c.row_count, 0))} rows waiting for review${failed ? `; ${failed} failed` : ''}.`),
        h(
          'div',
          { class: 'alert-actions' },
          canReview(d) ? h('a', { class: 'btn btn-small btn-primary', href: `${base}/review` }, 'Open the review queue') : null,
          h('a', { class: 'btn btn-small', href: base }, 'Back to the datanet'),
        ),
      ),
    );
  }
}
