// Small DOM helpers shared by the pages: element building (text is always set as text, never
// parsed as HTML), formatting, error boxes, a modal prompt and toasts.

/**
 * Build an element. `props`: class, text, title, href, type, value, dataset, style (object),
 * attrs (object), on<Event> handlers; anything else is set as an attribute.
 * Children: nodes, strings (as text), arrays, null/false/undefined (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k === 'attrs') for (const [a, av] of Object.entries(v)) el.setAttribute(a, av);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'multiple' || k === 'required' || k === 'hidden') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false || c === true) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replace the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** HTML-escape text (for the markdown renderer). */
export function escapeHtml(s) {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

// --- formatting ---

const pad = (n) => String(n).padStart(2, '0');

/** `2024-05-01 14:03` in local time, from unix milliseconds. */
export function fmtDate(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return '—';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "3 minutes ago". */
export function fmtAgo(ms, now = Date.now()) {
  const s = Math.round((now - Number(ms)) / 1000);
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const hr = Math.round(m / 60);
  if (hr < 24) return `${hr} h ago`;
  const d = Math.round(hr / 24);
  if (d < 30) return `${d} d ago`;
  return fmtDate(ms).slice(0, 10);
}

/** A date element: relative text, full date as tooltip. */
export function dateEl(ms) {
  if (ms === null || ms === undefined) return h('span', { class: 'muted' }, '—');
  return h('time', { title: fmtDate(ms), datetime: new Date(Number(ms)).toISOString() }, fmtAgo(ms));
}

export function fmtBytes(n) {
  n = Number(n);
  if (!Number.isFinite(n)) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do {
    n /= 1024;
    i++;
  } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

export function fmtNum(n) {
  return Number(n ?? 0).toLocaleString('en-US');
}

/** `0x1234…abcd` */
export function shortAddr(a) {
  if (!a) return '—';
  const s = String(a);
  return s.length > 12 ? `${s.slice(0, 6)}…${s.slice(-4)}` : s;
}

/** First 8 and last 4 hex digits. */
export function shortHash(x) {
  if (!x) return '—';
  const s = String(x);
  return s.length > 14 ? `${s.slice(0, 8)}…${s.slice(-4)}` : s;
}

/** An address element (full value in the tooltip; click copies). */
export function addrEl(a, me) {
  if (!a) return h('span', { class: 'muted' }, '—');
  const isMe = me && String(a).toLowerCase() === String(me).toLowerCase();
  return h(
    'code',
    { class: ['addr', isMe && 'addr-me'], title: `${a}${isMe ? ' (you)' : ''} — click to copy`, onClick: () => copy(a) },
    shortAddr(a),
    isMe ? h('span', { class: 'you' }, 'you') : null,
  );
}

export function hashEl(x) {
  if (!x) return h('span', { class: 'muted' }, '—');
  return h('code', { class: 'hash', title: `${x} — click to copy`, onClick: () => copy(x) }, shortHash(x));
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(String(text));
    toast('Copied to the clipboard');
  } catch {
    /* clipboard not available (http, permissions): the tooltip still shows it */
  }
}

export function tagChips(tags, onClick) {
  if (!tags || !tags.length) return h('span', { class: 'muted small' }, 'no tags');
  return h(
    'span',
    { class: 'tags' },
    tags.map((t) =>
      onClick
        ? h('button', { class: 'tag', type: 'button', title: `Filter by ${t}`, onClick: () => onClick(t) }, t)
        : h('span', { class: 'tag' }, t),
    ),
  );
}

export function badge(text, kind = '') {
  return h('span', { class: ['badge', kind && `badge-${kind}`] }, text);
}

export function statusBadge(status) {
  const kind = { pending: 'warn', accepted: 'ok', rejected: 'bad' }[status] || '';
  return badge(status, kind);
}

// --- errors and states ---

const HINTS = {
  network: 'Check that the node is running and reachable, then retry.',
  unauthorized: 'Your session is missing or expired: sign in again.',
  forbidden: 'The signed-in account may not do this here (only the owner or a reviewer can, or the datanet is private).',
  signature_expired: 'The signature is older than its 10-minute deadline; try again.',
  nonce_reused: 'This signature was already used; try again (a fresh nonce is drawn).',
  signer_mismatch: 'The signature was made by another account than the one signed in.',
  bad_signature: 'The signature was not accepted.',
  quota_exceeded: 'The daily quota is used up.',
  too_many_attempts: 'Too many failed sign-ins for this user name.',
  too_large: 'The file or body is over the node’s size limit.',
  not_found: 'It does not exist (or no longer exists) on this node.',
  internal: 'This is a bug in the node: the message says more.',
  bad_adapter: 'The files do not fit this node’s base model, or hold weights the runtime does not apply.',
  model_not_found: 'No base model or adapter has that name: the Models page lists them.',
  model_loading: 'The base model is still loading; try again in a moment.',
  no_model: 'This node serves no model (start it with --base-model DIR, or --dev).',
  overloaded: 'The model’s queue is full; try again shortly.',
};

/** A readable error block for an API error or any Error. */
export function errorBox(err, { retry, title, plain = false } = {}) {
  const code = err && err.code ? String(err.code) : null;
  const status = err && err.status ? err.status : null;
  const msg = (err && err.message) || String(err);
  let hint = !plain && code && HINTS[code];
  if (code === 'quota_exceeded' && err.reset_at) hint = `${hint} It resets ${fmtDate(err.reset_at)}.`;
  if (code === 'too_many_attempts' && err.reset_at) hint = `${hint} Try again after ${fmtDate(err.reset_at)}.`;
  return h(
    'div',
    { class: 'alert alert-error', role: 'alert' },
    h(
      'div',
      { class: 'alert-title' },
      title || 'Something went wrong',
      code ? h('code', { class: 'err-code' }, code) : null,
      status ? h('span', { class: 'muted small' }, ` HTTP ${status}`) : null,
    ),
    h('div', { class: 'alert-msg' }, msg),
    hint ? h('div', { class: 'alert-hint' }, hint) : null,
    code === 'unauthorized' && !plain ? h('a', { href: signInHref(), class: 'btn btn-small' }, 'Sign in') : null,
    retry ? h('button', { class: 'btn btn-small', type: 'button', onClick: retry }, 'Retry') : null,
  );
}

export function signInHref() {
  const next = location.hash && !location.hash.startsWith('#/login') ? location.hash.slice(1) : '';
  return next ? `#/login?next=${encodeURIComponent(next)}` : '#/login';
}

export function notice(text, kind = 'info', ...extra) {
  return h('div', { class: `alert alert-${kind}` }, h('div', { class: 'alert-msg' }, text), extra);
}

export function loading(text = 'Loading…') {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner' }), text);
}

export function empty(title, text, ...actions) {
  return h('div', { class: 'empty' }, h('div', { class: 'empty-title' }, title), text ? h('p', {}, text) : null, actions);
}

/** The sign-in prompt shown on pages that need a signer. */
export function needSignIn(what) {
  return notice(`Sign in to ${what}.`, 'info', h('a', { class: 'btn btn-small btn-primary', href: signInHref() }, 'Sign in'));
}

// --- page chrome ---

export function pageHeader({ title, subtitle, crumbs, actions }) {
  return h(
    'div',
    { class: 'page-header' },
    crumbs && crumbs.length
      ? h(
          'nav',
          { class: 'crumbs', attrs: { 'aria-label': 'Breadcrumb' } },
          crumbs.map((c, i) => [i ? h('span', { class: 'sep' }, '/') : null, c.href ? h('a', { href: c.href }, c.label) : h('span', {}, c.label)]),
        )
      : null,
    h(
      'div',
      { class: 'page-title-row' },
      h('div', {}, h('h1', {}, title), subtitle ? h('p', { class: 'subtitle' }, subtitle) : null),
      actions ? h('div', { class: 'page-actions' }, actions) : null,
    ),
  );
}

export function card(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', { class: 'card-title' }, title) : null, children);
}

/** A progress bar; `set(fraction, label)` updates it. */
export function progressBar(label = '') {
  const bar = h('div', { class: 'progress-fill' });
  const text = h('span', { class: 'progress-text' }, label);
  const el = h('div', { class: 'progress', role: 'progressbar', attrs: { 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0' } }, bar, text);
  return {
    el,
    set(fraction, lbl) {
      const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
      bar.style.width = `${pct}%`;
      el.setAttribute('aria-valuenow', String(pct));
      if (lbl !== undefined) text.textContent = lbl;
    },
    state(s) {
      el.dataset.state = s;
    },
  };
}

// --- modal ---

/**
 * A modal form. `fields`: [{name, label, type:'text'|'textarea', required, placeholder, value}].
 * Resolves with the values, or null when cancelled.
 */
export function modal({ title, text, fields = [], confirmLabel = 'OK', danger = false }) {
  return new Promise((resolve) => {
    const inputs = {};
    const err = h('div', { class: 'field-error' });
    const close = (v) => {
      backdrop.remove();
      document.removeEventListener('keydown', onKey);
      resolve(v);
    };
    const submit = (e) => {
      e.preventDefault();
      const out = {};
      for (const f of fields) {
        const v = inputs[f.name].value.trim();
        if (f.required && !v) {
          err.textContent = `${f.label} is required.`;
          inputs[f.name].focus();
          return;
        }
        out[f.name] = v;
      }
      close(out);
    };
    const onKey = (e) => {
      if (e.key === 'Escape') close(null);
    };
    const form = h(
      'form',
      { class: 'modal', role: 'dialog', attrs: { 'aria-modal': 'true', 'aria-label': title }, onSubmit: submit },
      h('h2', {}, title),
      text ? h('p', { class: 'muted' }, text) : null,
      fields.map((f) => {
        const input =
          f.type === 'textarea'
            ? h('textarea', { name: f.name, rows: 3, placeholder: f.placeholder || '', value: f.value || '' })
            : h('input', { name: f.name, type: 'text', placeholder: f.placeholder || '', value: f.value || '' });
        inputs[f.name] = input;
        return h('label', { class: 'field' }, h('span', { class: 'label' }, f.label, f.required ? ' *' : ''), input);
      }),
      err,
      h(
        'div',
        { class: 'modal-actions' },
        h('button', { type: 'button', class: 'btn', onClick: () => close(null) }, 'Cancel'),
        h('button', { type: 'submit', class: ['btn', danger ? 'btn-danger' : 'btn-primary'] }, confirmLabel),
      ),
    );
    const backdrop = h('div', { class: 'modal-backdrop', onMousedown: (e) => e.target === backdrop && close(null) }, form);
    document.body.appendChild(backdrop);
    document.addEventListener('keydown', onKey);
    const first = fields.length ? inputs[fields[0].name] : form.querySelector('button[type=submit]');
    setTimeout(() => first && first.focus(), 0);
  });
}

// --- toasts ---

export function toast(text, kind = 'info', ms = 3500) {
  let host = document.getElementById('toasts');
  if (!host) {
    host = h('div', { id: 'toasts', attrs: { 'aria-live': 'polite' } });
    document.body.appendChild(host);
  }
  const t = h('div', { class: `toast toast-${kind}` }, text);
  host.appendChild(t);
  while (host.children.length > 3) host.firstChild.remove();
  setTimeout(() => t.remove(), ms);
}

/** Disable a button while `fn` runs; answers fn's result. */
export async function busy(button, label, fn) {
  const old = button.textContent;
  button.disabled = true;
  button.textContent = label;
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.textContent = old;
  }
}
