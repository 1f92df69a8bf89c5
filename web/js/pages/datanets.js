// #/datanets — every datanet on the node, filterable by tag, paged.

import * as api from '../api.js';
import * as signer from '../signer.js';
import { h, mount, pageHeader, errorBox, loading, empty, tagChips, addrEl, badge, fmtNum, dateEl } from '../ui.js';

const PAGE = 50;

export async function render(ctx) {
  const tag = (ctx.query.get('tag') || '').trim().toLowerCase();
  const owner = (ctx.query.get('owner') || '').trim().toLowerCase();
  const me = signer.address();
  const hashFor = (t, o) => {
    const q = new URLSearchParams();
    if (t) q.set('tag', t);
    if (o) q.set('owner', o);
    const s = q.toString();
    return s ? `#/datanets?${s}` : '#/datanets';
  };
  const filterTo = (t) => ctx.navigate(hashFor(t, owner));

  const input = h('input', { type: 'search', name: 'tag', placeholder: 'Filter by tag…', value: tag, list: 'known-tags', attrs: { 'aria-label': 'Tag' } });
  const known = h('datalist', { id: 'known-tags' });
  const filter = h(
    'form',
    { class: 'toolbar', onSubmit: (e) => (e.preventDefault(), filterTo(input.value.trim().toLowerCase())) },
    input,
    known,
    h('button', { class: 'btn', type: 'submit' }, 'Filter'),
    tag ? h('button', { class: 'btn btn-ghost', type: 'button', onClick: () => filterTo('') }, 'Clear') : null,
    tag ? h('span', { class: 'muted' }, 'Showing datanets tagged ', h('span', { class: 'tag' }, tag)) : null,
    h('span', { class: 'tabs-spacer' }),
    me || owner
      ? h(
          'div',
          { class: 'segmented' },
          h('a', { href: hashFor(tag, ''), class: ['seg', !owner && 'active'] }, 'All'),
          h('a', { href: hashFor(tag, owner && owner !== me ? owner : me), class: ['seg', owner && 'active'], id: 'owner-filter' }, owner && owner !== me ? `Owned by ${owner.slice(0, 6)}…` : 'Mine'),
        )
      : null,
  );
  const list = h('div', { class: 'datanet-grid', id: 'datanet-list' });
  const more = h('div', { class: 'more' });

  ctx.mount(
    pageHeader({
      title: 'Datanets',
      subtitle: 'Versioned community datasets hosted on this node. Contributors upload files; owners and reviewers accept them into new versions.',
      actions: h('a', { class: 'btn btn-primary', href: '#/datanets/new' }, '+ New datanet'),
    }),
    filter,
    list,
    more,
  );

  const tags = new Set();
  let count = 0;

  async function load(cursor) {
    mount(more, loading());
    let page;
    try {
      page = await api.datanets({ tag, owner, cursor, limit: PAGE });
    } catch (e) {
      mount(more, errorBox(e, { title: 'Could not load the datanets', retry: () => load(cursor) }));
      return;
    }
    for (const d of page.items) {
      list.appendChild(datanetCard(d, filterTo));
      (d.tags || []).forEach((t) => tags.add(t));
    }
    count += page.items.length;
    mount(known, [...tags].sort().map((t) => h('option', { value: t })));
    if (!count) {
      mount(
        more,
        owner && !tag
          ? empty(owner === me ? 'You own no datanet yet' : 'This address owns no datanet', null, h('a', { class: 'btn btn-primary', href: '#/datanets/new' }, 'Create a datanet'))
          : tag
          ? empty(`No datanet is tagged “${tag}”`, 'Try another tag, or clear the filter.', h('button', { class: 'btn', type: 'button', onClick: () => filterTo('') }, 'Clear filter'))
          : empty('No datanets yet', 'Create the first one: give it a name, a description and tags, then invite contributions.', h('a', { class: 'btn btn-primary', href: '#/datanets/new' }, 'Create a datanet')),
      );
    } else if (page.next_cursor) {
      mount(more, h('button', { class: 'btn', type: 'button', onClick: () => load(page.next_cursor) }, 'Load more'));
    } else {
      mount(more, h('p', { class: 'muted small center' }, `${count} datanet${count === 1 ? '' : 's'}`));
    }
  }
  await load(undefined);
}

function datanetCard(d, filterTo) {
  const href = `#/datanets/${encodeURIComponent(d.slug)}`;
  return h(
    'article',
    { class: 'datanet-card', dataset: { slug: d.slug } },
    h(
      'div',
      { class: 'dc-head' },
      h('a', { class: 'dc-name', href }, d.name),
      h('span', { class: 'dc-badges' }, d.visibility === 'private' ? badge('private', 'warn') : null, badge(d.kind)),
    ),
    h('code', { class: 'dc-slug' }, d.slug),
    h('p', { class: 'dc-summary' }, d.summary || h('span', { class: 'muted' }, 'No summary.')),
    tagChips(d.tags, filterTo),
    h(
      'dl',
      { class: 'dc-stats' },
      stat('version', d.latest_version ? `v${d.latest_version}` : '—'),
      stat('rows', fmtNum(d.row_count)),
      stat('pending', d.pending_count ? h('a', { href: `${href}/review`, class: 'pending-link' }, fmtNum(d.pending_count)) : '0'),
    ),
    h('div', { class: 'dc-foot' }, h('span', { class: 'muted small' }, 'owner '), addrEl(d.owner, signer.address()), h('span', { class: 'muted small dc-updated' }, 'updated ', dateEl(d.updated_at))),
  );
}

function stat(label, value) {
  return h('div', {}, h('dt', {}, label), h('dd', {}, value));
}
