// Unit tests of the console's browser-free modules: the EIP-712 typed-data builders against the
// primary types in docs/API.md, and the Markdown renderer's escaping.
// Run: node --test tests/browser/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import * as eip712 from '../../web/js/eip712.js';
import { renderMarkdown } from '../../web/js/markdown.js';
import { hashHex } from '../../web/js/blake3.js';

const apiDoc = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8');

function encodeType(name) {
  return `${name}(${eip712.TYPES[name].map((f) => `${f.type} ${f.name}`).join(',')})`;
}

test('every primary type matches docs/API.md exactly', () => {
  const documented = apiDoc.match(/^(CreateDatanet|EditDatanet|SetRoles|Contribute|Review|TakeDown)\(.*\)$/gm);
  assert.equal(documented.length, 6);
  for (const line of documented) {
    const name = line.slice(0, line.indexOf('('));
    assert.equal(encodeType(name), line, name);
  }
  assert.deepEqual(Object.keys(eip712.TYPES).sort(), documented.map((l) => l.slice(0, l.indexOf('('))).sort());
});

const domain = { name: 'Commons', version: '1', chainId: 1612 };

test('CreateDatanet typed data: domain, descriptionHash, isPrivate, decimal nonce', () => {
  const td = eip712.createDatanet(domain, {
    slug: 'med-qa',
    name: 'Medical QA',
    summary: 's',
    descriptionHash: hashHex('# Hello'),
    tags: ['health'],
    kind: 'text',
    isPrivate: true,
  });
  assert.equal(td.primaryType, 'CreateDatanet');
  assert.deepEqual(td.domain, domain);
  assert.deepEqual(td.types.EIP712Domain.map((f) => f.name), ['name', 'version', 'chainId']);
  assert.equal(td.message.descriptionHash, `0x${hashHex('# Hello')}`);
  assert.equal(td.message.isPrivate, true);
  assert.match(td.message.nonce, /^[0-9]{1,78}$/);
  assert.ok(BigInt(td.message.nonce) < 2n ** 256n);
  const now = Math.floor(Date.now() / 1000);
  const dl = Number(td.message.deadline);
  assert.ok(dl >= now + 590 && dl <= now + 610, 'deadline is now + 10 minutes, in seconds');
  // every message field is a declared field
  assert.deepEqual(Object.keys(td.message).sort(), eip712.TYPES.CreateDatanet.map((f) => f.name).sort());
  // JSON round trip (what eth_signTypedData_v4 receives)
  assert.deepEqual(JSON.parse(JSON.stringify(td)), td);
});

test('the other builders fill exactly their declared fields', () => {
  const h = hashHex('x');
  const cases = [
    eip712.editDatanet(domain, { datanet: 'd', summary: 's', descriptionHash: h, tags: [] }),
    eip712.setRoles(domain, { datanet: 'd', reviewers: ['0xF39FD6E51AAD88F6F4CE6AB8827279CFFFB92266'], contributors: [] }),
    eip712.contribute(domain, { datanet: 'd', fileHash: h, fileName: 'a.txt' }),
    eip712.review(domain, { datanet: 'd', contributions: [3, 4], accept: false, reason: 'no' }),
    eip712.takeDown(domain, { datanet: 'd', rows: [17], reason: 'pii' }),
  ];
  for (const td of cases) {
    assert.deepEqual(Object.keys(td.message).sort(), eip712.TYPES[td.primaryType].map((f) => f.name).sort(), td.primaryType);
  }
  assert.deepEqual(cases[1].message.reviewers, ['0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266']);
  assert.deepEqual(cases[3].message.contributions, ['3', '4']);
  assert.equal(cases[2].message.fileHash, `0x${h}`);
  assert.notEqual(eip712.randomNonce(), eip712.randomNonce());
  assert.throws(() => eip712.bytes32('abc'));
});

test('markdown: headings, paragraphs, lists, code, links', () => {
  const html = renderMarkdown('# Title\n\nSome *em* and **strong** and `co<de>`.\n\n- a\n- b\n\n1. one\n2. two\n\n```\nx < y\n```\n\n[site](https://example.org/?a=1&b=2)');
  assert.match(html, /<h3>Title<\/h3>/);
  assert.match(html, /<p>Some <em>em<\/em> and <strong>strong<\/strong> and <code>co&lt;de&gt;<\/code>\.<\/p>/);
  assert.match(html, /<ul><li>a<\/li><li>b<\/li><\/ul>/);
  assert.match(html, /<ol><li>one<\/li><li>two<\/li><\/ol>/);
  assert.match(html, /<pre><code>x &lt; y<\/code><\/pre>/);
  assert.match(html, /<a href="https:\/\/example.org\/\?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">site<\/a>/);
});

test('markdown never lets HTML or script URLs through', () => {
  const html = renderMarkdown('<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1)) [y](data:text/html,hi) [z](//evil.example/)\n\n# <b>h</b>\n\n- <script>s</script>\n\n"quoted" \'single\'');
  assert.doesNotMatch(html, /<img|<script|<b>|javascript:|data:|href="\/\//);
  assert.match(html, /&lt;img src=x onerror=alert\(1\)&gt;/);
  assert.match(html, /&quot;quoted&quot; &#39;single&#39;/);
});
