// #/ledger — the chain this node runs: the head and its figures (refreshed every few seconds),
// recent blocks and transactions, an account lookup, and the system contracts with their
// recent events. #/ledger/blocks/N, #/ledger/tx/HASH and #/ledger/account/ADDR show one
// block, transaction or account; every hash and address on these pages links to its own.

import * as api from '../api.js';
import * as signer from '../signer.js';
import { h, mount, pageHeader, card, errorBox, loading, empty, badge, fmtNum, fmtAgo, fmtDate, shortHash, shortAddr, addrEl } from '../ui.js';

const REFRESH_MS = 3000;

const link = {
  block: (n) => h('a', { href: `#/ledger/blocks/${n}`, class: 'block-link' }, `#${fmtNum(n)}`),
  tx: (x) => h('a', { href: `#/ledger/tx/${x}`, class: 'tx-link', title: x }, h('code', {}, shortHash(x))),
  account: (a, name) => (a ? h('a', { href: `#/ledger/account/${a}`, class: 'account-link', title: a }, name ? h('span', { class: 'strong' }, name) : h('code', {}, shortAddr(a))) : h('span', { class: 'muted' }, '—')),
};

/** Seconds since the epoch → "3 min ago" with the date as tooltip. */
function when(secs) {
  if (secs === null || secs === undefined) return h('span', { class: 'muted' }, '—');
  const ms = Number(secs) * 1000;
  return h('time', { title: fmtDate(ms) }, fmtAgo(ms));
}

function kv(k, v) {
  return [h('dt', {}, k), h('dd', {}, v)];
}

function figure(id, label) {
  const value = h('div', { class: 'big-stat-value', id }, '—');
  return { el: h('div', { class: 'big-stat' }, value, h('div', { class: 'big-stat-label' }, label)), value };
}

function statusBadge(s) {
  if (!s) return h('span', { class: 'muted' }, '—');
  return badge(s, s === 'success' ? 'ok' : s === 'reverted' ? 'error' : 'info');
}

/** What a transaction did: the decoded system-contract call, or its kind. */
function what(t) {
  if (t.method) return h('span', { class: 'tx-method' }, h('code', {}, t.method), h('span', { class: 'muted small' }, ` · ${t.contract}`));
  if (t.kind === 'transfer') return h('span', { class: 'tx-method' }, `transfer ${t.value_open} OPEN`);
  return h('span', { class: 'tx-method' }, t.kind);
}

function txTable(id, txs, { showBlock = true } = {}) {
  return h(
    'table',
    { class: 'table', id },
    h('thead', {}, h('tr', {}, h('th', {}, 'Hash'), showBlock ? h('th', {}, 'Block') : null, h('th', {}, 'From'), h('th', {}, 'To'), h('th', {}, 'What'), h('th', { class: 'col-num' }, 'Fee (OPEN)'), h('th', {}, 'Status'))),
    h(
      'tbody',
      {},
      txs.map((t) =>
        h(
          'tr',
          { class: 'tx-row', dataset: { hash: t.hash } },
          h('td', {}, link.tx(t.hash)),
          showBlock ? h('td', {}, t.block === null ? h('span', { class: 'muted' }, 'pending') : link.block(t.block)) : null,
          h('td', {}, link.account(t.from)),
          h('td', {}, t.to ? link.account(t.to, t.contract) : h('span', { class: 'muted' }, t.contract_address ? 'new contract' : '—')),
          h('td', {}, what(t)),
          h('td', { class: 'col-num' }, t.fee_open ?? '—'),
          h('td', {}, statusBadge(t.status)),
        ),
      ),
    ),
  );
}

/** A decoded argument: strings as they are (long hex shortened), lists and tuples as JSON. */
function argText(v) {
  if (typeof v === 'string') return v.length > 20 ? shortHash(v) : v;
  return JSON.stringify(v);
}

function eventList(id, events) {
  if (!events.length) return h('p', { class: 'muted small', id }, 'No events yet.');
  return h(
    'table',
    { class: 'table', id },
    h('thead', {}, h('tr', {}, h('th', {}, 'Event'), h('th', {}, 'Contract'), h('th', {}, 'Arguments'), h('th', {}, 'Block'), h('th', {}, 'Transaction'))),
    h(
      'tbody',
      {},
      events.map((e) =>
        h(
          'tr',
          { class: 'event-row', dataset: { event: e.event || '' } },
          h('td', {}, h('code', { class: 'strong' }, e.event || shortHash(e.topics[0]))),
          h('td', {}, link.account(e.address, e.contract)),
          h('td', { class: 'event-args' }, e.args ? Object.entries(e.args).map(([k, v]) => h('div', {}, h('span', { class: 'muted' }, `${k}: `), h('code', { title: String(v) }, argText(v)))) : h('code', {}, shortHash(e.data))),
          h('td', {}, link.block(e.block)),
          h('td', {}, link.tx(e.tx_hash)),
        ),
      ),
    ),
  );
}

function accountForm(ctx, value = '') {
  const input = h('input', { type: 'text', id: 'account-address', placeholder: '0x… an address', value, spellcheck: 'false', autocomplete: 'off', attrs: { 'aria-label': 'Account address' } });
  const msg = h('div', { class: 'field-error', attrs: { role: 'alert' } });
  const form = h(
    'form',
    {
      class: 'inline-form',
      id: 'account-form',
      onSubmit: (e) => {
        e.preventDefault();
        const a = input.value.trim();
        if (!/^0x[0-9a-fA-F]{40}$/.test(a)) {
          msg.textContent = 'An address is 0x and 40 hex digits.';
          return;
        }
        ctx.navigate(`#/ledger/account/${a}`);
      },
    },
    input,
    h('button', { class: 'btn', type: 'submit' }, 'Look up'),
    signer.address() ? h('button', { class: 'btn btn-ghost', type: 'button', onClick: () => ctx.navigate(`#/ledger/account/${signer.address()}`) }, 'My account') : null,
  );
  return h('div', {}, form, msg);
}

const crumbs = (label) => [{ label: 'Ledger', href: '#/ledger' }, { label }];

export async function render(ctx) {
  const { kind, id } = ctx.params;
  if (kind === 'blocks') return renderBlock(ctx, id);
  if (kind === 'tx') return renderTx(ctx, id);
  if (kind === 'account') return renderAccount(ctx, id);
  return renderOverview(ctx);
}

async function renderOverview(ctx) {
  const s = await api.ledger();
  const figures = {
    head: figure('ledger-head', 'head block'),
    pool: figure('ledger-pool', 'pending transactions'),
    da: figure('ledger-da', 'written to DA up to'),
    supply: figure('ledger-supply', 'OPEN in existence'),
  };
  const updated = h('span', { class: 'muted small', id: 'ledger-updated' });
  const blocksBody = h('div', { id: 'ledger-blocks' }, loading());
  const txsBody = h('div', { id: 'ledger-txs' }, loading());
  const eventsBody = h('div', { id: 'ledger-events-body' }, loading());
  const publisher = s.publisher.operator
    ? h('span', {}, 'Datanet versions are published to DatanetRegistry by ', link.account(s.publisher.operator), s.publisher.last_error ? h('div', { class: 'field-error', id: 'publisher-error' }, s.publisher.last_error) : null)
    : h('span', { class: 'muted' }, 'This node has no operator key, so it does not publish datanet versions (set [ledger] operator_key).');
  const chain = h(
    'dl',
    { class: 'kv kv-wide', id: 'ledger-chain' },
    kv('Chain id', h('code', {}, String(s.chain_id))),
    kv('Blocks', s.block_time_secs > 0 ? `every ${s.block_time_secs} s` : 'one per transaction'),
    kv('Gas price', `${(Number(s.gas_price) / 1e9).toFixed(3)} gwei`),
    kv('JSON-RPC', h('code', {}, s.rpc || `${location.origin}/rpc`)),
    kv('DA', h('code', {}, s.da.dir)),
    kv('Publishing', publisher),
  );
  const contracts = h(
    'table',
    { class: 'table', id: 'ledger-contracts' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Contract'), h('th', {}, 'Address'))),
    h('tbody', {}, s.contracts.map((c) => h('tr', { dataset: { name: c.name } }, h('td', {}, link.account(c.address, c.name)), h('td', {}, addrEl(c.address))))),
  );
  ctx.mount(
    pageHeader({ title: 'Ledger', subtitle: 'The OP-style L2 this node sequences: OPEN balances, blocks, and the system contracts that record datanets, models and rewards.' }),
    h('div', { class: 'ledger-stats' }, Object.values(figures).map((f) => f.el)),
    updated,
    card('Account', accountForm(ctx)),
    card('Recent blocks', blocksBody),
    card('Recent transactions', txsBody),
    card('System contracts', contracts, h('h3', { class: 'card-subtitle' }, 'Recent events'), eventsBody),
    card('Chain', chain),
  );

  let timer = null;
  async function tick() {
    clearTimeout(timer);
    if (!ctx.alive()) return;
    if (!document.hidden) {
      try {
        const [st, blocks, txs, events] = await Promise.all([api.ledger(), api.ledgerBlocks({ limit: 10 }), api.ledgerTransactions({ limit: 10 }), api.ledgerEvents({ limit: 10 })]);
        if (!ctx.alive()) return;
        figures.head.value.replaceChildren(link.block(st.head.number));
        figures.pool.value.textContent = fmtNum(st.pool);
        figures.da.value.textContent = `#${fmtNum(st.da.safe_block)}`;
        figures.supply.value.textContent = fmtNum(Math.round(Number(st.supply_open)));
        figures.supply.value.title = `${st.supply_open} OPEN`;
        updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
        mount(
          blocksBody,
          h(
            'table',
            { class: 'table', id: 'blocks-table' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Block'), h('th', {}, 'Hash'), h('th', {}, 'Age'), h('th', { class: 'col-num' }, 'Transactions'), h('th', { class: 'col-num' }, 'Gas used'))),
            h('tbody', {}, blocks.items.map((b) => h('tr', { class: 'block-row', dataset: { number: String(b.number) } }, h('td', {}, link.block(b.number)), h('td', {}, h('code', { title: b.hash }, shortHash(b.hash))), h('td', {}, when(b.timestamp)), h('td', { class: 'col-num' }, fmtNum(b.tx_count)), h('td', { class: 'col-num' }, fmtNum(b.gas_used))))),
          ),
        );
        mount(txsBody, txs.items.length ? txTable('txs-table', txs.items) : empty('No transactions yet', 'Send OPEN with `commons ledger send`, or any Ethereum wallet pointed at the JSON-RPC address below.'));
        mount(eventsBody, eventList('ledger-events', events.items));
      } catch (e) {
        if (ctx.alive()) mount(blocksBody, errorBox(e, { title: 'Could not read the ledger' }));
      }
    }
    if (ctx.alive()) timer = setTimeout(tick, REFRESH_MS);
  }
  await tick();
}

async function renderBlock(ctx, id) {
  const b = await api.ledgerBlock(id);
  ctx.mount(
    pageHeader({ title: `Block #${fmtNum(b.number)}`, crumbs: crumbs(`Block ${b.number}`) }),
    card(
      'Header',
      h(
        'dl',
        { class: 'kv kv-wide', id: 'block-header' },
        kv('Hash', h('code', { class: 'wrap' }, b.hash)),
        kv('Parent', b.number > 0 ? h('a', { href: `#/ledger/blocks/${b.number - 1}` }, h('code', { class: 'wrap' }, b.parent_hash)) : h('code', {}, b.parent_hash)),
        kv('Time', h('span', {}, fmtDate(b.timestamp * 1000), ' · ', when(b.timestamp))),
        kv('Gas', `${fmtNum(b.gas_used)} of ${fmtNum(b.gas_limit)}`),
        kv('Base fee', `${fmtNum(b.base_fee_per_gas)} wei`),
        kv('State root', h('code', { class: 'wrap' }, b.state_root)),
      ),
      h('div', { class: 'row-actions' }, b.number > 0 ? h('a', { class: 'btn btn-small', href: `#/ledger/blocks/${b.number - 1}` }, '← Previous') : null, h('a', { class: 'btn btn-small', href: `#/ledger/blocks/${b.number + 1}` }, 'Next →')),
    ),
    card(`Transactions (${b.transactions.length})`, txTable('block-txs', b.transactions, { showBlock: false })),
  );
}

async function renderTx(ctx, hash) {
  const t = await api.ledgerTransaction(hash);
  ctx.mount(
    pageHeader({ title: 'Transaction', subtitle: t.hash, crumbs: crumbs(shortHash(t.hash)) }),
    card(
      'Details',
      h(
        'dl',
        { class: 'kv kv-wide', id: 'tx-details' },
        kv('Status', statusBadge(t.status)),
        kv('Block', t.block === null ? 'pending' : h('span', {}, link.block(t.block), ` · position ${t.index}`, t.timestamp ? [' · ', when(t.timestamp)] : null)),
        kv('From', link.account(t.from)),
        kv('To', t.to ? link.account(t.to, t.contract) : t.contract_address ? h('span', {}, 'created ', link.account(t.contract_address)) : '—'),
        kv('What', what(t)),
        kv('Value', `${t.value_open} OPEN`),
        kv('Fee', t.fee_open !== undefined ? `${t.fee_open} OPEN (${fmtNum(t.gas_used)} gas)` : '—'),
        kv('Nonce', String(t.nonce)),
        t.args ? kv('Arguments', h('div', { class: 'event-args', id: 'tx-args' }, Object.entries(t.args).map(([k, v]) => h('div', {}, h('span', { class: 'muted' }, `${k}: `), h('code', { class: 'wrap' }, typeof v === 'string' ? v : JSON.stringify(v)))))) : null,
        kv('Input', h('code', { class: 'wrap small' }, t.input.length > 522 ? `${t.input.slice(0, 522)}… (${fmtNum(t.input_size)} bytes)` : t.input)),
      ),
    ),
    t.logs ? card(`Events (${t.logs.length})`, eventList('tx-events', t.logs)) : null,
    (t.logs || []).some((l) => l.event === 'MessagePassed' && l.contract === 'L2ToL1MessagePasser') ? withdrawalCard(t.hash) : null,
  );
}

/** A transaction that started withdrawals: the proof L1's OptimismPortal takes, on demand. */
function withdrawalCard(hash) {
  const out = h('div', { id: 'withdrawal-proof' });
  const block = h('input', { type: 'number', min: '0', placeholder: 'head', id: 'withdrawal-block', class: 'input-small', 'aria-label': 'L2 block of the output' });
  const button = h('button', { class: 'btn btn-small', id: 'withdrawal-prove', type: 'button' }, 'Proof for L1');
  button.addEventListener('click', async () => {
    button.disabled = true;
    mount(out, loading('Proving…'));
    try {
      const p = await api.ledgerWithdrawal(hash, block.value === '' ? {} : { block: block.value });
      mount(
        out,
        h(
          'dl',
          { class: 'kv kv-wide', id: 'withdrawal-output' },
          kv('Output of block', link.block(p.l2_block)),
          kv('Output root', h('code', { class: 'wrap' }, p.output_root)),
          kv('State root', h('code', { class: 'wrap' }, p.output_root_proof.state_root)),
          kv('Passer storage root', h('code', { class: 'wrap' }, p.output_root_proof.message_passer_storage_root)),
          ...p.withdrawals.flatMap((w) => kv('Withdrawal', h('span', {}, `${w.value_open} OPEN to `, h('code', {}, w.target), ` · `, h('code', { class: 'wrap' }, w.withdrawal_hash), ` · proof of ${w.proof.length} nodes`))),
        ),
        h('details', {}, h('summary', {}, 'proveWithdrawalTransaction arguments (JSON)'), h('pre', { class: 'wrap small', id: 'withdrawal-json' }, JSON.stringify(p, null, 2))),
      );
    } catch (e) {
      mount(out, errorBox(e));
    } finally {
      button.disabled = false;
    }
  });
  return card(
    'Withdrawal to L1',
    h('p', { class: 'muted' }, 'The output root of an L2 block, its preimage and the storage proof of each withdrawal: what OptimismPortal.proveWithdrawalTransaction takes on L1. Any block from the one holding this transaction on.'),
    h('div', { class: 'row-actions' }, block, button),
    out,
  );
}

async function renderAccount(ctx, addr) {
  const [a, history] = await Promise.all([api.ledgerAccount(addr), api.ledgerAccountTransactions(addr, { limit: 25 })]);
  const more = h('div', { id: 'account-more' });
  const body = h('div', { id: 'account-history' }, history.items.length ? txTable('account-txs', history.items) : empty('No transactions', 'This account has not sent or received a transaction yet.'));
  let cursor = history.next_cursor;
  function moreButton() {
    if (!cursor) return mount(more);
    mount(
      more,
      h('button', {
        class: 'btn btn-small',
        type: 'button',
        onClick: async () => {
          const page = await api.ledgerAccountTransactions(addr, { limit: 25, before: cursor });
          cursor = page.next_cursor;
          const tbody = body.querySelector('tbody');
          const extra = txTable('x', page.items).querySelector('tbody');
          if (tbody && extra) tbody.append(...extra.children);
          moreButton();
        },
      }, 'Older transactions'),
    );
  }
  moreButton();
  ctx.mount(
    pageHeader({ title: a.contract || 'Account', subtitle: a.address, crumbs: crumbs(shortAddr(a.address)) }),
    card('Look up another', accountForm(ctx, a.address)),
    card(
      'Balance',
      h(
        'dl',
        { class: 'kv kv-wide', id: 'account-details' },
        kv('Balance', h('span', { class: 'strong', id: 'account-balance', title: `${a.balance} wei` }, `${a.balance_open} OPEN`)),
        kv('Nonce', a.pending_nonce > a.nonce ? `${a.nonce} (${a.pending_nonce - a.nonce} pending)` : String(a.nonce)),
        kv('Code', a.code_size ? `${fmtNum(a.code_size)} bytes (a contract)` : 'none (an externally owned account)'),
      ),
    ),
    card('History', body, more),
    a.contract ? card('Recent events', h('div', { id: 'contract-events' }, loading())) : null,
  );
  if (a.contract) {
    api.ledgerEvents({ address: a.address, limit: 20 }).then(
      (r) => ctx.alive() && mount(document.getElementById('contract-events'), eventList('account-events', r.items)),
      (e) => ctx.alive() && mount(document.getElementById('contract-events'), errorBox(e)),
    );
  }
}
