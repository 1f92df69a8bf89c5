// #/search?q=…&datanet=…&version=…&contributor=…&tag=…&pending=1 — full-text search over rows.
// The query lives in the hash, so a search can be bookmarked and the back button works. Hits show
// the node's snippet with <mark> highlights, built as DOM nodes (never parsed as HTML).

import * as api from '../api.js';
import { h, mount, card, errorBox, loading, empty, addrEl, fmtNum, pageHeader, badge } from '../ui.js';
import * as signer from '../signer.js';

const PAGE = 20;

const HELP = [
  ['blood pressure', 'rows with both words'],
  ['"blood pressure"', 'the exact phrase'],
  ['fever OR cough', 'either word'],
  ['fever -child', 'without a word (also NOT)'],
  ['pressur*', 'words starting with…'],
  ['tag:health datanet:med-qa contributor:0x…', 'field filters'],
];

const ENTITIES = { '&lt;': '<', '&gt;': '>', '&amp;': '&', '&quot;': '"', '&#39;': "'" };

/** The snippet's escaped text with <mark> around matches, as DOM nodes. */
export function snippetNodes(snippet) {
  const out = [];
  let marked = false;
  for (const part of String(snippet).split(/(<mark>|<\/mark>)/)) {
    if (part === '<mark>') marked = true;
    else if (part === '</mark>') marked = false;
    else if (part) {
      const text = part.replace(/&(lt|gt|amp|quot|#39);/g, (m) => ENTITIES[m]);
      out.push(marked ? h('mark', {}, text) : document.createTextNode(text));
    }
  }
  return out;
}

function versionRange(hit) {
  if (hit.pending) return badge('pending', 'warn');
  const to = hit.removed_in ? `v${hit.removed_in - 1}` : 'latest';
  const range = hit.added_in === (hit.removed_in || 0) - 1 ? `v${hit.added_in}` : `v${hit.added_in}–${to}`;
  return h('span', { class: 'muted small', title: hit.removed_in ? `taken down in v${hit.removed_in}` : 'in the latest version' }, range);
}

export async function render(ctx) {
  const q = ctx.query.get('q') || '';
  const params = {
    datanet: ctx.query.get('datanet') || '',
    version: ctx.query.get('version') || '',
    contributor: ctx.query.get('contributor') || '',
    tag: ctx.query.get('tag') || '',
    pending: ctx.query.get('pending') === '1',
  };
  let datanets = [];
  try {
    datanets = (await api.datanets({ limit: 1000 })).items;
  } catch {
    // The filter list is a convenience; searching works without it.
  }

  const input = h('input', { type: 'search', id: 'search-q', name: 'q', value: q, placeholder: 'Search rows — words, "phrases", OR, NOT, prefix*', attrs: { 'aria-label': 'Search query', autocomplete: 'off' } });
  const dn = h(
    'select',
    { id: 'search-datanet', name: 'datanet', attrs: { 'aria-label': 'Datanet' } },
    h('option', { value: '' }, 'All datanets'),
    datanets.map((d) => h('option', { value: d.slug, selected: d.slug === params.datanet }, d.name ? `${d.name} (${d.slug})` : d.slug)),
  );
  const version = h('input', { type: 'number', min: '1', id: 'search-version', name: 'version', value: params.version, placeholder: 'latest', attrs: { 'aria-label': 'Version' } });
  const contributor = h('input', { type: 'text', id: 'search-contributor', name: 'contributor', value: params.contributor, placeholder: '0x…', attrs: { 'aria-label': 'Contributor address' } });
  const tag = h('input', { type: 'text', id: 'search-tag', name: 'tag', value: params.tag, placeholder: 'any', attrs: { 'aria-label': 'Tag' } });
  const canPending = Boolean(api.sessionToken());
  const pending = canPending ? h('input', { type: 'checkbox', id: 'search-pending', name: 'pending', checked: params.pending }) : null;
  const syncVersion = () => {
    version.disabled = !dn.value;
    if (!dn.value) version.value = '';
  };
  dn.addEventListener('change', syncVersion);
  syncVersion();

  const form = h(
    'form',
    {
      class: 'search-form',
      id: 'search-form',
      onSubmit: (e) => {
        e.preventDefault();
        const p = new URLSearchParams();
        if (input.value.trim()) p.set('q', input.value.trim());
        if (dn.value) p.set('datanet', dn.value);
        if (dn.value && version.value) p.set('version', version.value);
        if (contributor.value.trim()) p.set('contributor', contributor.value.trim());
        if (tag.value.trim()) p.set('tag', tag.value.trim());
        if (pending && pending.checked) p.set('pending', '1');
        ctx.navigate(`#/search?${p}`);
      },
    },
    h('div', { class: 'toolbar' }, input, h('button', { type: 'submit', class: 'btn btn-primary', id: 'search-go' }, 'Search')),
    h(
      'div',
      { class: 'toolbar filters' },
      h('label', { class: 'inline-label' }, 'Datanet ', dn),
      h('label', { class: 'inline-label' }, 'Version ', version),
      h('label', { class: 'inline-label' }, 'Contributor ', contributor),
      h('label', { class: 'inline-label' }, 'Tag ', tag),
      pending ? h('label', { class: 'inline-label', title: 'pending rows of the datanets you may review' }, pending, ' include pending') : null,
    ),
  );

  const results = h('div', { id: 'search-results' });
  ctx.mount(
    pageHeader({ title: 'Search', subtitle: 'Full-text search over the rows of every datanet, ranked by BM25.' }),
    card(null, form),
    results,
  );
  input.focus();

  if (!q) {
    mount(
      results,
      card(
        'Query syntax',
        h('table', { class: 'table search-help' }, h('tbody', {}, HELP.map(([ex, what]) => h('tr', {}, h('td', {}, h('code', {}, ex)), h('td', { class: 'muted' }, what))))),
        signer.address() ? null : h('p', { class: 'muted small' }, 'Sign in with a console account to include pending rows of datanets you review.'),
      ),
    );
    return;
  }

  const list = h('ol', { class: 'search-hits', id: 'search-hits' });
  const count = h('p', { class: 'muted small', id: 'search-count' });
  const more = h('div', { class: 'more' });
  mount(results, card(null, count, list, more));

  let shown = 0;
  async function load(cursor) {
    mount(more, loading('Searching…'));
    try {
      const page = await api.request('GET', '/search', {
        query: {
          q,
          datanet: params.datanet || undefined,
          version: params.datanet && params.version ? params.version : undefined,
          contributor: params.contributor || undefined,
          tag: params.tag || undefined,
          include_pending: params.pending && canPending ? 'true' : undefined,
          limit: PAGE,
          cursor,
        },
      });
      if (!ctx.alive()) return;
      for (const hit of page.items) list.appendChild(hitEl(hit));
      shown += page.items.length;
      count.textContent = `${fmtNum(page.total)} matching row${page.total === 1 ? '' : 's'}${shown ? ` · showing ${fmtNum(shown)}` : ''}`;
      mount(more, page.next_cursor ? h('button', { type: 'button', class: 'btn', id: 'search-more', onClick: () => load(page.next_cursor) }, 'More results') : null);
      if (!shown) mount(more, empty('No rows match', 'Try fewer words, a prefix like pressur*, or OR between words.'));
    } catch (e) {
      if (!ctx.alive()) return;
      mount(more, errorBox(e, { title: e && e.code === 'invalid_query' ? 'The query is not valid' : 'The search failed', retry: e && e.code === 'invalid_query' ? null : () => load(cursor) }));
    }
  }

  function hitEl(hit) {
    // The rows page of the newest version that holds the row (pending rows: the latest).
    const rowsHref = `#/datanets/${encodeURIComponent(hit.datanet)}/rows${hit.removed_in ? `?version=${hit.removed_in - 1}` : ''}`;
    const full = h('div', { class: 'row-text', hidden: true });
    const toggle = h(
      'button',
      {
        type: 'button',
        class: 'btn btn-small btn-ghost',
        onClick: async () => {
          if (!full.hidden) {
            full.hidden = true;
            toggle.textContent = 'Full row';
            return;
          }
          full.hidden = false;
          toggle.textContent = 'Hide';
          if (full.childNodes.length) return;
          mount(full, loading());
          try {
            const r = await api.row(hit.row);
            mount(full, r.row.text);
          } catch (e) {
            mount(full, errorBox(e, { plain: true }));
          }
        },
      },
      'Full row',
    );
    return h(
      'li',
      { class: 'search-hit', dataset: { row: String(hit.row) } },
      h(
        'div',
        { class: 'search-hit-head' },
        h('a', { href: rowsHref, class: 'search-hit-row', title: 'the rows of this version' }, `row ${hit.row}`),
        ' · ',
        h('a', { href: `#/datanets/${encodeURIComponent(hit.datanet)}` }, hit.datanet),
        ' · ',
        versionRange(hit),
        ' · ',
        addrEl(hit.contributor, signer.address()),
        h('span', { class: 'muted small search-score', title: 'BM25 score' }, ` score ${hit.score.toFixed(2)}`),
        toggle,
      ),
      h('p', { class: 'search-snippet' }, snippetNodes(hit.snippet)),
      full,
    );
  }

  await load(undefined);
}
