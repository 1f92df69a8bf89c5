// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// Withdrawals from L2 to L1: each one is recorded as `sentMessages[withdrawalHash]`, and the
/// storage root of this contract goes into every output root, so L1 can prove a withdrawal
/// against an output. The hash and the versioned nonce are OP's (`Hashing.hashWithdrawal`,
/// `Encoding.encodeVersionedNonce`). Unlike OP there is no `burn()`: the withdrawn OPEN stays
/// held here, because the ledger's supply invariant allows nothing to vanish but what L1
/// releases.
contract L2ToL1MessagePasser {
    /// Version encoded in the top two bytes of the nonce.
    uint16 public constant MESSAGE_VERSION = 1;
    /// Gas limit on L1 of a withdrawal made by a plain transfer to this contract.
    uint256 public constant RECEIVE_DEFAULT_GAS_LIMIT = 100_000;

    mapping(bytes32 => bool) public sentMessages; // slot 0
    uint240 internal msgNonce; // slot 1

    event MessagePassed(
        uint256 indexed nonce,
        address indexed sender,
        address indexed target,
        uint256 value,
        uint256 gasLimit,
        bytes data,
        bytes32 withdrawalHash
    );

    /// A plain transfer withdraws to the sender's own address on L1.
    receive() external payable {
        initiateWithdrawal(msg.sender, RECEIVE_DEFAULT_GAS_LIMIT, bytes(""));
    }

    /// Send `msg.value` and a call of `data` with `gasLimit` to `target` on L1.
    function initiateWithdrawal(address target, uint256 gasLimit, bytes memory data) public payable {
        uint256 nonce = messageNonce();
        bytes32 withdrawalHash = keccak256(abi.encode(nonce, msg.sender, target, msg.value, gasLimit, data));
        sentMessages[withdrawalHash] = true;
        emit MessagePassed(nonce, msg.sender, target, msg.value, gasLimit, data, withdrawalHash);
        unchecked {
            ++msgNonce;
        }
    }

    /// The next withdrawal's nonce, with the message version in its top two bytes.
    function messageNonce() public view returns (uint256) {
        return (uint256(MESSAGE_VERSION) << 240) | uint256(msgNonce);
    }
}
