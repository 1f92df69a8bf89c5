// #/datanets/SLUG/diff?from=A&to=B — the rows added and removed between two versions.

import * as api from '../api.js';
import { h, mount, card, errorBox, loading, empty, fmtNum } from '../ui.js';
import { datanetHeader, rowTable } from './common.js';

const PAGE = 100;

export async function render(ctx) {
  const slug = ctx.params.slug;
  const [d, versions] = await Promise.all([api.datanet(slug), api.versions(slug)]);
  const base = `#/datanets/${encodeURIComponent(d.slug)}`;
  const header = datanetHeader(d, 'diff', { title: `Diff · ${d.name}`, subtitle: 'What changed between two versions: rows added and rows taken down.' });
  const numbers = versions.items.map((v) => v.number).sort((a, b) => a - b);

  if (numbers.length < 2) {
    ctx.mount(
      header,
      card(
        null,
        empty(
          numbers.length ? 'Only one version so far' : 'No versions yet',
          numbers.length
            ? `A diff compares two versions. Version ${numbers[0]} is the first one (there is no version 0): browse its rows instead, and come back once another contribution is accepted.`
            : 'A diff compares two versions; versions appear once contributions are accepted.',
          numbers.length ? h('a', { class: 'btn btn-small', href: `${base}/rows?version=${numbers[0]}` }, `Rows of v${numbers[0]}`) : null,
          h('a', { class: 'btn btn-small', href: `${base}/contribute` }, 'Contribute'),
        ),
      ),
    );
    return;
  }

  const latest = numbers[numbers.length - 1];
  const to = numbers.includes(Number(ctx.query.get('to'))) ? Number(ctx.query.get('to')) : latest;
  const fromQ = Number(ctx.query.get('from'));
  const from = numbers.includes(fromQ) ? fromQ : numbers.filter((n) => n < to).pop() ?? numbers[0];

  const select = (id, value) =>
    h('select', { id, name: id }, numbers.map((n) => h('option', { value: String(n), selected: n === value }, `v${n}`)));
  const fromSel = select('diff-from', from);
  const toSel = select('diff-to', to);
  const form = h(
    'form',
    { class: 'toolbar', onSubmit: (e) => (e.preventDefault(), ctx.navigate(`${base}/diff?from=${fromSel.value}&to=${toSel.value}`)) },
    h('label', { class: 'inline-label' }, 'From ', fromSel),
    h('span', { class: 'arrow' }, '→'),
    h('label', { class: 'inline-label' }, 'To ', toSel),
    h('button', { class: 'btn', type: 'submit' }, 'Compare'),
  );

  const summary = h('div', { class: 'diff-summary', id: 'diff-summary' }, loading('Comparing…'));
  const added = rowTable({ cls: () => 'row-added' });
  const removed = rowTable({ cls: () => 'row-removed' });
  const addedCard = h('section', { class: 'card', id: 'diff-added' }, h('h2', { class: 'card-title plus' }, 'Added'), added.el);
  const removedCard = h('section', { class: 'card', id: 'diff-removed' }, h('h2', { class: 'card-title minus' }, 'Removed'), removed.el);
  const more = h('div', { class: 'more' });

  ctx.mount(header, card(null, form, summary), addedCard, removedCard, more);

  let nAdded = 0;
  let nRemoved = 0;
  async function load(cursor) {
    mount(more, loading());
    try {
      const r = await api.diff(slug, { from, to, cursor, limit: PAGE });
      added.add(r.added);
      removed.add(r.removed);
      nAdded += r.added.length;
      nRemoved += r.removed.length;
      mount(
        summary,
        h('span', { class: 'diff-count plus', id: 'added-count' }, `+${fmtNum(r.added_count)} added`),
        h('span', { class: 'diff-count minus', id: 'removed-count' }, `−${fmtNum(r.removed_count)} removed`),
        h('span', { class: 'muted small' }, `from v${r.from} to v${r.to}`),
      );
      addedCard.hidden = r.added_count === 0;
      removedCard.hidden = r.removed_count === 0;
      if (!r.added_count && !r.removed_count) mount(more, empty('No differences', `v${from} and v${to} hold the same rows.`));
      else mount(more, r.next_cursor ? h('button', { type: 'button', class: 'btn', onClick: () => load(r.next_cursor) }, `Load more (${fmtNum(nAdded + nRemoved)} of ${fmtNum(r.added_count + r.removed_count)} shown)`) : null);
    } catch (e) {
      mount(summary, errorBox(e, { title: 'Could not compute the diff', retry: () => load(cursor) }));
      mount(more);
    }
  }
  await load(undefined);
}
