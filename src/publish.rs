//! Datanets on the ledger: registers each datanet in DatanetRegistry and publishes every
//! accepted version's Merkle root there, in transactions signed by the node's operator key.
//!
//! A background thread compares the store with what it has sent (the store's `ledger_anchors`
//! table) and moves each datanet one step at a time. Every transaction is recorded — signed
//! bytes included — before the ledger sees it, so a crash can only leave a transaction to
//! look up or resend, never a version that is silently skipped. Versions of one datanet must
//! land in order (the contract refuses gaps), so a failed version holds back the later ones
//! and the API shows why.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolError, SolEvent, sol};
use commons_ledger::Ledger;
use commons_ledger::alloy_consensus::{SignableTransaction, TxEip1559};
use commons_ledger::alloy_eips::eip2718::Encodable2718;
use commons_ledger::op_alloy_consensus::OpTxEnvelope;
use commons_ledger::system::DATANET_REGISTRY;
use commons_storage::Store;
use commons_storage::anchors::{Anchor, AnchorState};
use commons_storage::model::{Datanet, Version};

sol! {
    function register(bytes32 metadataHash) external returns (uint256 id);
    function publishVersion(uint256 id, uint64 number, bytes32 root, uint64 rowCount) external;
    event DatanetRegistered(uint256 indexed id, address indexed owner, bytes32 metadataHash);
    error UnknownDatanet(uint256 id);
    error NotOwner(uint256 id);
    error VersionOutOfOrder(uint64 expected, uint64 given);
    error EmptyRoot();
}

/// Gas for either call: both write a few slots and emit one event (~75k when the slots are
/// new); unused gas is not charged.
const GAS_LIMIT: u64 = 250_000;

/// How often the publisher looks for work when nothing wakes it.
const TICK: Duration = Duration::from_millis(300);

/// What the publisher reports to the API.
#[derive(Debug, Clone, Default)]
pub struct PublisherStatus {
    /// The operator address that signs; `None` when publishing is off.
    pub operator: Option<Address>,
    /// The last error that kept a transaction from being sent (cleared by the next success).
    pub last_error: Option<String>,
}

/// The publisher thread.
#[derive(Debug)]
pub struct Publisher {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    status: Arc<Mutex<PublisherStatus>>,
}

/// The hash DatanetRegistry keeps as a datanet's metadata: keccak256 of the canonical JSON of
/// what identifies it (slug, name, summary, kind, tags), so anyone holding the metadata can
/// check it against the chain.
pub fn metadata_hash(d: &Datanet) -> B256 {
    let json = serde_json::json!({
        "slug": d.slug,
        "name": d.name,
        "summary": d.summary,
        "kind": d.kind,
        "tags": d.tags,
    });
    keccak256(json.to_string().as_bytes())
}

impl Publisher {
    /// Start publishing with `signer` (which pays the gas).
    pub fn spawn(store: Arc<Store>, ledger: Arc<Ledger>, signer: PrivateKeySigner) -> Publisher {
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(PublisherStatus {
            operator: Some(signer.address()),
            last_error: None,
        }));
        let worker = Worker {
            store,
            ledger,
            signer,
            status: status.clone(),
        };
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("datanet-publisher".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    if let Err(e) = worker.tick() {
                        worker.report(Some(e));
                    }
                    std::thread::sleep(TICK);
                }
            })
            .ok();
        if thread.is_none() {
            tracing::error!("cannot start the datanet publisher thread");
        }
        Publisher {
            stop,
            thread: Mutex::new(thread),
            status,
        }
    }

    /// Where publishing stands.
    pub fn status(&self) -> PublisherStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stop after the current step.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

struct Worker {
    store: Arc<Store>,
    ledger: Arc<Ledger>,
    signer: PrivateKeySigner,
    status: Arc<Mutex<PublisherStatus>>,
}

/// What one datanet needs next.
enum Step {
    /// Nothing (all published, or held back by a failure).
    Idle,
    /// Look at a transaction already sent.
    Check(u64, Anchor),
    /// Send the transaction for this version (0: registration).
    Send(u64, Bytes),
}

impl Worker {
    fn report(&self, error: Option<String>) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &error
            && s.last_error.as_ref() != Some(e)
        {
            tracing::warn!(error = %e, "publishing datanets on the ledger");
        }
        s.last_error = error;
    }

    fn tick(&self) -> Result<(), String> {
        let snap = self.store.snapshot().map_err(|e| e.to_string())?;
        let mut after = 0;
        loop {
            let page = snap
                .datanets(after, 256, |_| true)
                .map_err(|e| e.to_string())?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.id;
            for d in &page {
                // Each datanet may take several steps (check a receipt, then send the next
                // version); a fresh snapshot after each keeps the decision on current records.
                for _ in 0..64 {
                    let snap = self.store.snapshot().map_err(|e| e.to_string())?;
                    match self.next_step(&snap, d.id)? {
                        Step::Idle => break,
                        Step::Check(v, a) => {
                            if !self.check(d.id, v, a)? {
                                break;
                            }
                        }
                        Step::Send(v, input) => self.send(d.id, v, input)?,
                    }
                }
            }
        }
    }

    fn next_step(&self, snap: &commons_storage::Snapshot, datanet: u64) -> Result<Step, String> {
        let d = snap.datanet_by_id(datanet).map_err(|e| e.to_string())?;
        let anchors: std::collections::BTreeMap<u64, Anchor> = snap
            .anchors(datanet)
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let chain_id = match anchors.get(&0) {
            None => {
                let input = registerCall {
                    metadataHash: metadata_hash(&d),
                }
                .abi_encode();
                return Ok(Step::Send(0, input.into()));
            }
            Some(a) if a.state == AnchorState::Sent => return Ok(Step::Check(0, a.clone())),
            Some(a) => match (a.state, a.chain_datanet) {
                (AnchorState::Confirmed, Some(id)) => id,
                _ => return Ok(Step::Idle),
            },
        };
        for n in 1..=d.latest_version {
            match anchors.get(&n) {
                Some(a) if a.state == AnchorState::Sent => return Ok(Step::Check(n, a.clone())),
                Some(a) if a.state == AnchorState::Failed => return Ok(Step::Idle),
                Some(_) => continue,
                None => {
                    let v: Version = snap.version(datanet, n).map_err(|e| e.to_string())?;
                    let input = publishVersionCall {
                        id: U256::from(chain_id),
                        number: v.number,
                        root: B256::from(v.root),
                        rowCount: v.row_count,
                    }
                    .abi_encode();
                    return Ok(Step::Send(n, input.into()));
                }
            }
        }
        Ok(Step::Idle)
    }

    /// Sign the call, record it, hand it to the ledger.
    fn send(&self, datanet: u64, version: u64, input: Bytes) -> Result<(), String> {
        let from = self.signer.address();
        let nonce = self
            .ledger
            .pending_nonce(&from)
            .map_err(|e| e.to_string())?;
        let price = self.ledger.gas_price();
        let tx = TxEip1559 {
            chain_id: self.ledger.chain_id(),
            nonce,
            gas_limit: GAS_LIMIT,
            // Room for the base fee to double before it lands.
            max_fee_per_gas: price * 2,
            max_priority_fee_per_gas: commons_ledger::genesis::SUGGESTED_TIP,
            to: TxKind::Call(DATANET_REGISTRY),
            value: U256::ZERO,
            input,
            access_list: Default::default(),
        };
        let sig = self
            .signer
            .sign_hash_sync(&tx.signature_hash())
            .map_err(|e| format!("cannot sign: {e}"))?;
        let raw = OpTxEnvelope::Eip1559(tx.into_signed(sig)).encoded_2718();
        let hash = keccak256(&raw);
        let anchor = Anchor {
            state: AnchorState::Sent,
            tx_hash: hash.0,
            raw_tx: raw.clone(),
            nonce,
            block: None,
            chain_datanet: None,
            error: None,
            updated_at: 0,
        };
        self.store
            .put_anchor(datanet, version, anchor)
            .map_err(|e| e.to_string())?;
        if let Err(e) = self.ledger.submit_raw(&raw) {
            // Refused before entering the pool (no gas money, a nonce taken meanwhile by
            // another transaction of the operator): forget it and build it again later.
            self.store
                .remove_anchor(datanet, version)
                .map_err(|e| e.to_string())?;
            return Err(format!(
                "the ledger refused the DatanetRegistry transaction from {from}: {e}"
            ));
        }
        self.report(None);
        Ok(())
    }

    /// Settle a sent transaction from its receipt. Returns whether it is settled (so the next
    /// step may follow at once).
    fn check(&self, datanet: u64, version: u64, mut a: Anchor) -> Result<bool, String> {
        let hash = B256::from(a.tx_hash);
        let Some(r) = self.ledger.receipt(&hash).map_err(|e| e.to_string())? else {
            if self
                .ledger
                .transaction(&hash)
                .map_err(|e| e.to_string())?
                .is_none()
            {
                // Recorded but not in the pool: the node stopped between the two. Resend the
                // same bytes; if that nonce is gone, build the transaction again.
                if let Err(e) = self.ledger.submit_raw(&a.raw_tx) {
                    tracing::info!(error = %e, datanet, version, "resending a recorded DatanetRegistry transaction failed; building it again");
                    self.store
                        .remove_anchor(datanet, version)
                        .map_err(|e| e.to_string())?;
                }
            }
            return Ok(false);
        };
        a.block = Some(r.block_number);
        if r.receipt.status {
            a.state = AnchorState::Confirmed;
            a.chain_datanet = if version == 0 {
                registered_id(&r.receipt.logs)
            } else {
                self.store
                    .snapshot()
                    .map_err(|e| e.to_string())?
                    .anchor(datanet, 0)
                    .map_err(|e| e.to_string())?
                    .and_then(|reg| reg.chain_datanet)
            };
            if a.chain_datanet.is_none() {
                a.state = AnchorState::Failed;
                a.error = Some("the receipt has no DatanetRegistered event".into());
            }
        } else {
            a.state = AnchorState::Failed;
            a.error = Some(revert_reason(&self.ledger, &hash));
        }
        tracing::info!(datanet, version, tx = %hash, block = r.block_number, state = a.state.as_str(), "DatanetRegistry transaction mined");
        self.store
            .put_anchor(datanet, version, a)
            .map_err(|e| e.to_string())?;
        Ok(true)
    }
}

/// The on-chain id from a registration receipt's DatanetRegistered event.
fn registered_id(logs: &[commons_ledger::db::StoredLog]) -> Option<u64> {
    logs.iter().find_map(|l| {
        if Address::from(l.address) != DATANET_REGISTRY
            || l.topics.first().map(|t| B256::from(*t)) != Some(DatanetRegistered::SIGNATURE_HASH)
        {
            return None;
        }
        let id = U256::from_be_bytes(*l.topics.get(1)?);
        u64::try_from(id).ok()
    })
}

/// Why a mined transaction reverted, in words: replays it as a call at the head and decodes
/// the contract's custom errors.
fn revert_reason(ledger: &Ledger, hash: &B256) -> String {
    let Ok(Some(tx)) = ledger.transaction(hash) else {
        return "reverted".into();
    };
    use commons_ledger::alloy_consensus::Transaction;
    let req = commons_ledger::chain::CallRequest {
        from: Some(tx.from),
        to: tx.tx.to(),
        data: Some(tx.tx.input().clone()),
        ..Default::default()
    };
    match ledger.call(&req) {
        Ok(_) => "reverted (the same call succeeds now)".into(),
        Err(commons_ledger::Error::Reverted { data, .. }) => decode_revert(&data),
        Err(e) => format!("reverted: {e}"),
    }
}

fn decode_revert(data: &[u8]) -> String {
    if let Ok(e) = VersionOutOfOrder::abi_decode(data) {
        return format!(
            "reverted: VersionOutOfOrder (the registry expects version {}, not {})",
            e.expected, e.given
        );
    }
    if let Ok(e) = NotOwner::abi_decode(data) {
        return format!(
            "reverted: NotOwner (datanet {} belongs to another address)",
            e.id
        );
    }
    if let Ok(e) = UnknownDatanet::abi_decode(data) {
        return format!("reverted: UnknownDatanet ({})", e.id);
    }
    if EmptyRoot::abi_decode(data).is_ok() {
        return "reverted: EmptyRoot".into();
    }
    format!("reverted: 0x{}", hex::encode(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_data_reads_as_words() {
        let data = VersionOutOfOrder {
            expected: 3,
            given: 5,
        }
        .abi_encode();
        assert_eq!(
            decode_revert(&data),
            "reverted: VersionOutOfOrder (the registry expects version 3, not 5)"
        );
        assert_eq!(decode_revert(&[1, 2]), "reverted: 0x0102");
    }
}
