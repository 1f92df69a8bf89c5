//! A client of a running node's REST API, used by the CLI (and the end-to-end tests): every
//! command other than `serve` goes through here.

use alloy_primitives::{B256, U256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{Eip712Domain, SolStruct};
use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use crate::auth;

/// A connection to a node.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    admin_token: Option<String>,
}

/// The auth fields a signed request carries.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Signer.
    pub signer: String,
    /// Nonce, decimal.
    pub nonce: String,
    /// Deadline, unix seconds.
    pub deadline: u64,
    /// 0x-hex signature.
    pub signature: String,
}

impl Signed {
    /// As the JSON `auth` object.
    pub fn json(&self) -> Value {
        json!({"signer": self.signer, "nonce": self.nonce, "deadline": self.deadline, "signature": self.signature})
    }
}

/// A fresh nonce and a deadline ten minutes out.
pub fn fresh() -> (U256, u64) {
    let nonce = U256::from_be_bytes(rand::random::<[u8; 32]>());
    let deadline = commons_storage::now_ms() / 1000 + 600;
    (nonce, deadline)
}

/// Sign `msg` for the given nonce and deadline.
pub fn sign<T: SolStruct>(
    msg: &T,
    domain: &Eip712Domain,
    key: &PrivateKeySigner,
    nonce: U256,
    deadline: u64,
) -> anyhow::Result<Signed> {
    let sig = auth::sign(msg, domain, key).context("signing failed")?;
    Ok(Signed {
        signer: format!("{:#x}", key.address()),
        nonce: nonce.to_string(),
        deadline,
        signature: format!("0x{}", hex::encode(sig)),
    })
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, admin_token: Option<String>) -> Self {
        Client {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            admin_token,
        }
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn answer(resp: reqwest::Response) -> anyhow::Result<Value> {
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the answer")?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).context("the node answered invalid JSON");
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) if v["error"]["message"].is_string() => Err(anyhow!(
                "{} ({}, HTTP {})",
                v["error"]["message"].as_str().unwrap_or_default(),
                v["error"]["code"].as_str().unwrap_or_default(),
                status.as_u16()
            )),
            _ => Err(anyhow!(
                "HTTP {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&bytes)
            )),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn connect_err(&self, e: reqwest::Error) -> anyhow::Error {
        if e.is_connect() {
            anyhow!(
                "cannot reach the node at {}: is `commons serve` running? (--node / COMMONS_NODE)",
                self.base
            )
        } else {
            anyhow!("request to {} failed: {e}", self.base)
        }
    }

    fn with_admin(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.admin_token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// GET a JSON document.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let r = self
            .with_admin(self.http.get(self.url(path)))
            .send()
            .await
            .map_err(|e| self.connect_err(e))?;
        Self::answer(r).await
    }

    /// GET raw bytes.
    pub async fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let r = self
            .http
            .get(self.url(path))
            .send()
            .await
            .map_err(|e| self.connect_err(e))?;
        if !r.status().is_success() {
            Self::answer(r).await?;
            bail!("unexpected answer");
        }
        Ok(r.bytes().await?.to_vec())
    }

    /// Send a JSON body with `method`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<Value> {
        let r = self
            .with_admin(self.http.request(method, self.url(path)))
            .json(body)
            .send()
            .await
            .map_err(|e| self.connect_err(e))?;
        Self::answer(r).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// The node's EIP-712 domain (its chain id).
    pub async fn domain(&self) -> anyhow::Result<Eip712Domain> {
        let info = self.get("/api/v1/node").await?;
        let chain_id = info["chain_id"]
            .as_u64()
            .ok_or_else(|| anyhow!("the node did not say its chain id"))?;
        Ok(auth::domain(chain_id))
    }

    /// Upload one file to a datanet, signed by `key`.
    pub async fn contribute(
        &self,
        domain: &Eip712Domain,
        key: &PrivateKeySigner,
        slug: &str,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> anyhow::Result<Value> {
        let (nonce, deadline) = fresh();
        let msg = auth::Contribute {
            datanet: slug.to_string(),
            fileHash: B256::from(*blake3::hash(&bytes).as_bytes()),
            fileName: file_name.to_string(),
            nonce,
            deadline: U256::from(deadline),
        };
        let s = sign(&msg, domain, key, nonce, deadline)?;
        let path = format!(
            "/api/v1/datanets/{}/contributions",
            percent_encoding::utf8_percent_encode(slug, percent_encoding::NON_ALPHANUMERIC)
        );
        // The node decodes path segments, so escaping more than needed is harmless.
        let r = self
            .http
            .post(self.url(&path))
            .query(&[("name", file_name)])
            .header("x-commons-signer", &s.signer)
            .header("x-commons-nonce", &s.nonce)
            .header("x-commons-deadline", s.deadline.to_string())
            .header("x-commons-signature", &s.signature)
            .body(bytes)
            .send()
            .await
            .map_err(|e| self.connect_err(e))?;
        Self::answer(r).await
    }

    /// Upload several files in one request (`POST …/contributions/batch`), each signed by
    /// `key`. The answer lists, per file, the contribution or the error.
    pub async fn contribute_batch(
        &self,
        domain: &Eip712Domain,
        key: &PrivateKeySigner,
        slug: &str,
        files: Vec<(String, Vec<u8>)>,
    ) -> anyhow::Result<Value> {
        let mut entries = Vec::with_capacity(files.len());
        for (name, bytes) in &files {
            let (nonce, deadline) = fresh();
            let msg = auth::Contribute {
                datanet: slug.to_string(),
                fileHash: B256::from(*blake3::hash(bytes).as_bytes()),
                fileName: name.clone(),
                nonce,
                deadline: U256::from(deadline),
            };
            let s = sign(&msg, domain, key, nonce, deadline)?;
            entries.push(json!({
                "name": name,
                "signer": s.signer,
                "nonce": s.nonce,
                "deadline": s.deadline,
                "signature": s.signature,
            }));
        }
        let mut form = reqwest::multipart::Form::new()
            .text("manifest", json!({ "files": entries }).to_string());
        for (name, bytes) in files {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(name),
            );
        }
        let path = format!(
            "/api/v1/datanets/{}/contributions/batch",
            percent_encoding::utf8_percent_encode(slug, percent_encoding::NON_ALPHANUMERIC)
        );
        let r = self
            .http
            .post(self.url(&path))
            .multipart(form)
            .send()
            .await
            .map_err(|e| self.connect_err(e))?;
        Self::answer(r).await
    }

    /// Upload a PEFT adapter (its two files) under `name`.
    pub async fn add_adapter(
        &self,
        name: &str,
        config: String,
        weights: Vec<u8>,
        replace: bool,
    ) -> anyhow::Result<Value> {
        let form = reqwest::multipart::Form::new()
            .text("name", name.to_string())
            .text("replace", replace.to_string())
            .part(
                "adapter_config.json",
                reqwest::multipart::Part::text(config).file_name("adapter_config.json"),
            )
            .part(
                "adapter_model.safetensors",
                reqwest::multipart::Part::bytes(weights).file_name("adapter_model.safetensors"),
            );
        let r = self
            .with_admin(self.http.post(self.url("/api/v1/adapters")))
            .multipart(form)
            .send()
            .await
            .map_err(|e| self.connect_err(e))?;
        Self::answer(r).await
    }

    /// Review contributions, signed by `key`.
    pub async fn review(
        &self,
        domain: &Eip712Domain,
        key: &PrivateKeySigner,
        slug: &str,
        ids: &[u64],
        accept: bool,
        reason: &str,
    ) -> anyhow::Result<Value> {
        let (nonce, deadline) = fresh();
        let msg = auth::Review {
            datanet: slug.to_string(),
            contributions: ids.iter().map(|i| U256::from(*i)).collect(),
            accept,
            reason: reason.to_string(),
            nonce,
            deadline: U256::from(deadline),
        };
        let s = sign(&msg, domain, key, nonce, deadline)?;
        self.post(
            &format!("/api/v1/datanets/{slug}/review"),
            &json!({"contributions": ids, "accept": accept, "reason": reason, "auth": s.json()}),
        )
        .await
    }

    /// Create a datanet, signed by `key`.
    #[allow(
        clippy::too_many_arguments,
        reason = "mirrors the signed CreateDatanet fields"
    )]
    pub async fn create_datanet(
        &self,
        domain: &Eip712Domain,
        key: &PrivateKeySigner,
        slug: &str,
        name: &str,
        summary: &str,
        description: &str,
        tags: &[String],
        kind: &str,
        private: bool,
    ) -> anyhow::Result<Value> {
        let (nonce, deadline) = fresh();
        let msg = auth::CreateDatanet {
            slug: slug.to_string(),
            name: name.to_string(),
            summary: summary.to_string(),
            descriptionHash: B256::from(*blake3::hash(description.as_bytes()).as_bytes()),
            tags: tags.to_vec(),
            kind: kind.to_string(),
            isPrivate: private,
            nonce,
            deadline: U256::from(deadline),
        };
        let s = sign(&msg, domain, key, nonce, deadline)?;
        self.post(
            "/api/v1/datanets",
            &json!({"slug": slug, "name": name, "summary": summary, "description": description,
                    "tags": tags, "kind": kind, "private": private, "auth": s.json()}),
        )
        .await
    }
}
