// #/playground?model=NAME — chat with the base model or one of its adapters: a system prompt,
// sampling settings, the transcript, and the answer streamed token by token from
// POST /v1/chat/completions (server-sent events read from fetch's body); Stop aborts it.

import * as api from '../api.js';
import { readChatStream } from '../sse.js';
import { h, mount, pageHeader, card, errorBox, loading, notice, badge, fmtNum } from '../ui.js';
import { modelAccess, accessNotice, modelState, modelStateNotice, RETRY_MS } from './serving.js';

/** The settings as the request's fields; throws an Error naming a field that does not parse. */
export function requestSettings(v) {
  const out = {};
  const num = (label, raw, { int = false } = {}) => {
    const s = String(raw ?? '').trim();
    if (!s) return undefined;
    const n = Number(s);
    if (!Number.isFinite(n) || (int && !Number.isInteger(n))) throw new Error(`${label} must be ${int ? 'a whole number' : 'a number'}, not “${s}”.`);
    return n;
  };
  const temperature = num('Temperature', v.temperature);
  const topP = num('Top p', v.top_p);
  const topK = num('Top k', v.top_k, { int: true });
  const maxTokens = num('Max tokens', v.max_tokens, { int: true });
  const seed = num('Seed', v.seed, { int: true });
  if (temperature !== undefined) out.temperature = temperature;
  if (topP !== undefined) out.top_p = topP;
  if (topK) out.top_k = topK; // 0 or empty: no top-k cut
  if (maxTokens !== undefined) out.max_tokens = maxTokens;
  if (seed !== undefined) out.seed = seed;
  const stop = String(v.stop ?? '')
    .split('\n')
    .map((s) => s.replace(/\\n/g, '\n').replace(/\\t/g, '\t'))
    .filter((s) => s !== '');
  if (stop.length) out.stop = stop;
  return out;
}

export async function render(ctx) {
  const header = pageHeader({
    title: 'Playground',
    subtitle: 'Chat with the base model or one of its adapters. Answers stream token by token from the OpenAI-compatible API (POST /v1/chat/completions).',
    crumbs: [{ label: 'Models', href: '#/models' }, { label: 'Playground' }],
  });
  const access = await modelAccess();
  if (!access) {
    ctx.mount(header, accessNotice(null, 'chat with the models'));
    return;
  }
  const headers = access.headers;
  const wanted = ctx.query.get('model') || '';

  // The model list; while the base model loads (or there is none) say so and ask again.
  const stateBox = h('div', { id: 'playground-state' });
  ctx.mount(header, accessNotice(access), stateBox);
  let list = null;
  for (;;) {
    mount(stateBox, loading('Asking for the models…'));
    try {
      list = await api.models(headers);
      break;
    } catch (e) {
      const st = modelState(e);
      if (!st) throw e; // the router shows it, with a Retry button
      let wake;
      const again = new Promise((r) => (wake = r));
      mount(stateBox, modelStateNotice(e, () => wake()));
      const t = setTimeout(() => wake(), RETRY_MS[st]);
      await again;
      clearTimeout(t);
      if (!ctx.alive()) return;
    }
  }
  const models = list.data || [];
  const base = models.find((m) => !m.parent) || models[0];
  if (!base) throw new Error('The node listed no model (GET /v1/models answered an empty list).');

  // --- settings ---
  const select = h(
    'select',
    { id: 'pg-model', name: 'model' },
    models.map((m) => h('option', { value: m.id }, m.parent ? `${m.id} (adapter)` : `${m.id} (base model)`)),
  );
  const unknown = wanted && !models.some((m) => m.id === wanted);
  select.value = !wanted || unknown ? base.id : wanted;
  select.addEventListener('change', () => {
    history.replaceState(null, '', `#/playground?model=${encodeURIComponent(select.value)}`);
    describe();
  });
  const modelInfo = h('div', { class: 'hint', id: 'pg-model-info' });
  function describe() {
    const m = models.find((x) => x.id === select.value);
    if (!m) return;
    mount(
      modelInfo,
      m.parent ? ['LoRA adapter on ', h('code', {}, m.parent), ` · id ${m.root} · added by ${m.owned_by}`] : ['Base model', base.max_model_len ? ` · context ${fmtNum(base.max_model_len)} tokens` : ''],
    );
  }
  describe();

  const system = h('textarea', { id: 'pg-system', name: 'system', rows: 4, placeholder: 'You are a helpful assistant.', attrs: { 'aria-describedby': 'pg-system-hint' } });
  const numField = (id, label, value, attrs, hint) =>
    h('label', { class: 'field' }, h('span', { class: 'label' }, label), h('input', { type: 'number', id, name: id.replace('pg-', ''), value, attrs }), hint ? h('span', { class: 'hint' }, hint) : null);
  const temperature = numField('pg-temperature', 'Temperature', '0.7', { min: '0', max: '2', step: '0.1' }, '0 = greedy');
  const topP = numField('pg-top-p', 'Top p', '1', { min: '0.01', max: '1', step: '0.05' });
  const topK = numField('pg-top-k', 'Top k', '0', { min: '0', step: '1' }, '0 = off');
  const maxTokens = numField('pg-max-tokens', 'Max tokens', '256', { min: '1', step: '1', ...(base.max_model_len ? { max: String(base.max_model_len) } : {}) }, 'empty = as many as fit');
  const seed = numField('pg-seed', 'Seed', '', { min: '0', step: '1', placeholder: 'random' }, 'same seed, same answer');
  const stop = h('textarea', { id: 'pg-stop-sequences', name: 'stop', rows: 2, placeholder: 'one per line (\\n for a newline)' });
  const value = (field) => field.querySelector('input').value;

  const settingsCard = card(
    'Settings',
    h(
      'div',
      { class: 'form pg-settings' },
      h('label', { class: 'field' }, h('span', { class: 'label' }, 'Model'), select, modelInfo),
      h('label', { class: 'field' }, h('span', { class: 'label' }, 'System prompt'), system, h('span', { class: 'hint', id: 'pg-system-hint' }, 'Sent first, as the system message; optional.')),
      h('div', { class: 'pg-grid' }, temperature, topP, topK, maxTokens, seed),
      h('label', { class: 'field' }, h('span', { class: 'label' }, 'Stop sequences'), stop, h('span', { class: 'hint' }, 'Up to 4; the answer ends before any of them.')),
    ),
  );

  // --- transcript and composer ---
  /** The conversation sent with each request: [{role, content}] (the system prompt apart). */
  const turns = [];
  const transcript = h('div', { class: 'chat', id: 'pg-transcript', role: 'log', attrs: { 'aria-live': 'polite', 'aria-label': 'Conversation' } });
  const emptyNote = h('p', { class: 'muted chat-empty' }, 'No messages yet. Write one below; the answer streams in as the model generates it.');
  transcript.appendChild(emptyNote);
  const input = h('textarea', { id: 'pg-input', name: 'message', rows: 3, placeholder: 'Write a message…', attrs: { 'aria-label': 'Message' } });
  const sendBtn = h('button', { class: 'btn btn-primary', type: 'submit', id: 'pg-send' }, 'Send');
  const stopBtn = h('button', { class: 'btn', type: 'button', id: 'pg-stop', disabled: true, onClick: () => controller && controller.abort() }, 'Stop');
  const clearBtn = h('button', { class: 'btn btn-ghost', type: 'button', id: 'pg-clear', onClick: () => clear() }, 'Clear chat');
  const formError = h('div', { id: 'pg-error' });
  let controller = null;

  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });

  const composer = h(
    'form',
    { class: 'composer', id: 'pg-form', onSubmit: (e) => (e.preventDefault(), send()) },
    input,
    h('div', { class: 'form-actions' }, sendBtn, stopBtn, clearBtn, h('span', { class: 'muted small' }, 'Enter sends · Shift+Enter for a new line')),
    formError,
  );

  mount(stateBox, unknown ? notice(`This node has no model named “${wanted}”; chatting with the base model instead.`, 'warn') : null);
  ctx.mount(
    header,
    accessNotice(access),
    stateBox,
    h('div', { class: 'two-col playground' }, h('div', { class: 'main-stack' }, card(null, transcript, composer)), h('aside', { class: 'side' }, settingsCard)),
  );
  input.focus();

  function bubble(role, text, model) {
    emptyNote.remove();
    const body = h('div', { class: 'chat-text' }, text);
    const meta = h('div', { class: 'chat-meta' });
    const el = h(
      'div',
      { class: 'chat-msg', dataset: { role } },
      h('div', { class: 'chat-role' }, role === 'user' ? 'You' : h('span', {}, 'Assistant ', h('code', { class: 'muted small' }, model))),
      body,
      meta,
    );
    transcript.appendChild(el);
    follow(true);
    return { el, body, meta };
  }

  /** Keep the newest text in view, unless the person scrolled up to read. */
  function follow(always = false) {
    const atEnd = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 80;
    if (always || atEnd) transcript.scrollTop = transcript.scrollHeight;
  }

  function setStreaming(on) {
    sendBtn.disabled = on;
    stopBtn.disabled = !on;
    clearBtn.disabled = on;
    select.disabled = on;
  }

  function clear() {
    turns.length = 0;
    mount(transcript, emptyNote);
    mount(formError);
    input.focus();
  }

  async function send() {
    const text = input.value.trim();
    if (!text || controller) return;
    mount(formError);
    let settings;
    try {
      settings = requestSettings({ temperature: value(temperature), top_p: value(topP), top_k: value(topK), max_tokens: value(maxTokens), seed: value(seed), stop: stop.value });
    } catch (e) {
      mount(formError, errorBox(e, { title: 'Check the settings', plain: true }));
      return;
    }
    const model = select.value;
    input.value = '';
    const user = bubble('user', text);
    turns.push({ role: 'user', content: text });
    const answer = bubble('assistant', '', model);
    const out = document.createTextNode('');
    answer.body.appendChild(out);
    answer.el.dataset.state = 'streaming';
    const sys = system.value.trim();
    const body = {
      model,
      messages: [...(sys ? [{ role: 'system', content: sys }] : []), ...turns],
      stream: true,
      stream_options: { include_usage: true },
      ...settings,
    };
    controller = new AbortController();
    const my = controller;
    setStreaming(true);
    const t0 = performance.now();
    let first = null;
    // Leaving the page hangs up, so the node stops generating for nobody.
    const watch = setInterval(() => !ctx.alive() && my.abort(), 500);
    try {
      const resp = await api.chatStream(body, headers, my.signal);
      const a = await readChatStream(resp, {
        onText: (piece, so) => {
          if (first === null) first = performance.now();
          const atEnd = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 80;
          out.appendData(piece);
          answer.el.dataset.chunks = String(so.chunks);
          if (atEnd) transcript.scrollTop = transcript.scrollHeight;
        },
      });
      turns.push({ role: 'assistant', content: a.text });
      answer.el.dataset.state = 'done';
      if (!a.text) answer.body.appendChild(h('span', { class: 'muted' }, '(empty answer)'));
      mount(answer.meta, meta(a, t0, first));
    } catch (e) {
      if (e && e.name === 'AbortError') {
        // What arrived stays in the conversation.
        const partial = out.data;
        if (partial) turns.push({ role: 'assistant', content: partial });
        answer.el.dataset.state = 'stopped';
        mount(answer.meta, h('span', { class: 'chat-finish', dataset: { finish: 'stopped' } }, badge('stopped', 'warn'), ' you stopped it', partial ? ` after ${fmtNum(Number(answer.el.dataset.chunks || 0))} tokens` : ''));
      } else {
        // Not answered: take the message back out of the conversation, into the box.
        turns.pop();
        if (out.data) {
          answer.el.dataset.state = 'error';
          mount(answer.meta, errorBox(e, { title: 'The answer broke off' }));
        } else {
          answer.el.remove();
        }
        user.el.classList.add('chat-unsent');
        user.meta.textContent = 'not sent';
        if (!input.value) input.value = text;
        mount(formError, errorBox(e, { title: 'The model did not answer' }));
      }
    } finally {
      clearInterval(watch);
      controller = null;
      setStreaming(false);
      if (ctx.alive()) input.focus();
    }
  }
}

/** The line under an answer: finish reason, token usage, timing. */
function meta(a, t0, first) {
  const secs = (performance.now() - t0) / 1000;
  const u = a.usage;
  const reason = a.finish_reason || 'none';
  const why = { stop: 'the model ended it (or a stop sequence)', length: 'max tokens reached' }[reason] || '';
  return [
    h('span', { class: 'chat-finish', dataset: { finish: reason }, title: why }, 'finish ', h('code', {}, reason)),
    u ? h('span', { class: 'chat-usage' }, `${fmtNum(u.prompt_tokens)} prompt + ${fmtNum(u.completion_tokens)} completion tokens`) : null,
    h('span', { class: 'chat-time' }, `${secs.toFixed(1)} s`, first !== null ? ` · first token ${Math.round(first - t0)} ms` : '', u && secs > 0 ? ` · ${(u.completion_tokens / secs).toFixed(1)} tokens/s` : ''),
  ];
}
