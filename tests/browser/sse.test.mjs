// Unit tests of the Playground's stream reading (web/js/sse.js) and settings
// (web/js/pages/playground.js): the server-sent events of POST /v1/chat/completions as
// docs/API.md describes them, cut into network chunks at every awkward place.
// Run: node --test tests/browser/

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { sseParser, readChatStream } from '../../web/js/sse.js';
import { requestSettings } from '../../web/js/pages/playground.js';

const chunk = (delta, finish = null) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'legal',
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
});

/** A stream as the node sends it: role, one chunk per token, finish, usage, [DONE]. */
function body(tokens, { finish = 'length', usage = true, done = true } = {}) {
  const events = [chunk({ role: 'assistant', content: '' }), ...tokens.map((t) => chunk({ content: t })), chunk({}, finish)];
  if (usage) events.push({ ...chunk({}), choices: [], usage: { prompt_tokens: 9, completion_tokens: tokens.length, total_tokens: 9 + tokens.length } });
  return events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + (done ? 'data: [DONE]\n\n' : '');
}

/** A fetch Response whose body arrives in the given byte pieces. */
function response(bytes, cuts) {
  const pieces = [];
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    pieces.push(bytes.slice(at, c));
    at = c;
  }
  const stream = new ReadableStream({
    pull(controller) {
      if (pieces.length) controller.enqueue(pieces.shift());
      else controller.close();
    },
  });
  return new Response(stream, { status: 200, headers: { 'content-type': 'text/event-stream' } });
}

test('the parser finds events across any split, with \\n, \\r\\n or \\r line ends', () => {
  const text = 'data: one\n\n: a comment\ndata: two\n\nevent: x\ndata: three\ndata: lines\n\ndata: [DONE]\n\n';
  for (const eol of ['\n', '\r\n', '\r']) {
    const s = text.replace(/\n/g, eol);
    for (let cut = 0; cut <= s.length; cut++) {
      const p = sseParser();
      const got = [...p.push(s.slice(0, cut)), ...p.push(s.slice(cut)), ...p.end()];
      assert.deepEqual(got, ['one', 'two', 'three\nlines', '[DONE]'], `eol ${JSON.stringify(eol)}, cut at ${cut}`);
    }
    const p = sseParser();
    assert.deepEqual([...[...s].flatMap((ch) => p.push(ch)), ...p.end()], ['one', 'two', 'three\nlines', '[DONE]'], 'one character at a time');
  }
});

test('a streamed answer: text token by token, finish reason and usage, across UTF-8 splits', async () => {
  const tokens = ['Hel', 'lo', ', ', 'wörld', ' ✓', ' 🙂'];
  const bytes = new TextEncoder().encode(body(tokens));
  // cut inside multi-byte characters and inside "data:" and "[DONE]"
  const cuts = [];
  for (let i = 3; i < bytes.length; i += 7) cuts.push(i);
  const seen = [];
  const a = await readChatStream(response(bytes, cuts), { onText: (piece, so) => seen.push([piece, so.text]) });
  assert.equal(a.text, tokens.join(''));
  assert.deepEqual(seen.map(([p]) => p), tokens, 'one onText per token');
  assert.equal(seen.at(-1)[1], a.text);
  assert.equal(a.finish_reason, 'length');
  assert.deepEqual(a.usage, { prompt_tokens: 9, completion_tokens: 6, total_tokens: 15 });
  assert.equal(a.chunks, 6);
});

test('everything after [DONE] is ignored; a stream without it is an error', async () => {
  const after = new TextEncoder().encode(`${body(['a'], { finish: 'stop' })}data: {"not":"read"}\n\n`);
  const a = await readChatStream(response(after, []));
  assert.equal(a.text, 'a');
  assert.equal(a.finish_reason, 'stop');
  const cut = new TextEncoder().encode(body(['a', 'b'], { done: false }));
  await assert.rejects(readChatStream(response(cut, [10])), (e) => e.code === 'stream_ended');
});

test('an error event in the stream is thrown with its code and message', async () => {
  const s = `${body(['x'], { usage: false, done: false }).split('\n\n').slice(0, 2).join('\n\n')}\n\ndata: {"error":{"code":"internal","message":"the engine stopped"}}\n\ndata: [DONE]\n\n`;
  const seen = [];
  await assert.rejects(
    readChatStream(response(new TextEncoder().encode(s), []), { onText: (p) => seen.push(p) }),
    (e) => e.name === 'ApiError' && e.code === 'internal' && e.message === 'the engine stopped',
  );
  assert.deepEqual(seen, ['x'], 'the text before the error arrived');
  await assert.rejects(readChatStream(response(new TextEncoder().encode('data: {oops\n\n'), [])), (e) => e.code === 'bad_response');
});

test('playground settings become the request fields', () => {
  assert.deepEqual(requestSettings({ temperature: '0', top_p: '0.9', top_k: '40', max_tokens: '32', seed: '7', stop: 'END\n\\n\\n\n' }), {
    temperature: 0,
    top_p: 0.9,
    top_k: 40,
    max_tokens: 32,
    seed: 7,
    stop: ['END', '\n\n'],
  });
  assert.deepEqual(requestSettings({ temperature: '', top_p: ' ', top_k: '0', max_tokens: '', seed: '', stop: '' }), {}, 'empty fields are left to the node');
  assert.throws(() => requestSettings({ max_tokens: '1.5' }), /Max tokens must be a whole number/);
  assert.throws(() => requestSettings({ temperature: 'hot' }), /Temperature must be a number/);
});
