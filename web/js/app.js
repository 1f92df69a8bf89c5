// The console shell: left navigation, top bar with the node's status and the signer, and a
// hash router that renders one page module into <main>.

import * as signer from './signer.js';
import { nodeInfo } from './context.js';
import { h, mount, badge, shortAddr, errorBox, pageHeader, empty, toast, loading } from './ui.js';

import * as datanetsPage from './pages/datanets.js';
import * as newPage from './pages/new.js';
import * as detailPage from './pages/detail.js';
import * as contributePage from './pages/contribute.js';
import * as reviewPage from './pages/review.js';
import * as rowsPage from './pages/rows.js';
import * as diffPage from './pages/diff.js';
import * as loginPage from './pages/login.js';
import * as searchPage from './pages/search.js';
import * as sqlPage from './pages/sql.js';
import * as modelsPage from './pages/models.js';
import * as playgroundPage from './pages/playground.js';
import * as ledgerPage from './pages/ledger.js';

const ICONS = {
  search: '<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="10.5" cy="10.5" r="6.5"/><path d="M15.5 15.5L21 21"/></svg>',
  datanets:
    '<svg viewBox="0 0 24 24" aria-hidden="true"><ellipse cx="12" cy="5.5" rx="7.5" ry="2.8"/><path d="M4.5 5.5v6.5c0 1.5 3.4 2.8 7.5 2.8s7.5-1.3 7.5-2.8V5.5"/><path d="M4.5 12v6.5c0 1.5 3.4 2.8 7.5 2.8s7.5-1.3 7.5-2.8V12"/></svg>',
  sql: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 5h16M4 10h16M4 15h9M4 20h6"/><path d="M16 17l2 2 4-4"/></svg>',
  models:
    '<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="6" y="6" width="12" height="12" rx="2"/><path d="M9.5 9.5h5v5h-5z"/><path d="M9 3v3M15 3v3M9 18v3M15 18v3M3 9h3M3 15h3M18 9h3M18 15h3"/></svg>',
  ledger: '<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="3" y="4" width="7" height="7" rx="1.5"/><rect x="14" y="4" width="7" height="7" rx="1.5"/><rect x="8.5" y="14" width="7" height="7" rx="1.5"/><path d="M10 7.5h4M6.5 11v3.5h2M17.5 11v3.5h-2"/></svg>',
  playground: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 5.5A1.5 1.5 0 0 1 5.5 4h13A1.5 1.5 0 0 1 20 5.5v9a1.5 1.5 0 0 1-1.5 1.5H10l-4.5 4v-4h0A1.5 1.5 0 0 1 4 14.5z"/><path d="M8 8.5h8M8 12h5"/></svg>',
};

// The left navigation, one line per section. Later sections (Search, SQL, Models, Playground,
// Ledger) are one line each here, plus their pages in ROUTES below.
const NAV = [
  { id: 'datanets', label: 'Datanets', href: '#/datanets', icon: ICONS.datanets },
  { id: 'search', label: 'Search', href: '#/search', icon: ICONS.search },
  { id: 'sql', label: 'SQL', href: '#/sql', icon: ICONS.sql },
  { id: 'models', label: 'Models', href: '#/models', icon: ICONS.models },
  { id: 'playground', label: 'Playground', href: '#/playground', icon: ICONS.playground },
  { id: 'ledger', label: 'Ledger', href: '#/ledger', icon: ICONS.ledger },
];

// Hash routes: a path pattern, its page module (`render(ctx)`), and its nav section.
const ROUTES = [
  { re: /^\/datanets\/?$/, page: datanetsPage, nav: 'datanets' },
  { re: /^\/datanets\/new\/?$/, page: newPage, nav: 'datanets' },
  { re: /^\/datanets\/([^/]+)\/?$/, keys: ['slug'], page: detailPage, nav: 'datanets' },
  { re: /^\/datanets\/([^/]+)\/contribute\/?$/, keys: ['slug'], page: contributePage, nav: 'datanets' },
  { re: /^\/datanets\/([^/]+)\/review\/?$/, keys: ['slug'], page: reviewPage, nav: 'datanets' },
  { re: /^\/datanets\/([^/]+)\/rows\/?$/, keys: ['slug'], page: rowsPage, nav: 'datanets' },
  { re: /^\/datanets\/([^/]+)\/diff\/?$/, keys: ['slug'], page: diffPage, nav: 'datanets' },
  { re: /^\/sql\/?$/, page: sqlPage, nav: 'sql' },
  { re: /^\/search\/?$/, page: searchPage, nav: 'search' },
  { re: /^\/models\/?$/, page: modelsPage, nav: 'models' },
  { re: /^\/playground\/?$/, page: playgroundPage, nav: 'playground' },
  { re: /^\/ledger\/?$/, page: ledgerPage, nav: 'ledger' },
  { re: /^\/ledger\/(blocks|tx|account)\/([^/]+)\/?$/, keys: ['kind', 'id'], page: ledgerPage, nav: 'ledger' },
  { re: /^\/login\/?$/, page: loginPage, nav: null },
];

const DEFAULT_ROUTE = '#/datanets';

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  return { path: path.startsWith('/') ? path : `/${path}`, query };
}

/** Go to a hash route (`#/…`). */
export function navigate(hash, { replace = false } = {}) {
  const target = hash.startsWith('#') ? hash : `#${hash}`;
  if (location.hash === target) {
    route();
  } else if (replace) {
    history.replaceState(null, '', target);
    route();
  } else {
    location.hash = target;
  }
}

// --- shell ---

function renderNav(active) {
  const nav = document.getElementById('nav');
  mount(
    nav,
    h(
      'ul',
      {},
      NAV.map((item) => {
        const a = h('a', { href: item.href, class: ['nav-item', item.id === active && 'active'] }, h('span', { class: 'nav-icon' }), h('span', {}, item.label));
        a.firstChild.innerHTML = item.icon || ''; // constant SVG from ICONS above
        if (item.id === active) a.setAttribute('aria-current', 'page');
        return h('li', {}, a);
      }),
    ),
  );
}

let nodeState = { info: null, error: null };

function renderTopbar() {
  const bar = document.getElementById('topbar');
  const { info, error } = nodeState;
  const status = info
    ? h(
        'div',
        { class: 'node-status', title: `${info.name} ${info.version}\npeer ${info.peer_id}\nchain ${info.chain_id}\ndata ${info.data_dir}\nlistening ${info.http}` },
        h('span', { class: 'dot dot-ok' }),
        h('span', { class: 'node-name' }, `${info.name || 'commons'} `, h('span', { class: 'muted' }, `v${info.version}`)),
        h('span', { class: 'sep' }),
        h('span', { class: 'muted' }, 'peer '),
        h('code', { class: 'peer', id: 'peer-id' }, shortPeer(info.peer_id)),
        h('span', { class: 'sep' }),
        h('span', { class: 'muted' }, `chain ${info.chain_id}`),
        info.dev ? badge('dev mode', 'dev') : null,
      )
    : error
      ? h('div', { class: 'node-status' }, h('span', { class: 'dot dot-bad' }), h('span', {}, 'Node unreachable'), h('span', { class: 'muted small' }, error.message))
      : h('div', { class: 'node-status' }, h('span', { class: 'dot' }), h('span', { class: 'muted' }, 'Connecting…'));

  const who = signer.current();
  const account = who
    ? h(
        'div',
        { class: 'account' },
        h(
          'div',
          { class: 'account-id', id: 'signed-in', title: `${who.address}\n${who.kind === 'custodial' ? 'custodial console account: the node holds its key' : 'browser wallet'}` },
          h('span', { class: 'avatar', style: { background: colorFor(who.address) } }),
          h('span', { class: 'account-name' }, who.username || shortAddr(who.address)),
          who.username ? h('code', { class: 'muted small' }, shortAddr(who.address)) : null,
          badge(who.kind === 'custodial' ? 'custodial' : 'wallet', who.kind === 'custodial' ? 'warn' : 'ok'),
        ),
        h('button', { class: 'btn btn-small btn-ghost', type: 'button', onClick: () => signer.signOut().then(() => toast('Signed out')) }, 'Sign out'),
      )
    : h('div', { class: 'account' }, h('a', { class: 'btn btn-small btn-primary', href: '#/login', id: 'sign-in-link' }, 'Sign in'));
  mount(bar, status, account);
}

function shortPeer(p) {
  if (!p) return '—';
  return p.length > 16 ? `${p.slice(0, 8)}…${p.slice(-6)}` : p;
}

function colorFor(addr) {
  let n = 0;
  for (const c of String(addr)) n = (n * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${n % 360} 55% 52%)`;
}

async function refreshNode() {
  try {
    nodeState = { info: await nodeInfo(true), error: null };
  } catch (e) {
    nodeState = { info: null, error: e };
  }
  renderTopbar();
}

// --- router ---

let seq = 0;

async function route() {
  const my = ++seq;
  const { path, query } = parseHash();
  if (path === '/' || path === '') {
    history.replaceState(null, '', DEFAULT_ROUTE);
    return route();
  }
  const root = document.getElementById('page');
  let match = null;
  let params = {};
  for (const r of ROUTES) {
    const m = path.match(r.re);
    if (m) {
      match = r;
      params = Object.fromEntries((r.keys || []).map((k, i) => [k, decodeURIComponent(m[i + 1])]));
      break;
    }
  }
  renderNav(match ? match.nav : null);
  if (!match) {
    mount(root, pageHeader({ title: 'Page not found' }), empty('Nothing here', `There is no console page at ${path}.`, h('a', { class: 'btn', href: DEFAULT_ROUTE }, 'Go to datanets')));
    return;
  }
  const alive = () => my === seq;
  const ctx = {
    root,
    params,
    query,
    path,
    alive,
    navigate,
    reload: () => alive() && route(),
    /** Replace the page content, unless the person has moved on to another page. */
    mount: (...children) => {
      if (alive()) mount(root, ...children);
    },
  };
  mount(root, loading());
  root.scrollTop = 0;
  window.scrollTo(0, 0);
  try {
    await match.page.render(ctx);
  } catch (e) {
    console.warn('page failed', e);
    if (!alive()) return;
    const missing = e && e.code === 'not_found';
    mount(
      root,
      pageHeader({ title: missing ? 'Not found' : 'This page could not be shown', crumbs: match.nav === 'datanets' ? [{ label: 'Datanets', href: '#/datanets' }] : null }),
      errorBox(e, { retry: missing ? null : () => route(), title: missing ? 'The node has no such thing' : undefined }),
      missing ? h('a', { class: 'btn', href: DEFAULT_ROUTE }, 'Go to datanets') : null,
    );
  }
}

// --- start ---

window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (e) => {
  toast(`Unexpected error: ${e.reason && e.reason.message ? e.reason.message : e.reason}`, 'error', 6000);
});

let lastSigner = JSON.stringify(signer.current());
signer.onChange((s) => {
  renderTopbar();
  const now = JSON.stringify(s);
  // pages show owner/reviewer actions from the signer: re-render when it changes
  if (now !== lastSigner) {
    lastSigner = now;
    if (!location.hash.startsWith('#/login')) route();
  }
});

renderTopbar();
refreshNode();
setInterval(refreshNode, 30000);
signer.restore().finally(() => {
  lastSigner = JSON.stringify(signer.current());
  renderTopbar();
});
route();
