// Compile Erc20.sol (the ledger benchmark's token) into erc20.json with the solc-js pinned in
// ../contracts (run `npm ci` there first): `node erc20.mjs`. With --check, exit 1 when
// erc20.json differs from what the source compiles to.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const solc = createRequire(import.meta.url)('../contracts/node_modules/solc');
const input = {
  language: 'Solidity',
  sources: { 'Erc20.sol': { content: readFileSync('Erc20.sol', 'utf8') } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'prague',
    metadata: { bytecodeHash: 'none', appendCBOR: false },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
for (const e of out.errors ?? []) console.error(e.formattedMessage);
if ((out.errors ?? []).some((e) => e.severity === 'error')) process.exit(1);
const c = out.contracts['Erc20.sol'].Erc20;
const art = JSON.stringify({
  contract: 'Erc20',
  compiler: `solc ${solc.version()}`,
  abi: c.abi,
  bytecode: '0x' + c.evm.bytecode.object,
}, null, 1) + '\n';
if (process.argv.includes('--check')) {
  const same = readFileSync('erc20.json', 'utf8') === art;
  if (!same) console.error('erc20.json differs from Erc20.sol; run `node erc20.mjs`');
  process.exit(same ? 0 : 1);
}
writeFileSync('erc20.json', art);
console.log('wrote erc20.json');
