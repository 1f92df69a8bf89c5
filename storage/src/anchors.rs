//! What the node published about a datanet on the ledger: the DatanetRegistry transaction that
//! registered it (recorded under version 0) and the one that published each version's root.
//!
//! The record is written *before* the transaction is handed to the ledger, with the signed
//! bytes, so a crash between the two leaves something to resend rather than a version that
//! silently never gets published.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use crate::store::{Snapshot, Store};
use crate::{Error, Result, decode, encode, tables};

/// Where a ledger transaction for a datanet stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnchorState {
    /// Signed and handed to the ledger; no receipt yet.
    Sent,
    /// Mined and succeeded.
    Confirmed,
    /// Mined and reverted, or refused for good; `error` says why.
    Failed,
}

impl AnchorState {
    /// Lower-case name, as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            AnchorState::Sent => "sent",
            AnchorState::Confirmed => "confirmed",
            AnchorState::Failed => "failed",
        }
    }
}

/// A DatanetRegistry transaction sent for a datanet (version 0) or one of its versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// State.
    pub state: AnchorState,
    /// Transaction hash.
    pub tx_hash: [u8; 32],
    /// The signed transaction (EIP-2718 bytes), to resend after a restart.
    pub raw_tx: Vec<u8>,
    /// The sender's nonce it uses.
    pub nonce: u64,
    /// Block that included it, once mined.
    pub block: Option<u64>,
    /// The datanet's id in DatanetRegistry (known once its registration is mined).
    pub chain_datanet: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Last change, unix ms.
    pub updated_at: u64,
}

impl Store {
    /// Record (or update) the anchor of `version` of `datanet` (0: its registration).
    pub fn put_anchor(&self, datanet: u64, version: u64, mut anchor: Anchor) -> Result<Anchor> {
        self.write(move |ctx| {
            if ctx.t.datanets.get(datanet)?.is_none() {
                return Err(Error::not_found("datanet", datanet));
            }
            if version > 0 && ctx.t.versions.get((datanet, version))?.is_none() {
                return Err(Error::not_found("version", version));
            }
            anchor.updated_at = ctx.now_ms;
            ctx.t
                .anchors
                .insert((datanet, version), encode(&anchor).as_slice())?;
            Ok(anchor)
        })
    }

    /// Forget the anchor of `version` of `datanet` (a transaction the ledger refused before
    /// it entered the pool, so that it is built again).
    pub fn remove_anchor(&self, datanet: u64, version: u64) -> Result<()> {
        self.write(move |ctx| {
            ctx.t.anchors.remove((datanet, version))?;
            Ok(())
        })
    }
}

impl Snapshot {
    /// The anchor of `version` of `datanet` (0: its registration), if one was sent.
    pub fn anchor(&self, datanet: u64, version: u64) -> Result<Option<Anchor>> {
        let t = self.txn().open_table(tables::ANCHORS)?;
        match t.get((datanet, version))? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    /// Every anchor of `datanet`, by version (0 first).
    pub fn anchors(&self, datanet: u64) -> Result<Vec<(u64, Anchor)>> {
        let t = self.txn().open_table(tables::ANCHORS)?;
        let mut out = Vec::new();
        for e in t.range((datanet, 0)..=(datanet, u64::MAX))? {
            let (k, v) = e?;
            out.push((k.value().1, decode(v.value())?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewDatanet;
    use crate::model::{DataKind, SignedBy};

    fn anchor(state: AnchorState) -> Anchor {
        Anchor {
            state,
            tx_hash: [7; 32],
            raw_tx: vec![1, 2, 3],
            nonce: 4,
            block: None,
            chain_datanet: None,
            error: None,
            updated_at: 0,
        }
    }

    #[test]
    fn anchors_are_kept_per_version_and_need_their_version() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::create_fresh(&dir.path().join("db"), Default::default()).expect("db");
        let err = store
            .put_anchor(1, 0, anchor(AnchorState::Sent))
            .expect_err("no datanet");
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        let dn = store
            .create_datanet(NewDatanet {
                slug: "anchored".into(),
                name: "d".into(),
                summary: String::new(),
                description: String::new(),
                tags: vec![],
                kind: DataKind::Text,
                private: false,
                signed: SignedBy {
                    signer: [1; 20],
                    nonce: [1; 32],
                    deadline: u64::MAX,
                    signature: vec![0; 65],
                },
            })
            .expect("datanet");
        let err = store
            .put_anchor(dn.id, 1, anchor(AnchorState::Sent))
            .expect_err("no version 1 yet");
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        store
            .put_anchor(dn.id, 0, anchor(AnchorState::Sent))
            .expect("registration");
        let mut done = anchor(AnchorState::Confirmed);
        done.block = Some(9);
        done.chain_datanet = Some(3);
        let stored = store.put_anchor(dn.id, 0, done).expect("confirm");
        assert!(stored.updated_at > 0);
        let snap = store.snapshot().expect("snap");
        let got = snap.anchor(dn.id, 0).expect("read").expect("present");
        assert_eq!(
            (got.state, got.block, got.chain_datanet),
            (AnchorState::Confirmed, Some(9), Some(3))
        );
        assert_eq!(snap.anchors(dn.id).expect("list").len(), 1);
        store.remove_anchor(dn.id, 0).expect("remove");
        assert!(
            store
                .snapshot()
                .expect("snap")
                .anchor(dn.id, 0)
                .expect("read")
                .is_none()
        );
    }
}
