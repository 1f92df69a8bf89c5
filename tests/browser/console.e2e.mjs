// End-to-end test of the Commons web console, driven as a person would drive it, in Debian's
// headless Chromium through playwright-core.
//
//   COMMONS_URL=http://127.0.0.1:8080 COMMONS_USER=alice COMMONS_PASSWORD=... \
//     node tests/browser/console.e2e.mjs
//
// Needs a running node (`commons serve --dev ...`) with a custodial console account
// (`POST /api/v1/console/users` with the admin token). Optional: CHROMIUM (default
// /usr/bin/chromium), SCREENSHOT_DIR (default /tmp), COMMONS_ADAPTER_DIR (a PEFT adapter
// directory for the node's base model: adapter_config.json and adapter_model.safetensors;
// without it the Models and Playground steps are skipped).
//
// Sign in -> create a datanet -> contribute a .txt (3 paragraphs) and a .csv (2 records) and
// watch both progress bars finish -> accept the .txt, reject the .csv with a reason -> the rows
// browser shows exactly the .txt's paragraphs in version 1 -> the diff page says a diff needs
// two versions -> contribute and accept a .jsonl -> the diff 1 -> 2 shows exactly its rows ->
// the owner edits the datanet and takes a row down (diff 2 -> 3 shows it removed).
// Ledger: each version links to the DatanetRegistry transaction that published its root ->
// the Ledger page's head, blocks, transactions, contracts and events -> an account's balance
// and history.
// Models: the base model card once the dev model has loaded -> upload the adapter, see it in
// the table (cold) -> a bad weights file shows the node's message verbatim -> Load / Unload
// move it between tiers -> the Playground on it streams an answer piece by piece, equal to
// the non-streamed answer, with its finish reason and usage -> Stop ends a long answer -> the
// adapter's counters moved -> Remove asks first, then removes it -> signed out, the dev key.
// Any failed check, uncaught page error or console error exits non-zero with a message.

import assert from 'node:assert/strict';
import { mkdtemp, writeFile, mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = (process.env.COMMONS_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const USER = process.env.COMMONS_USER;
const PASSWORD = process.env.COMMONS_PASSWORD;
const SHOTS = process.env.SCREENSHOT_DIR || '/tmp';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS || 15000);
const ADAPTER_DIR = process.env.COMMONS_ADAPTER_DIR || '';
const WITHDRAWAL_TX = process.env.COMMONS_WITHDRAWAL_TX || '';
// The dev model is created when the node starts; generating on a busy CPU takes a while.
const MODEL_TIMEOUT = Number(process.env.E2E_MODEL_TIMEOUT_MS || 180000);

if (!USER || !PASSWORD) {
  console.error('console.e2e: set COMMONS_USER and COMMONS_PASSWORD (a custodial console account), and COMMONS_URL.');
  process.exit(2);
}

// --- the files a contributor uploads ---

const PARAGRAPHS = [
  'The first paragraph describes how the river floods every spring.',
  'A second paragraph, about the farmers who plant rice after the water recedes.',
  'Third: the delta is home to more than two hundred species of birds.',
];
const CSV = 'question,answer\nWhat is the capital of France?,Paris\nHow many legs does a spider have?,8\n';
const REVIEWER = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8'; // dev1 of the well-known development mnemonic
const JSONL_LINES = ['{"q":"Largest planet?","a":"Jupiter"}', '{"q":"Boiling point of water at sea level?","a":"100 C"}'];

// --- harness ---

const problems = [];
let allowedHttpStatus = null; // a console "Failed to load resource" for this status is expected
let page;
let shot = 0;

async function screenshot(name) {
  shot += 1;
  const file = join(SHOTS, `commons-e2e-${String(shot).padStart(2, '0')}-${name}.png`);
  // sticky sidebar and top bar: capture from the top so they sit where a person sees them
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

function checkNoProblems(where) {
  if (problems.length) {
    const list = problems.splice(0).join('\n  ');
    throw new assert.AssertionError({ message: `${where}: the page reported errors:\n  ${list}` });
  }
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    checkNoProblems(name);
    const file = await screenshot(name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, ''));
    console.log(`ok   ${name} (${Date.now() - t0} ms) ${file}`);
  } catch (e) {
    let file = '';
    try {
      file = await screenshot('FAILED');
    } catch {
      /* the page may be gone */
    }
    console.error(`FAIL ${name}\n     ${e && e.message ? e.message.split('\n').join('\n     ') : e}`);
    if (file) console.error(`     screenshot: ${file}`);
    throw e;
  }
}

/** Poll `fn` until it returns a truthy value. */
async function until(fn, message, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new assert.AssertionError({ message: `timed out after ${timeout} ms: ${message}${last instanceof Error ? ` (${last.message})` : ''}` });
}

async function go(hash) {
  await page.goto(`${BASE}/${hash}`);
  await page.waitForLoadState('domcontentloaded');
}

async function visible(selector, timeout = TIMEOUT) {
  const l = page.locator(selector).first();
  await l.waitFor({ state: 'visible', timeout });
  return l;
}

async function texts(selector) {
  return (await page.locator(selector).allInnerTexts()).map((t) => t.trim());
}

/** Fail the run on any uncaught error, console error, or request leaving the node. */
function watch(p) {
  p.setDefaultTimeout(TIMEOUT);
  p.on('pageerror', (e) => problems.push(`uncaught page error: ${e.message}`));
  p.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    if (allowedHttpStatus && text.includes(`status of ${allowedHttpStatus}`)) return;
    problems.push(`console error: ${text}${m.location() && m.location().url ? ` (${m.location().url})` : ''}`);
  });
  p.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(BASE) && !u.startsWith('data:') && !u.startsWith('blob:')) problems.push(`the console loaded something from outside the node: ${u}`);
  });
  return p;
}

/**
 * A stand-in EIP-1193 wallet injected before the console loads. It holds no key: it signs by
 * handing the typed data to the node's custodial signer for the given session, which lets the
 * test drive the console's wallet path (eth_requestAccounts, eth_chainId,
 * eth_signTypedData_v4 with the typed data as a JSON string) end to end.
 */
function fakeWallet({ token, address, chainId }) {
  const calls = [];
  window.__walletCalls = calls;
  window.ethereum = {
    isCommonsTestWallet: true,
    on() {},
    async request({ method, params }) {
      calls.push(method);
      switch (method) {
        case 'eth_requestAccounts':
        case 'eth_accounts':
          return [address];
        case 'eth_chainId':
          return `0x${chainId.toString(16)}`;
        case 'wallet_switchEthereumChain':
          return null;
        case 'eth_signTypedData_v4': {
          const [who, json] = params;
          if (String(who).toLowerCase() !== address) throw Object.assign(new Error('unknown account'), { code: 4100 });
          if (typeof json !== 'string') throw new Error('eth_signTypedData_v4 takes the typed data as a JSON string');
          const r = await fetch('/api/v1/console/sign', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', 'X-Commons-Session': token },
            body: JSON.stringify({ typed_data: JSON.parse(json) }),
          });
          const b = await r.json();
          if (!r.ok) throw Object.assign(new Error(b.error.message), { code: 4001 });
          return b.signature;
        }
        default:
          throw Object.assign(new Error(`unsupported method ${method}`), { code: 4200 });
      }
    },
  };
}

// --- the run ---

const dir = await mkdtemp(join(tmpdir(), 'commons-e2e-'));
await mkdir(SHOTS, { recursive: true });
const txtPath = join(dir, 'river-delta.txt');
const csvPath = join(dir, 'quiz.csv');
const jsonlPath = join(dir, 'more-quiz.jsonl');
await writeFile(txtPath, `${PARAGRAPHS.join('\n\n')}\n`);
await writeFile(csvPath, CSV);
await writeFile(jsonlPath, `${JSONL_LINES.join('\n')}\n`);

const stamp = Date.now().toString(36);
const slug = `e2e-${stamp}`;
const name = `E2E river delta ${stamp}`;
const tag = `e2e-${stamp}`;

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let exitCode = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  page = watch(await context.newPage());

  await step('console loads with node status', async () => {
    await go('');
    await until(async () => (await page.url()).includes('#/datanets'), 'the console redirects to #/datanets');
    const status = await visible('.node-status .node-name');
    assert.match(await status.innerText(), /v\d+\.\d+/, 'the top bar shows the node version');
    const peer = await page.locator('#peer-id').innerText();
    assert.ok(peer.includes('…'), `the top bar shows a shortened peer id, got "${peer}"`);
    await visible('#nav a.nav-item.active');
    await visible('#sign-in-link');
  });

  await step('sign in with the custodial account', async () => {
    await page.click('#sign-in-link');
    await visible('#login-form');
    await screenshot('login-page');
    const label = await page.locator('.callout-warn').innerText();
    assert.match(label, /custodial: the node holds this account.s key/i, 'the custodial sign-in is labelled');
    assert.ok(await page.locator('#wallet-connect').count(), 'the wallet sign-in is shown too');
    await page.fill('#login-username', USER);
    await page.fill('#login-password', PASSWORD);
    await page.click('#login-submit');
    await until(async () => (await page.url()).includes('#/datanets') || (await page.locator('#login-form .alert-error').count()) > 0, 'after signing in the console goes to the datanets');
    if (await page.locator('#login-form .alert-error').count()) {
      problems.splice(0); // the console error of the refused login is expected here; report the page's message
      assert.fail(`the node refused the sign-in: ${(await page.locator('#login-form .alert-error').innerText()).replace(/\s+/g, ' ')}`);
    }
    const who = await visible('#signed-in');
    assert.match(await who.innerText(), new RegExp(USER), 'the top bar shows who is signed in');
    assert.match(await who.innerText(), /custodial/i);
  });

  await step('create a datanet', async () => {
    await page.click('a[href="#/datanets/new"]');
    await visible('#create-form');
    await page.fill('input[name=name]', name);
    assert.equal(await page.inputValue('input[name=slug]'), slugifyLikeConsole(name), 'the slug follows the name');
    await page.fill('input[name=slug]', slug);
    await page.fill('input[name=summary]', 'Paragraphs about a river delta, for the end-to-end test.');
    await page.fill('textarea[name=description]', '# About\n\nRows are **paragraphs** about the delta.\n\n- one fact per row\n- English\n\n<script>alert(1)</script>');
    await page.fill('input[name=tags]', `${tag}, Geography, geography`);
    await page.selectOption('select[name=kind]', 'text');
    await page.click('#create-submit');
    await until(async () => (await page.url()).endsWith(`#/datanets/${slug}`), 'the console opens the new datanet');
    await visible('#description');
    assert.equal((await page.locator('.page-header h1').innerText()).trim(), name);
    const desc = page.locator('#description');
    assert.equal(await desc.locator('h3').innerText(), 'About', 'the markdown heading is rendered');
    assert.equal(await desc.locator('strong').innerText(), 'paragraphs');
    assert.equal(await desc.locator('li').count(), 2, 'the markdown list is rendered');
    assert.equal(await desc.locator('script').count(), 0, 'HTML in the description is escaped');
    assert.match(await desc.innerText(), /<script>alert\(1\)<\/script>/, 'the escaped HTML shows as text');
    const tags = await texts('.kv .tag');
    assert.deepEqual(tags, [tag, 'geography'], 'tags are normalised (lowercase, no repeats)');
  });

  await step('creating it again shows the API error readably', async () => {
    await go('#/datanets/new');
    await visible('#create-form');
    await page.fill('input[name=name]', name);
    await page.fill('input[name=slug]', slug);
    allowedHttpStatus = 409;
    await page.click('#create-submit');
    const err = await visible('.form-errors .alert-error');
    allowedHttpStatus = null;
    assert.match(await err.innerText(), /slug_taken/, 'the error code is shown');
    assert.match(await err.innerText(), new RegExp(slug), 'the message names the slug');
  });

  await step('the list shows the datanet and filters by tag', async () => {
    await go(`#/datanets?tag=${encodeURIComponent(tag)}`);
    const card = await visible(`.datanet-card[data-slug="${slug}"]`);
    assert.match(await card.innerText(), /Paragraphs about a river delta/);
    assert.equal(await page.locator('.datanet-card').count(), 1, 'only the tagged datanet is listed');
    await page.click('#owner-filter');
    await until(async () => (await page.url()).includes('owner=0x'), 'the "Mine" filter adds the owner');
    await visible(`.datanet-card[data-slug="${slug}"]`);
  });

  await step('contribute a .txt and a .csv with progress bars', async () => {
    await go(`#/datanets/${slug}`);
    await page.click('.page-actions a:has-text("Contribute")');
    await visible('#dropzone');
    await page.setInputFiles('#file-input', [txtPath, csvPath]);
    await visible('.file-item[data-file="river-delta.txt"]');
    await visible('.file-item[data-file="quiz.csv"]');
    const seen = { 'river-delta.txt': new Set(), 'quiz.csv': new Set() };
    const watch = setInterval(async () => {
      for (const f of Object.keys(seen)) {
        try {
          const v = await page.locator(`.file-item[data-file="${f}"] .progress`).getAttribute('aria-valuenow', { timeout: 200 });
          if (v !== null) seen[f].add(Number(v));
        } catch {
          /* between renders */
        }
      }
    }, 20);
    await page.click('#upload-button');
    try {
      for (const f of Object.keys(seen)) {
        await until(async () => (await page.locator(`.file-item[data-file="${f}"]`).getAttribute('data-state')) === 'done' || (await page.locator(`.file-item[data-file="${f}"]`).getAttribute('data-state')) === 'error', `${f} finishes uploading`);
      }
    } finally {
      clearInterval(watch);
    }
    for (const f of Object.keys(seen)) {
      const item = page.locator(`.file-item[data-file="${f}"]`);
      const state = await item.getAttribute('data-state');
      assert.equal(state, 'done', `${f} was accepted by the node: ${await item.innerText()}`);
      assert.equal(await item.locator('.progress').getAttribute('aria-valuenow'), '100', `${f}'s progress bar is full`);
      assert.equal(await item.locator('.progress').getAttribute('data-state'), 'done');
      assert.ok(Math.max(...seen[f], 0) <= 100);
    }
    const txtResult = await page.locator('.file-item[data-file="river-delta.txt"] .file-result').innerText();
    const csvResult = await page.locator('.file-item[data-file="quiz.csv"] .file-result').innerText();
    assert.match(txtResult, /3 rows/, `the .txt made 3 rows: ${txtResult}`);
    assert.match(txtResult, /pending/);
    assert.match(csvResult, /2 rows/, `the .csv made 2 rows: ${csvResult}`);
    await visible('#upload-summary .alert-ok');
  });

  await step('review: accept the .txt, reject the .csv with a reason', async () => {
    await page.click('#upload-summary a:has-text("review queue")');
    await visible('#review-table tr.contribution[data-file="river-delta.txt"]');
    assert.equal(await page.locator('#review-table tr.contribution').count(), 2, 'both files are pending');
    const txtRow = page.locator('#review-table tr.contribution[data-file="river-delta.txt"]');
    // preview its rows
    await txtRow.locator('.preview-toggle').click();
    await until(async () => (await page.locator('.preview-list li').count()) === 3, 'the preview shows the 3 rows');
    assert.deepEqual(await texts('.preview-list li'), PARAGRAPHS, 'the preview shows the paragraphs');
    const blobHref = await txtRow.locator('a.blob-link').getAttribute('href');
    assert.match(blobHref, /^\/api\/v1\/blobs\/[0-9a-f]{64}$/);
    const blob = await page.request.get(`${BASE}${blobHref}`);
    assert.equal(blob.status(), 200);
    assert.equal(await blob.text(), `${PARAGRAPHS.join('\n\n')}\n`, 'the original file link answers the uploaded bytes');
    await screenshot('review-preview');

    await txtRow.locator('input.select-contribution').check();
    await page.click('#accept-selected');
    await visible('.modal');
    await page.fill('.modal textarea[name=reason]', 'Clean, well-sourced paragraphs.');
    await page.click('.modal button[type=submit]');
    const outcome = await visible('#review-outcome');
    assert.match(await outcome.innerText(), /version 1 adds 3 rows/, await outcome.innerText());
    await until(async () => (await page.locator('#review-table tr.contribution').count()) === 1, 'one contribution is left pending');
    await screenshot('accepted');

    await page.locator('#review-table tr.contribution[data-file="quiz.csv"] input.select-contribution').check();
    await page.click('#reject-selected');
    await visible('.modal');
    // a rejection needs a reason
    await page.click('.modal button[type=submit]');
    assert.match(await page.locator('.modal .field-error').innerText(), /Reason is required/);
    await page.fill('.modal textarea[name=reason]', 'Quiz questions do not belong in this datanet.');
    await page.click('.modal button[type=submit]');
    await until(async () => /Rejected 1 contribution/.test(await page.locator('#review-outcome').innerText()), 'the rejection is confirmed');
    await visible('.empty-title:has-text("The queue is empty")');

    await go(`#/datanets/${slug}/review?status=rejected`);
    const rejected = await visible('#review-table tr.contribution[data-file="quiz.csv"]');
    assert.match(await rejected.innerText(), /Quiz questions do not belong/, 'the reason is kept');
  });

  await step('rows of version 1 are the accepted paragraphs', async () => {
    await go(`#/datanets/${slug}/rows?version=1`);
    await visible('.rows-table tbody tr.row');
    await until(async () => (await page.locator('.rows-table tbody tr.row').count()) === 3, 'three rows are listed');
    assert.deepEqual(await texts('.rows-table .row-text'), PARAGRAPHS, 'version 1 holds exactly the .txt paragraphs, in order');
    assert.equal(await page.inputValue('#version-picker'), '1');
    assert.match(await page.locator('#rows-count').innerText(), /Showing 3 of 3 rows/);
    await until(async () => /river-delta\.txt/.test(await page.locator('.rows-table .contrib-ref').first().innerText()), 'each row names its contribution');
  });

  await step('a diff needs two versions (there is no version 0)', async () => {
    await go(`#/datanets/${slug}/diff`);
    const e = await visible('.empty');
    assert.match(await e.innerText(), /Only one version so far/);
    assert.match(await e.innerText(), /no version 0/);
  });

  await step('contribute and accept a second file', async () => {
    await go(`#/datanets/${slug}/contribute`);
    await visible('#dropzone');
    await page.setInputFiles('#file-input', [jsonlPath]);
    await page.click('#upload-button');
    await until(async () => (await page.locator('.file-item[data-file="more-quiz.jsonl"]').getAttribute('data-state')) === 'done', 'the .jsonl uploads');
    assert.equal(await page.locator('.file-item[data-file="more-quiz.jsonl"] .progress').getAttribute('aria-valuenow'), '100');
    assert.match(await page.locator('.file-item[data-file="more-quiz.jsonl"] .file-result').innerText(), /2 rows/);
    await go(`#/datanets/${slug}/review`);
    await page.locator('#select-all').check();
    await page.click('#accept-selected');
    await visible('.modal');
    await page.click('.modal button[type=submit]');
    const outcome = await visible('#review-outcome');
    assert.match(await outcome.innerText(), /version 2 adds 2 rows \(5 in total\)/, await outcome.innerText());
  });

  await step('diff 1 -> 2 shows exactly the new rows', async () => {
    await page.click('#review-outcome a:has-text("Diff v1")');
    await visible('#added-count');
    assert.equal(await page.inputValue('#diff-from'), '1');
    assert.equal(await page.inputValue('#diff-to'), '2');
    assert.equal(await page.locator('#added-count').innerText(), '+2 added');
    assert.equal(await page.locator('#removed-count').innerText(), '−0 removed');
    assert.deepEqual(await texts('#diff-added .row-text'), JSONL_LINES, 'the added rows are the .jsonl lines');
    assert.equal(await page.locator('#diff-removed').isVisible(), false, 'nothing was removed');
  });

  await step('each version links to the ledger transaction that published its root', async () => {
    await go(`#/datanets/${slug}`);
    await until(async () => {
      // The page does not poll: reload it until the publication is mined.
      await page.reload();
      await visible('#versions');
      return /block/.test(await page.locator('#versions tr[data-version="2"] .col-ledger').innerText());
    }, 'version 2 is confirmed on the ledger (the operator publishes it)', 30000);
    await page.locator('#versions tr[data-version="2"] .col-ledger a').click();
    await visible('#tx-details');
    assert.match(await page.locator('#tx-details').innerText(), /publishVersion/);
    assert.match(await page.locator('#tx-args').innerText(), /number: 2/);
    assert.deepEqual(await texts('#tx-events .event-row td:first-child'), ['VersionPublished']);
  });

  await step('Ledger: the head, recent blocks and transactions, contracts and their events', async () => {
    await go('#/ledger');
    await until(async () => /#\d/.test(await page.locator('#ledger-head').innerText()), 'the head block is shown');
    await visible('#txs-table');
    assert.match(await page.locator('#txs-table').innerText(), /publishVersion/);
    await visible('#ledger-contracts tr[data-name="DatanetRegistry"]');
    assert.ok((await texts('#ledger-events .event-row td:first-child')).includes('VersionPublished'), 'the registry event is listed');
    assert.match(await page.locator('#ledger-supply').getAttribute('title'), /^1000000000 OPEN$/);
    await page.locator('#blocks-table .block-row .block-link').first().click();
    await visible('#block-header');
    assert.match(await page.locator('#block-txs').innerText(), /setL1BlockValues/);
  });

  await step('Ledger: an account, its balance and its history', async () => {
    await go('#/ledger');
    await visible('#account-form');
    await page.fill('#account-address', '0x1234');
    await page.click('#account-form button[type=submit]');
    await until(async () => /40 hex digits/.test(await page.locator('#account-form + .field-error').innerText()), 'a bad address is refused in the form');
    const dev0 = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
    await page.fill('#account-address', dev0);
    await page.click('#account-form button[type=submit]');
    await visible('#account-balance');
    assert.match(await page.locator('#account-balance').innerText(), /OPEN$/);
    await visible('#account-txs');
    assert.match(await page.locator('#account-txs').innerText(), /publishVersion/);
  });

  await step('Ledger: a withdrawal to L1 and its proof for the portal', async () => {
    assert.ok(WITHDRAWAL_TX, 'COMMONS_WITHDRAWAL_TX names a withdrawal transaction');
    await go(`#/ledger/tx/${WITHDRAWAL_TX}`);
    await visible('#tx-details');
    assert.deepEqual(await texts('#tx-events .event-row td:first-child'), ['MessagePassed']);
    await page.click('#withdrawal-prove');
    await visible('#withdrawal-output');
    assert.match(await page.locator('#withdrawal-output').innerText(), /Output root\s+0x[0-9a-f]{64}/);
    const proof = JSON.parse(await page.locator('#withdrawal-json').textContent());
    assert.equal(proof.withdrawals.length, 1);
    assert.equal(proof.withdrawals[0].value_open, '1');
    assert.ok(proof.withdrawals[0].proof.length > 0, 'the storage proof has nodes');
    // An output from before the withdrawal cannot prove it: a readable error, nothing else.
    await page.fill('#withdrawal-block', '0');
    allowedHttpStatus = 400;
    await page.click('#withdrawal-prove');
    const err = await visible('#withdrawal-proof .alert-error');
    allowedHttpStatus = null;
    assert.match(await err.innerText(), /cannot prove/);
  });

  await step('search finds the accepted paragraph, highlighted, and links to its rows', async () => {
    await go('#/search');
    await visible('#search-q');
    await page.fill('#search-q', 'rice farmers');
    await page.selectOption('#search-datanet', slug);
    // The index follows the store within a moment; search again until the hit is there.
    await until(async () => {
      await page.click('#search-go');
      await page.waitForTimeout(200);
      return (await page.locator('#search-hits .search-hit').count()) === 1;
    }, 'one hit for the second paragraph');
    const hit = page.locator('#search-hits .search-hit').first();
    const marks = await hit.locator('.search-snippet mark').allInnerTexts();
    assert.deepEqual(marks.map((m) => m.toLowerCase()).sort(), ['farmers', 'rice'], `highlighted words: ${marks}`);
    assert.match(await hit.innerText(), new RegExp(slug));
    assert.match(await page.locator('#search-count').innerText(), /^1 matching row\b/);
    await hit.locator('a.search-hit-row').click();
    await visible('.rows-table tbody tr.row');
    assert.ok((await page.url()).includes(`#/datanets/${slug}/rows`), `the hit links to the rows (${page.url()})`);
    await go('#/search');
    await page.fill('#search-q', '"unbalanced');
    allowedHttpStatus = 400;
    await page.click('#search-go');
    const err = await visible('#search-results .alert-error');
    allowedHttpStatus = null;
    assert.match(await err.innerText(), /quote|parse|query/i, 'a bad query shows a readable error');
  });

  await step('SQL: a grouped query as a table, as a chart, and exported as CSV', async () => {
    await go('#/sql');
    await visible('#sql-editor');
    const sql = `SELECT c.status, count(*) AS n FROM contributions c JOIN datanets d ON c.datanet = d.id WHERE d.slug = '${slug}' GROUP BY c.status ORDER BY c.status`;
    await page.fill('#sql-editor', sql);
    await page.click('#sql-run');
    await visible('#sql-result tbody tr');
    const rows = await page.locator('#sql-result tbody tr').allInnerTexts();
    assert.deepEqual(rows.map((r) => r.split('\t').map((c) => c.trim())), [['accepted', '2'], ['rejected', '1']], `result rows: ${JSON.stringify(rows)}`);
    await page.click('#sql-view-chart');
    const chart = await visible('#sql-chart');
    assert.equal(await chart.locator('rect').count() >= 2, true, 'one bar per status');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#sql-csv')]);
    const csv = await readFile(await download.path(), 'utf8');
    assert.deepEqual(csv.trim().split(/\r?\n/), ['status,n', 'accepted,2', 'rejected,1'], `CSV: ${csv}`);
    await page.fill('#sql-editor', 'DELETE FROM rows');
    allowedHttpStatus = 400;
    await page.click('#sql-run');
    const err = await visible('#sql-output .alert-error');
    allowedHttpStatus = null;
    assert.match(await err.innerText(), /read-only|only queries|not allowed/i, 'a write is refused readably');
  });

  await step('the owner edits the datanet', async () => {
    await go(`#/datanets/${slug}`);
    await page.click('#edit-button');
    await visible('#edit-form');
    await page.fill('#edit-form input[name=summary]', 'Edited: paragraphs and quiz lines about a river delta.');
    await page.fill('#edit-form input[name=tags]', `${tag}, geography, rivers`);
    await page.click('#edit-save');
    await until(async () => /Edited: paragraphs/.test(await page.locator('.page-header .subtitle').innerText()), 'the new summary is shown');
    assert.deepEqual(await texts('.kv .tag'), [tag, 'geography', 'rivers']);
    await until(async () => /Edit 1/.test(await page.locator('.edit-list').innerText()), 'the edit history lists the edit');
    assert.equal(await page.locator('#versions tbody tr').count(), 2, 'two versions are listed');
    // roles (signed SetRoles): make a well-known development address a reviewer
    await page.click('#roles-button');
    await visible('.modal');
    await page.fill('.modal textarea[name=reviewers]', REVIEWER.toUpperCase().replace('0X', '0x'));
    await page.click('.modal button[type=submit]');
    await until(async () => (await page.locator('.kv .addr-list .addr').count()) === 1, 'the reviewer is listed');
    assert.ok((await page.locator('.kv .addr-list .addr').getAttribute('title')).startsWith(REVIEWER), 'the reviewer is the address given');
  });

  await step('the owner takes a row down', async () => {
    await go(`#/datanets/${slug}/rows`);
    await until(async () => (await page.locator('.rows-table tbody tr.row').count()) === 5, 'version 2 lists five rows');
    const row = page.locator('.rows-table tbody tr.row', { hasText: 'Largest planet?' });
    await row.locator('input.select-row').check();
    await page.click('#takedown-selected');
    await visible('.modal');
    await page.fill('.modal textarea[name=reason]', 'Duplicate of another datanet.');
    await page.click('.modal button[type=submit]');
    await until(async () => (await page.url()).endsWith('rows?version=3'), 'the console shows the new version');
    await until(async () => (await page.locator('.rows-table tbody tr.row').count()) === 4, 'version 3 lists four rows');
    assert.ok(!(await texts('.rows-table .row-text')).includes(JSONL_LINES[0]), 'the row is gone from version 3');
    await go(`#/datanets/${slug}/diff?from=2&to=3`);
    await visible('#removed-count');
    assert.equal(await page.locator('#removed-count').innerText(), '−1 removed');
    assert.deepEqual(await texts('#diff-removed .row-text'), [JSONL_LINES[0]]);
  });

  await step('unknown datanets and pages show an error, not a blank page', async () => {
    allowedHttpStatus = 404;
    await go('#/datanets/no-such-datanet-here');
    const err = await visible('.alert-error');
    assert.match(await err.innerText(), /not_found/);
    await screenshot('unknown-datanet');
    allowedHttpStatus = null;
    await go('#/nowhere');
    await visible('.empty-title:has-text("Nothing here")');
  });

  await step('a larger upload reports real progress', async () => {
    // ~300 KB at 200 KB/s of emulated upload bandwidth: about 1.5 s of upload events
    const bigPath = join(dir, 'long-notes.txt');
    await writeFile(bigPath, Array.from({ length: 1500 }, (_, i) => `Note ${i}: ${'the delta keeps moving '.repeat(8)}`).join('\n\n'));
    await go(`#/datanets/${slug}/contribute`);
    await visible('#dropzone');
    await page.setInputFiles('#file-input', [bigPath]);
    await page.evaluate(() => {
      window.__progress = [];
      const bar = document.querySelector('.file-item[data-file="long-notes.txt"] .progress');
      new MutationObserver(() => window.__progress.push(Number(bar.getAttribute('aria-valuenow')))).observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] });
    });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 200000 });
    await page.click('#upload-button');
    await until(async () => (await page.locator('.file-item[data-file="long-notes.txt"]').getAttribute('data-state')) === 'done', 'the larger file uploads', 60000);
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const seen = await page.evaluate(() => window.__progress);
    const between = seen.filter((v) => v > 0 && v < 100);
    assert.ok(between.length >= 2, `the bar moved through intermediate values (saw ${seen.join(', ')})`);
    assert.deepEqual([...seen].sort((a, b) => a - b), seen, 'the bar only moves forward');
    assert.equal(seen.at(-1), 100);
    assert.match(await page.locator('.file-item[data-file="long-notes.txt"] .file-result').innerText(), /1,500 rows|1500 rows/);
  });

  if (ADAPTER_DIR) await modelSteps();
  else console.log('skip Models and Playground: set COMMONS_ADAPTER_DIR to a PEFT adapter directory for the base model');

  await step('sign out', async () => {
    await go('#/datanets');
    await page.click('.account button:has-text("Sign out")');
    await visible('#sign-in-link');
  });
  if (ADAPTER_DIR) {
    await step('signed out on a dev node, the model pages use the development key', async () => {
      await go('#/models');
      await visible('#model-access[data-via="dev"]');
      await visible('#base-id');
      await go('#/playground');
      await visible('#pg-model');
      await visible('#model-access[data-via="dev"]');
    });
  }
  await step('a browser wallet signs through eth_signTypedData_v4', async () => {
    const session = await (await page.request.post(`${BASE}/api/v1/console/login`, { data: { username: USER, password: PASSWORD } })).json();
    const node = await (await page.request.get(`${BASE}/api/v1/node`)).json();
    const walletContext = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    await walletContext.addInitScript(fakeWallet, { token: session.token, address: session.address.toLowerCase(), chainId: node.chain_id });
    page = watch(await walletContext.newPage());
    await go('#/login');
    await page.click('#wallet-connect');
    const who = await visible('#signed-in');
    assert.match(await who.innerText(), /wallet/i, 'the top bar says the wallet signs');
    await go('#/datanets/new');
    await visible('#create-form');
    await page.fill('input[name=name]', `${name} (wallet)`);
    await page.fill('input[name=slug]', `${slug}-w`);
    await page.fill('input[name=tags]', tag);
    await page.click('#create-private');
    await page.click('#create-submit');
    await until(async () => (await page.url()).endsWith(`#/datanets/${slug}-w`), 'the wallet-signed datanet is created');
    const owner = await page.locator('.kv .addr').first().getAttribute('title');
    assert.ok(owner.startsWith(session.address.toLowerCase()), `the wallet's address owns it (${owner})`);
    assert.match(await page.locator('.kv').innerText(), /private/);
    const calls = await page.evaluate(() => window.__walletCalls);
    assert.ok(calls.includes('eth_requestAccounts') && calls.includes('eth_signTypedData_v4'), `wallet calls: ${calls}`);
  });
  console.log(`\nconsole e2e: all checks passed (datanet ${slug}); screenshots in ${SHOTS}`);
} catch (e) {
  exitCode = 1;
  console.error(`\nconsole e2e: FAILED: ${e && e.message ? e.message.split('\n')[0] : e}`);
} finally {
  await browser.close().catch(() => {});
}
process.exit(exitCode);

/**
 * The Models page and the Playground, signed in as USER, with the adapter in ADAPTER_DIR.
 * The cross-checks go straight to the API with the development key.
 */
async function modelSteps() {
  const adapter = `e2e-lora-${stamp}`;
  const cfgPath = join(ADAPTER_DIR, 'adapter_config.json');
  const weightsPath = join(ADAPTER_DIR, 'adapter_model.safetensors');
  const peft = JSON.parse(await readFile(cfgPath, 'utf8'));
  const badDir = join(dir, 'bad-adapter');
  await mkdir(badDir, { recursive: true });
  const badPath = join(badDir, 'adapter_model.safetensors');
  await writeFile(badPath, 'this is not a safetensors file\n');
  const dev = { Authorization: 'Bearer dev' };
  const SYSTEM = 'You answer in one short sentence.';
  const QUESTION = 'What grows in the river delta?';
  const row = () => page.locator(`#adapter-table tr[data-name="${adapter}"]`);
  const cell = async (i) => (await row().locator('td').nth(i).innerText()).trim();
  const count = (text) => Number(String(text).replace(/,/g, ''));
  let answered = 0; // completion tokens of the Playground's first answer
  let before = null; // the adapter's counters when it was added (its files may have served before)

  await step('Models: the base model card, once the model has loaded', async () => {
    await page.click('#nav a[href="#/models"]');
    await until(async () => (await page.url()).includes('#/models'), 'the nav opens the Models page');
    allowedHttpStatus = 503; // while the dev model loads the page answers 503 model_loading and asks again
    await until(
      async () => (await page.locator('#base-id').count()) > 0 || (await page.locator('#model-state[data-state="none"], #model-state[data-state="failed"]').count()) > 0,
      'the base model loads',
      MODEL_TIMEOUT,
    );
    allowedHttpStatus = null;
    if (await page.locator('#model-state').count()) assert.fail(`the model is not served: ${(await page.innerText('#model-state')).replace(/\s+/g, ' ')}`);
    const api = await (await page.request.get(`${BASE}/api/v1/models/base`, { headers: dev })).json();
    assert.equal((await page.innerText('#base-id')).trim(), api.id);
    assert.equal(api.id, 'commons-dev');
    assert.equal((await page.innerText('#base-arch')).trim(), api.arch);
    assert.equal((await page.innerText('#base-context')).trim(), `${api.max_position_embeddings.toLocaleString('en-US')} tokens`);
    assert.equal((await page.innerText('#base-dtype')).trim(), api.dtype);
    assert.match(await page.innerText('#base-params'), /^\d+(\.\d+)? [KMB]$/);
    assert.equal((await page.innerText('#engine-kv')).trim().split(' / ')[1], api.engine.kv_blocks_total.toLocaleString('en-US'), 'KV blocks free / total');
    for (const id of ['engine-running', 'engine-waiting', 'engine-adapters', 'engine-tokens']) assert.match(await page.innerText(`#${id}`), /\d/, id);
    const shown = await page.innerText('#engine-updated');
    await until(async () => (await page.innerText('#engine-updated')) !== shown, 'the engine figures refresh while the page is open', 10000);
    assert.equal(await page.locator('#adapters .empty-title').count() + (await page.locator('#adapter-table').count()), 1, 'the adapters card shows the table or says there are none');
  });

  await step('Models: upload an adapter; the table lists it', async () => {
    assert.ok(await page.locator('#adapter-submit').isDisabled(), 'nothing to upload yet');
    await page.fill('#adapter-name', adapter);
    await page.setInputFiles('#adapter-files', [cfgPath, weightsPath]);
    await until(async () => !(await page.locator('#adapter-submit').isDisabled()), 'both files are picked');
    assert.equal(await page.locator('#adapter-file-list li[data-kind] .file-name').count(), 2, 'both files are listed');
    await page.click('#adapter-submit');
    const added = await visible('#adapter-added, #adapter-upload-result .alert-error');
    assert.match(await added.innerText(), new RegExp(`Added ${adapter}`), 'the node registered the adapter');
    await visible(`#adapter-table tr[data-name="${adapter}"]`);
    const listed = await (await page.request.get(`${BASE}/api/v1/adapters`, { headers: dev })).json();
    const a = listed.adapters.find((x) => x.name === adapter);
    assert.ok(a, `the API lists ${adapter}`);
    assert.equal(await row().getAttribute('data-id'), a.id);
    // Adapter, Rank, Targets, Size, Added by, Tier, Requests, Tokens, Loads, Last load, actions
    assert.match(await cell(0), new RegExp(`${adapter}\\s+${a.id}`), 'name and id');
    assert.equal(await cell(1), String(peft.r), 'rank');
    assert.deepEqual((await cell(2)).split(/\s+/), peft.target_modules.map((t) => t.replace(/_proj$/, '')), 'targets');
    assert.equal(await cell(4), USER, 'added by the signed-in account');
    assert.equal(await cell(5), 'cold', 'a new adapter is cold');
    assert.equal(await row().getAttribute('data-tier'), 'cold');
    before = a.stats;
    assert.equal(await cell(6), before.requests.toLocaleString('en-US'), 'the requests so far');
    assert.equal(await page.inputValue('#adapter-name'), '', 'the form is cleared');
  });

  await step('Models: a file the node refuses shows its message verbatim', async () => {
    await page.fill('#adapter-name', `${adapter}-bad`);
    await page.setInputFiles('#adapter-files', [cfgPath, badPath]);
    await until(async () => !(await page.locator('#adapter-submit').isDisabled()), 'both files are picked');
    allowedHttpStatus = 422;
    await page.click('#adapter-submit');
    const err = await visible('#adapter-upload-result .alert-error');
    allowedHttpStatus = null;
    const text = await err.innerText();
    assert.match(text, /bad_adapter/, 'the error code is shown');
    assert.match(text, /HTTP 422/);
    const direct = await page.request.post(`${BASE}/api/v1/adapters`, {
      headers: dev,
      multipart: {
        name: `${adapter}-bad`,
        'adapter_config.json': { name: 'adapter_config.json', mimeType: 'application/json', buffer: await readFile(cfgPath) },
        'adapter_model.safetensors': { name: 'adapter_model.safetensors', mimeType: 'application/octet-stream', buffer: await readFile(badPath) },
      },
    });
    assert.equal(direct.status(), 422);
    const body = await direct.json();
    assert.equal(await err.locator('.alert-msg').textContent(), body.error.message, "the page shows the node's message as it is");
    assert.equal(await page.locator(`#adapter-table tr[data-name="${adapter}-bad"]`).count(), 0, 'the refused adapter is not listed');
    assert.equal(await page.inputValue('#adapter-name'), `${adapter}-bad`, 'the form keeps what was typed');
  });

  await step('Models: Load warms the adapter, Unload frees it', async () => {
    await row().locator(`button[aria-label="Load ${adapter}"]`).click();
    await until(async () => ['host', 'device'].includes(await row().getAttribute('data-tier')), 'the adapter leaves the cold tier');
    assert.match(await row().locator('.tier').innerText(), /^(host|device)$/, 'the badge shows the tier');
    await row().locator(`button[aria-label="Unload ${adapter}"]`).click();
    await until(async () => (await row().getAttribute('data-tier')) === 'cold', 'the adapter is cold again');
    assert.equal(await row().locator('.tier').innerText(), 'cold');
  });

  await step('Playground: chat with the adapter, the answer streams in', async () => {
    await row().locator(`a[aria-label="Chat with ${adapter} in the Playground"]`).click();
    await until(async () => (await page.url()).includes(`#/playground?model=${encodeURIComponent(adapter)}`), 'the Chat link opens the Playground on the adapter');
    await visible('#pg-input');
    assert.equal(await page.inputValue('#pg-model'), adapter, 'the adapter is picked');
    assert.match(await page.innerText('#pg-model-info'), /LoRA adapter on commons-dev/);
    await page.fill('#pg-system', SYSTEM);
    await page.fill('#pg-temperature', '0');
    await page.fill('#pg-max-tokens', '24');
    // Every piece of text the page appends to the answer, as it appends it.
    await page.evaluate(() => {
      window.__pieces = [];
      new MutationObserver((records) => {
        for (const r of records) if (r.type === 'characterData') window.__pieces.push(r.oldValue.length);
      }).observe(document.getElementById('pg-transcript'), { subtree: true, characterData: true, characterDataOldValue: true });
    });
    await page.fill('#pg-input', QUESTION);
    await page.press('#pg-input', 'Enter');
    await visible('#pg-transcript .chat-msg[data-role="user"]');
    const answer = page.locator('#pg-transcript .chat-msg[data-role="assistant"]').last();
    await until(async () => ['done', 'error'].includes(await answer.getAttribute('data-state')) || (await page.locator('#pg-error .alert-error').count()) > 0, 'the answer finishes', MODEL_TIMEOUT);
    if (await page.locator('#pg-error .alert-error').count()) assert.fail(`the chat failed: ${(await page.innerText('#pg-error')).replace(/\s+/g, ' ')}`);
    assert.equal(await answer.getAttribute('data-state'), 'done');
    const text = await answer.locator('.chat-text').textContent();
    const pieces = await page.evaluate(() => window.__pieces);
    assert.ok(pieces.length >= 2, `the answer arrived in pieces, token by token (saw appends at lengths ${JSON.stringify(pieces)})`);
    assert.equal(pieces[0], 0, 'the first piece went into an empty answer');
    assert.ok(pieces.every((n, i) => i === 0 || n > pieces[i - 1]), `the answer only grew (${JSON.stringify(pieces)})`);
    assert.equal(String(pieces.length), await answer.getAttribute('data-chunks'));
    const finish = await answer.locator('.chat-finish').getAttribute('data-finish');
    assert.match(finish, /^(stop|length)$/, 'the finish reason is shown');
    assert.match(await answer.locator('.chat-finish').innerText(), new RegExp(`finish ${finish}`));
    const usage = (await answer.locator('.chat-usage').innerText()).match(/^(\d+) prompt \+ (\d+) completion tokens$/);
    assert.ok(usage, 'the usage is shown');
    // The same request, not streamed: the same answer (temperature 0 is greedy).
    const r = await page.request.post(`${BASE}/v1/chat/completions`, {
      headers: dev,
      data: { model: adapter, messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: QUESTION }], temperature: 0, top_p: 1, max_tokens: 24 },
    });
    const v = await r.json();
    assert.equal(r.status(), 200, JSON.stringify(v));
    assert.equal(text, v.choices[0].message.content, 'the streamed text is the whole answer');
    assert.equal(finish, v.choices[0].finish_reason);
    assert.deepEqual([Number(usage[1]), Number(usage[2])], [v.usage.prompt_tokens, v.usage.completion_tokens], 'the usage matches');
    answered = v.usage.completion_tokens;
    assert.ok(!(await page.locator('#pg-send').isDisabled()) && (await page.locator('#pg-stop').isDisabled()), 'Send is back, Stop is off');
  });

  await step('Playground: Stop ends a long answer early', async () => {
    await page.fill('#pg-max-tokens', '1000');
    // Slow the answer down to a trickle so that it is surely still streaming when Stop is clicked.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: 3000, uploadThroughput: -1 });
    const answer = page.locator('#pg-transcript .chat-msg[data-role="assistant"]').last();
    try {
      await page.fill('#pg-input', 'Tell me a long story about the delta.');
      await page.click('#pg-send');
      await until(async () => (await page.locator('#pg-transcript .chat-msg[data-role="assistant"]').count()) === 2 && Number(await answer.getAttribute('data-chunks')) >= 2, 'the first tokens arrive', MODEL_TIMEOUT);
      assert.equal(await answer.getAttribute('data-state'), 'streaming');
      assert.ok(await page.locator('#pg-send').isDisabled(), 'Send waits while the answer streams');
      await page.click('#pg-stop');
      await until(async () => (await answer.getAttribute('data-state')) !== 'streaming', 'the answer stops');
    } finally {
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    }
    assert.equal(await answer.getAttribute('data-state'), 'stopped');
    assert.equal(await answer.locator('.chat-finish').getAttribute('data-finish'), 'stopped');
    assert.ok((await answer.locator('.chat-text').textContent()).length > 0, 'what arrived stays');
    assert.ok(await page.locator('#pg-stop').isDisabled());
    assert.ok(!(await page.locator('#pg-send').isDisabled()));
  });

  await step('Models: the counters moved; Remove asks first, then removes', async () => {
    await page.click('#nav a[href="#/models"]');
    await visible(`#adapter-table tr[data-name="${adapter}"]`);
    // the Playground's two answers and the API's one
    await until(async () => count(await cell(6)) >= before.requests + 3, 'the requests are counted');
    await until(async () => (await row().getAttribute('data-tier')) === 'device', 'a used adapter sits on the device');
    const least = before.completion_tokens + 2 * answered;
    assert.ok(count(await cell(7)) >= least, `completion tokens counted (${await cell(7)}, at least ${least})`);
    assert.ok(count(await cell(8)) >= 1, 'loads counted');
    assert.match(await cell(9), /^\d+\.\d ms$/, 'the last load time is shown');
    await row().locator(`button[aria-label="Remove ${adapter}"]`).click();
    const dialog = await visible('.modal');
    assert.match(await dialog.innerText(), new RegExp(`Remove ${adapter}\\?`));
    await dialog.locator('button:has-text("Cancel")').click();
    await until(async () => (await page.locator('.modal').count()) === 0, 'the dialog closes');
    assert.equal(await row().count(), 1, 'Cancel keeps the adapter');
    await row().locator(`button[aria-label="Remove ${adapter}"]`).click();
    await visible('.modal');
    await page.click('.modal button[type=submit]');
    await until(async () => (await row().count()) === 0, 'the adapter leaves the table');
    const listed = await (await page.request.get(`${BASE}/api/v1/adapters`, { headers: dev })).json();
    assert.ok(!listed.adapters.some((x) => x.name === adapter), 'the node no longer lists it');
    if (!listed.adapters.length) await visible('#adapters .empty-title:has-text("No adapters yet")');
  });
}

/** The console's slug suggestion (web/js/pages/new.js). */
function slugifyLikeConsole(s) {
  return s.toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
}
