// Compile src/*.sol with the pinned solc-js into artifacts/<Name>.json ({abi, bytecode,
// deployedBytecode}). With --check, compile and compare with the committed artifacts instead,
// exiting 1 on any difference (CI runs this).
import { readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import solc from 'solc';

const check = process.argv.includes('--check');
const sources = {};
for (const f of readdirSync('src').filter((f) => f.endsWith('.sol')).sort()) {
  sources[f] = { content: readFileSync(`src/${f}`, 'utf8') };
}
const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'prague',
    // No metadata hash: the bytecode then depends on the sources and settings only.
    metadata: { bytecodeHash: 'none', appendCBOR: false },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors ?? []).filter((e) => e.severity === 'error');
for (const e of out.errors ?? []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);
mkdirSync('artifacts', { recursive: true });
let differ = 0;
for (const [file, contracts] of Object.entries(out.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    const art = JSON.stringify({
      contract: name,
      source: `src/${file}`,
      compiler: `solc ${solc.version()}`,
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    }, null, 1) + '\n';
    const path = `artifacts/${name}.json`;
    if (check) {
      if (!existsSync(path) || readFileSync(path, 'utf8') !== art) {
        console.error(`${path} differs from what ${file} compiles to; run \`npm run build\``);
        differ++;
      }
    } else {
      writeFileSync(path, art);
      console.log(`wrote ${path}`);
    }
  }
}
process.exit(differ ? 1 : 0);
