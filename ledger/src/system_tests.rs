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

    interface L1BlockApi {
        function setL1BlockValuesJovian() external;
        function number() external view returns (uint64);
        function timestamp() external view returns (uint64);
        function basefee() external view returns (uint256);
        function hash() external view returns (bytes32);
        function sequenceNumber() external view returns (uint64);
        function blobBaseFeeScalar() external view returns (uint32);
        function baseFeeScalar() external view returns (uint32);
        function batcherHash() external view returns (bytes32);
        function blobBaseFee() external view returns (uint256);
        function operatorFeeConstant() external view returns (uint64);
        function operatorFeeScalar() external view returns (uint32);
        function daFootprintGasScalar() external view returns (uint16);
        error NotDepositor();
        error BadCalldata(uint256 length);
    }

    interface Passer {
        function initiateWithdrawal(address target, uint256 gasLimit, bytes data) external payable;
        function messageNonce() external view returns (uint256);
        function sentMessages(bytes32 h) external view returns (bool);
        event MessagePassed(uint256 indexed nonce, address indexed sender, address indexed target, uint256 value, uint256 gasLimit, bytes data, bytes32 withdrawalHash);
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
    /// Logs of the last successful transaction.
    logs: Vec<alloy_primitives::Log>,
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
            logs: Vec::new(),
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
        let logs = res.result.logs().to_vec();
        let out = match res.result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => Err(output),
            ExecutionResult::Halt { reason, .. } => panic!("halted: {reason:?}"),
        };
        if out.is_ok() {
            self.logs = logs;
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

/// Calldata of the L1-attributes deposit with every field distinct, so a field read from the
/// wrong offset shows.
fn l1_attributes(seq: u64, number: u64, time: u64) -> Vec<u8> {
    let mut d = vec![0x3d, 0xb6, 0xbe, 0x2b];
    d.extend_from_slice(&11u32.to_be_bytes());
    d.extend_from_slice(&12u32.to_be_bytes());
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(&time.to_be_bytes());
    d.extend_from_slice(&number.to_be_bytes());
    d.extend_from_slice(&U256::from(13u64).to_be_bytes::<32>());
    d.extend_from_slice(&U256::from(14u64).to_be_bytes::<32>());
    d.extend_from_slice(&[0x15; 32]);
    d.extend_from_slice(&[0x16; 32]);
    d.extend_from_slice(&17u32.to_be_bytes());
    d.extend_from_slice(&18u64.to_be_bytes());
    d.extend_from_slice(&19u16.to_be_bytes());
    d
}

#[test]
fn l1_block_takes_the_attributes_from_the_depositor_only() {
    let mut c = Chain::new();
    let depositor = crate::genesis::L1_ATTRIBUTES_DEPOSITOR;
    // The selector is the one the chain's calldata starts with.
    assert_eq!(
        L1BlockApi::setL1BlockValuesJovianCall::SELECTOR,
        [0x3d, 0xb6, 0xbe, 0x2b]
    );
    let data = l1_attributes(3, 77, 1_700_000_123);
    assert_eq!(data.len(), 178);
    match c.send(ALICE, L1_BLOCK, data.clone(), U256::ZERO) {
        Err(e) => assert_eq!(
            e.as_ref(),
            L1BlockApi::NotDepositor {}.abi_encode().as_slice()
        ),
        Ok(_) => panic!("anyone could set the L1 attributes"),
    }
    match c.send(depositor, L1_BLOCK, data[..100].to_vec(), U256::ZERO) {
        Err(e) => assert_eq!(
            e.as_ref(),
            L1BlockApi::BadCalldata {
                length: U256::from(100)
            }
            .abi_encode()
            .as_slice()
        ),
        Ok(_) => panic!("short calldata accepted"),
    }
    c.send(depositor, L1_BLOCK, data, U256::ZERO)
        .expect("the depositor sets the attributes");
    assert_eq!(c.ok(BOB, L1_BLOCK, L1BlockApi::numberCall {}), 77);
    assert_eq!(
        c.ok(BOB, L1_BLOCK, L1BlockApi::timestampCall {}),
        1_700_000_123
    );
    assert_eq!(c.ok(BOB, L1_BLOCK, L1BlockApi::sequenceNumberCall {}), 3);
    assert_eq!(c.ok(BOB, L1_BLOCK, L1BlockApi::baseFeeScalarCall {}), 11);
    assert_eq!(
        c.ok(BOB, L1_BLOCK, L1BlockApi::blobBaseFeeScalarCall {}),
        12
    );
    assert_eq!(
        c.ok(BOB, L1_BLOCK, L1BlockApi::basefeeCall {}),
        U256::from(13)
    );
    assert_eq!(
        c.ok(BOB, L1_BLOCK, L1BlockApi::blobBaseFeeCall {}),
        U256::from(14)
    );
    assert_eq!(
        c.ok(BOB, L1_BLOCK, L1BlockApi::hashCall {}),
        B256::repeat_byte(0x15)
    );
    assert_eq!(
        c.ok(BOB, L1_BLOCK, L1BlockApi::batcherHashCall {}),
        B256::repeat_byte(0x16)
    );
    assert_eq!(
        c.ok(BOB, L1_BLOCK, L1BlockApi::operatorFeeScalarCall {}),
        17
    );
    assert_eq!(
        c.ok(BOB, L1_BLOCK, L1BlockApi::operatorFeeConstantCall {}),
        18
    );
    assert_eq!(
        c.ok(BOB, L1_BLOCK, L1BlockApi::daFootprintGasScalarCall {}),
        19
    );
    // op-revm prices L1 data from these slots: it must read back what was set.
    let info = op_revm::L1BlockInfo::try_fetch(&mut c.db, U256::from(1), crate::exec::SPEC)
        .expect("fetch");
    assert_eq!(info.l1_base_fee, U256::from(13));
    assert_eq!(info.l1_base_fee_scalar, U256::from(11));
    assert_eq!(info.l1_blob_base_fee, Some(U256::from(14)));
    assert_eq!(info.l1_blob_base_fee_scalar, Some(U256::from(12)));
    assert_eq!(info.operator_fee_scalar, Some(U256::from(17)));
    assert_eq!(info.operator_fee_constant, Some(U256::from(18)));
    assert_eq!(info.da_footprint_gas_scalar, Some(19));
}

/// OP's `Hashing.hashWithdrawal`.
fn withdrawal_hash(
    nonce: U256,
    sender: Address,
    target: Address,
    value: U256,
    gas: U256,
    data: &[u8],
) -> B256 {
    use alloy_sol_types::SolValue;
    keccak256(
        (
            nonce,
            sender,
            target,
            value,
            gas,
            Bytes::copy_from_slice(data),
        )
            .abi_encode_params(),
    )
}

#[test]
fn message_passer_records_withdrawals_and_holds_the_value() {
    use alloy_sol_types::SolEvent;
    let mut c = Chain::new();
    let version = U256::from(1) << 240;
    assert_eq!(
        c.ok(ALICE, L2_TO_L1_MESSAGE_PASSER, Passer::messageNonceCall {}),
        version
    );
    let value = U256::from(3 * OPEN);
    let data = vec![0xab, 0xcd];
    c.ok_value(
        ALICE,
        L2_TO_L1_MESSAGE_PASSER,
        Passer::initiateWithdrawalCall {
            target: BOB,
            gasLimit: U256::from(200_000),
            data: data.clone().into(),
        },
        value,
    );
    let h = withdrawal_hash(version, ALICE, BOB, value, U256::from(200_000), &data);
    assert_eq!(c.logs.len(), 1);
    let ev = Passer::MessagePassed::decode_log(&c.logs[0]).expect("MessagePassed");
    assert_eq!(ev.nonce, version);
    assert_eq!(ev.sender, ALICE);
    assert_eq!(ev.target, BOB);
    assert_eq!(ev.value, value);
    assert_eq!(ev.withdrawalHash, h);
    assert!(c.ok(BOB, L2_TO_L1_MESSAGE_PASSER, Passer::sentMessagesCall { h }));
    assert!(!c.ok(
        BOB,
        L2_TO_L1_MESSAGE_PASSER,
        Passer::sentMessagesCall {
            h: B256::repeat_byte(1)
        }
    ));
    assert_eq!(
        c.ok(ALICE, L2_TO_L1_MESSAGE_PASSER, Passer::messageNonceCall {}),
        version + U256::from(1)
    );
    // Nothing is burned: the passer holds what was withdrawn.
    assert_eq!(c.balance(L2_TO_L1_MESSAGE_PASSER), value);
    // A plain transfer withdraws to the sender with the default gas limit.
    c.send(BOB, L2_TO_L1_MESSAGE_PASSER, Vec::new(), U256::from(5))
        .expect("plain transfer");
    let h2 = withdrawal_hash(
        version + U256::from(1),
        BOB,
        BOB,
        U256::from(5),
        U256::from(100_000),
        &[],
    );
    assert!(c.ok(
        ALICE,
        L2_TO_L1_MESSAGE_PASSER,
        Passer::sentMessagesCall { h: h2 }
    ));
    assert_eq!(c.balance(L2_TO_L1_MESSAGE_PASSER), value + U256::from(5));
    // A withdrawal without value records a message too (the passer has no revert path).
    c.ok(
        BOB,
        L2_TO_L1_MESSAGE_PASSER,
        Passer::initiateWithdrawalCall {
            target: ALICE,
            gasLimit: U256::ZERO,
            data: Bytes::new(),
        },
    );
    assert_eq!(
        c.ok(ALICE, L2_TO_L1_MESSAGE_PASSER, Passer::messageNonceCall {}),
        version + U256::from(3)
    );
}
