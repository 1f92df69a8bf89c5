"""web3.py against `commons serve --dev`: transfer OPEN, deploy the store contract, call it,
read its events with get_logs, wait for receipts, and check the errors clients rely on.

Usage: python web3_client.py RPC_URL ARTIFACT_JSON   (prints one JSON line)
"""
import json
import sys

from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError

DEV0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"

url, artifact = sys.argv[1], sys.argv[2]
art = json.load(open(artifact))
w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
out = {"connected": w3.is_connected(), "chain_id": w3.eth.chain_id}
me = Account.from_key(DEV0)
other = Account.from_key(DEV1)


def send(tx, key=DEV0):
    signed = Account.from_key(key).sign_transaction(tx)
    h = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(h, timeout=60, poll_latency=0.1)


# Transfer 1.5 OPEN: an EIP-1559 transaction with web3.py's own fee suggestion.
recipient = "0x000000000000000000000000000000000000bEEF"
before = w3.eth.get_balance(recipient)
base = w3.eth.get_block("latest")["baseFeePerGas"]
tip = w3.eth.max_priority_fee
r = send({
    "to": recipient, "value": w3.to_wei(1.5, "ether"), "gas": 21000,
    "maxFeePerGas": base * 2 + tip, "maxPriorityFeePerGas": tip,
    "nonce": w3.eth.get_transaction_count(me.address, "pending"), "chainId": out["chain_id"],
})
out["transfer_status"] = r["status"]
out["transfer_received"] = str(w3.eth.get_balance(recipient) - before)

# A legacy (EIP-155) transfer from dev1.
r = send({
    "to": recipient, "value": 1, "gas": 21000, "gasPrice": w3.eth.gas_price,
    "nonce": w3.eth.get_transaction_count(other.address, "pending"), "chainId": out["chain_id"],
}, key=DEV1)
out["legacy_status"] = r["status"]

# Deploy (build_transaction estimates gas and fees through the node).
Store = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
tx = Store.constructor().build_transaction({
    "from": me.address, "nonce": w3.eth.get_transaction_count(me.address, "pending"),
})
r = send(tx)
addr = r["contractAddress"]
out["deploy_status"] = r["status"]
out["code_matches"] = w3.eth.get_code(addr).hex().removeprefix("0x") == art["runtime"][2:]
store = w3.eth.contract(address=addr, abi=art["abi"])
out["get_before"] = store.functions.get().call()

# Call set(7) and read the event three ways.
tx = store.functions.set(7).build_transaction({
    "from": me.address, "nonce": w3.eth.get_transaction_count(me.address, "pending"),
})
r = send(tx)
out["set_status"] = r["status"]
out["get_after"] = store.functions.get().call()
ev = store.events.Set().process_receipt(r)
out["event_x"] = ev[0]["args"]["x"]
out["event_who"] = ev[0]["args"]["who"]
logs = store.events.Set().get_logs(from_block=0)
out["get_logs"] = [l["args"]["x"] for l in logs]
raw = w3.eth.get_logs({"address": addr, "fromBlock": 0, "toBlock": "latest"})
out["raw_logs"] = len(raw)

# Errors clients match on.
try:
    store.functions.set(0).call({"from": me.address})
    out["revert"] = None
except ContractLogicError as e:
    out["revert"] = str(e.message if hasattr(e, "message") else e)
try:
    send({"to": recipient, "value": 1, "gas": 21000, "gasPrice": w3.eth.gas_price,
          "nonce": 0, "chainId": out["chain_id"]})
    out["nonce_error"] = None
except Exception as e:  # web3 raises Web3RPCError (ValueError in older releases)
    out["nonce_error"] = str(e)
try:
    send({"to": recipient, "value": w3.to_wei(10**9, "ether"), "gas": 21000,
          "gasPrice": w3.eth.gas_price,
          "nonce": w3.eth.get_transaction_count(me.address, "pending"), "chainId": out["chain_id"]})
    out["funds_error"] = None
except Exception as e:
    out["funds_error"] = str(e)
out["fee_history"] = len(w3.eth.fee_history(4, "latest", [50])["baseFeePerGas"])
print(json.dumps(out))
