//! The system contracts run in revm from their genesis state: every call and every revert
//! path of each contract.

use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_sol_types::{SolCall, SolError, sol};
use revm::bytecode::Bytecode;
use revm::context::TxEnv;
use revm::context::result::ExecutionResult;
use revm::database::{CacheDB, EmptyDB};
use revm::database_interface::DatabaseCommit;
use revm::state::AccountInfo;
use revm::{Context, ExecuteEvm, MainBuilder, MainContext};

use crate::genesis::OPEN;
use crate::system::*;

sol! {
    interface Datanets {
        function register(bytes32 metadataHash) external returns (uint256 id);
        function publishVersion(uint256 id, uint64 number, bytes32 root, uint64 rowCount) external;
        function setMetadata(uint256 id, bytes32 metadataHash) external;
        function transferOwnership(uint256 id, address to) external;
        function ownerOf(uint256 id) external view returns (address);
        function versions(uint256 id, uint64 number) external view returns (bytes32 root, uint64 rowCount, uint64 publishedAt);
        error UnknownDatanet(uint256 id);
        error NotOwner(uint256 id);
        error VersionOutOfOrder(uint64 expected, uint64 given);
        error ZeroAddress();
        error EmptyRoot();
    }

    struct DatanetVersion { uint256 datanetId; uint64 version; }

    interface Models {
        function register(string baseModel, bytes32 adapter, DatanetVersion[] datanets, uint256 pricePer1kTokens) external returns (uint256 id);
        function addVersion(uint256 id, bytes32 adapter, DatanetVersion[] datanets) external returns (uint64 v);
        function setPrice(uint256 id, uint256 pricePer1kTokens) external;
        function transferOwnership(uint256 id, address to) external;
        function datanetsOf(uint256 id, uint64 v) external view returns (DatanetVersion[] memory);
        function adapterHash(uint256 id, uint64 v) external view returns (bytes32);
        error UnknownModel(uint256 id);
        error NotOwner(uint256 id);
        error EmptyAdapter();
        error ZeroAddress();
    }

    interface Staking {
        function stake(bytes32 contribution, address treasury) external payable;
        function release(bytes32 contribution) external;
        function slash(bytes32 contribution) external;
        function setReviewer(address to) external;
        error NotReviewer();
        error AlreadyStaked(bytes32 contribution);
        error NotStaked(bytes32 contribution);
        error ZeroAmount();
        error ZeroAddress();
        error TransferFailed();
    }

    interface Payments {
        function deposit() external payable;
        function debit(address app, address payee, uint256 amount, bytes32 inference) external;
        function announceWithdrawal() external;
        function withdraw() external;
        function balanceOf(address app) external view returns (uint256);
        error NotOperator();
        error ZeroAmount();
        error InsufficientEscrow(uint256 balance, uint256 needed);
        error NotAnnounced();
        error TooEarly(uint256 time);
    }

    interface Rewards {
        function postRoot(uint64 epoch, bytes32 root) external;
        function claim(address account, uint256 cumulativeAmount, bytes32[] proof) external;
        error NotPoster();
        error EpochNotNewer(uint64 current, uint64 given);
        error InvalidProof();
        error NothingToClaim();
    }

    interface Governance {
        function propose(uint16[4] split, uint64 epochLength, uint256 minStake) external;
        function execute() external;
        function cancel() external;
        function transferOwnership(address to) external;
        function modelOwnerBps() external view returns (uint16);
        function epochLength() external view returns (uint64);
        function minStake() external view returns (uint256);
        function owner() external view returns (address);
        error NotOwner();
        error BadSplit();
        error ZeroEpoch();
        error NothingPending();
        error TooEarly(uint256 eta);
        error ZeroAddress();
    }
}

const OPERATOR: Address = Address::repeat_byte(0x0a);
const ALICE: Address = Address::repeat_byte(0xa1);
const BOB: Address = Address::repeat_byte(0xb0);

/// The genesis state of the system contracts in a revm in-memory database.
struct Chain {
    db: CacheDB<EmptyDB>,
    time: u64,
}

type Outcome = Result<Bytes, Bytes>;

impl Chain {
    fn new() -> Chain {
        let mut db = CacheDB::new(EmptyDB::default());
        for (addr, code, storage) in genesis_accounts(OPERATOR).expect("genesis contracts") {
            db.insert_account_info(
                addr,
                AccountInfo {
                    balance: U256::ZERO,
                    nonce: 1,
                    code_hash: keccak256(&code),
                    account_id: None,
                    code: Some(Bytecode::new_raw(code)),
                },
            );
            for (k, v) in storage {
                db.insert_account_storage(addr, k, v).expect("storage");
            }
        }
        for a in [OPERATOR, ALICE, BOB] {
            db.insert_account_info(
                a,
                AccountInfo {
                    balance: U256::from(1_000 * OPEN),
                    ..Default::default()
                },
            );
        }
        Chain {
            db,
            time: 1_700_000_000,
        }
    }

    fn send(&mut self, from: Address, to: Address, data: Vec<u8>, value: U256) -> Outcome {
        let nonce = revm::Database::basic(&mut self.db, from)
            .expect("db")
            .map(|a| a.nonce)
            .unwrap_or(0);
        let tx = TxEnv::builder()
            .caller(from)
            .kind(TxKind::Call(to))
            .data(data.into())
            .value(value)
            .gas_limit(5_000_000)
            .gas_price(0)
            .nonce(nonce)
            .build_fill();
        let time = self.time;
        let mut evm = Context::mainnet()
            .modify_block_chained(|b| b.timestamp = U256::from(time))
            .with_db(&mut self.db)
            .build_mainnet();
        let res = evm.transact(tx).expect("valid transaction");
        drop(evm);
        let out = match res.result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => Err(output),
            ExecutionResult::Halt { reason, .. } => panic!("halted: {reason:?}"),
        };
        if out.is_ok() {
            self.db.commit(res.state);
        }
        out
    }

    fn ok<C: SolCall>(&mut self, from: Address, to: Address, call: C) -> C::Return {
        self.ok_value(from, to, call, U256::ZERO)
    }

    fn ok_value<C: SolCall>(
        &mut self,
        from: Address,
        to: Address,
        call: C,
        value: U256,
    ) -> C::Return {
        let out = self
            .send(from, to, call.abi_encode(), value)
            .unwrap_or_else(|e| panic!("{} reverted: {e}", C::SIGNATURE));
        C::abi_decode_returns(&out).expect("decode return")
    }

    fn fails<C: SolCall, E: SolError>(&mut self, from: Address, to: Address, call: C, err: E) {
        self.fails_value(from, to, call, U256::ZERO, err)
    }

    fn fails_value<C: SolCall, E: SolError>(
        &mut self,
        from: Address,
        to: Address,
        call: C,
        value: U256,
        err: E,
    ) {
        match self.send(from, to, call.abi_encode(), value) {
            Ok(_) => panic!("{} should revert with {}", C::SIGNATURE, E::SIGNATURE),
            Err(data) => assert_eq!(
                data.as_ref(),
                err.abi_encode().as_slice(),
                "{} reverted otherwise",
                C::SIGNATURE
            ),
        }
    }

    fn balance(&mut self, a: Address) -> U256 {
        revm::Database::basic(&mut self.db, a)
            .expect("db")
            .map(|i| i.balance)
            .unwrap_or_default()
    }
}

#[test]
fn datanet_registry_calls_and_reverts() {
    let mut c = Chain::new();
    let meta = B256::repeat_byte(1);
    let root = B256::repeat_byte(2);
    let id = c.ok(
        ALICE,
        DATANET_REGISTRY,
        Datanets::registerCall { metadataHash: meta },
    );
    assert_eq!(id, U256::from(1));
    assert_eq!(
        c.ok(BOB, DATANET_REGISTRY, Datanets::ownerOfCall { id }),
        ALICE
    );
    c.fails(
        BOB,
        DATANET_REGISTRY,
        Datanets::publishVersionCall {
            id,
            number: 1,
            root,
            rowCount: 5,
        },
        Datanets::NotOwner { id },
    );
    c.fails(
        ALICE,
        DATANET_REGISTRY,
        Datanets::publishVersionCall {
            id: U256::from(9),
            number: 1,
            root,
            rowCount: 5,
        },
        Datanets::UnknownDatanet { id: U256::from(9) },
    );
    c.fails(
        ALICE,
        DATANET_REGISTRY,
        Datanets::publishVersionCall {
            id,
            number: 2,
            root,
            rowCount: 5,
        },
        Datanets::VersionOutOfOrder {
            expected: 1,
            given: 2,
        },
    );
    c.fails(
        ALICE,
        DATANET_REGISTRY,
        Datanets::publishVersionCall {
            id,
            number: 1,
            root: B256::ZERO,
            rowCount: 5,
        },
        Datanets::EmptyRoot {},
    );
    c.ok(
        ALICE,
        DATANET_REGISTRY,
        Datanets::publishVersionCall {
            id,
            number: 1,
            root,
            rowCount: 5,
        },
    );
    let v = c.ok(
        BOB,
        DATANET_REGISTRY,
        Datanets::versionsCall { id, number: 1 },
    );
    assert_eq!((v.root, v.rowCount), (root, 5));
    c.ok(
        ALICE,
        DATANET_REGISTRY,
        Datanets::setMetadataCall {
            id,
            metadataHash: root,
        },
    );
    c.fails(
        BOB,
        DATANET_REGISTRY,
        Datanets::setMetadataCall {
            id,
            metadataHash: root,
        },
        Datanets::NotOwner { id },
    );
    c.fails(
        ALICE,
        DATANET_REGISTRY,
        Datanets::transferOwnershipCall {
            id,
            to: Address::ZERO,
        },
        Datanets::ZeroAddress {},
    );
    c.ok(
        ALICE,
        DATANET_REGISTRY,
        Datanets::transferOwnershipCall { id, to: BOB },
    );
    c.ok(
        BOB,
        DATANET_REGISTRY,
        Datanets::publishVersionCall {
            id,
            number: 2,
            root,
            rowCount: 6,
        },
    );
    c.fails(
        ALICE,
        DATANET_REGISTRY,
        Datanets::transferOwnershipCall { id, to: ALICE },
        Datanets::NotOwner { id },
    );
}

#[test]
fn model_registry_calls_and_reverts() {
    let mut c = Chain::new();
    let adapter = B256::repeat_byte(3);
    let trained = vec![DatanetVersion {
        datanetId: U256::from(1),
        version: 2,
    }];
    c.fails(
        ALICE,
        MODEL_REGISTRY,
        Models::registerCall {
            baseModel: "llama".into(),
            adapter: B256::ZERO,
            datanets: vec![],
            pricePer1kTokens: U256::from(5),
        },
        Models::EmptyAdapter {},
    );
    let id = c.ok(
        ALICE,
        MODEL_REGISTRY,
        Models::registerCall {
            baseModel: "llama".into(),
            adapter,
            datanets: trained.clone(),
            pricePer1kTokens: U256::from(5),
        },
    );
    assert_eq!(id, U256::from(1));
    let d = c.ok(BOB, MODEL_REGISTRY, Models::datanetsOfCall { id, v: 1 });
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].version, 2);
    c.fails(
        BOB,
        MODEL_REGISTRY,
        Models::addVersionCall {
            id,
            adapter,
            datanets: vec![],
        },
        Models::NotOwner { id },
    );
    c.fails(
        ALICE,
        MODEL_REGISTRY,
        Models::addVersionCall {
            id: U256::from(7),
            adapter,
            datanets: vec![],
        },
        Models::UnknownModel { id: U256::from(7) },
    );
    c.fails(
        ALICE,
        MODEL_REGISTRY,
        Models::addVersionCall {
            id,
            adapter: B256::ZERO,
            datanets: vec![],
        },
        Models::EmptyAdapter {},
    );
    let v = c.ok(
        ALICE,
        MODEL_REGISTRY,
        Models::addVersionCall {
            id,
            adapter: B256::repeat_byte(4),
            datanets: trained,
        },
    );
    assert_eq!(v, 2);
    assert_eq!(
        c.ok(BOB, MODEL_REGISTRY, Models::adapterHashCall { id, v: 2 }),
        B256::repeat_byte(4)
    );
    c.ok(
        ALICE,
        MODEL_REGISTRY,
        Models::setPriceCall {
            id,
            pricePer1kTokens: U256::from(9),
        },
    );
    c.fails(
        BOB,
        MODEL_REGISTRY,
        Models::setPriceCall {
            id,
            pricePer1kTokens: U256::from(1),
        },
        Models::NotOwner { id },
    );
    c.fails(
        ALICE,
        MODEL_REGISTRY,
        Models::transferOwnershipCall {
            id,
            to: Address::ZERO,
        },
        Models::ZeroAddress {},
    );
    c.ok(
        ALICE,
        MODEL_REGISTRY,
        Models::transferOwnershipCall { id, to: BOB },
    );
    c.ok(
        BOB,
        MODEL_REGISTRY,
        Models::setPriceCall {
            id,
            pricePer1kTokens: U256::from(1),
        },
    );
}

#[test]
fn contribution_staking_releases_and_slashes() {
    let mut c = Chain::new();
    let treasury = Address::repeat_byte(0x7e);
    let (k1, k2) = (B256::repeat_byte(1), B256::repeat_byte(2));
    let stake = U256::from(10 * OPEN);
    c.fails(
        ALICE,
        CONTRIBUTION_STAKING,
        Staking::stakeCall {
            contribution: k1,
            treasury,
        },
        Staking::ZeroAmount {},
    );
    c.fails_value(
        ALICE,
        CONTRIBUTION_STAKING,
        Staking::stakeCall {
            contribution: k1,
            treasury: Address::ZERO,
        },
        stake,
        Staking::ZeroAddress {},
    );
    c.ok_value(
        ALICE,
        CONTRIBUTION_STAKING,
        Staking::stakeCall {
            contribution: k1,
            treasury,
        },
        stake,
    );
    c.fails_value(
        BOB,
        CONTRIBUTION_STAKING,
        Staking::stakeCall {
            contribution: k1,
            treasury,
        },
        stake,
        Staking::AlreadyStaked { contribution: k1 },
    );
    c.ok_value(
        ALICE,
        CONTRIBUTION_STAKING,
        Staking::stakeCall {
            contribution: k2,
            treasury,
        },
        stake,
    );
    c.fails(
        ALICE,
        CONTRIBUTION_STAKING,
        Staking::releaseCall { contribution: k1 },
        Staking::NotReviewer {},
    );
    let before = c.balance(ALICE);
    c.ok(
        OPERATOR,
        CONTRIBUTION_STAKING,
        Staking::releaseCall { contribution: k1 },
    );
    assert_eq!(c.balance(ALICE), before + stake);
    c.fails(
        OPERATOR,
        CONTRIBUTION_STAKING,
        Staking::releaseCall { contribution: k1 },
        Staking::NotStaked { contribution: k1 },
    );
    c.fails(
        ALICE,
        CONTRIBUTION_STAKING,
        Staking::slashCall { contribution: k2 },
        Staking::NotReviewer {},
    );
    c.ok(
        OPERATOR,
        CONTRIBUTION_STAKING,
        Staking::slashCall { contribution: k2 },
    );
    assert_eq!(c.balance(treasury), stake);
    c.fails(
        OPERATOR,
        CONTRIBUTION_STAKING,
        Staking::slashCall { contribution: k2 },
        Staking::NotStaked { contribution: k2 },
    );
    c.fails(
        ALICE,
        CONTRIBUTION_STAKING,
        Staking::setReviewerCall { to: ALICE },
        Staking::NotReviewer {},
    );
    c.fails(
        OPERATOR,
        CONTRIBUTION_STAKING,
        Staking::setReviewerCall { to: Address::ZERO },
        Staking::ZeroAddress {},
    );
    c.ok(
        OPERATOR,
        CONTRIBUTION_STAKING,
        Staking::setReviewerCall { to: BOB },
    );
}

#[test]
fn inference_payments_escrow_debit_and_withdraw() {
    let mut c = Chain::new();
    let payee = Address::repeat_byte(0x9e);
    let inf = B256::repeat_byte(5);
    c.fails(
        ALICE,
        INFERENCE_PAYMENTS,
        Payments::depositCall {},
        Payments::ZeroAmount {},
    );
    c.ok_value(
        ALICE,
        INFERENCE_PAYMENTS,
        Payments::depositCall {},
        U256::from(5 * OPEN),
    );
    c.fails(
        ALICE,
        INFERENCE_PAYMENTS,
        Payments::debitCall {
            app: ALICE,
            payee,
            amount: U256::from(1),
            inference: inf,
        },
        Payments::NotOperator {},
    );
    c.fails(
        OPERATOR,
        INFERENCE_PAYMENTS,
        Payments::debitCall {
            app: ALICE,
            payee,
            amount: U256::ZERO,
            inference: inf,
        },
        Payments::ZeroAmount {},
    );
    c.fails(
        OPERATOR,
        INFERENCE_PAYMENTS,
        Payments::debitCall {
            app: ALICE,
            payee,
            amount: U256::from(6 * OPEN),
            inference: inf,
        },
        Payments::InsufficientEscrow {
            balance: U256::from(5 * OPEN),
            needed: U256::from(6 * OPEN),
        },
    );
    c.ok(
        OPERATOR,
        INFERENCE_PAYMENTS,
        Payments::debitCall {
            app: ALICE,
            payee,
            amount: U256::from(OPEN),
            inference: inf,
        },
    );
    assert_eq!(c.balance(payee), U256::from(OPEN));
    c.fails(
        ALICE,
        INFERENCE_PAYMENTS,
        Payments::withdrawCall {},
        Payments::NotAnnounced {},
    );
    c.ok(
        ALICE,
        INFERENCE_PAYMENTS,
        Payments::announceWithdrawalCall {},
    );
    let at = U256::from(c.time + 86_400);
    c.fails(
        ALICE,
        INFERENCE_PAYMENTS,
        Payments::withdrawCall {},
        Payments::TooEarly { time: at },
    );
    c.time += 86_400;
    let before = c.balance(ALICE);
    c.ok(ALICE, INFERENCE_PAYMENTS, Payments::withdrawCall {});
    assert_eq!(c.balance(ALICE), before + U256::from(4 * OPEN));
    assert_eq!(
        c.ok(
            BOB,
            INFERENCE_PAYMENTS,
            Payments::balanceOfCall { app: ALICE }
        ),
        U256::ZERO
    );
    c.fails(
        ALICE,
        INFERENCE_PAYMENTS,
        Payments::withdrawCall {},
        Payments::NotAnnounced {},
    );
}

fn leaf(a: Address, amount: u128) -> B256 {
    let mut b = [0u8; 64];
    b[12..32].copy_from_slice(a.as_slice());
    b[32..].copy_from_slice(&U256::from(amount).to_be_bytes::<32>());
    keccak256(b)
}

fn pair(x: B256, y: B256) -> B256 {
    let (a, b) = if x < y { (x, y) } else { (y, x) };
    keccak256([a.as_slice(), b.as_slice()].concat())
}

#[test]
fn attribution_rewards_pay_the_difference_once() {
    let mut c = Chain::new();
    // Fund the contract (its receive()).
    c.send(
        OPERATOR,
        ATTRIBUTION_REWARDS,
        Vec::new(),
        U256::from(100 * OPEN),
    )
    .expect("fund");
    let (la, lb) = (leaf(ALICE, 3 * OPEN), leaf(BOB, 5 * OPEN));
    let root = pair(la, lb);
    c.fails(
        ALICE,
        ATTRIBUTION_REWARDS,
        Rewards::postRootCall { epoch: 1, root },
        Rewards::NotPoster {},
    );
    c.ok(
        OPERATOR,
        ATTRIBUTION_REWARDS,
        Rewards::postRootCall { epoch: 1, root },
    );
    c.fails(
        OPERATOR,
        ATTRIBUTION_REWARDS,
        Rewards::postRootCall { epoch: 1, root },
        Rewards::EpochNotNewer {
            current: 1,
            given: 1,
        },
    );
    c.fails(
        BOB,
        ATTRIBUTION_REWARDS,
        Rewards::claimCall {
            account: ALICE,
            cumulativeAmount: U256::from(4 * OPEN),
            proof: vec![lb],
        },
        Rewards::InvalidProof {},
    );
    let before = c.balance(ALICE);
    c.ok(
        BOB,
        ATTRIBUTION_REWARDS,
        Rewards::claimCall {
            account: ALICE,
            cumulativeAmount: U256::from(3 * OPEN),
            proof: vec![lb],
        },
    );
    assert_eq!(c.balance(ALICE), before + U256::from(3 * OPEN));
    c.fails(
        ALICE,
        ATTRIBUTION_REWARDS,
        Rewards::claimCall {
            account: ALICE,
            cumulativeAmount: U256::from(3 * OPEN),
            proof: vec![lb],
        },
        Rewards::NothingToClaim {},
    );
    // Next epoch: Alice's cumulative grows to 7; she is paid 4 more.
    let la2 = leaf(ALICE, 7 * OPEN);
    c.ok(
        OPERATOR,
        ATTRIBUTION_REWARDS,
        Rewards::postRootCall {
            epoch: 2,
            root: pair(la2, lb),
        },
    );
    let before = c.balance(ALICE);
    c.ok(
        ALICE,
        ATTRIBUTION_REWARDS,
        Rewards::claimCall {
            account: ALICE,
            cumulativeAmount: U256::from(7 * OPEN),
            proof: vec![lb],
        },
    );
    assert_eq!(c.balance(ALICE), before + U256::from(4 * OPEN));
}

#[test]
fn governance_changes_only_through_the_timelock() {
    let mut c = Chain::new();
    assert_eq!(
        c.ok(ALICE, GOVERNANCE_PARAMS, Governance::ownerCall {}),
        OPERATOR
    );
    assert_eq!(
        c.ok(ALICE, GOVERNANCE_PARAMS, Governance::modelOwnerBpsCall {}),
        INITIAL_SPLIT[0]
    );
    assert_eq!(
        c.ok(ALICE, GOVERNANCE_PARAMS, Governance::minStakeCall {}),
        U256::from(INITIAL_MIN_STAKE)
    );
    let split = [5_000u16, 3_000, 1_500, 500];
    c.fails(
        ALICE,
        GOVERNANCE_PARAMS,
        Governance::proposeCall {
            split,
            epochLength: 10,
            minStake: U256::ZERO,
        },
        Governance::NotOwner {},
    );
    c.fails(
        OPERATOR,
        GOVERNANCE_PARAMS,
        Governance::proposeCall {
            split: [1, 1, 1, 1],
            epochLength: 10,
            minStake: U256::ZERO,
        },
        Governance::BadSplit {},
    );
    c.fails(
        OPERATOR,
        GOVERNANCE_PARAMS,
        Governance::proposeCall {
            split,
            epochLength: 0,
            minStake: U256::ZERO,
        },
        Governance::ZeroEpoch {},
    );
    c.fails(
        ALICE,
        GOVERNANCE_PARAMS,
        Governance::executeCall {},
        Governance::NothingPending {},
    );
    c.fails(
        OPERATOR,
        GOVERNANCE_PARAMS,
        Governance::cancelCall {},
        Governance::NothingPending {},
    );
    c.ok(
        OPERATOR,
        GOVERNANCE_PARAMS,
        Governance::proposeCall {
            split,
            epochLength: 3_600,
            minStake: U256::from(OPEN),
        },
    );
    let eta = U256::from(c.time + 2 * 86_400);
    c.fails(
        ALICE,
        GOVERNANCE_PARAMS,
        Governance::executeCall {},
        Governance::TooEarly { eta },
    );
    c.fails(
        ALICE,
        GOVERNANCE_PARAMS,
        Governance::cancelCall {},
        Governance::NotOwner {},
    );
    c.time += 2 * 86_400;
    c.ok(ALICE, GOVERNANCE_PARAMS, Governance::executeCall {});
    assert_eq!(
        c.ok(ALICE, GOVERNANCE_PARAMS, Governance::modelOwnerBpsCall {}),
        5_000
    );
    assert_eq!(
        c.ok(ALICE, GOVERNANCE_PARAMS, Governance::epochLengthCall {}),
        3_600
    );
    c.ok(
        OPERATOR,
        GOVERNANCE_PARAMS,
        Governance::proposeCall {
            split,
            epochLength: 7,
            minStake: U256::ZERO,
        },
    );
    c.ok(OPERATOR, GOVERNANCE_PARAMS, Governance::cancelCall {});
    c.fails(
        ALICE,
        GOVERNANCE_PARAMS,
        Governance::transferOwnershipCall { to: ALICE },
        Governance::NotOwner {},
    );
    c.fails(
        OPERATOR,
        GOVERNANCE_PARAMS,
        Governance::transferOwnershipCall { to: Address::ZERO },
        Governance::ZeroAddress {},
    );
    c.ok(
        OPERATOR,
        GOVERNANCE_PARAMS,
        Governance::transferOwnershipCall { to: BOB },
    );
    assert_eq!(
        c.ok(ALICE, GOVERNANCE_PARAMS, Governance::ownerCall {}),
        BOB
    );
}
