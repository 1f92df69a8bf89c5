// #/datanets/SLUG/rows?version=N — the rows of a version, in row-id order, with cursor paging.
// The owner and reviewers can take rows down (signed `TakeDown`), which makes a new version.

import * as api from '../api.js';
import * as signer from '../signer.js';
import * as eip712 from '../eip712.js';
import { domain, canReview } from '../context.js';
import { h, mount, card, errorBox, loading, empty, addrEl, hashEl, dateEl, fmtNum, modal, toast } from '../ui.js';
import { datanetHeader, rowTable } from './common.js';

const PAGE = 100;

export async function render(ctx) {
  const slug = ctx.params.slug;
  const [d, versions] = await Promise.all([api.datanet(slug), api.versions(slug)]);
  const base = `#/datanets/${encodeURIComponent(d.slug)}`;
  const header = datanetHeader(d, 'rows', { title: `Rows · ${d.name}`, subtitle: 'Every row of a version, in row order, with who contributed it.' });

  if (!versions.items.length) {
    ctx.mount(
      header,
      card(null, empty('No rows yet', 'This datanet has no version: rows appear once a reviewer accepts a contribution.', h('a', { class: 'btn btn-small', href: `${base}/contribute` }, 'Contribute'), h('a', { class: 'btn btn-small', href: `${base}/review` }, 'Review queue'))),
    );
    return;
  }

  const wanted = Number(ctx.query.get('version') || d.latest_version);
  const v = versions.items.find((x) => x.number === wanted);
  if (!v) {
    ctx.mount(
      header,
      errorBox({ code: 'not_found', status: 404, message: `Version ${ctx.query.get('version')} does not exist; versions go from 1 to ${d.latest_version}.` }, { title: 'No such version' }),
      h('a', { class: 'btn', href: `${base}/rows` }, 'Show the latest version'),
    );
    return;
  }

  const allowed = canReview(d);
  const selected = new Set();
  const picker = h(
    'select',
    { id: 'version-picker', attrs: { 'aria-label': 'Version' }, onChange: (e) => ctx.navigate(`${base}/rows?version=${e.target.value}`) },
    versions.items.map((x) => h('option', { value: String(x.number), selected: x.number === v.number }, `v${x.number} · ${fmtNum(x.row_count)} rows${x.number === d.latest_version ? ' (latest)' : ''}`)),
  );
  const takeBtn = allowed ? h('button', { type: 'button', class: 'btn btn-danger', id: 'takedown-selected', disabled: true, onClick: () => takeDown() }, 'Take down…') : null;
  const count = h('span', { class: 'muted small', id: 'rows-count' });
  const result = h('div', { id: 'takedown-result' });
  const more = h('div', { class: 'more' });

  const table = rowTable({
    select: allowed && v.number === d.latest_version
      ? (r) => {
          const box = h('input', { type: 'checkbox', class: 'select-row', attrs: { 'aria-label': `Select row ${r.id}` } });
          box.addEventListener('change', () => {
            if (box.checked) selected.add(r.id);
            else selected.delete(r.id);
            takeBtn.disabled = selected.size === 0;
            takeBtn.textContent = selected.size ? `Take down ${selected.size}…` : 'Take down…';
          });
          return box;
        }
      : null,
  });

  ctx.mount(
    header,
    result,
    card(
      null,
      h(
        'div',
        { class: 'toolbar' },
        h('label', { class: 'inline-label' }, 'Version ', picker),
        h('span', { class: 'version-meta muted small' }, `created `, dateEl(v.created_at), ' by ', addrEl(v.created_by, signer.address()), ' · root ', hashEl(v.root), v.reason ? h('span', { class: 'reason', title: 'the reviewer’s reason' }, ` · “${v.reason}”`) : null),
        h('span', { class: 'tabs-spacer' }),
        v.parent ? h('a', { class: 'btn btn-small btn-ghost', href: `${base}/diff?from=${v.parent}&to=${v.number}` }, `Diff v${v.parent} → v${v.number}`) : null,
        takeBtn && v.number === d.latest_version ? takeBtn : null,
      ),
      allowed && v.number !== d.latest_version ? h('p', { class: 'muted small' }, 'Rows are taken down from the latest version; pick it to take rows down.') : null,
      table.el,
      h('div', { class: 'table-foot' }, count, more),
    ),
  );

  let shown = 0;
  async function load(cursor) {
    mount(more, loading('Loading rows…'));
    try {
      const page = await api.rows(slug, { version: v.number, cursor, limit: PAGE });
      table.add(page.items);
      shown += page.items.length;
      count.textContent = `Showing ${fmtNum(shown)} of ${fmtNum(v.row_count)} rows`;
      mount(more, page.next_cursor ? h('button', { type: 'button', class: 'btn', id: 'rows-more', onClick: () => load(page.next_cursor) }, 'Load more') : null);
      if (!shown) mount(more, empty('This version has no rows', 'Every row was taken down.'));
    } catch (e) {
      mount(more, errorBox(e, { title: 'Could not load the rows', retry: () => load(cursor) }));
    }
  }

  async function takeDown() {
    const ids = [...selected].sort((a, b) => a - b);
    const answer = await modal({
      title: `Take down ${ids.length} row${ids.length === 1 ? '' : 's'}`,
      text: 'A new version is made without these rows. Earlier versions keep them. You sign this decision.',
      fields: [{ name: 'reason', label: 'Reason', type: 'textarea', required: true, placeholder: 'e.g. personal data, copyright claim' }],
      confirmLabel: 'Sign & take down',
      danger: true,
    });
    if (!answer) return;
    takeBtn.disabled = true;
    mount(result, loading('Taking rows down…'));
    try {
      const td = eip712.takeDown(await domain(), { datanet: d.slug, rows: ids, reason: answer.reason });
      const auth = await signer.authFor(td);
      const nv = await api.takeDown(d.slug, { rows: ids, reason: answer.reason, auth });
      toast(`Version ${nv.number}: ${nv.rows_removed} row${nv.rows_removed === 1 ? '' : 's'} taken down`, 'ok', 5000);
      ctx.navigate(`${base}/rows?version=${nv.number}`);
    } catch (e) {
      mount(result, errorBox(e, { title: 'The rows were not taken down' }));
      takeBtn.disabled = false;
    }
  }

  await load(undefined);
}
