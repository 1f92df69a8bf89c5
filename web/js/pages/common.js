// Pieces the datanet pages share: the header with the datanet's tabs, row tables, and the
// lazy lookup of contribution file names.

import * as api from '../api.js';
import * as signer from '../signer.js';
import { h, pageHeader, badge, fmtNum, addrEl } from '../ui.js';

/** The datanet's header: crumbs, name, summary, and tabs for its pages. */
export function datanetHeader(d, active, { title, subtitle, actions } = {}) {
  const base = `#/datanets/${encodeURIComponent(d.slug)}`;
  const tabs = [
    { id: 'overview', label: 'Overview', href: base },
    { id: 'contribute', label: 'Contribute', href: `${base}/contribute` },
    { id: 'review', label: 'Review', href: `${base}/review`, count: d.pending_count },
    { id: 'rows', label: 'Rows', href: `${base}/rows` },
    { id: 'diff', label: 'Diff', href: `${base}/diff` },
  ];
  return h(
    'div',
    { class: 'datanet-header' },
    pageHeader({
      title: title || d.name,
      subtitle: subtitle ?? d.summary,
      crumbs: [{ label: 'Datanets', href: '#/datanets' }, { label: d.slug, href: base }, ...(active !== 'overview' ? [{ label: tabs.find((t) => t.id === active)?.label || active }] : [])],
      actions,
    }),
    h(
      'nav',
      { class: 'tabs', attrs: { 'aria-label': 'Datanet pages' } },
      tabs.map((t) =>
        h(
          'a',
          { href: t.href, class: ['tab', t.id === active && 'active'], attrs: t.id === active ? { 'aria-current': 'page' } : {} },
          t.label,
          t.count ? h('span', { class: 'count' }, fmtNum(t.count)) : null,
        ),
      ),
      h('span', { class: 'tabs-spacer' }),
      d.visibility === 'private' ? badge('private', 'warn') : null,
      badge(d.kind),
      d.latest_version ? badge(`v${d.latest_version}`, 'info') : badge('no versions yet'),
    ),
  );
}

const contributionCache = new Map();

/** A contribution by id, fetched once per page load. */
export function contributionOf(id) {
  if (!contributionCache.has(id)) {
    const p = api.contribution(id).catch((e) => {
      contributionCache.delete(id);
      throw e;
    });
    contributionCache.set(id, p);
  }
  return contributionCache.get(id);
}

/** A link-ish element naming contribution `id` ("#5 · a.txt"), the name filled in lazily. */
export function contributionRef(id) {
  const name = h('span', { class: 'muted' });
  const el = h('span', { class: 'contrib-ref', title: `contribution ${id}` }, h('span', {}, `#${id}`), ' ', name);
  contributionOf(id).then(
    (c) => {
      name.textContent = c.file_name;
      el.title = `contribution ${id}: ${c.file_name}`;
    },
    () => {},
  );
  return el;
}

/** A row's text, clamped; click to expand. */
export function rowText(text) {
  const el = h('div', { class: 'row-text clamp', title: 'Click to expand' }, text);
  el.addEventListener('click', () => el.classList.toggle('clamp'));
  return el;
}

/**
 * A table of rows. `opts.select(row)` adds a checkbox column; `opts.cls(row)` a row class.
 * Answers `{el, add(rows)}`.
 */
export function rowTable({ select, cls, showAdded = true } = {}) {
  const me = signer.address();
  const body = h('tbody');
  const el = h(
    'table',
    { class: 'table rows-table' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        select ? h('th', { class: 'col-check' }) : null,
        h('th', { class: 'col-id' }, 'Row'),
        h('th', {}, 'Text'),
        h('th', {}, 'Contributor'),
        h('th', {}, 'Contribution'),
        showAdded ? h('th', { class: 'col-num' }, 'Added in') : null,
      ),
    ),
    body,
  );
  return {
    el,
    body,
    add(rows) {
      for (const r of rows) {
        body.appendChild(
          h(
            'tr',
            { class: ['row', cls && cls(r)], dataset: { rowId: String(r.id) } },
            select ? h('td', { class: 'col-check' }, select(r)) : null,
            h('td', { class: 'col-id' }, h('code', {}, String(r.id))),
            h('td', { class: 'col-text' }, rowText(r.text)),
            h('td', {}, addrEl(r.contributor, me)),
            h('td', {}, contributionRef(r.contribution)),
            showAdded ? h('td', { class: 'col-num' }, r.added_in ? `v${r.added_in}` : '—') : null,
          ),
        );
      }
    },
  };
}
