// viem against `commons serve --dev`: transfer OPEN, deploy the store contract, call it, read
// its events with getLogs, wait for receipts, and check the revert and nonce errors.
//
// Usage: node viem_client.mjs RPC_URL ARTIFACT_JSON   (prints one JSON line)
import { readFileSync } from 'node:fs';
import {
  createPublicClient, createWalletClient, defineChain, http, parseEther, getContract,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

const [url, artifactPath] = process.argv.slice(2);
const art = JSON.parse(readFileSync(artifactPath, 'utf8'));
const transport = http(url, { timeout: 60_000 });
const probe = createPublicClient({ transport });
const chainId = await probe.getChainId();
const chain = defineChain({
  id: chainId, name: 'commons-dev',
  nativeCurrency: { name: 'OPEN', symbol: 'OPEN', decimals: 18 },
  rpcUrls: { default: { http: [url] } },
});
const pub = createPublicClient({ chain, transport, pollingInterval: 100 });
const account = privateKeyToAccount('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80');
const wallet = createWalletClient({ account, chain, transport });
const out = { chainId };

const to = '0x000000000000000000000000000000000000cafe';
const before = await pub.getBalance({ address: to });
let hash = await wallet.sendTransaction({ to, value: parseEther('2') });
let r = await pub.waitForTransactionReceipt({ hash });
out.transferStatus = r.status;
out.received = (await pub.getBalance({ address: to }) - before).toString();

hash = await wallet.deployContract({ abi: art.abi, bytecode: art.bytecode });
r = await pub.waitForTransactionReceipt({ hash });
out.deployStatus = r.status;
const address = r.contractAddress;
const store = getContract({ address, abi: art.abi, client: { public: pub, wallet } });
hash = await store.write.set([9n]);
r = await pub.waitForTransactionReceipt({ hash });
out.setStatus = r.status;
out.get = (await store.read.get()).toString();
const logs = await pub.getContractEvents({ address, abi: art.abi, eventName: 'Set', fromBlock: 0n });
out.events = logs.map((l) => l.args.x.toString());
out.eventWho = logs[0]?.args.who;
try {
  await pub.simulateContract({ address, abi: art.abi, functionName: 'set', args: [0n], account });
  out.revert = null;
} catch (e) {
  out.revert = e.shortMessage ?? String(e);
  out.revertReason = e.cause?.reason ?? e.cause?.data?.args?.[0] ?? null;
}
try {
  await wallet.sendTransaction({ to, value: 1n, nonce: 0 });
  out.nonceError = null;
} catch (e) {
  out.nonceError = e.details ?? e.shortMessage ?? String(e);
}
const block = await pub.getBlock({ blockTag: 'latest', includeTransactions: true });
out.blockHasBaseFee = typeof block.baseFeePerGas === 'bigint';
out.blockTxs = block.transactions.length;
const fees = await pub.estimateFeesPerGas();
out.maxFeePerGas = fees.maxFeePerGas.toString();
console.log(JSON.stringify(out));
