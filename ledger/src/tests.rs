//! Tests of the whole ledger: genesis, transfers, contracts, deposits, pool errors, restart,
//! and the supply invariant after every block.

use std::sync::Arc;

use alloy_consensus::{SignableTransaction, TxEip1559, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use op_alloy_consensus::OpTxEnvelope;

use crate::chain::{CallRequest, DepositRequest, LogFilter};
use crate::genesis::{self, Allocation, GenesisConfig, OPEN};
use crate::pool::PoolConfig;
use crate::{Error, Ledger, LedgerConfig, TxError};

const CHAIN_ID: u64 = 1612;

/// The first Hardhat/Anvil development keys.
const KEYS: [&str; 2] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
];

fn signer(i: usize) -> PrivateKeySigner {
    KEYS[i].parse().expect("key")
}

fn open(dir: &std::path::Path) -> Ledger {
    open_with(dir, 0, PoolConfig::default())
}

/// A ledger with `test_accounts` funded genesis test accounts and the given pool limits.
fn open_with(dir: &std::path::Path, test_accounts: u64, pool: PoolConfig) -> Ledger {
    open_cached(
        dir,
        test_accounts,
        pool,
        crate::chain::DEFAULT_TRIE_CACHE_BYTES,
    )
}

/// [`open_with`], with an account trie node cache of `trie_cache_bytes`.
fn open_cached(
    dir: &std::path::Path,
    test_accounts: u64,
    pool: PoolConfig,
    trie_cache_bytes: usize,
) -> Ledger {
    let dev = (0..2).map(|i| signer(i).address()).collect();
    Ledger::open(
        &dir.join("ledger.redb"),
        LedgerConfig {
            genesis: GenesisConfig {
                chain_id: CHAIN_ID,
                timestamp: 1_700_000_000,
                allocation: Allocation::default(),
                dev_accounts: dev,
                operator: signer(0).address(),
                test_accounts,
            },
            pool,
            cache_bytes: crate::chain::DEFAULT_CACHE_BYTES,
            trie_cache_bytes,
        },
    )
    .expect("open ledger")
}

struct Tx {
    to: Option<Address>,
    value: U256,
    data: Vec<u8>,
    nonce: u64,
    gas: u64,
    max_fee: u128,
    tip: u128,
}

impl Default for Tx {
    fn default() -> Self {
        Tx {
            to: Some(Address::repeat_byte(0x77)),
            value: U256::from(OPEN),
            data: Vec::new(),
            nonce: 0,
            gas: 21_000,
            max_fee: 10_000_000_000,
            tip: 1_000_000,
        }
    }
}

fn sign(key: usize, t: Tx) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce: t.nonce,
        gas_limit: t.gas,
        max_fee_per_gas: t.max_fee,
        max_priority_fee_per_gas: t.tip,
        to: t.to.map(TxKind::Call).unwrap_or(TxKind::Create),
        value: t.value,
        input: t.data.into(),
        access_list: Default::default(),
    };
    let sig = signer(key)
        .sign_hash_sync(&tx.signature_hash())
        .expect("sign");
    OpTxEnvelope::Eip1559(tx.into_signed(sig)).encoded_2718()
}

fn seal_checked(l: &Ledger) -> crate::chain::Sealed {
    let s = l.seal(None).expect("seal");
    assert_eq!(
        l.total_balance().expect("sum"),
        l.expected_supply().expect("supply"),
        "supply changed in block {}",
        s.header.number
    );
    s
}

fn store_artifact() -> (Vec<u8>, Vec<u8>) {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../testdata/store.json")).expect("artifact");
    let hex =
        |k: &str| alloy_primitives::hex::decode(v[k].as_str().expect("hex")).expect("valid hex");
    (hex("bytecode"), hex("runtime"))
}

fn set_call(x: u64) -> Vec<u8> {
    let mut d = vec![0x60, 0xfe, 0x47, 0xb1];
    d.extend_from_slice(&U256::from(x).to_be_bytes::<32>());
    d
}

#[test]
fn genesis_allocates_the_supply() {
    let dir = tempfile::tempdir().expect("tmp");
    let l = open(dir.path());
    assert_eq!(l.head().header.number, 0);
    assert_eq!(
        l.total_balance().expect("sum"),
        U256::from(genesis::TOTAL_SUPPLY)
    );
    let dev0 = l.account(&signer(0).address()).expect("dev0");
    assert_eq!(dev0.balance, U256::from(genesis::DEV_ACCOUNT_OPEN));
    let community = l
        .account(&Allocation::default().community)
        .expect("community");
    assert_eq!(community.balance, U256::from(517_100_000u128 * OPEN));
}

#[test]
fn transfers_pay_fees_to_the_vaults_and_keep_the_supply() {
    let dir = tempfile::tempdir().expect("tmp");
    let l = open(dir.path());
    let to = Address::repeat_byte(0x77);
    let h0 = l.submit_raw(&sign(0, Tx::default())).expect("tx 0");
    let h1 = l
        .submit_raw(&sign(
            0,
            Tx {
                nonce: 1,
                ..Default::default()
            },
        ))
        .expect("tx 1");
    assert_eq!(l.pending_nonce(&signer(0).address()).expect("nonce"), 2);
    let b = seal_checked(&l);
    assert_eq!(b.user_txs, 2);
    assert_eq!(l.account(&to).expect("to").balance, U256::from(2 * OPEN));
    let r = l.receipt(&h1).expect("receipt").expect("mined");
    assert!(r.receipt.status);
    assert_eq!(r.index, 2, "after the L1-attributes deposit and tx 0");
    assert!(l.receipt(&h0).expect("r").is_some());
    let base = l.account(&genesis::BASE_FEE_VAULT).expect("vault").balance;
    assert_eq!(
        base,
        U256::from(2 * 21_000 * u128::from(b.header.base_fee_per_gas.unwrap_or(0)))
    );
    let seq = l
        .account(&genesis::SEQUENCER_FEE_VAULT)
        .expect("vault")
        .balance;
    assert_eq!(seq, U256::from(2 * 21_000 * 1_000_000u128));
    // Tx 0 is the L1-attributes deposit to the L1Block predeploy.
    let block = l.block(1).expect("block").expect("exists");
    assert!(block.txs[0].tx.is_deposit());
    assert_eq!(
        alloy_consensus::Transaction::to(&block.txs[0].tx),
        Some(genesis::L1_BLOCK)
    );
    for _ in 0..3 {
        seal_checked(&l);
    }
    assert_eq!(l.head().header.number, 4);
}

#[test]
fn a_batch_of_submissions_answers_each_in_order_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let (second, first, mined);
    {
        let l = open(dir.path());
        mined = l.submit_raw(&sign(0, Tx::default())).expect("mined");
        seal_checked(&l);
        second = sign(
            1,
            Tx {
                nonce: 1,
                ..Default::default()
            },
        );
        first = sign(1, Tx::default());
        let malformed = vec![0x02, 0xc0];
        let mined_again = sign(0, Tx::default());
        let answers = l.submit_raws(&[&second, &malformed, &first, &first, &mined_again]);
        assert_eq!(answers.len(), 5);
        assert_eq!(answers[0].as_ref().ok(), Some(&keccak256(&second)));
        assert!(
            matches!(answers[1], Err(Error::Tx(TxError::Malformed(_)))),
            "{:?}",
            answers[1]
        );
        assert_eq!(answers[2].as_ref().ok(), Some(&keccak256(&first)));
        assert!(
            matches!(answers[3], Err(Error::Tx(TxError::AlreadyKnown))),
            "{:?}",
            answers[3]
        );
        // Mined already: the batch's snapshot sees the chain's transaction index.
        assert!(
            matches!(answers[4], Err(Error::Tx(TxError::AlreadyKnown))),
            "{:?}",
            answers[4]
        );
        assert!(l.receipt(&mined).expect("receipt").is_some());
        assert_eq!(l.pool_len(), 2);
    }
    // Both accepted transactions were journaled with the batch's one append.
    let l = open(dir.path());
    assert_eq!(
        l.pool_len(),
        2,
        "the batch's transactions survive a restart"
    );
    let b = seal_checked(&l);
    assert_eq!(b.user_txs, 2);
    for raw in [&first, &second] {
        let r = l.receipt(&keccak256(raw)).expect("read").expect("mined");
        assert!(r.receipt.status, "{r:?}");
    }
    assert!(l.submit_raws(&[]).is_empty());
}

#[test]
fn refused_transactions_say_why() {
    let dir = tempfile::tempdir().expect("tmp");
    let l = open(dir.path());
    l.submit_raw(&sign(0, Tx::default())).expect("first");
    let err = |raw: Vec<u8>| match l.submit_raw(&raw) {
        Err(Error::Tx(e)) => e,
        other => panic!("expected a tx error, got {other:?}"),
    };
    assert_eq!(
        err(sign(
            0,
            Tx {
                max_fee: 10_500_000_000,
                ..Default::default()
            }
        )),
        TxError::ReplacementUnderpriced
    );
    l.submit_raw(&sign(
        0,
        Tx {
            max_fee: 11_000_000_000,
            tip: 1_100_000,
            ..Default::default()
        },
    ))
    .expect("bumped replacement");
    assert!(matches!(
        err(sign(
            1,
            Tx {
                value: U256::from(10_000_000u128 * OPEN),
                ..Default::default()
            }
        )),
        TxError::InsufficientFunds { .. }
    ));
    assert!(matches!(
        err(sign(
            1,
            Tx {
                gas: 20_000,
                ..Default::default()
            }
        )),
        TxError::IntrinsicGas { .. }
    ));
    assert_eq!(
        err(sign(
            1,
            Tx {
                gas: 40_000_000,
                ..Default::default()
            }
        )),
        TxError::GasLimit
    );
    assert!(matches!(err(vec![0x02, 0xc0]), TxError::Malformed(_)));
    // Legacy without EIP-155 replay protection.
    let legacy = TxLegacy {
        chain_id: None,
        nonce: 0,
        gas_price: 10_000_000_000,
        gas_limit: 21_000,
        to: TxKind::Call(Address::ZERO),
        value: U256::ZERO,
        input: Bytes::new(),
    };
    let sig = signer(1)
        .sign_hash_sync(&legacy.signature_hash())
        .expect("sign");
    let raw = OpTxEnvelope::Legacy(legacy.into_signed(sig)).encoded_2718();
    assert!(matches!(err(raw), TxError::WrongChain { have: None, .. }));
    seal_checked(&l);
    assert!(matches!(
        err(sign(
            0,
            Tx {
                max_fee: 20_000_000_000,
                tip: 2_000_000,
                ..Default::default()
            }
        )),
        TxError::NonceTooLow { state: 1, tx: 0 }
    ));
}

#[test]
fn contracts_deploy_run_log_and_revert() {
    let dir = tempfile::tempdir().expect("tmp");
    let l = open(dir.path());
    let (init, runtime) = store_artifact();
    let deploy = l
        .submit_raw(&sign(
            0,
            Tx {
                to: None,
                value: U256::ZERO,
                data: init,
                gas: 200_000,
                ..Default::default()
            },
        ))
        .expect("deploy");
    seal_checked(&l);
    let r = l.receipt(&deploy).expect("r").expect("mined");
    assert!(r.receipt.status, "deploy failed");
    let addr = Address::from(r.receipt.contract_address.expect("created"));
    assert_eq!(addr, signer(0).address().create(0));
    assert_eq!(l.code(&addr).expect("code").as_ref(), runtime.as_slice());

    let set = l
        .submit_raw(&sign(
            0,
            Tx {
                to: Some(addr),
                value: U256::ZERO,
                data: set_call(42),
                gas: 100_000,
                nonce: 1,
                ..Default::default()
            },
        ))
        .expect("set");
    seal_checked(&l);
    let r = l.receipt(&set).expect("r").expect("mined");
    assert!(r.receipt.status);
    assert_eq!(r.receipt.logs.len(), 1);
    let topic = keccak256("Set(address,uint256)");
    assert_eq!(B256::from(r.receipt.logs[0].topics[0]), topic);
    assert_eq!(
        l.storage_at(&addr, U256::ZERO).expect("slot"),
        U256::from(42)
    );

    let get = CallRequest {
        to: Some(addr),
        data: Some(vec![0x6d, 0x4c, 0xe6, 0x3c].into()),
        ..Default::default()
    };
    let out = l.call(&get).expect("call");
    assert_eq!(U256::from_be_slice(&out), U256::from(42));
    match l.call(&CallRequest {
        data: Some(set_call(0).into()),
        ..get.clone()
    }) {
        Err(Error::Reverted { reason, data }) => {
            assert_eq!(reason.as_deref(), Some("zero"));
            assert_eq!(&data[..4], &[0x08, 0xc3, 0x79, 0xa0]);
        }
        other => panic!("expected a revert, got {other:?}"),
    }
    let est = l
        .estimate_gas(&CallRequest {
            from: Some(signer(1).address()),
            data: Some(set_call(7).into()),
            ..get.clone()
        })
        .expect("estimate");
    assert!(est > 21_000 && est < 100_000, "{est}");

    let logs = l
        .logs(&LogFilter {
            from: 0,
            to: 2,
            addresses: vec![addr],
            topics: vec![Some(vec![topic])],
        })
        .expect("logs");
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].tx_hash, set);
    let none = l
        .logs(&LogFilter {
            from: 0,
            to: 2,
            addresses: vec![Address::ZERO],
            topics: vec![],
        })
        .expect("logs");
    assert!(none.is_empty());
    assert!(matches!(
        l.logs(&LogFilter {
            from: 0,
            to: 20_000,
            ..Default::default()
        }),
        Err(Error::Invalid(_))
    ));

    // Proofs verify against the head state root.
    let p = l.proof(&addr, &[B256::ZERO], None).expect("proof");
    let root = l.head().header.state_root;
    alloy_trie::proof::verify_proof(
        root,
        alloy_trie::Nibbles::unpack(keccak256(addr)),
        Some(p.account.trie_rlp()),
        &p.account_proof,
    )
    .expect("account proof");
    alloy_trie::proof::verify_proof(
        p.account.storage_root,
        alloy_trie::Nibbles::unpack(keccak256(B256::ZERO)),
        Some(alloy_rlp::encode(U256::from(42))),
        &p.storage[0].2,
    )
    .expect("storage proof");
}

#[test]
fn deposits_mint_and_restart_keeps_pool_and_chain() {
    let dir = tempfile::tempdir().expect("tmp");
    let who = Address::repeat_byte(0x55);
    let pending;
    {
        let l = open(dir.path());
        l.queue_deposit(&DepositRequest {
            from: who,
            to: Some(who),
            mint: 5 * OPEN,
            value: U256::from(5 * OPEN),
            gas_limit: 100_000,
            data: Bytes::new(),
        })
        .expect("deposit");
        let b = seal_checked(&l);
        assert_eq!(b.payload.txs.len(), 2);
        assert_eq!(l.account(&who).expect("who").balance, U256::from(5 * OPEN));
        assert_eq!(
            l.expected_supply().expect("supply"),
            U256::from(genesis::TOTAL_SUPPLY + 5 * OPEN)
        );
        pending = l.submit_raw(&sign(1, Tx::default())).expect("pending tx");
    }
    let l = open(dir.path());
    assert_eq!(l.head().header.number, 1);
    assert_eq!(
        l.pool_len(),
        1,
        "the pending transaction survives a restart"
    );
    seal_checked(&l);
    assert!(l.receipt(&pending).expect("r").is_some());
}

#[test]
fn a_follower_replaying_payloads_reaches_the_same_blocks() {
    let dir = tempfile::tempdir().expect("tmp");
    let l = Arc::new(open(dir.path()));
    let (init, _) = store_artifact();
    l.submit_raw(&sign(
        0,
        Tx {
            to: None,
            value: U256::ZERO,
            data: init,
            gas: 200_000,
            ..Default::default()
        },
    ))
    .expect("deploy");
    let addr = signer(0).address().create(0);
    let mut payloads = vec![seal_checked(&l).payload];
    for i in 1..6u64 {
        l.submit_raw(&sign(
            0,
            Tx {
                to: Some(addr),
                value: U256::ZERO,
                data: set_call(i),
                gas: 100_000,
                nonce: i,
                ..Default::default()
            },
        ))
        .expect("set");
        payloads.push(seal_checked(&l).payload);
    }
    let dir2 = tempfile::tempdir().expect("tmp");
    let f = open(dir2.path());
    for p in &payloads {
        f.apply_payload(p).expect("replay");
    }
    assert_eq!(f.head().hash, l.head().hash);
    assert_eq!(f.head().header.state_root, l.head().header.state_root);
}

alloy_sol_types::sol! {
    function initiateWithdrawal(address target, uint256 gasLimit, bytes data) external payable;
}

#[test]
fn l1_attributes_deposit_updates_the_l1_block_predeploy() {
    let dir = tempfile::tempdir().expect("tmp");
    let l = open(dir.path());
    l.queue_deposit(&DepositRequest {
        from: Address::repeat_byte(0x55),
        to: Some(Address::repeat_byte(0x55)),
        mint: OPEN,
        value: U256::ZERO,
        gas_limit: 100_000,
        data: Bytes::new(),
    })
    .expect("deposit");
    for _ in 0..3 {
        let b = seal_checked(&l);
        let block = l.block(b.header.number).expect("block").expect("exists");
        let (seq, l1_number, l1_time, l1_hash) =
            crate::chain::parse_l1_info(alloy_consensus::Transaction::input(&block.txs[0].tx))
                .expect("L1 info");
        let receipts = l.block_receipts(b.header.number).expect("r").expect("r");
        assert!(
            receipts[0].receipt.status,
            "the L1-attributes deposit failed"
        );
        let slot = |i: u64| {
            l.storage_at(&genesis::L1_BLOCK, U256::from(i))
                .expect("slot")
                .to_be_bytes::<32>()
        };
        // OP's layout: slot 0 = timestamp ‖ number, slot 2 = hash, slot 3 low 8 bytes = seq.
        let s0 = slot(0);
        assert_eq!(U256::from_be_slice(&s0[24..]), U256::from(l1_number));
        assert_eq!(U256::from_be_slice(&s0[16..24]), U256::from(l1_time));
        assert_eq!(B256::from(slot(2)), l1_hash);
        assert_eq!(U256::from_be_slice(&slot(3)[24..]), U256::from(seq));
    }
}

#[test]
fn a_withdrawal_changes_the_passer_root_and_the_output_root_and_derives() {
    use crate::da::{DaLayer, DirDa};
    use alloy_sol_types::SolCall;
    let dir = tempfile::tempdir().expect("tmp");
    let l = open(dir.path());
    let mut payloads = vec![seal_checked(&l).payload];
    let before = l.head();
    let passer_root_before = before.header.withdrawals_root.expect("root");
    assert_eq!(
        passer_root_before,
        l.account(&genesis::L2_TO_L1_MESSAGE_PASSER)
            .expect("passer")
            .storage_root
    );
    let value = U256::from(2 * OPEN);
    let h = l
        .submit_raw(&sign(
            0,
            Tx {
                to: Some(genesis::L2_TO_L1_MESSAGE_PASSER),
                value,
                data: initiateWithdrawalCall {
                    target: signer(0).address(),
                    gasLimit: U256::from(100_000),
                    data: Bytes::new(),
                }
                .abi_encode(),
                gas: 200_000,
                ..Default::default()
            },
        ))
        .expect("withdraw");
    let b = seal_checked(&l);
    payloads.push(b.payload.clone());
    assert!(l.receipt(&h).expect("r").expect("mined").receipt.status);
    let passer = l
        .account(&genesis::L2_TO_L1_MESSAGE_PASSER)
        .expect("passer");
    assert_eq!(passer.balance, value, "withdrawn OPEN stays in the passer");
    let root = b.header.withdrawals_root.expect("root");
    assert_ne!(root, passer_root_before, "the withdrawal left no trace");
    assert_eq!(root, passer.storage_root);
    // The output root commits to the passer's storage root.
    let out = crate::chain::output_root(&b.header, b.hash);
    let mut same_but_old = b.header.clone();
    same_but_old.withdrawals_root = Some(passer_root_before);
    assert_ne!(out, crate::chain::output_root(&same_but_old, b.hash));
    let mut pre = [0u8; 128];
    pre[32..64].copy_from_slice(b.header.state_root.as_slice());
    pre[64..96].copy_from_slice(root.as_slice());
    pre[96..].copy_from_slice(b.hash.as_slice());
    assert_eq!(out, keccak256(pre));
    // A follower deriving from DA alone reaches the same output root.
    payloads.push(seal_checked(&l).payload);
    let da_dir = tempfile::tempdir().expect("tmp");
    let da = DirDa::new(da_dir.path());
    da.put_genesis(l.genesis()).expect("genesis");
    let frames = crate::da::encode_channel(&payloads).expect("encode");
    da.append(&frames, l.head().header.number).expect("append");
    let f = crate::da::derive(&da, &da_dir.path().join("follower.redb")).expect("derive");
    let (fh, lh) = (f.head(), l.head());
    assert_eq!(fh.hash, lh.hash);
    // Derivation writes the same change sets and history index as sealing.
    let passer = genesis::L2_TO_L1_MESSAGE_PASSER;
    for n in 0..lh.header.number {
        assert_eq!(
            f.account_at(&passer, Some(n)).expect("follower"),
            l.account_at(&passer, Some(n)).expect("sequencer"),
            "the passer after block {n}"
        );
    }
    assert_eq!(
        f.account_transactions(&passer, None, 10)
            .expect("follower")
            .iter()
            .map(|t| t.hash)
            .collect::<Vec<_>>(),
        vec![h]
    );
    assert_eq!(
        crate::chain::output_root(&fh.header, fh.hash),
        crate::chain::output_root(&lh.header, lh.hash)
    );
}

#[test]
fn older_blocks_answer_from_the_change_sets() {
    let dir = tempfile::tempdir().expect("tmp");
    let l = open(dir.path());
    let to = Address::repeat_byte(0x77);
    let dev0 = signer(0).address();
    let (init, runtime) = store_artifact();
    // Block 1: a transfer and a deployment.
    l.submit_raw(&sign(0, Tx::default())).expect("transfer");
    l.submit_raw(&sign(
        0,
        Tx {
            to: None,
            value: U256::ZERO,
            data: init,
            gas: 200_000,
            nonce: 1,
            ..Default::default()
        },
    ))
    .expect("deploy");
    seal_checked(&l);
    let addr = dev0.create(1);
    // Blocks 2 and 3 set the slot; block 3 sends again.
    for (i, x) in [(2u64, 42u64), (3, 7)] {
        l.submit_raw(&sign(
            0,
            Tx {
                to: Some(addr),
                value: U256::ZERO,
                data: set_call(x),
                gas: 100_000,
                nonce: i,
                ..Default::default()
            },
        ))
        .expect("set");
        if i == 3 {
            l.submit_raw(&sign(
                0,
                Tx {
                    nonce: 4,
                    ..Default::default()
                },
            ))
            .expect("transfer");
        }
        seal_checked(&l);
    }
    // An empty block: nothing of these accounts changes in it.
    seal_checked(&l);
    assert_eq!(l.head().header.number, 4);
    let bal = |a: &Address, b: Option<u64>| l.account_at(a, b).expect("account").balance;
    assert_eq!(bal(&to, Some(0)), U256::ZERO);
    assert_eq!(bal(&to, Some(1)), U256::from(OPEN));
    assert_eq!(bal(&to, Some(2)), U256::from(OPEN));
    assert_eq!(bal(&to, Some(3)), U256::from(2 * OPEN));
    assert_eq!(bal(&to, Some(4)), U256::from(2 * OPEN));
    assert_eq!(bal(&to, None), U256::from(2 * OPEN));
    assert_eq!(bal(&dev0, Some(0)), U256::from(genesis::DEV_ACCOUNT_OPEN));
    assert!(bal(&dev0, Some(1)) < bal(&dev0, Some(0)));
    let nonce = |b: Option<u64>| l.account_at(&dev0, b).expect("account").nonce;
    assert_eq!(
        [
            nonce(Some(0)),
            nonce(Some(1)),
            nonce(Some(2)),
            nonce(Some(3))
        ],
        [0, 2, 3, 5]
    );
    // The account that did not exist at genesis.
    assert_eq!(
        l.account_at(&to, Some(0)).expect("absent"),
        l.account(&Address::repeat_byte(0x99)).expect("absent")
    );
    assert!(l.code_at(&addr, Some(0)).expect("code").is_empty());
    assert_eq!(
        l.code_at(&addr, Some(1)).expect("code").as_ref(),
        runtime.as_slice()
    );
    let slot = |b: Option<u64>| l.slot_at(&addr, U256::ZERO, b).expect("slot");
    assert_eq!(slot(Some(1)), U256::ZERO);
    assert_eq!(slot(Some(2)), U256::from(42));
    assert_eq!(slot(Some(3)), U256::from(7));
    assert_eq!(slot(None), U256::from(7));
    // The account's storage root at an older block is the one of that block's state.
    let root2 = l.account_at(&addr, Some(2)).expect("a").storage_root;
    assert_ne!(root2, l.account(&addr).expect("a").storage_root);
    let get = CallRequest {
        to: Some(addr),
        data: Some(vec![0x6d, 0x4c, 0xe6, 0x3c].into()),
        ..Default::default()
    };
    let at = |b: Option<u64>| U256::from_be_slice(&l.call_at(&get, b).expect("call"));
    assert_eq!(at(Some(1)), U256::ZERO);
    assert_eq!(at(Some(2)), U256::from(42));
    assert_eq!(at(Some(3)), U256::from(7));
    assert_eq!(at(None), U256::from(7));
    // Before the deployment there is no code: the call returns nothing.
    assert!(l.call_at(&get, Some(0)).expect("call").is_empty());
    let est = l
        .estimate_gas_at(
            &CallRequest {
                from: Some(signer(1).address()),
                data: Some(set_call(9).into()),
                ..get.clone()
            },
            Some(1),
        )
        .expect("estimate");
    assert!(est > 21_000 && est < 100_000, "{est}");
    assert!(matches!(
        l.account_at(&to, Some(5)),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(l.call_at(&get, Some(9)), Err(Error::NotFound(_))));
}

#[test]
fn account_history_pages_newest_first() {
    let dir = tempfile::tempdir().expect("tmp");
    let l = open(dir.path());
    let dev0 = signer(0).address();
    let dev1 = signer(1).address();
    let to = Address::repeat_byte(0x77);
    let (init, _) = store_artifact();
    let mut hashes = Vec::new();
    // Block 1: dev0 -> to, dev0 creates; block 2: dev1 -> dev0; blocks 3..=5: dev0 -> to.
    hashes.push(l.submit_raw(&sign(0, Tx::default())).expect("tx"));
    hashes.push(
        l.submit_raw(&sign(
            0,
            Tx {
                to: None,
                value: U256::ZERO,
                data: init,
                gas: 200_000,
                nonce: 1,
                ..Default::default()
            },
        ))
        .expect("deploy"),
    );
    seal_checked(&l);
    let created = dev0.create(1);
    hashes.push(
        l.submit_raw(&sign(
            1,
            Tx {
                to: Some(dev0),
                ..Default::default()
            },
        ))
        .expect("tx"),
    );
    seal_checked(&l);
    for nonce in 2..5 {
        hashes.push(
            l.submit_raw(&sign(
                0,
                Tx {
                    nonce,
                    ..Default::default()
                },
            ))
            .expect("tx"),
        );
        seal_checked(&l);
    }
    let all = l.account_transactions(&dev0, None, 100).expect("history");
    let got: Vec<B256> = all.iter().map(|t| t.hash).collect();
    let want: Vec<B256> = hashes.iter().rev().copied().collect();
    assert_eq!(got, want, "dev0 sent or received all six, newest first");
    // Paging with the cursor gives the same list.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = l.account_transactions(&dev0, before, 2).expect("page");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        let last = page.last().and_then(|t| t.block).expect("mined");
        before = Some((last.1, last.2 as u32));
        paged.extend(page.into_iter().map(|t| t.hash));
    }
    assert_eq!(paged, want);
    let recipient = l.account_transactions(&to, None, 100).expect("history");
    assert_eq!(recipient.len(), 4);
    assert_eq!(recipient[0].hash, hashes[5]);
    assert_eq!(recipient[0].from, dev0);
    let made = l.account_transactions(&created, None, 10).expect("history");
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].hash, hashes[1]);
    assert_eq!(
        l.account_transactions(&dev1, None, 10)
            .expect("history")
            .len(),
        1
    );
    assert!(
        l.account_transactions(&Address::repeat_byte(0x99), None, 10)
            .expect("none")
            .is_empty()
    );
    // Each block's L1-attributes deposit involves the L1Block predeploy.
    let l1 = l
        .account_transactions(&genesis::L1_BLOCK, None, 3)
        .expect("l1");
    assert_eq!(
        l1.iter()
            .map(|t| t.block.expect("mined").1)
            .collect::<Vec<_>>(),
        vec![5, 4, 3]
    );

    // A ledger from before the index: no entries and no completion mark. Opening it indexes
    // every block again, to the same answers.
    drop(l);
    {
        let db = redb::Database::open(dir.path().join("ledger.redb")).expect("db");
        let w = db.begin_write().expect("write");
        {
            let mut t = w.open_table(crate::db::ACCOUNT_TXS).expect("table");
            t.retain(|_, _| false).expect("clear");
            let mut m = w.open_table(crate::db::META).expect("meta");
            assert!(m.remove("account_txs_complete").expect("remove").is_some());
        }
        w.commit().expect("commit");
    }
    let l = open(dir.path());
    let again: Vec<B256> = l
        .account_transactions(&dev0, None, 100)
        .expect("history")
        .iter()
        .map(|t| t.hash)
        .collect();
    assert_eq!(again, want);
    let made = l.account_transactions(&created, None, 10).expect("history");
    assert_eq!(made.len(), 1);
    assert_eq!(
        l.account_transactions(&to, None, 100)
            .expect("history")
            .len(),
        4
    );
}

#[test]
fn recent_logs_are_newest_first() {
    let dir = tempfile::tempdir().expect("tmp");
    let l = open(dir.path());
    let (init, _) = store_artifact();
    l.submit_raw(&sign(
        0,
        Tx {
            to: None,
            value: U256::ZERO,
            data: init,
            gas: 200_000,
            ..Default::default()
        },
    ))
    .expect("deploy");
    seal_checked(&l);
    let addr = signer(0).address().create(0);
    let mut nonce = 1;
    // Two sets in one block, then one per block.
    for per_block in [2u64, 1, 1] {
        for _ in 0..per_block {
            l.submit_raw(&sign(
                0,
                Tx {
                    to: Some(addr),
                    value: U256::ZERO,
                    data: set_call(nonce),
                    gas: 100_000,
                    nonce,
                    ..Default::default()
                },
            ))
            .expect("set");
            nonce += 1;
        }
        seal_checked(&l);
    }
    let logs = l.recent_logs(&addr, 3).expect("logs");
    let values: Vec<U256> = logs
        .iter()
        .map(|x| U256::from_be_slice(&x.log.data[x.log.data.len() - 32..]))
        .collect();
    assert_eq!(values, vec![U256::from(4), U256::from(3), U256::from(2)]);
    assert_eq!(logs[0].block_number, 4);
    assert_eq!(logs[2].block_number, 2);
    assert_eq!(l.recent_logs(&addr, 10).expect("logs").len(), 4);
    assert!(
        l.recent_logs(&Address::repeat_byte(0x99), 10)
            .expect("none")
            .is_empty()
    );
}

#[test]
fn concurrent_submissions_share_commits_and_all_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let hashes: Vec<alloy_primitives::B256> = {
        let l = open(dir.path());
        let raws: Vec<Vec<u8>> = (0..2)
            .flat_map(|key| {
                (0..40).map(move |n| {
                    sign(
                        key,
                        Tx {
                            nonce: n,
                            ..Default::default()
                        },
                    )
                })
            })
            .collect();
        // Two submitters per sender key, each taking alternate nonces: the pool and its
        // group commits see concurrent calls from the start.
        std::thread::scope(|s| {
            let l = &l;
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let mine: Vec<&Vec<u8>> = raws
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % 4 == t)
                        .map(|(_, r)| r)
                        .collect();
                    s.spawn(move || {
                        mine.into_iter()
                            .map(|r| {
                                // The pool queues nonce gaps; "too high" would only come past
                                // its per-sender window, and then the other thread catches up.
                                loop {
                                    match l.submit_raw(r) {
                                        Ok(h) => return h,
                                        Err(crate::Error::Tx(crate::TxError::NonceTooHigh {
                                            ..
                                        })) => std::thread::yield_now(),
                                        Err(e) => panic!("submit: {e}"),
                                    }
                                }
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("submitter"))
                .collect()
        })
    };
    assert_eq!(hashes.len(), 80);
    let l = open(dir.path());
    assert_eq!(l.pool_len(), 80, "every acknowledged submission is durable");
    seal_checked(&l);
    for h in &hashes {
        assert!(l.receipt(h).expect("receipt").is_some(), "{h} mined");
    }
}

#[test]
fn a_ledger_from_before_change_sets_refuses_older_blocks() {
    let dir = tempfile::tempdir().expect("tmp");
    {
        let l = open(dir.path());
        l.submit_raw(&sign(0, Tx::default())).expect("tx");
        seal_checked(&l);
        seal_checked(&l);
    }
    // What an older version left: no change sets, no `history_from`.
    {
        let db = redb::Database::open(dir.path().join("ledger.redb")).expect("db");
        let w = db.begin_write().expect("w");
        w.delete_table(crate::db::ACCOUNT_HISTORY).expect("drop");
        w.delete_table(crate::db::STORAGE_HISTORY).expect("drop");
        w.open_table(crate::db::META)
            .expect("meta")
            .remove("history_from")
            .expect("remove");
        w.commit().expect("commit");
    }
    let l = open(dir.path());
    let to = Address::repeat_byte(0x77);
    assert!(matches!(
        l.account_at(&to, Some(0)),
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        l.account_at(&to, Some(2)).expect("head").balance,
        U256::from(OPEN)
    );
    l.submit_raw(&sign(
        0,
        Tx {
            nonce: 1,
            ..Default::default()
        },
    ))
    .expect("tx");
    seal_checked(&l);
    // From the upgrade on, older blocks are answered again.
    assert_eq!(
        l.account_at(&to, Some(2)).expect("kept").balance,
        U256::from(OPEN)
    );
    assert_eq!(l.account(&to).expect("head").balance, U256::from(2 * OPEN));
}

/// What older versions left: pending transactions in a redb `pool` table.
fn put_legacy_pool(file: &std::path::Path, entries: &[(B256, &[u8])]) {
    let db = redb::Database::create(file).expect("db");
    let w = db.begin_write().expect("w");
    {
        let mut t = w.open_table(crate::db::POOL).expect("pool");
        for (h, raw) in entries {
            t.insert(h.0, *raw).expect("insert");
        }
    }
    w.commit().expect("commit");
}

#[test]
fn a_pool_kept_by_older_versions_in_redb_moves_to_the_journal() {
    let dir = tempfile::tempdir().expect("tmp");
    let (a, b) = (
        sign(0, Tx::default()),
        sign(
            0,
            Tx {
                nonce: 1,
                ..Default::default()
            },
        ),
    );
    drop(open(dir.path()));
    // The oldest versions kept it in `ledger.redb`, later ones in `ledger.pool.redb`.
    put_legacy_pool(&dir.path().join("ledger.redb"), &[(keccak256(&a), &a)]);
    put_legacy_pool(&dir.path().join("ledger.pool.redb"), &[(keccak256(&b), &b)]);
    let l = open(dir.path());
    assert_eq!(l.pool_len(), 2, "both old entries are pending again");
    drop(l);
    assert!(
        !dir.path().join("ledger.pool.redb").exists(),
        "the old file is gone"
    );
    let db = redb::Database::open(dir.path().join("ledger.redb")).expect("db");
    let r = redb::ReadableDatabase::begin_read(&db).expect("r");
    assert!(
        matches!(
            r.open_table(crate::db::POOL),
            Err(redb::TableError::TableDoesNotExist(_))
        ),
        "the old table is gone"
    );
    drop(r);
    drop(db);
    let l = open(dir.path());
    assert_eq!(l.pool_len(), 2, "kept by the journal alone");
    seal_checked(&l);
    assert!(l.receipt(&keccak256(&b)).expect("receipt").is_some());
    assert_eq!(l.pool_len(), 0);
}

#[test]
fn the_pool_journal_keeps_what_is_pending_and_starts_over_on_reopen() {
    let dir = tempfile::tempdir().expect("tmp");
    let journal = dir.path().join("ledger.pool.log");
    let tx = |nonce: u64, tip: u128| {
        sign(
            0,
            Tx {
                nonce,
                tip,
                ..Default::default()
            },
        )
    };
    let (mined, replaced, replacement, queued) = (
        tx(0, 1_000_000),
        tx(1, 1_000_000),
        sign(
            0,
            Tx {
                nonce: 1,
                tip: 2_000_000,
                max_fee: 11_000_000_000,
                ..Default::default()
            },
        ),
        tx(2, 1_000_000),
    );
    let pending = |l: &Ledger, raw: &[u8]| {
        l.transaction(&keccak256(raw))
            .expect("lookup")
            .is_some_and(|t| t.block.is_none())
    };
    {
        let l = open(dir.path());
        l.submit_raw(&mined).expect("tx 0");
        seal_checked(&l);
        for raw in [&replaced, &replacement, &queued] {
            l.submit_raw(raw).expect("pending");
        }
        assert_eq!(l.pool_len(), 2);
    }
    let grown = std::fs::metadata(&journal).expect("journal").len();
    let l = open(dir.path());
    assert_eq!(l.pool_len(), 2, "the replacement and the queued one");
    assert!(pending(&l, &replacement) && pending(&l, &queued));
    assert!(!pending(&l, &replaced), "replaced stays gone");
    assert!(!pending(&l, &mined), "mined is not pending");
    let compacted = std::fs::metadata(&journal).expect("journal").len();
    assert!(
        compacted < grown,
        "{compacted} bytes after reopen, {grown} before"
    );
    seal_checked(&l);
    assert_eq!(l.pool_len(), 0);
    drop(l);
    assert_eq!(
        open(dir.path()).pool_len(),
        0,
        "mined entries do not come back"
    );
}

#[test]
fn blocks_after_the_last_checkpoint_come_back_from_the_block_log() {
    let dir = tempfile::tempdir().expect("tmp");
    let crashed = tempfile::tempdir().expect("tmp");
    let who = Address::repeat_byte(0x56);
    let l = open(dir.path());
    l.set_checkpoint_interval(std::time::Duration::from_secs(3600));
    l.checkpoint().expect("checkpoint at genesis");
    let mut mined = Vec::new();
    for n in 0..4 {
        mined.push(
            l.submit_raw(&sign(
                0,
                Tx {
                    nonce: n,
                    ..Default::default()
                },
            ))
            .expect("tx"),
        );
        seal_checked(&l);
    }
    l.queue_deposit(&DepositRequest {
        from: who,
        to: Some(who),
        mint: 3 * OPEN,
        value: U256::from(3 * OPEN),
        gas_limit: 100_000,
        data: Bytes::new(),
    })
    .expect("deposit");
    seal_checked(&l);
    let mut raws = Vec::new();
    for n in 4..6 {
        let raw = sign(
            0,
            Tx {
                nonce: n,
                to: Some(Address::repeat_byte(0x60 + n as u8)),
                ..Default::default()
            },
        );
        mined.push(l.submit_raw(&raw).expect("tx"));
        raws.push(raw);
        seal_checked(&l);
    }
    let head = l.head();
    // Blocks past the last durable commit answer lookups like any other.
    for h in &mined {
        assert!(l.receipt(h).expect("receipt").is_some(), "{h} mined");
        assert!(
            l.transaction(h)
                .expect("tx")
                .expect("known")
                .block
                .is_some()
        );
    }
    let paid = l
        .account_transactions(&Address::repeat_byte(0x65), None, 10)
        .expect("history");
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0].hash, mined[5]);
    assert_eq!(
        l.account_transactions(&signer(0).address(), None, 3)
            .expect("history")
            .iter()
            .map(|t| t.hash)
            .collect::<Vec<_>>(),
        vec![mined[5], mined[4], mined[3]],
        "newest first"
    );
    assert!(matches!(
        l.submit_raw(&raws[1]),
        Err(crate::Error::Tx(crate::TxError::AlreadyKnown))
    ));
    assert_eq!(head.header.number, 7);
    assert_eq!(
        rebuilt_state_root(&l),
        head.header.state_root,
        "the held trie nodes give the state's root"
    );
    // A crash now: what is on disk is the files as they are, with redb's last durable
    // commit (the deposit's) one block behind the head.
    for f in ["ledger.redb", "ledger.wal", "ledger.pool.log"] {
        std::fs::copy(dir.path().join(f), crashed.path().join(f)).expect("copy");
    }
    {
        let db = redb::Database::open(crashed.path().join("ledger.redb")).expect("db");
        let r = redb::ReadableDatabase::begin_read(&db).expect("r");
        let durable = r
            .open_table(crate::db::META)
            .expect("meta")
            .get("head")
            .expect("get")
            .map(|v| v.value());
        assert_eq!(durable, Some(4), "redb alone is behind the head");
    }
    let back = open(crashed.path());
    assert_eq!(back.head().header.number, 7);
    assert_eq!(rebuilt_state_root(&back), head.header.state_root);
    assert_eq!(back.head().hash, head.hash, "the same chain, not a new one");
    assert_eq!(back.head().header.state_root, head.header.state_root);
    for h in &mined {
        assert!(back.receipt(h).expect("receipt").is_some(), "{h} mined");
    }
    assert_eq!(
        back.account_transactions(&Address::repeat_byte(0x65), None, 10)
            .expect("history")
            .len(),
        1
    );
    assert_eq!(
        back.account(&who).expect("who").balance,
        U256::from(3 * OPEN)
    );
    assert_eq!(back.pool_len(), 0);
    assert!(
        !back.has_work().expect("work"),
        "the deposit is not queued again"
    );
    assert_eq!(
        back.total_balance().expect("sum"),
        back.expected_supply().expect("supply")
    );
    // Replay checkpointed: a second crash right away needs no log.
    drop(back);
    assert_eq!(
        std::fs::metadata(crashed.path().join("ledger.wal"))
            .expect("wal")
            .len(),
        0
    );
}

/// Blocks that change hundreds of accounts walk the account trie on two threads (the second
/// through a snapshot of the state before the block, with the held nodes over it): their
/// state roots must be the ones a rebuild from the accounts gives, before a checkpoint,
/// after one, and after the blocks come back from the block log.
#[test]
fn blocks_of_many_accounts_keep_their_state_roots() {
    // The account trie's node cache holding every depth, only the top two levels (the
    // rest from redb; the blocks' new accounts push it past its budget, so it also gives
    // up levels on the way), and none.
    for trie_cache in [crate::chain::DEFAULT_TRIE_CACHE_BYTES, 12_000, 0] {
        many_accounts_keep_their_state_roots(trie_cache);
    }
}

fn many_accounts_keep_their_state_roots(trie_cache: usize) {
    let dir = tempfile::tempdir().expect("tmp");
    let crashed = tempfile::tempdir().expect("tmp");
    let open_big = |dir: &std::path::Path| {
        let pool = PoolConfig {
            per_sender: 400,
            ..PoolConfig::default()
        };
        open_cached(dir, 1_000, pool, trie_cache)
    };
    let l = open_big(dir.path());
    l.set_checkpoint_interval(std::time::Duration::from_secs(3600));
    let mut nonces = [0u64; 2];
    let mut heads = Vec::new();
    for block in 0..3u64 {
        // Key 0 pays genesis test accounts, key 1 new ones: ~300 changed accounts a block.
        for i in 0..150u64 {
            for (key, nonce) in nonces.iter_mut().enumerate() {
                let to = match key {
                    0 => genesis::test_account((block * 150 + i) % 1_000),
                    _ => Address::from_word(keccak256((block * 1_000 + i).to_be_bytes())),
                };
                l.submit_raw(&sign(
                    key,
                    Tx {
                        to: Some(to),
                        value: U256::from(1_000 + i),
                        nonce: *nonce,
                        ..Default::default()
                    },
                ))
                .expect("transfer");
                *nonce += 1;
            }
        }
        let b = seal_checked(&l);
        assert_eq!(b.user_txs, 300);
        assert_eq!(rebuilt_state_root(&l), b.header.state_root, "block {block}");
        heads.push(b.header.hash_slow());
        if block == 0 {
            l.checkpoint().expect("checkpoint");
        }
    }
    // Blocks 2 and 3 are durable through the block log only: copy the files as a crash
    // would leave them and open the copy, which executes them again.
    for f in ["ledger.redb", "ledger.wal", "ledger.pool.log"] {
        std::fs::copy(dir.path().join(f), crashed.path().join(f)).expect("copy");
    }
    let back = open_big(crashed.path());
    assert_eq!(back.head().header.number, 3);
    assert_eq!(back.head().hash, heads[2]);
    assert_eq!(rebuilt_state_root(&back), back.head().header.state_root);
    let (_, bytes, depths) = back.trie_cache_stats();
    assert!(
        bytes <= trie_cache,
        "{bytes} bytes over a budget of {trie_cache}"
    );
    match trie_cache {
        0 => assert_eq!(depths, 0),
        12_000 => assert!((1..=2).contains(&depths), "{depths} depths"),
        _ => assert_eq!(depths, 65),
    }
}

/// The state root computed from scratch over every account and slot, which must also give
/// every account's stored storage root.
fn rebuilt_state_root(l: &Ledger) -> alloy_primitives::B256 {
    let c = l.verify_state().expect("verify");
    assert_eq!(c.storage_mismatches, Vec::<B256>::new(), "storage roots");
    c.rebuilt_root
}

/// The rebuild of the state from its flat tables tells a sound ledger from one whose
/// account or slot was changed behind the trie's back.
#[test]
fn verify_state_finds_a_changed_account_and_a_changed_slot() {
    use redb::ReadableTable as _;
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ledger.redb");
    {
        let l = open(dir.path());
        for nonce in 0..2 {
            l.submit_raw(&sign(
                0,
                Tx {
                    to: Some(signer(1).address()),
                    value: U256::from(5),
                    nonce,
                    ..Default::default()
                },
            ))
            .expect("transfer");
            seal_checked(&l);
        }
        let c = l.verify_state().expect("verify");
        assert!(c.ok(), "{c:?}");
        assert_eq!(c.block, 2);
        assert_eq!(c.header_root, l.head().header.state_root);
        assert!(c.accounts >= 10, "{c:?}");
        // The predeploys (L1Block's attributes, the registries' owners) have slots.
        assert!(c.contracts_with_storage >= 1 && c.slots >= c.contracts_with_storage);
        l.checkpoint().expect("checkpoint");
    }
    let l1_block = keccak256(genesis::L1_BLOCK);
    {
        // A slot of L1Block changed on disk, its storage root left as it was.
        let db = redb::Database::open(&path).expect("db");
        let w = db.begin_write().expect("w");
        {
            let mut t = w.open_table(crate::db::STORAGE).expect("storage");
            let (slot, value) = {
                let mut it = t
                    .range((l1_block.0, [0u8; 32])..=(l1_block.0, [0xffu8; 32]))
                    .expect("range");
                let (k, v) = it.next().expect("a slot").expect("entry");
                (k.value().1, v.value())
            };
            let mut other = value;
            other[31] ^= 1;
            t.insert((l1_block.0, slot), other).expect("insert");
        }
        w.commit().expect("commit");
    }
    // Offline, as `commons check` reads a stopped node's file, and through an open ledger.
    let (clean, offline) = crate::chain::verify_file(&path).expect("verify the file");
    assert!(clean, "redb itself is sound");
    assert_eq!(offline.storage_mismatches, vec![l1_block]);
    let c = open(dir.path()).verify_state().expect("verify");
    assert!(!c.ok());
    assert_eq!(c.storage_mismatches, vec![l1_block]);
    assert_eq!(
        c.rebuilt_root, c.header_root,
        "the account trie itself is sound"
    );
    {
        // An account's balance changed on disk.
        let db = redb::Database::open(&path).expect("db");
        let w = db.begin_write().expect("w");
        {
            let mut t = w.open_table(crate::db::ACCOUNTS).expect("accounts");
            let key = keccak256(signer(1).address()).0;
            let mut a = {
                let v = t.get(key).expect("get").expect("funded");
                crate::db::StoredAccount::decode(v.value()).expect("account")
            };
            a.balance += U256::from(1);
            t.insert(key, a.encode().as_slice()).expect("insert");
        }
        w.commit().expect("commit");
    }
    let c = open(dir.path()).verify_state().expect("verify");
    assert_ne!(c.rebuilt_root, c.header_root);
    assert!(!c.ok());
}

/// Every proof at every older block verifies against that block's state root, for accounts
/// that changed, were created later, or never existed, and for a slot set, changed and
/// cleared — before and after a restart.
#[test]
fn proofs_at_older_blocks_verify_against_their_state_roots() {
    let dir = tempfile::tempdir().expect("tmp");
    let (init, _) = store_artifact();
    let contract = signer(0).address().create(0);
    let fresh = |i: u8| Address::repeat_byte(0x30 + i);
    let mut calls: Vec<Tx> = vec![Tx {
        to: None,
        value: U256::ZERO,
        data: init,
        gas: 200_000,
        ..Default::default()
    }];
    for x in [42u64, 7, 0, 9] {
        calls.push(Tx {
            to: Some(contract),
            value: U256::ZERO,
            data: set_call(x),
            gas: 100_000,
            ..Default::default()
        });
    }
    let check = |l: &Ledger| {
        let head = l.head().header.number;
        let watched = [
            signer(0).address(),
            signer(1).address(),
            contract,
            fresh(0),
            fresh(3),
            Address::repeat_byte(0xee),
        ];
        for n in 0..=head {
            let (header, _) = l.header(n).expect("read").expect("header");
            for a in watched {
                let p = l.proof(&a, &[B256::ZERO], Some(n)).expect("proof");
                let want = l.account_at(&a, Some(n)).expect("account");
                assert_eq!(p.account, want, "account {a} at block {n}");
                let exists = l
                    .state_at(Some(n))
                    .and_then(|(_r, v)| v.account(&a))
                    .expect("state")
                    .is_some();
                alloy_trie::proof::verify_proof(
                    header.state_root,
                    alloy_trie::Nibbles::unpack(keccak256(a)),
                    exists.then(|| p.account.trie_rlp()),
                    &p.account_proof,
                )
                .unwrap_or_else(|e| panic!("account proof of {a} at block {n}: {e}"));
                let (key, value, nodes) = &p.storage[0];
                assert_eq!(*key, B256::ZERO);
                let slot = l.slot_at(&a, U256::ZERO, Some(n)).expect("slot");
                assert_eq!(*value, slot, "slot of {a} at block {n}");
                if p.account.storage_root != alloy_trie::EMPTY_ROOT_HASH {
                    alloy_trie::proof::verify_proof(
                        p.account.storage_root,
                        alloy_trie::Nibbles::unpack(keccak256(B256::ZERO)),
                        (!slot.is_zero()).then(|| alloy_rlp::encode(slot)),
                        nodes,
                    )
                    .unwrap_or_else(|e| panic!("storage proof of {a} at block {n}: {e}"));
                }
            }
        }
        assert!(matches!(
            l.proof(&contract, &[], Some(head + 1)),
            Err(Error::NotFound(_))
        ));
    };
    let mut nonces = [0u64; 2];
    {
        let l = open(dir.path());
        for (i, call) in calls.into_iter().enumerate() {
            l.submit_raw(&sign(
                0,
                Tx {
                    nonce: nonces[0],
                    ..call
                },
            ))
            .expect("call");
            nonces[0] += 1;
            // New accounts and a second sender in the same blocks.
            l.submit_raw(&sign(
                1,
                Tx {
                    to: Some(fresh(i as u8)),
                    value: U256::from(i as u64 + 1),
                    nonce: nonces[1],
                    ..Default::default()
                },
            ))
            .expect("transfer");
            nonces[1] += 1;
            seal_checked(&l);
        }
        assert_eq!(
            l.slot_at(&contract, U256::ZERO, None).expect("slot"),
            U256::from(9)
        );
        check(&l);
    }
    // Reopened: the held trie nodes are gone and the blocks come back from the block log.
    let l = open(dir.path());
    l.submit_raw(&sign(
        1,
        Tx {
            to: Some(fresh(9)),
            nonce: nonces[1],
            ..Default::default()
        },
    ))
    .expect("transfer");
    seal_checked(&l);
    check(&l);
}

/// The L1 side of a withdrawal: the proof against the output of the block that holds it, of
/// a later block, and of the head, each checked against the header; refusals for a block
/// before the withdrawal, a transaction without one, and an unknown hash.
#[test]
fn withdrawal_proofs_verify_against_output_roots() {
    use alloy_sol_types::SolCall;

    use crate::withdraw::Withdrawal;
    let dir = tempfile::tempdir().expect("tmp");
    let l = open(dir.path());
    let passer = genesis::L2_TO_L1_MESSAGE_PASSER;
    // A plain transfer to the passer withdraws to the sender's own L1 address.
    let plain = l
        .submit_raw(&sign(
            0,
            Tx {
                to: Some(passer),
                gas: 200_000,
                ..Default::default()
            },
        ))
        .expect("withdraw");
    let other = l.submit_raw(&sign(1, Tx::default())).expect("transfer");
    seal_checked(&l);
    let target = Address::repeat_byte(0x99);
    let call = l
        .submit_raw(&sign(
            1,
            Tx {
                to: Some(passer),
                value: U256::from(2 * OPEN),
                data: initiateWithdrawalCall {
                    target,
                    gasLimit: U256::from(50_000),
                    data: Bytes::from_static(b"hi"),
                }
                .abi_encode(),
                gas: 200_000,
                nonce: 1,
                ..Default::default()
            },
        ))
        .expect("initiate");
    seal_checked(&l);
    l.submit_raw(&sign(
        0,
        Tx {
            nonce: 1,
            ..Default::default()
        },
    ))
    .expect("transfer");
    seal_checked(&l);

    let version = U256::from(1) << 240;
    let (block, ws) = l.withdrawals_of(&plain).expect("withdrawals");
    assert_eq!(block, 1);
    assert_eq!(
        ws,
        vec![Withdrawal {
            nonce: version,
            sender: signer(0).address(),
            target: signer(0).address(),
            value: U256::from(OPEN),
            gas_limit: U256::from(100_000),
            data: Bytes::new(),
        }]
    );
    let (_, ws) = l.withdrawals_of(&call).expect("withdrawals");
    assert_eq!(ws[0].nonce, version + U256::from(1));
    assert_eq!((ws[0].target, ws[0].value), (target, U256::from(2 * OPEN)));

    for (tx, at) in [
        (plain, Some(1)),
        (plain, Some(2)),
        (plain, None),
        (call, Some(2)),
    ] {
        let p = l.withdrawal_proof(&tx, at).expect("proof");
        let (header, hash) = l.header(p.l2_block).expect("read").expect("header");
        assert_eq!(p.l2_block, at.unwrap_or(3));
        assert_eq!(p.output_root, crate::chain::output_root(&header, hash));
        let mut preimage = [0u8; 128];
        preimage[32..64].copy_from_slice(p.state_root.as_slice());
        preimage[64..96].copy_from_slice(p.message_passer_storage_root.as_slice());
        preimage[96..].copy_from_slice(p.block_hash.as_slice());
        assert_eq!(keccak256(preimage), p.output_root);
        for (w, nodes) in &p.withdrawals {
            alloy_trie::proof::verify_proof(
                p.message_passer_storage_root,
                alloy_trie::Nibbles::unpack(keccak256(w.storage_slot())),
                Some(alloy_rlp::encode(U256::from(1))),
                nodes,
            )
            .expect("withdrawal proof");
        }
    }
    assert!(matches!(
        l.withdrawal_proof(&call, Some(1)),
        Err(Error::Invalid(m)) if m.contains("block 2")
    ));
    assert!(matches!(
        l.withdrawal_proof(&other, None),
        Err(Error::Invalid(m)) if m.contains("no withdrawal")
    ));
    assert!(matches!(
        l.withdrawal_proof(&B256::repeat_byte(1), None),
        Err(Error::NotFound(_))
    ));
}
