#!/usr/bin/env python3
"""Assemble store.json: a tiny contract used by the ledger's tests and the JSON-RPC end-to-end
tests (web3.py, viem). Hand-assembled so the tests need no compiler.

    set(uint256 x)      stores x, emits Set(address indexed who, uint256 x);
                        reverts with Error("zero") when x == 0
    get() -> uint256    the stored value

Run `python3 store.py` to regenerate store.json.
"""
import json

OPS = {"STOP": 0x00, "ADD": 0x01, "EQ": 0x14, "ISZERO": 0x15, "SHR": 0x1C, "SHL": 0x1B,
       "CALLER": 0x33, "CALLDATALOAD": 0x35, "CALLDATASIZE": 0x36, "CODECOPY": 0x39,
       "MSTORE": 0x52, "SLOAD": 0x54, "SSTORE": 0x55, "JUMP": 0x56, "JUMPI": 0x57,
       "JUMPDEST": 0x5B, "DUP1": 0x80, "LOG2": 0xA2, "RETURN": 0xF3, "REVERT": 0xFD}

SET_SELECTOR = 0x60FE47B1  # set(uint256)
GET_SELECTOR = 0x6D4CE63C  # get()
# keccak256("Set(address,uint256)"), checked by the ledger tests
SET_TOPIC = 0xFD28EC3EC2555238D8AD6F9FAF3E4CD10E574CE7E7EF28B73CAA53F9512F65B9


def assemble(prog):
    """prog: list of opcode names, ("PUSH", n, value) or ("PUSHL", label), ("LABEL", name)."""
    # Two passes: label offsets first (every label push is PUSH1).
    labels, pc = {}, 0
    for item in prog:
        if isinstance(item, tuple) and item[0] == "LABEL":
            labels[item[1]] = pc
            pc += 1
        elif isinstance(item, tuple) and item[0] == "PUSH":
            pc += 1 + item[1]
        elif isinstance(item, tuple) and item[0] == "PUSHL":
            pc += 2
        else:
            pc += 1
    out = bytearray()
    for item in prog:
        if isinstance(item, tuple) and item[0] == "LABEL":
            out.append(OPS["JUMPDEST"])
        elif isinstance(item, tuple) and item[0] == "PUSH":
            n, v = item[1], item[2]
            out.append(0x5F + n)
            out += v.to_bytes(n, "big")
        elif isinstance(item, tuple) and item[0] == "PUSHL":
            out.append(0x60)
            out.append(labels[item[1]])
        else:
            out.append(OPS[item])
    return bytes(out)


def P(n, v):
    return ("PUSH", n, v)


runtime = assemble([
    P(1, 0), "CALLDATALOAD", P(1, 0xE0), "SHR",
    "DUP1", P(4, GET_SELECTOR), "EQ", ("PUSHL", "get"), "JUMPI",
    "DUP1", P(4, SET_SELECTOR), "EQ", ("PUSHL", "set"), "JUMPI",
    P(1, 0), "DUP1", "REVERT",
    ("LABEL", "get"),
    P(1, 0), "SLOAD", P(1, 0), "MSTORE", P(1, 0x20), P(1, 0), "RETURN",
    ("LABEL", "set"),
    P(1, 4), "CALLDATALOAD", "DUP1", "ISZERO", ("PUSHL", "zero"), "JUMPI",
    "DUP1", P(1, 0), "SSTORE",
    P(1, 0), "MSTORE", "CALLER", P(32, SET_TOPIC), P(1, 0x20), P(1, 0), "LOG2",
    P(1, 0), P(1, 0), "RETURN",
    ("LABEL", "zero"),
    P(4, 0x08C379A0), P(1, 0xE0), "SHL", P(1, 0), "MSTORE",
    P(1, 0x20), P(1, 4), "MSTORE",
    P(1, 4), P(1, 0x24), "MSTORE",
    P(4, 0x7A65726F), P(1, 0xE0), "SHL", P(1, 0x44), "MSTORE",
    P(1, 0x64), P(1, 0), "REVERT",
])
assert len(runtime) < 256
init_len = 12
init = assemble([P(1, len(runtime)), "DUP1", P(1, init_len), P(1, 0), "CODECOPY", P(1, 0), "RETURN"])
init = init + bytes([0x00] * (init_len - len(init)))  # pad to init_len (STOPs, never reached)
assert len(init) == init_len

abi = [
    {"type": "function", "name": "set", "stateMutability": "nonpayable",
     "inputs": [{"name": "x", "type": "uint256"}], "outputs": []},
    {"type": "function", "name": "get", "stateMutability": "view",
     "inputs": [], "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "event", "name": "Set", "anonymous": False,
     "inputs": [{"name": "who", "type": "address", "indexed": True},
                {"name": "x", "type": "uint256", "indexed": False}]},
]
json.dump({"abi": abi, "bytecode": "0x" + (init + runtime).hex(), "runtime": "0x" + runtime.hex()},
          open(__file__.replace("store.py", "store.json"), "w"), indent=1)
