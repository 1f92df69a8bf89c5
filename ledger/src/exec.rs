//! Running transactions in op-revm: the chain's EVM configuration, and turning signed and
//! deposit transactions into revm's transaction environment.

use alloy_consensus::Transaction as _;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use op_alloy_consensus::{OpTxEnvelope, TxDeposit};
use op_revm::{DefaultOp, OpBuilder, OpHaltReason, OpSpecId, OpTransaction};
use revm::context::result::{ExecutionResult, ResultAndState};
use revm::context::{BlockEnv, CfgEnv, TxEnv};
use revm::database::CacheDB;
use revm::database_interface::DatabaseRef;
use revm::{Context, ExecuteEvm};

use crate::error::{Error, Result};

/// The fork: op-revm's newest, which runs Ethereum's Osaka rules.
pub const SPEC: OpSpecId = OpSpecId::KARST;

/// The EVM configuration of the chain.
pub fn cfg(chain_id: u64) -> CfgEnv<OpSpecId> {
    let mut c = CfgEnv::new_with_spec(SPEC);
    c.chain_id = chain_id;
    c
}

/// What revm needs of a block.
#[derive(Debug, Clone)]
pub struct BlockParams {
    /// Number.
    pub number: u64,
    /// Timestamp.
    pub timestamp: u64,
    /// Base fee.
    pub base_fee: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// prevrandao (the header's mix hash).
    pub prevrandao: B256,
    /// Who gets the priority fees.
    pub beneficiary: Address,
}

/// revm's block environment.
pub fn block_env(b: &BlockParams) -> BlockEnv {
    BlockEnv {
        number: U256::from(b.number),
        beneficiary: b.beneficiary,
        timestamp: U256::from(b.timestamp),
        gas_limit: b.gas_limit,
        basefee: b.base_fee,
        difficulty: U256::ZERO,
        prevrandao: Some(b.prevrandao),
        blob_excess_gas_and_price: Some(revm::context_interface::block::BlobExcessGasAndPrice {
            excess_blob_gas: 0,
            blob_gasprice: 1,
        }),
        ..Default::default()
    }
}

/// revm's view of a signed (non-deposit) transaction from `sender`.
pub fn tx_env(tx: &OpTxEnvelope, sender: Address) -> Result<OpTransaction<TxEnv>> {
    let mut b = TxEnv::builder()
        .tx_type(Some(tx.tx_type() as u8))
        .caller(sender)
        .gas_limit(tx.gas_limit())
        .kind(tx.kind())
        .value(tx.value())
        .data(tx.input().clone())
        .nonce(tx.nonce())
        .chain_id(tx.chain_id());
    match tx {
        OpTxEnvelope::Legacy(_) | OpTxEnvelope::Eip2930(_) => {
            b = b.gas_price(tx.max_fee_per_gas());
        }
        _ => {
            b = b
                .max_fee_per_gas(tx.max_fee_per_gas())
                .gas_priority_fee(tx.max_priority_fee_per_gas());
        }
    }
    if let Some(al) = tx.access_list() {
        b = b.access_list(al.clone());
    }
    if let Some(auth) = tx.authorization_list() {
        b = b.authorization_list_signed(auth.to_vec());
    }
    let base = b
        .build()
        .map_err(|e| Error::Internal(format!("cannot build a tx env: {e:?}")))?;
    let mut op = OpTransaction::new(base);
    op.enveloped_tx = Some(Bytes::from(tx.encoded_2718()));
    Ok(op)
}

/// revm's view of a deposit.
pub fn deposit_env(d: &TxDeposit) -> Result<OpTransaction<TxEnv>> {
    let base = TxEnv::builder()
        .tx_type(Some(op_alloy_consensus::DEPOSIT_TX_TYPE_ID))
        .caller(d.from)
        .gas_limit(d.gas_limit)
        .kind(d.to)
        .value(d.value)
        .data(d.input.clone())
        .gas_price(0)
        .build_fill();
    let mut op = OpTransaction::new(base);
    let mut raw = Vec::new();
    d.encode_2718(&mut raw);
    op.enveloped_tx = Some(raw.into());
    op.deposit.source_hash = d.source_hash;
    op.deposit.mint = Some(d.mint);
    op.deposit.is_system_transaction = d.is_system_transaction;
    Ok(op)
}

/// Execute one transaction over `db` without committing. Errors of the transaction itself
/// (bad nonce, no funds) come back as `Ok(Err(message))`.
pub fn transact<DB: DatabaseRef>(
    db: &mut CacheDB<DB>,
    block: &BlockEnv,
    cfg: &CfgEnv<OpSpecId>,
    tx: OpTransaction<TxEnv>,
) -> Result<std::result::Result<ResultAndState<OpHaltReason>, String>>
where
    DB::Error: std::fmt::Display,
{
    let ctx = Context::op()
        .with_db(db)
        .with_block(block.clone())
        .with_cfg(cfg.clone());
    let mut evm = ctx.build_op();
    match evm.transact(tx) {
        Ok(r) => Ok(Ok(r)),
        Err(revm::context::result::EVMError::Transaction(e)) => Ok(Err(e.to_string())),
        Err(revm::context::result::EVMError::Header(e)) => Ok(Err(e.to_string())),
        Err(e) => Err(Error::Evm(e.to_string())),
    }
}

/// A call's outcome as RPC reports it.
pub fn call_outcome(r: &ExecutionResult<OpHaltReason>) -> Result<Bytes> {
    match r {
        ExecutionResult::Success { output, .. } => Ok(output.data().clone()),
        ExecutionResult::Revert { output, .. } => Err(Error::Reverted {
            reason: revert_reason(output),
            data: output.clone(),
        }),
        ExecutionResult::Halt { reason, .. } => Err(Error::Halted(halt_message(reason))),
    }
}

/// The message geth gives for a halt.
pub fn halt_message(h: &OpHaltReason) -> String {
    use revm::context::result::{HaltReason, OutOfGasError};
    match h {
        OpHaltReason::Base(HaltReason::OutOfGas(OutOfGasError::Basic))
        | OpHaltReason::Base(HaltReason::OutOfGas(_)) => "out of gas".into(),
        OpHaltReason::Base(HaltReason::OpcodeNotFound)
        | OpHaltReason::Base(HaltReason::InvalidFEOpcode) => "invalid opcode".into(),
        OpHaltReason::Base(HaltReason::StackUnderflow) => "stack underflow".into(),
        OpHaltReason::Base(HaltReason::StackOverflow) => "stack overflow".into(),
        OpHaltReason::Base(HaltReason::InvalidJump) => "invalid jump destination".into(),
        other => format!("execution halted: {other:?}"),
    }
}

/// The `Error(string)` reason of revert data, when it has one.
pub fn revert_reason(data: &[u8]) -> Option<String> {
    // Error(string) selector.
    if data.len() < 4 + 64 || data[..4] != [0x08, 0xc3, 0x79, 0xa0] {
        return None;
    }
    let body = &data[4..];
    let len = U256::from_be_slice(&body[32..64]);
    let len = usize::try_from(len).ok()?;
    let s = body.get(64..64usize.checked_add(len)?)?;
    String::from_utf8(s.to_vec()).ok()
}

/// The kind of a call or creation.
pub fn kind(to: Option<Address>) -> TxKind {
    match to {
        Some(a) => TxKind::Call(a),
        None => TxKind::Create,
    }
}
