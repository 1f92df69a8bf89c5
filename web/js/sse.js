// Server-sent events as the OpenAI-compatible routes stream them (docs/API.md, "Models and
// adapters"): `data: {json}` events separated by a blank line, ending with `data: [DONE]`.
// Browser-free (fetch's Response, ReadableStream and TextDecoder only), so the unit tests in
// tests/browser run it in Node.

import { ApiError } from './api.js';

/** The data of one event block (its `data:` lines joined), or null when it has none. */
function dataOf(block) {
  const lines = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('data:')) lines.push(line.slice(line.startsWith('data: ') ? 6 : 5));
    // other fields (event:, id:, retry:) and comments (:…) carry nothing the chat needs
  }
  return lines.length ? lines.join('\n') : null;
}

/**
 * An incremental parser: `push(text)` answers the data of every event completed by `text`,
 * in order; a partial event waits for the next push; `end()` answers what the end of the
 * stream completes. Line ends may be \n, \r\n or \r, split anywhere between pushes.
 */
export function sseParser() {
  let buf = '';
  const take = (final) => {
    // A trailing \r may be the first half of \r\n: keep it back until more text comes.
    const hold = !final && buf.endsWith('\r') ? '\r' : '';
    let s = (hold ? buf.slice(0, -1) : buf).replace(/\r\n?/g, '\n');
    const out = [];
    for (let i = s.indexOf('\n\n'); i >= 0; i = s.indexOf('\n\n')) {
      const data = dataOf(s.slice(0, i));
      s = s.slice(i + 2);
      if (data !== null) out.push(data);
    }
    buf = s + hold;
    return out;
  };
  return {
    push(text) {
      buf += text;
      return take(false);
    },
    end() {
      return take(true);
    },
  };
}

/**
 * Read a streamed chat completion from `resp` (a fetch Response whose body is unread).
 * `onText(piece, answer)` runs for every content delta as it arrives. Answers
 * `{text, finish_reason, usage, chunks}` once `data: [DONE]` is read. Throws an ApiError when
 * the stream carries an error event or ends without `[DONE]`, and the fetch's AbortError
 * when its signal aborts the read.
 */
export async function readChatStream(resp, { onText } = {}) {
  const answer = { text: '', finish_reason: null, usage: null, chunks: 0 };
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  const parser = sseParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      const events = done ? [...parser.push(decoder.decode()), ...parser.end()] : parser.push(decoder.decode(value, { stream: true }));
      for (const data of events) {
        if (data.trim() === '[DONE]') return answer;
        let chunk;
        try {
          chunk = JSON.parse(data);
        } catch {
          throw new ApiError(resp.status, 'bad_response', `The node streamed something that is not JSON: ${data.slice(0, 200)}`);
        }
        if (chunk.error) {
          throw new ApiError(resp.status, chunk.error.code || 'internal', chunk.error.message || 'The answer failed.');
        }
        if (chunk.usage) answer.usage = chunk.usage;
        const choice = chunk.choices && chunk.choices[0];
        if (!choice) continue;
        const piece = choice.delta && typeof choice.delta.content === 'string' ? choice.delta.content : '';
        if (piece) {
          answer.text += piece;
          answer.chunks += 1;
          if (onText) onText(piece, answer);
        }
        if (choice.finish_reason) answer.finish_reason = choice.finish_reason;
      }
      if (done) break;
    }
  } catch (e) {
    // Hang up, so the node frees the request's KV blocks at once (it stops generating).
    reader.cancel().catch(() => {});
    throw e;
  }
  throw new ApiError(resp.status, 'stream_ended', 'The stream ended before the answer was complete (no [DONE]).');
}
