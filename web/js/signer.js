// Who signs. The console signs EIP-712 typed data either with a custodial console account (the
// node holds that account's key: `POST /api/v1/console/sign`) or with an injected browser
// wallet (EIP-1193 `window.ethereum`, `eth_signTypedData_v4`). Pages only call `address()` and
// `signTypedData()` (or `authFor()`), and never need to know which one is in use.

import * as api from './api.js';

const STATE_KEY = 'commons.signer';

/** @type {{kind:'custodial'|'wallet', address:string, username?:string, expires_at?:number}|null} */
let state = load();
const listeners = new Set();

function load() {
  try {
    const s = JSON.parse(localStorage.getItem(STATE_KEY) || 'null');
    if (s && (s.kind === 'custodial' || s.kind === 'wallet') && /^0x[0-9a-f]{40}$/.test(s.address)) return s;
  } catch {
    /* ignore */
  }
  return null;
}

function save(s) {
  state = s;
  try {
    if (s) localStorage.setItem(STATE_KEY, JSON.stringify(s));
    else localStorage.removeItem(STATE_KEY);
  } catch {
    /* storage disabled */
  }
  for (const fn of listeners) {
    try {
      fn(state);
    } catch (e) {
      console.warn('signer listener failed', e);
    }
  }
}

/** Call `fn(state)` whenever the signer changes; answers an unsubscribe function. */
export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** The signing address (0x lowercase), or null when nobody is signed in. */
export function address() {
  return state ? state.address : null;
}

/** `{kind, address, username?}` or null. */
export function current() {
  return state ? { ...state } : null;
}

/** 'custodial', 'wallet' or null. */
export function kind() {
  return state ? state.kind : null;
}

/** Whether an EIP-1193 wallet is injected in this browser. */
export function hasWallet() {
  return typeof window !== 'undefined' && !!window.ethereum && typeof window.ethereum.request === 'function';
}

/** Sign in with a custodial console account. */
export async function loginCustodial(username, password) {
  const r = await api.login(username, password);
  api.setSessionToken(r.token);
  save({ kind: 'custodial', address: r.address.toLowerCase(), username: r.username, expires_at: r.expires_at });
  return current();
}

/** Connect the injected wallet (asks the person to pick an account). */
export async function connectWallet() {
  if (!hasWallet()) throw new Error('No browser wallet found (window.ethereum is missing).');
  const accounts = await walletRequest('eth_requestAccounts', []);
  if (!accounts || !accounts.length) throw new Error('The wallet shared no account.');
  api.setSessionToken(null);
  save({ kind: 'wallet', address: String(accounts[0]).toLowerCase() });
  return current();
}

/** Sign out (ends a custodial session on the node too). */
export async function signOut() {
  const wasCustodial = state && state.kind === 'custodial';
  if (wasCustodial && api.sessionToken()) {
    try {
      await api.logout();
    } catch {
      /* the session may already be gone */
    }
  }
  api.setSessionToken(null);
  save(null);
}

/**
 * Check the stored identity is still valid: the custodial session still exists, the wallet
 * still shares that account. Signs out quietly when not.
 */
export async function restore() {
  if (!state) return null;
  if (state.kind === 'custodial') {
    if (!api.sessionToken() || (state.expires_at && state.expires_at < Date.now())) {
      api.setSessionToken(null);
      save(null);
      return null;
    }
    try {
      const me = await api.me();
      if (me.address.toLowerCase() !== state.address) save({ ...state, address: me.address.toLowerCase(), username: me.username });
    } catch (e) {
      if (e.status === 401) {
        api.setSessionToken(null);
        save(null);
      }
    }
    return current();
  }
  if (!hasWallet()) {
    save(null);
    return null;
  }
  try {
    const accounts = await walletRequest('eth_accounts', []);
    const a = (accounts || []).map((x) => String(x).toLowerCase());
    if (!a.includes(state.address)) {
      if (a.length) save({ kind: 'wallet', address: a[0] });
      else save(null);
    }
  } catch {
    save(null);
  }
  return current();
}

if (hasWallet() && typeof window.ethereum.on === 'function') {
  window.ethereum.on('accountsChanged', (accounts) => {
    if (!state || state.kind !== 'wallet') return;
    if (accounts && accounts.length) save({ kind: 'wallet', address: String(accounts[0]).toLowerCase() });
    else save(null);
  });
}

async function walletRequest(method, params) {
  try {
    return await window.ethereum.request({ method, params });
  } catch (e) {
    const err = new Error(e && e.message ? `Wallet: ${e.message}` : `Wallet: ${method} failed`);
    err.code = e && e.code;
    throw err;
  }
}

/** Put the wallet on the domain's chain when it is elsewhere (wallets check it). */
async function walletChain(chainId) {
  try {
    const cur = parseInt(await walletRequest('eth_chainId', []), 16);
    if (cur === chainId) return null;
    await walletRequest('wallet_switchEthereumChain', [{ chainId: `0x${chainId.toString(16)}` }]);
    return null;
  } catch (e) {
    return `The wallet could not switch to chain ${chainId} (${e.message}).`;
  }
}

/**
 * Sign EIP-712 typed data (`{types, primaryType, domain, message}`) as the current signer.
 * @returns {Promise<string>} the 65-byte signature as 0x + 130 hex
 */
export async function signTypedData(typedData) {
  if (!state) throw new Error('Sign in first: a signed request needs an account.');
  if (state.kind === 'custodial') {
    const r = await api.consoleSign(typedData);
    if (String(r.signer).toLowerCase() !== state.address) {
      throw new Error(`The node signed as ${r.signer}, not as ${state.address}; sign in again.`);
    }
    return String(r.signature).toLowerCase();
  }
  if (!hasWallet()) throw new Error('The browser wallet is gone; connect it again.');
  const chainNote = await walletChain(Number(typedData.domain.chainId));
  try {
    const sig = await walletRequest('eth_signTypedData_v4', [state.address, JSON.stringify(typedData)]);
    return String(sig).toLowerCase();
  } catch (e) {
    if (chainNote) e.message += ` ${chainNote}`;
    throw e;
  }
}

/** Sign `typedData` and answer the API's `auth` object (`{signer, nonce, deadline, signature}`). */
export async function authFor(typedData) {
  const signature = await signTypedData(typedData);
  return {
    signer: state.address,
    nonce: String(typedData.message.nonce),
    deadline: Number(typedData.message.deadline),
    signature,
  };
}
