// What the Models and Playground pages share: how the console calls the model routes (the
// console session; signed out on a --dev node, the development key `dev`), and the notices
// for a node whose model is not ready (loading, none, failed).

import * as api from '../api.js';
import * as signer from '../signer.js';
import { nodeInfo } from '../context.js';
import { h, notice, errorBox, signInHref } from '../ui.js';

/**
 * How this console calls the model routes: `{via:'session', headers:{}}` (api.js sends the
 * session header), `{via:'dev', headers:{Authorization:'Bearer dev'}}` on a development node
 * without a session, or null when the person has to sign in with a console account first.
 */
export async function modelAccess() {
  if (api.sessionToken()) return { via: 'session', headers: {} };
  let info = null;
  try {
    info = await nodeInfo();
  } catch {
    /* the node's mode is unknown: ask for a session */
  }
  if (info && info.dev) return { via: 'dev', headers: { Authorization: 'Bearer dev' } };
  return null;
}

/** The notice saying how the page calls the model routes (or that it cannot yet). */
export function accessNotice(access, what) {
  if (access && access.via === 'dev') {
    return h(
      'div',
      { class: 'callout-warn', id: 'model-access', dataset: { via: 'dev' } },
      'Development node: without a console session this page calls the model routes with the development key ',
      h('code', {}, 'dev'),
      ' (an admin). ',
      h('a', { href: signInHref() }, 'Sign in'),
      ' to act as your console account.',
    );
  }
  if (access) return null;
  const wallet = signer.kind() === 'wallet';
  return notice(
    wallet
      ? `A browser wallet holds no console session, and the model routes need one: sign in with a console account to ${what}. Programs use an API key instead (commons apikey create).`
      : `Sign in with a console account to ${what}. Programs use an API key instead (commons apikey create).`,
    'info',
    h('a', { class: 'btn btn-small btn-primary', href: signInHref() }, 'Sign in'),
  );
}

/** Whether an error says the model is not ready: `model_loading`, `no_model`, `model_failed`. */
export function modelState(e) {
  const code = e && e.code;
  if (code === 'model_loading') return 'loading';
  if (code === 'no_model') return 'none';
  if (code === 'model_failed') return 'failed';
  return null;
}

/** How long to wait before asking again, by model state. */
export const RETRY_MS = { loading: 1500, none: 10000, failed: 10000 };

/** A notice for a model that is not ready; `retry` asks again now. */
export function modelStateNotice(e, retry) {
  const state = modelState(e);
  const again = retry ? h('button', { class: 'btn btn-small', type: 'button', onClick: retry }, 'Retry now') : null;
  if (state === 'loading') {
    return h(
      'div',
      { class: 'alert alert-info model-state', id: 'model-state', role: 'status', dataset: { state } },
      h('div', { class: 'alert-title' }, h('span', { class: 'spinner' }), 'The base model is loading'),
      h('div', { class: 'alert-msg' }, e.message),
      h('div', { class: 'alert-hint' }, 'A large model takes a while; the dev model is created on first start. This page asks again every few seconds.'),
      again,
    );
  }
  if (state === 'none') {
    return h(
      'div',
      { class: 'alert alert-warn model-state', id: 'model-state', role: 'status', dataset: { state } },
      h('div', { class: 'alert-title' }, 'This node serves no model'),
      h('div', { class: 'alert-msg' }, e.message),
      h('div', { class: 'alert-hint' }, 'Start it with --base-model DIR (a Hugging Face model directory), or --dev for the small development model. This page checks again now and then.'),
      again,
    );
  }
  const box = errorBox(e, { title: 'The base model failed to load', retry, plain: true });
  box.classList.add('model-state');
  box.id = 'model-state';
  box.dataset.state = 'failed';
  return box;
}
