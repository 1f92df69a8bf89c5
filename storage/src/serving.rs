//! Records of the serving side: LoRA adapters (their files are content-addressed blobs) and
//! the API keys apps use on the OpenAI-compatible routes.

use serde::{Deserialize, Serialize};

use redb::ReadableTable;

use crate::model::Hash;
use crate::store::{Snapshot, Store, put_blob};
use crate::{Error, Result, decode, encode, tables};

/// A registered adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterRecord {
    /// Unique name (what `model` names in API calls).
    pub name: String,
    /// Content hash of config + weights, as the runtime computes it: the cache key.
    pub hash: Hash,
    /// Blob holding `adapter_config.json`.
    pub config_blob: Hash,
    /// Blob holding `adapter_model.safetensors`.
    pub weights_blob: Hash,
    /// The base model it was made for (as its config says).
    pub base_model: String,
    /// Largest rank over its modules.
    pub rank: u32,
    /// The projections it adapts.
    pub targets: Vec<String>,
    /// Bytes of its files.
    pub size: u64,
    /// Who added it (user name or address).
    pub added_by: String,
    /// Added, unix ms.
    pub created_at: u64,
}

impl AdapterRecord {
    /// Short id: the first 16 hex digits of the content hash.
    pub fn id(&self) -> String {
        hex::encode(&self.hash[..8])
    }
}

/// An API key (only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Label given at creation.
    pub name: String,
    /// The first characters of the key, to recognise it in lists.
    pub prefix: String,
    /// May load and unload adapters.
    pub admin: bool,
    /// Created, unix ms.
    pub created_at: u64,
}

impl Store {
    /// Register an adapter and store its files, in one transaction. With `replace`, an
    /// adapter of the same name is replaced (and returned as the second value).
    pub fn put_adapter(
        &self,
        mut rec: AdapterRecord,
        config: Vec<u8>,
        weights: Vec<u8>,
        replace: bool,
    ) -> Result<(AdapterRecord, Option<AdapterRecord>)> {
        rec.config_blob = *blake3::hash(&config).as_bytes();
        rec.weights_blob = *blake3::hash(&weights).as_bytes();
        rec.size = (config.len() + weights.len()) as u64;
        self.write(move |ctx| {
            let old = match ctx.t.adapters.get(rec.name.as_str())? {
                Some(v) => Some(decode::<AdapterRecord>(v.value())?),
                None => None,
            };
            if old.is_some() && !replace {
                return Err(Error::InvalidState(format!(
                    "an adapter named '{}' exists already (remove it first, or replace it)",
                    rec.name
                )));
            }
            rec.created_at = ctx.now_ms;
            put_blob(ctx, &rec.config_blob, &config, "application/json")?;
            put_blob(ctx, &rec.weights_blob, &weights, "application/octet-stream")?;
            ctx.t
                .adapters
                .insert(rec.name.as_str(), encode(&rec).as_slice())?;
            Ok((rec, old))
        })
    }

    /// Remove an adapter's registration (its blobs stay: other adapters may share them).
    pub fn remove_adapter(&self, name: &str) -> Result<AdapterRecord> {
        let name = name.to_string();
        self.write(move |ctx| {
            let rec = match ctx.t.adapters.remove(name.as_str())? {
                Some(v) => decode::<AdapterRecord>(v.value())?,
                None => return Err(Error::not_found("adapter", name)),
            };
            Ok(rec)
        })
    }

    /// Store a new API key under the hash of its secret.
    pub fn put_api_key(&self, key_hash: Hash, rec: ApiKeyRecord) -> Result<ApiKeyRecord> {
        self.write(move |ctx| {
            let mut rec = rec;
            rec.created_at = ctx.now_ms;
            ctx.t.api_keys.insert(key_hash, encode(&rec).as_slice())?;
            Ok(rec)
        })
    }

    /// Revoke every key with this name; returns how many.
    pub fn revoke_api_key(&self, name: &str) -> Result<usize> {
        let name = name.to_string();
        self.write(move |ctx| {
            let mut gone = 0;
            ctx.t.api_keys.retain(|_, v| {
                let keep = decode::<ApiKeyRecord>(v)
                    .map(|r| r.name != name)
                    .unwrap_or(true);
                if !keep {
                    gone += 1;
                }
                keep
            })?;
            if gone == 0 {
                return Err(Error::not_found("api key", name));
            }
            Ok(gone)
        })
    }
}

impl Snapshot {
    /// Every adapter, by name.
    pub fn adapters(&self) -> Result<Vec<AdapterRecord>> {
        let t = self.txn().open_table(tables::ADAPTERS)?;
        let mut out = Vec::new();
        for e in t.iter()? {
            out.push(decode(e?.1.value())?);
        }
        Ok(out)
    }

    /// An adapter by name or by id (hash prefix).
    pub fn adapter(&self, name_or_id: &str) -> Result<AdapterRecord> {
        let t = self.txn().open_table(tables::ADAPTERS)?;
        if let Some(v) = t.get(name_or_id)? {
            return decode(v.value());
        }
        if name_or_id.len() >= 8 && name_or_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            for e in t.iter()? {
                let r: AdapterRecord = decode(e?.1.value())?;
                if hex::encode(r.hash).starts_with(&name_or_id.to_ascii_lowercase()) {
                    return Ok(r);
                }
            }
        }
        Err(Error::not_found("adapter", name_or_id))
    }

    /// The API key with this hash.
    pub fn api_key(&self, key_hash: &Hash) -> Result<Option<ApiKeyRecord>> {
        let t = self.txn().open_table(tables::API_KEYS)?;
        match t.get(key_hash)? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    /// Every API key record.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let t = self.txn().open_table(tables::API_KEYS)?;
        let mut out = Vec::new();
        for e in t.iter()? {
            out.push(decode(e?.1.value())?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    #[test]
    fn adapters_and_keys() {
        let dir = tempfile::tempdir().expect("tmp");
        let store =
            Store::create_fresh(&dir.path().join("db.redb"), Limits::default()).expect("store");
        let rec = AdapterRecord {
            name: "legal".into(),
            hash: [7; 32],
            config_blob: [0; 32],
            weights_blob: [0; 32],
            base_model: "dev".into(),
            rank: 8,
            targets: vec!["q_proj".into()],
            size: 0,
            added_by: "admin".into(),
            created_at: 0,
        };
        let (saved, old) = store
            .put_adapter(rec.clone(), b"{}".to_vec(), b"weights".to_vec(), false)
            .expect("put");
        assert!(old.is_none());
        assert_eq!(saved.size, 9);
        let e = store
            .put_adapter(rec.clone(), b"{}".to_vec(), b"w2".to_vec(), false)
            .expect_err("must be refused");
        assert!(e.to_string().contains("exists already"), "{e}");
        let (_, old) = store
            .put_adapter(rec.clone(), b"{}".to_vec(), b"w2".to_vec(), true)
            .expect("replace");
        assert_eq!(old.map(|o| o.weights_blob), Some(saved.weights_blob));
        let snap = store.snapshot().expect("snap");
        assert_eq!(snap.adapters().expect("list").len(), 1);
        assert_eq!(snap.adapter(&saved.id()).expect("by id").name, "legal");
        let (_, bytes) = snap
            .blob(&snap.adapter("legal").expect("get").weights_blob)
            .expect("blob");
        assert_eq!(bytes, b"w2");
        store.remove_adapter("legal").expect("remove");
        assert!(store.remove_adapter("legal").is_err());

        let k = store
            .put_api_key(
                [1; 32],
                ApiKeyRecord {
                    name: "app".into(),
                    prefix: "ck-ab".into(),
                    admin: false,
                    created_at: 0,
                },
            )
            .expect("key");
        assert!(k.created_at > 0);
        let snap = store.snapshot().expect("snap");
        assert_eq!(snap.api_key(&[1; 32]).expect("get"), Some(k));
        assert_eq!(store.revoke_api_key("app").expect("revoke"), 1);
        assert!(
            store
                .snapshot()
                .expect("s")
                .api_key(&[1; 32])
                .expect("get")
                .is_none()
        );
    }
}
