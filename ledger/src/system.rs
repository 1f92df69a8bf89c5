//! The system contracts (Solidity in `contracts/src`, compiled by the pinned solc-js into
//! `contracts/artifacts`), predeployed in genesis at fixed addresses: the Commons contracts
//! at `0xC0DE…`, and OP's L1Block and L2ToL1MessagePasser at their OP addresses.
//!
//! Genesis runs each contract's constructor in revm as an ordinary creation and moves the
//! resulting code and storage to the contract's fixed address, so the Solidity constructor
//! (owner, initial parameters) is the one source of the initial state.

use alloy_primitives::{Address, Bytes, TxKind, U256, address};
use revm::context::TxEnv;
use revm::context::result::{ExecutionResult, Output};
use revm::database::{CacheDB, EmptyDB};
use revm::database_interface::DatabaseCommit;
use revm::{Context, ExecuteEvm, MainBuilder, MainContext};

use crate::error::{Error, Result};
pub use crate::genesis::{L1_BLOCK, L2_TO_L1_MESSAGE_PASSER};

/// DatanetRegistry.
pub const DATANET_REGISTRY: Address = address!("0xC0DE000000000000000000000000000000000001");
/// ModelRegistry.
pub const MODEL_REGISTRY: Address = address!("0xC0DE000000000000000000000000000000000002");
/// ContributionStaking.
pub const CONTRIBUTION_STAKING: Address = address!("0xC0DE000000000000000000000000000000000003");
/// InferencePayments.
pub const INFERENCE_PAYMENTS: Address = address!("0xC0DE000000000000000000000000000000000004");
/// AttributionRewards.
pub const ATTRIBUTION_REWARDS: Address = address!("0xC0DE000000000000000000000000000000000005");
/// GovernanceParams.
pub const GOVERNANCE_PARAMS: Address = address!("0xC0DE000000000000000000000000000000000006");

/// Initial fee split in basis points: model owner, data contributors, node, protocol.
pub const INITIAL_SPLIT: [u16; 4] = [4_000, 4_000, 1_500, 500];
/// Initial attribution epoch, seconds.
pub const INITIAL_EPOCH: u64 = 86_400;
/// Initial minimum contribution stake: 10 OPEN.
pub const INITIAL_MIN_STAKE: u128 = 10 * crate::genesis::OPEN;

/// A compiled contract.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Contract name.
    pub name: &'static str,
    /// Creation code.
    pub bytecode: Bytes,
    /// Runtime code.
    pub deployed: Bytes,
}

fn load(name: &'static str, json: &str) -> Result<Artifact> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| Error::Internal(format!("{name} artifact: {e}")))?;
    let hex = |k: &str| -> Result<Bytes> {
        let s = v[k]
            .as_str()
            .ok_or_else(|| Error::Internal(format!("{name} artifact lacks {k}")))?;
        alloy_primitives::hex::decode(s)
            .map(Into::into)
            .map_err(|e| Error::Internal(format!("{name} artifact {k}: {e}")))
    };
    Ok(Artifact {
        name,
        bytecode: hex("bytecode")?,
        deployed: hex("deployedBytecode")?,
    })
}

/// The artifact of a system contract by name.
pub fn artifact(name: &'static str) -> Result<Artifact> {
    let json = match name {
        "DatanetRegistry" => include_str!("../contracts/artifacts/DatanetRegistry.json"),
        "ModelRegistry" => include_str!("../contracts/artifacts/ModelRegistry.json"),
        "ContributionStaking" => include_str!("../contracts/artifacts/ContributionStaking.json"),
        "InferencePayments" => include_str!("../contracts/artifacts/InferencePayments.json"),
        "AttributionRewards" => include_str!("../contracts/artifacts/AttributionRewards.json"),
        "GovernanceParams" => include_str!("../contracts/artifacts/GovernanceParams.json"),
        "L1Block" => include_str!("../contracts/artifacts/L1Block.json"),
        "L2ToL1MessagePasser" => include_str!("../contracts/artifacts/L2ToL1MessagePasser.json"),
        other => return Err(Error::Internal(format!("no system contract {other}"))),
    };
    load(name, json)
}

fn word_addr(a: Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_slice());
    w
}

fn word_u(v: u128) -> [u8; 32] {
    U256::from(v).to_be_bytes::<32>()
}

/// Each system contract's address and creation code with its constructor arguments;
/// `operator` owns, reviews, debits and posts roots.
pub fn creations(operator: Address) -> Result<Vec<(Address, Artifact, Vec<u8>)>> {
    let mut out = Vec::new();
    let with_args = |a: Artifact, args: Vec<[u8; 32]>| {
        let mut code = a.bytecode.to_vec();
        for w in args {
            code.extend_from_slice(&w);
        }
        (a, code)
    };
    let list: Vec<(Address, &'static str, Vec<[u8; 32]>)> = vec![
        (L1_BLOCK, "L1Block", vec![]),
        (L2_TO_L1_MESSAGE_PASSER, "L2ToL1MessagePasser", vec![]),
        (DATANET_REGISTRY, "DatanetRegistry", vec![]),
        (MODEL_REGISTRY, "ModelRegistry", vec![]),
        (
            CONTRIBUTION_STAKING,
            "ContributionStaking",
            vec![word_addr(operator)],
        ),
        (
            INFERENCE_PAYMENTS,
            "InferencePayments",
            vec![word_addr(operator)],
        ),
        (
            ATTRIBUTION_REWARDS,
            "AttributionRewards",
            vec![word_addr(operator)],
        ),
        (
            GOVERNANCE_PARAMS,
            "GovernanceParams",
            vec![
                word_addr(operator),
                word_u(u128::from(INITIAL_SPLIT[0])),
                word_u(u128::from(INITIAL_SPLIT[1])),
                word_u(u128::from(INITIAL_SPLIT[2])),
                word_u(u128::from(INITIAL_SPLIT[3])),
                word_u(u128::from(INITIAL_EPOCH)),
                word_u(INITIAL_MIN_STAKE),
            ],
        ),
    ];
    for (addr, name, args) in list {
        let (a, code) = with_args(artifact(name)?, args);
        out.push((addr, a, code));
    }
    Ok(out)
}

/// A predeployed account: address, runtime code, storage.
pub type Predeploy = (Address, Bytes, Vec<(U256, U256)>);

/// Run each constructor and return the accounts genesis places.
pub fn genesis_accounts(operator: Address) -> Result<Vec<Predeploy>> {
    let deployer = address!("0x000000000000000000000000000000000000C0DE");
    let mut db = CacheDB::new(EmptyDB::default());
    let mut out = Vec::new();
    for (nonce, (fixed, art, code)) in creations(operator)?.into_iter().enumerate() {
        let tx = TxEnv::builder()
            .caller(deployer)
            .kind(TxKind::Create)
            .data(code.into())
            .gas_limit(15_000_000)
            .gas_price(0)
            .nonce(nonce as u64)
            .build_fill();
        let mut evm = Context::mainnet().with_db(&mut db).build_mainnet();
        let res = evm
            .transact(tx)
            .map_err(|e| Error::Internal(format!("genesis deploy of {}: {e}", art.name)))?;
        let created = match &res.result {
            ExecutionResult::Success {
                output: Output::Create(_, Some(a)),
                ..
            } => *a,
            other => {
                return Err(Error::Internal(format!(
                    "the constructor of {} failed at genesis: {other:?}",
                    art.name
                )));
            }
        };
        let acc = res
            .state
            .get(&created)
            .ok_or_else(|| Error::Internal(format!("{} left no account", art.name)))?;
        let runtime = acc
            .info
            .code
            .as_ref()
            .map(|c| c.original_bytes())
            .unwrap_or_default();
        if runtime != art.deployed {
            return Err(Error::Internal(format!(
                "{}: deployed code differs from the artifact's deployedBytecode",
                art.name
            )));
        }
        let storage = acc
            .storage
            .iter()
            .filter(|(_, v)| !v.present_value.is_zero())
            .map(|(k, v)| (*k, v.present_value))
            .collect();
        drop(evm);
        db.commit(res.state);
        out.push((fixed, runtime, storage));
    }
    Ok(out)
}
