// What pages share: the node's description (`GET /api/v1/node`, cached), its EIP-712 domain,
// and small role checks.

import * as api from './api.js';
import { domainOf } from './eip712.js';
import * as signer from './signer.js';

let nodePromise = null;

/** `GET /api/v1/node`, fetched once (again with `refresh`). */
export function nodeInfo(refresh = false) {
  if (!nodePromise || refresh) {
    nodePromise = api.node().catch((e) => {
      nodePromise = null;
      throw e;
    });
  }
  return nodePromise;
}

/** The EIP-712 domain signed requests use on this node. */
export async function domain() {
  return domainOf(await nodeInfo());
}

const same = (a, b) => !!a && !!b && String(a).toLowerCase() === String(b).toLowerCase();

/** Whether the signed-in address owns the datanet. */
export function isOwner(d) {
  return same(signer.address(), d.owner);
}

/** Whether the signed-in address may review / take down (owner or reviewer). */
export function canReview(d) {
  const me = signer.address();
  return !!me && (same(me, d.owner) || (d.reviewers || []).some((r) => same(r, me)));
}

/** The file extensions a contribution may have (docs/API.md, `unsupported_type`). */
export const FORMATS = ['txt', 'md', 'jsonl', 'csv', 'pdf', 'docx'];
