//! The L1 side of withdrawals: for a transaction that initiated withdrawals through the
//! L2ToL1MessagePasser predeploy, everything OP's `OptimismPortal.proveWithdrawalTransaction`
//! takes on L1 — each withdrawal as the portal hashes it, the output root of an L2 block with
//! the preimage it is made of, and the storage proof that the message passer recorded the
//! withdrawal hash in that block's state.
//!
//! The proof can be made against any block from the one that holds the withdrawal on (the
//! output that L1 has accepted), as far back as [`Ledger::proof`] serves older blocks.

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_sol_types::{SolEvent, SolValue, sol};

use crate::chain::{Ledger, output_root};
use crate::error::{Error, Result};
use crate::genesis::L2_TO_L1_MESSAGE_PASSER;

sol! {
    /// The message passer's event (ledger/contracts/src/L2ToL1MessagePasser.sol).
    event MessagePassed(
        uint256 indexed nonce,
        address indexed sender,
        address indexed target,
        uint256 value,
        uint256 gasLimit,
        bytes data,
        bytes32 withdrawalHash
    );
}

/// One withdrawal, as OP's `Types.WithdrawalTransaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    /// Versioned nonce (message version in the top two bytes).
    pub nonce: U256,
    /// Who initiated it on L2.
    pub sender: Address,
    /// Who is called on L1.
    pub target: Address,
    /// OPEN (wei) sent along.
    pub value: U256,
    /// Gas for the call on L1.
    pub gas_limit: U256,
    /// Calldata for the call on L1.
    pub data: Bytes,
}

impl Withdrawal {
    /// OP's `Hashing.hashWithdrawal`: keccak of the ABI-encoded fields.
    pub fn hash(&self) -> B256 {
        keccak256(
            (
                self.nonce,
                self.sender,
                self.target,
                self.value,
                self.gas_limit,
                self.data.clone(),
            )
                .abi_encode_params(),
        )
    }

    /// The message passer's storage slot that records it: `sentMessages[hash]` (slot 0).
    pub fn storage_slot(&self) -> B256 {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(self.hash().as_slice());
        keccak256(b)
    }
}

/// What L1 needs to prove the withdrawals of one transaction against one L2 output.
#[derive(Debug, Clone)]
pub struct WithdrawalProof {
    /// The block that holds the initiating transaction.
    pub initiated_in: u64,
    /// The L2 block whose output the proof is against.
    pub l2_block: u64,
    /// That block's output root.
    pub output_root: B256,
    /// Its state root (output root preimage).
    pub state_root: B256,
    /// The message passer's storage root in that state (output root preimage).
    pub message_passer_storage_root: B256,
    /// The block's hash (output root preimage).
    pub block_hash: B256,
    /// Each withdrawal with the storage proof of its `sentMessages` slot.
    pub withdrawals: Vec<(Withdrawal, Vec<Bytes>)>,
}

impl Ledger {
    /// The withdrawals transaction `tx` initiated, in log order (empty when it initiated none
    /// or reverted). [`Error::NotFound`] for an unknown transaction.
    pub fn withdrawals_of(&self, tx: &B256) -> Result<(u64, Vec<Withdrawal>)> {
        let r = self
            .receipt(tx)?
            .ok_or_else(|| Error::NotFound(format!("no transaction {tx:#x}")))?;
        let mut out = Vec::new();
        for log in &r.receipt.logs {
            if Address::from(log.address) != L2_TO_L1_MESSAGE_PASSER
                || log.topics.first() != Some(&MessagePassed::SIGNATURE_HASH.0)
            {
                continue;
            }
            let topics: Vec<B256> = log.topics.iter().map(|t| B256::from(*t)).collect();
            let e = MessagePassed::decode_raw_log(topics, &log.data)
                .map_err(|e| Error::Corrupt(format!("a MessagePassed log of {tx:#x}: {e}")))?;
            let w = Withdrawal {
                nonce: e.nonce,
                sender: e.sender,
                target: e.target,
                value: e.value,
                gas_limit: e.gasLimit,
                data: e.data,
            };
            if w.hash() != e.withdrawalHash {
                return Err(Error::Corrupt(format!(
                    "a withdrawal of {tx:#x} hashes to {}, its event says {}",
                    w.hash(),
                    e.withdrawalHash
                )));
            }
            out.push(w);
        }
        Ok((r.block_number, out))
    }

    /// The proof of transaction `tx`'s withdrawals against the output of block `at` (the head
    /// when `None`), checked here before it is handed out.
    pub fn withdrawal_proof(&self, tx: &B256, at: Option<u64>) -> Result<WithdrawalProof> {
        let (initiated_in, withdrawals) = self.withdrawals_of(tx)?;
        if withdrawals.is_empty() {
            return Err(Error::Invalid(format!(
                "transaction {tx:#x} initiated no withdrawal (no MessagePassed event of the L2ToL1MessagePasser {L2_TO_L1_MESSAGE_PASSER})"
            )));
        }
        let n = at.unwrap_or(self.head().header.number);
        if n < initiated_in {
            return Err(Error::Invalid(format!(
                "the withdrawal is in block {initiated_in}; an output of block {n} cannot prove it"
            )));
        }
        let (header, block_hash) = self
            .header(n)?
            .ok_or_else(|| Error::NotFound("header not found".into()))?;
        let slots: Vec<B256> = withdrawals.iter().map(Withdrawal::storage_slot).collect();
        let p = self.proof(&L2_TO_L1_MESSAGE_PASSER, &slots, Some(n))?;
        let passer_root = header.withdrawals_root.unwrap_or_default();
        if p.account.storage_root != passer_root {
            return Err(Error::Corrupt(format!(
                "the message passer's storage root at block {n} is {}, the header says {passer_root}",
                p.account.storage_root
            )));
        }
        let mut out = Vec::new();
        for (w, (slot, value, nodes)) in withdrawals.into_iter().zip(p.storage) {
            if value != U256::from(1) {
                return Err(Error::Corrupt(format!(
                    "sentMessages[{}] is {value} at block {n}",
                    w.hash()
                )));
            }
            alloy_trie::proof::verify_proof(
                passer_root,
                alloy_trie::Nibbles::unpack(keccak256(slot)),
                Some(alloy_rlp::encode(value)),
                &nodes,
            )
            .map_err(|e| Error::Corrupt(format!("withdrawal proof at block {n}: {e}")))?;
            out.push((w, nodes));
        }
        Ok(WithdrawalProof {
            initiated_in,
            l2_block: n,
            output_root: output_root(&header, block_hash),
            state_root: header.state_root,
            message_passer_storage_root: passer_root,
            block_hash,
            withdrawals: out,
        })
    }
}
