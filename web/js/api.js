// The node's REST API (docs/API.md), as the console uses it. Every call answers the parsed
// JSON or throws an ApiError carrying the API's stable error code and message.

const BASE = '/api/v1';
const SESSION_KEY = 'commons.session';

/** An error answered by the API (`{"error":{"code","message"}}`), or a network failure. */
export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    Object.assign(this, extra);
  }
}

/** The custodial session token, if any. */
export function sessionToken() {
  try {
    return localStorage.getItem(SESSION_KEY);
  } catch {
    return null;
  }
}

export function setSessionToken(token) {
  try {
    if (token) localStorage.setItem(SESSION_KEY, token);
    else localStorage.removeItem(SESSION_KEY);
  } catch {
    /* storage disabled: the session lasts as long as the page */
  }
}

function qs(params) {
  if (!params) return '';
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

/** The ApiError of a refused response (the API's `{"error":{"code","message"}}` when it sent one). */
export async function errorFrom(resp) {
  let body = null;
  const text = await resp.text().catch(() => '');
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  if (body && body.error && body.error.code) {
    const { code, message, ...extra } = body.error;
    return new ApiError(resp.status, code, message || code, extra);
  }
  const msg = text && text.length < 300 ? text : `${resp.status} ${resp.statusText}`;
  return new ApiError(resp.status, `http_${resp.status}`, msg);
}

/**
 * One API call.
 * @param {string} method
 * @param {string} path below /api/v1 (below `opts.root` when given)
 * @param {{query?:object, body?:any, form?:FormData, headers?:object, root?:string}} [opts]
 */
export async function request(method, path, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  const token = sessionToken();
  if (token) headers['X-Commons-Session'] = token;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  } else if (opts.form !== undefined) {
    body = opts.form; // multipart: the browser writes the Content-Type with its boundary
  }
  let resp;
  try {
    resp = await fetch((opts.root ?? BASE) + path + qs(opts.query), { method, headers, body });
  } catch (e) {
    throw new ApiError(0, 'network', `Cannot reach the node (${e.message || e}).`);
  }
  if (!resp.ok) throw await errorFrom(resp);
  if (resp.status === 204) return null;
  const text = await resp.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(resp.status, 'bad_response', 'The node answered something that is not JSON.');
  }
}

const enc = encodeURIComponent;

// --- node ---
export const node = () => request('GET', '/node');

// --- datanets ---
export const datanets = (query) => request('GET', '/datanets', { query });
export const datanet = (slug) => request('GET', `/datanets/${enc(slug)}`);
export const createDatanet = (body) => request('POST', '/datanets', { body });
export const editDatanet = (slug, body) => request('PATCH', `/datanets/${enc(slug)}`, { body });
export const edits = (slug) => request('GET', `/datanets/${enc(slug)}/edits`);
export const setRoles = (slug, body) => request('POST', `/datanets/${enc(slug)}/roles`, { body });
export const versions = (slug) => request('GET', `/datanets/${enc(slug)}/versions`);
export const version = (slug, n) => request('GET', `/datanets/${enc(slug)}/versions/${enc(n)}`);
export const rows = (slug, query) => request('GET', `/datanets/${enc(slug)}/rows`, { query });
export const diff = (slug, query) => request('GET', `/datanets/${enc(slug)}/diff`, { query });
export const contributions = (slug, query) =>
  request('GET', `/datanets/${enc(slug)}/contributions`, { query });
export const review = (slug, body) => request('POST', `/datanets/${enc(slug)}/review`, { body });
export const takeDown = (slug, body) => request('POST', `/datanets/${enc(slug)}/takedown`, { body });

// --- contributions, rows, blobs, contributors ---
export const contribution = (id) => request('GET', `/contributions/${enc(id)}`);
export const contributionRows = (id, query) => request('GET', `/contributions/${enc(id)}/rows`, { query });
export const row = (id) => request('GET', `/rows/${enc(id)}`);
export const contributor = (addr, query) => request('GET', `/contributors/${enc(addr)}`, { query });
export const blobUrl = (hash) => `${BASE}/blobs/${enc(hash)}`;

// --- console accounts ---
export const login = (username, password) => request('POST', '/console/login', { body: { username, password } });
export const logout = () => request('POST', '/console/logout');
export const me = () => request('GET', '/console/me');
export const consoleSign = (typedData) => request('POST', '/console/sign', { body: { typed_data: typedData } });

// --- models and adapters (OpenLoRA) ---
// These routes take the console session, or `Authorization: Bearer KEY`: pass the headers
// `modelAccess()` (pages/serving.js) chose.
export const models = (headers) => request('GET', '/models', { root: '/v1', headers });
export const baseModel = (headers) => request('GET', '/models/base', { headers });
export const adapters = (headers) => request('GET', '/adapters', { headers });
export const adapterStats = (id, headers) => request('GET', `/adapters/${enc(id)}/stats`, { headers });
export const loadAdapter = (id, headers) => request('POST', `/adapters/${enc(id)}/load`, { headers });
export const unloadAdapter = (id, headers) => request('POST', `/adapters/${enc(id)}/unload`, { headers });
export const removeAdapter = (id, headers) => request('DELETE', `/adapters/${enc(id)}`, { headers });

/**
 * Register an adapter: multipart with `name`, `adapter_config.json` and
 * `adapter_model.safetensors` (the part names say which file is which, whatever the files
 * are called on disk).
 */
export function addAdapter({ name, config, weights, replace }, headers) {
  const form = new FormData();
  form.append('name', name);
  if (replace) form.append('replace', 'true');
  form.append('adapter_config.json', config, 'adapter_config.json');
  form.append('adapter_model.safetensors', weights, 'adapter_model.safetensors');
  return request('POST', '/adapters', { form, headers });
}

/**
 * `POST /v1/chat/completions` with `stream: true`: answers the Response, its body still
 * unread (the caller reads the server-sent events), or throws an ApiError when the node
 * refuses the request. `signal` aborts it.
 */
export async function chatStream(body, headers, signal) {
  const h = { Accept: 'text/event-stream', 'Content-Type': 'application/json', ...(headers || {}) };
  const token = sessionToken();
  if (token) h['X-Commons-Session'] = token;
  let resp;
  try {
    resp = await fetch('/v1/chat/completions', { method: 'POST', headers: h, body: JSON.stringify(body), signal });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `Cannot reach the node (${e.message || e}).`);
  }
  if (!resp.ok) throw await errorFrom(resp);
  return resp;
}

/**
 * Upload one file as a contribution: raw bytes, `?name=`, the signature in `X-Commons-*`
 * headers. XMLHttpRequest rather than fetch, for upload progress.
 * @param {string} slug
 * @param {File|Blob} file
 * @param {string} name file name (its extension decides the format)
 * @param {{signer:string, nonce:string, deadline:number, signature:string}} auth
 * @param {(sent:number, total:number)=>void} [onProgress]
 * @returns {{promise: Promise<object>, abort: () => void}}
 */
export function upload(slug, file, name, auth, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', `${BASE}/datanets/${enc(slug)}/contributions${qs({ name })}`);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('X-Commons-Signer', auth.signer);
    xhr.setRequestHeader('X-Commons-Nonce', String(auth.nonce));
    xhr.setRequestHeader('X-Commons-Deadline', String(auth.deadline));
    xhr.setRequestHeader('X-Commons-Signature', auth.signature);
    const token = sessionToken();
    if (token) xhr.setRequestHeader('X-Commons-Session', token);
    if (onProgress) {
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
      // Small bodies may finish without a progress event; the upload is complete here.
      xhr.upload.onload = () => onProgress(file.size, file.size);
    }
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300 && body) {
        resolve(body);
      } else if (body && body.error) {
        const { code, message, ...extra } = body.error;
        reject(new ApiError(xhr.status, code, message || code, extra));
      } else {
        reject(new ApiError(xhr.status, `http_${xhr.status}`, xhr.responseText || `HTTP ${xhr.status}`));
      }
    };
    xhr.onerror = () =>
      reject(new ApiError(0, 'network', 'The upload failed: the connection to the node was lost.'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'The upload was cancelled.'));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

// --- ledger ---
export const ledger = () => request('GET', '/ledger');
export const ledgerBlocks = (query) => request('GET', '/ledger/blocks', { query });
export const ledgerBlock = (id) => request('GET', `/ledger/blocks/${enc(id)}`);
export const ledgerTransactions = (query) => request('GET', '/ledger/transactions', { query });
export const ledgerTransaction = (hash) => request('GET', `/ledger/transactions/${enc(hash)}`);
export const ledgerWithdrawal = (hash, query) => request('GET', `/ledger/withdrawals/${enc(hash)}`, { query });
export const ledgerAccount = (addr) => request('GET', `/ledger/accounts/${enc(addr)}`);
export const ledgerAccountTransactions = (addr, query) => request('GET', `/ledger/accounts/${enc(addr)}/transactions`, { query });
export const ledgerEvents = (query) => request('GET', '/ledger/events', { query });
