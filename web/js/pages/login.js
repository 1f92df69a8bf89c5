// #/login — sign in with a custodial console account or connect a browser wallet.

import * as signer from '../signer.js';
import { h, mount, pageHeader, card, errorBox, badge, addrEl, toast } from '../ui.js';

export async function render(ctx) {
  const next = safeNext(ctx.query.get('next'));
  const current = signer.current();

  const header = pageHeader({
    title: 'Sign in',
    subtitle: 'Writes on this node (creating datanets, contributing, reviewing) are signed with an Ethereum key. Choose where that key lives.',
  });

  const signedIn = current
    ? h(
        'div',
        { class: 'alert alert-ok', id: 'signed-in-as' },
        h('div', { class: 'alert-msg' }, 'Signed in as ', h('strong', {}, current.username || current.address), ' ', addrEl(current.address), ' ', badge(current.kind, current.kind === 'custodial' ? 'warn' : 'ok')),
        h(
          'div',
          { class: 'alert-actions' },
          h('a', { class: 'btn btn-small btn-primary', href: `#${next}` }, 'Continue'),
          h('button', { class: 'btn btn-small', type: 'button', onClick: async () => (await signer.signOut(), toast('Signed out'), ctx.reload()) }, 'Sign out'),
        ),
      )
    : null;

  // (a) custodial console account
  const username = h('input', { name: 'username', id: 'login-username', autocomplete: 'username', required: true });
  const password = h('input', { name: 'password', id: 'login-password', type: 'password', autocomplete: 'current-password', required: true });
  const err = h('div', {});
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'login-submit' }, 'Sign in');
  const custodial = card(
    null,
    h('div', { class: 'signin-head' }, h('h2', { class: 'card-title' }, 'Console account'), badge('custodial', 'warn')),
    h('p', { class: 'callout-warn' }, h('strong', {}, 'Custodial: the node holds this account’s key. '), 'Whoever runs this node can sign as you. Accounts are created by the node’s administrator.'),
    h(
      'form',
      {
        class: 'form',
        id: 'login-form',
        onSubmit: async (e) => {
          e.preventDefault();
          mount(err);
          if (!username.value.trim() || !password.value) {
            mount(err, h('div', { class: 'alert alert-error' }, 'Enter a username and a password.'));
            return;
          }
          submit.disabled = true;
          submit.textContent = 'Signing in…';
          try {
            const who = await signer.loginCustodial(username.value.trim(), password.value);
            toast(`Signed in as ${who.username}`, 'ok');
            ctx.navigate(`#${next}`);
          } catch (e2) {
            mount(err, errorBox(e2, { title: 'Could not sign in', plain: e2.code === 'unauthorized' }));
            submit.disabled = false;
            submit.textContent = 'Sign in';
          }
        },
      },
      h('label', { class: 'field' }, h('span', { class: 'label' }, 'Username'), username),
      h('label', { class: 'field' }, h('span', { class: 'label' }, 'Password'), password),
      err,
      h('div', { class: 'form-actions' }, submit),
    ),
  );

  // (b) injected wallet
  const wErr = h('div', {});
  const hasWallet = signer.hasWallet();
  const connect = h(
    'button',
    {
      type: 'button',
      class: 'btn btn-primary',
      id: 'wallet-connect',
      disabled: !hasWallet,
      onClick: async () => {
        mount(wErr);
        connect.disabled = true;
        try {
          const who = await signer.connectWallet();
          toast(`Wallet connected: ${who.address}`, 'ok');
          ctx.navigate(`#${next}`);
        } catch (e) {
          mount(wErr, errorBox(e, { title: 'The wallet did not connect' }));
          connect.disabled = false;
        }
      },
    },
    'Connect wallet',
  );
  const wallet = card(
    null,
    h('div', { class: 'signin-head' }, h('h2', { class: 'card-title' }, 'Browser wallet'), badge('self-custody', 'ok')),
    h('p', {}, 'Sign with your own key through an injected EIP-1193 wallet (MetaMask, Rabby, Frame…). Each write asks the wallet to sign EIP-712 typed data (', h('code', {}, 'eth_signTypedData_v4'), '); the key never leaves the wallet.'),
    hasWallet ? null : h('p', { class: 'muted' }, 'No wallet was found in this browser (window.ethereum is missing).'),
    wErr,
    h('div', { class: 'form-actions' }, connect),
  );

  ctx.mount(header, signedIn, h('div', { class: 'signin-grid' }, custodial, wallet));
  if (!current) username.focus();
}

/** Only in-console routes as the place to go after signing in. */
function safeNext(n) {
  if (n && n.startsWith('/') && !n.startsWith('//') && !n.startsWith('/login')) return n;
  return '/datanets';
}
