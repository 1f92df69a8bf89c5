// EIP-712 typed data for every signed write (docs/API.md, "Signing"). Each builder answers the
// JSON that `eth_signTypedData_v4` and `POST /api/v1/console/sign` take:
// `{types:{EIP712Domain, <Primary>}, primaryType, domain, message}`. uint256 values travel as
// decimal strings; bytes32 as 0x + 64 hex.

const DOMAIN_TYPE = [
  { name: 'name', type: 'string' },
  { name: 'version', type: 'string' },
  { name: 'chainId', type: 'uint256' },
];

export const TYPES = {
  CreateDatanet: [
    { name: 'slug', type: 'string' },
    { name: 'name', type: 'string' },
    { name: 'summary', type: 'string' },
    { name: 'descriptionHash', type: 'bytes32' },
    { name: 'tags', type: 'string[]' },
    { name: 'kind', type: 'string' },
    { name: 'isPrivate', type: 'bool' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
  EditDatanet: [
    { name: 'datanet', type: 'string' },
    { name: 'summary', type: 'string' },
    { name: 'descriptionHash', type: 'bytes32' },
    { name: 'tags', type: 'string[]' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
  SetRoles: [
    { name: 'datanet', type: 'string' },
    { name: 'reviewers', type: 'address[]' },
    { name: 'contributors', type: 'address[]' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
  Contribute: [
    { name: 'datanet', type: 'string' },
    { name: 'fileHash', type: 'bytes32' },
    { name: 'fileName', type: 'string' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
  Review: [
    { name: 'datanet', type: 'string' },
    { name: 'contributions', type: 'uint256[]' },
    { name: 'accept', type: 'bool' },
    { name: 'reason', type: 'string' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
  TakeDown: [
    { name: 'datanet', type: 'string' },
    { name: 'rows', type: 'uint256[]' },
    { name: 'reason', type: 'string' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
};

/** How long a signature stays valid. */
export const DEADLINE_SECONDS = 10 * 60;

/** A random uint256 as a decimal string. */
export function randomNonce() {
  const b = new Uint8Array(32);
  crypto.getRandomValues(b);
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n.toString(10);
}

/** Now + 10 minutes, unix seconds. */
export function deadline(nowMs = Date.now()) {
  return Math.floor(nowMs / 1000) + DEADLINE_SECONDS;
}

/** The node's domain, from `GET /api/v1/node` (its `eip712_domain`, else built from chain_id). */
export function domainOf(nodeInfo) {
  const d = nodeInfo.eip712_domain || { name: 'Commons', version: '1', chainId: nodeInfo.chain_id };
  return { name: d.name, version: d.version, chainId: Number(d.chainId) };
}

/** `0x` + 64 hex for a bytes32 given as 64 hex digits with or without 0x. */
export function bytes32(hex) {
  const h = String(hex).toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{64}$/.test(h)) throw new Error(`not a 32-byte hex value: ${hex}`);
  return `0x${h}`;
}

function typed(primaryType, domain, message, nonce, dl) {
  return {
    types: { EIP712Domain: DOMAIN_TYPE, [primaryType]: TYPES[primaryType] },
    primaryType,
    domain,
    message: { ...message, nonce: String(nonce ?? randomNonce()), deadline: String(dl ?? deadline()) },
  };
}

/** `CreateDatanet`; `descriptionHash` is blake3 of the UTF-8 description (hex). */
export function createDatanet(domain, { slug, name, summary, descriptionHash, tags, kind, isPrivate }, nonce, dl) {
  return typed(
    'CreateDatanet',
    domain,
    {
      slug,
      name,
      summary,
      descriptionHash: bytes32(descriptionHash),
      tags: [...tags],
      kind,
      isPrivate: Boolean(isPrivate),
    },
    nonce,
    dl,
  );
}

export function editDatanet(domain, { datanet, summary, descriptionHash, tags }, nonce, dl) {
  return typed(
    'EditDatanet',
    domain,
    { datanet, summary, descriptionHash: bytes32(descriptionHash), tags: [...tags] },
    nonce,
    dl,
  );
}

export function setRoles(domain, { datanet, reviewers, contributors }, nonce, dl) {
  return typed(
    'SetRoles',
    domain,
    { datanet, reviewers: reviewers.map((a) => a.toLowerCase()), contributors: contributors.map((a) => a.toLowerCase()) },
    nonce,
    dl,
  );
}

export function contribute(domain, { datanet, fileHash, fileName }, nonce, dl) {
  return typed('Contribute', domain, { datanet, fileHash: bytes32(fileHash), fileName }, nonce, dl);
}

export function review(domain, { datanet, contributions, accept, reason }, nonce, dl) {
  return typed(
    'Review',
    domain,
    { datanet, contributions: contributions.map((c) => String(c)), accept: Boolean(accept), reason: reason || '' },
    nonce,
    dl,
  );
}

export function takeDown(domain, { datanet, rows, reason }, nonce, dl) {
  return typed('TakeDown', domain, { datanet, rows: rows.map((r) => String(r)), reason: reason || '' }, nonce, dl);
}
