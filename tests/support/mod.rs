//! The harness of the end-to-end tests: run the real `commons` binary on a temporary data dir
//! and a port the OS picks, talk to it over HTTP (reqwest) and through its own CLI, and sign
//! requests with the development keys through the `commons` library.
//!
//! A [`Node`] owns its child process and kills it (SIGKILL) when dropped, so a failing test
//! never leaves a server behind. Every child runs with the `COMMONS_*` variables of the
//! environment removed, so the tests do not depend on the shell they run in.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use alloy_primitives::{B256, U256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::Eip712Domain;
use serde_json::Value;

/// How long a node may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful stop may take before the node is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one CLI client command may run.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// The binary under test.
pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_commons")
}

/// A `commons` command with the `COMMONS_*` environment removed.
pub(crate) fn command() -> Command {
    let mut c = Command::new(bin());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("COMMONS_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// Run `cmd` to completion, killing it after `timeout`.
pub(crate) fn run_bounded(mut cmd: Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the commons binary");
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("wait for the child") {
            Some(s) => break s,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} ran longer than {timeout:?}");
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    Output {
        status,
        stdout: out_t.join().expect("stdout reader"),
        stderr: err_t.join().expect("stderr reader"),
    }
}

/// How to start a node: extra `serve` flags.
#[derive(Debug, Clone, Default)]
pub(crate) struct Opts {
    /// Flags after `serve --dev --json --data-dir DIR --http 127.0.0.1:0`.
    pub(crate) args: Vec<String>,
}

impl Opts {
    /// Options with these extra flags.
    pub(crate) fn args(args: &[&str]) -> Self {
        Opts {
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A running `commons serve` on a temporary data dir.
#[derive(Debug)]
pub(crate) struct Node {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) url: String,
    /// The data dir (inside the temporary directory).
    pub(crate) data_dir: PathBuf,
    /// The first line `serve --json` printed.
    pub(crate) info: Value,
    opts: Opts,
    starts: u32,
    tmp: tempfile::TempDir,
    http: reqwest::Client,
}

impl Node {
    /// Start a node on a fresh temporary data dir.
    pub(crate) fn start(opts: Opts) -> Node {
        let tmp = tempfile::Builder::new()
            .prefix("commons-e2e-")
            .tempdir()
            .expect("temp dir");
        let data_dir = tmp.path().join("data");
        let mut n = Node {
            child: None,
            url: String::new(),
            data_dir,
            info: Value::Null,
            opts,
            starts: 0,
            tmp,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
        };
        n.spawn();
        n
    }

    /// A directory for test files, beside (not inside) the data dir.
    pub(crate) fn scratch(&self) -> PathBuf {
        let p = self.tmp.path().join("scratch");
        std::fs::create_dir_all(&p).expect("scratch dir");
        p
    }

    fn log_path(&self, n: u32, what: &str) -> PathBuf {
        self.tmp.path().join(format!("serve-{n}.{what}"))
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the node is running already");
        self.starts += 1;
        let n = self.starts;
        let out_path = self.log_path(n, "out");
        let err_path = self.log_path(n, "err");
        let out = std::fs::File::create(&out_path).expect("stdout file");
        let err = std::fs::File::create(&err_path).expect("stderr file");
        let mut cmd = command();
        cmd.arg("serve")
            .arg("--dev")
            .arg("--json")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--http")
            .arg("127.0.0.1:0")
            .args(&self.opts.args)
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let mut child = cmd.spawn().expect("spawn commons serve");
        let started = Instant::now();
        let line = loop {
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            if let Some((line, _)) = text.split_once('\n') {
                break line.to_string();
            }
            if let Some(status) = child.try_wait().expect("wait for serve") {
                panic!(
                    "commons serve exited with {status} before printing its address; stderr:\n{}",
                    std::fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "commons serve printed nothing in {START_TIMEOUT:?}; stderr:\n{}",
                    std::fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("serve --json printed {line:?}, not JSON: {e}"));
        let api = info["api"]
            .as_str()
            .unwrap_or_else(|| panic!("serve --json printed no api URL: {info}"));
        self.url = api
            .strip_suffix("/api/v1")
            .unwrap_or_else(|| panic!("api URL {api} does not end in /api/v1"))
            .to_string();
        self.info = info;
        self.child = Some(child);
    }

    /// Kill the node with SIGKILL (no chance to clean up) and reap it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start the node again on the same data dir with the same flags (a new port).
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Stop gracefully (SIGTERM), killing the node if it does not exit in time.
    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("the node is running");
        let term = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(term.success(), "kill -TERM failed");
        let started = Instant::now();
        loop {
            if let Some(s) = c.try_wait().expect("wait for serve") {
                return s;
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = c.kill();
                let _ = c.wait();
                panic!("commons serve did not stop within {STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the current (or last) run wrote on stderr.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.log_path(self.starts, "err")).unwrap_or_default()
    }

    /// A client of this node's API, as the CLI uses it.
    pub(crate) fn client(&self) -> commons::client::Client {
        commons::client::Client::new(&self.url, Some(self.admin_token()))
    }

    /// The admin token the node wrote into its data dir.
    pub(crate) fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .expect("read admin.token")
            .trim()
            .to_string()
    }

    /// `path` below the node's base URL.
    pub(crate) fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// A shared HTTP client.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// GET `path`: status and body as JSON (Null when the body is not JSON).
    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.at(path)).send().await.expect("GET");
        answer(r).await
    }

    /// GET `path` and expect 200 with JSON.
    pub(crate) async fn get_ok(&self, path: &str) -> Value {
        let (status, v) = self.get(path).await;
        assert_eq!(status, 200, "GET {path} answered {status}: {v}");
        v
    }

    /// Send a JSON body with `method`: status and body.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> (u16, Value) {
        let r = self
            .http
            .request(method, self.at(path))
            .json(body)
            .send()
            .await
            .expect("send");
        answer(r).await
    }

    /// POST a JSON body: status and body.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// The totals of `GET /api/v1/node`.
    pub(crate) async fn stats(&self) -> Value {
        self.get_ok("/api/v1/node").await["stats"].clone()
    }

    /// Every item of a paged list, following `next_cursor` with pages of `limit`.
    pub(crate) async fn all_pages(&self, path: &str, limit: usize) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut p = format!("{path}{sep}limit={limit}");
            if let Some(c) = &cursor {
                p.push_str(&format!("&cursor={c}"));
            }
            let page = self.get_ok(&p).await;
            let got = page["items"].as_array().expect("items").clone();
            assert!(got.len() <= limit, "{p} returned {} items", got.len());
            items.extend(got);
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        items
    }

    /// Run the CLI as a client of this node (`--node URL --data-dir DIR`) plus `args`.
    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        let mut c = command();
        c.arg("--node")
            .arg(&self.url)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args);
        run_bounded(c, CLI_TIMEOUT)
    }

    /// Run the CLI with `--json`, expect success and one JSON document on stdout.
    pub(crate) fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.cli(&all);
        json_output(&out, &all)
    }

    /// Run the CLI, expect failure: a non-zero exit and exactly one line on stderr, which is
    /// returned.
    pub(crate) fn cli_fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        failure_line(&out, args)
    }

    /// Sign and upload `bytes` as `name` with `key`; the raw answer.
    pub(crate) async fn upload(
        &self,
        key: &PrivateKeySigner,
        slug: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> (u16, Value) {
        let h = upload_headers(key, slug, name, &bytes, None);
        self.upload_with(slug, name, bytes, &h).await
    }

    /// Upload with the given headers.
    pub(crate) async fn upload_with(
        &self,
        slug: &str,
        name: &str,
        bytes: Vec<u8>,
        headers: &[(String, String)],
    ) -> (u16, Value) {
        let r = self.upload_raw(slug, name, bytes, headers).await;
        answer(r).await
    }

    /// Upload with the given headers: the raw response.
    pub(crate) async fn upload_raw(
        &self,
        slug: &str,
        name: &str,
        bytes: Vec<u8>,
        headers: &[(String, String)],
    ) -> reqwest::Response {
        let mut rb = self
            .http
            .post(self.at(&format!("/api/v1/datanets/{slug}/contributions")))
            .query(&[("name", name)])
            .body(bytes);
        for (k, v) in headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        rb.send().await.expect("upload")
    }

    /// Create a datanet owned by `key` through the library client; the datanet JSON.
    pub(crate) async fn create_datanet(
        &self,
        key: &PrivateKeySigner,
        slug: &str,
        private: bool,
    ) -> Value {
        self.client()
            .create_datanet(
                &domain(),
                key,
                slug,
                &format!("Datanet {slug}"),
                "a test datanet",
                "# About\n\nmade by a test",
                &["test".to_string()],
                "text",
                private,
            )
            .await
            .unwrap_or_else(|e| panic!("create {slug}: {e:#}"))
    }

    /// Upload through the library client and expect success; the contribution JSON.
    pub(crate) async fn contribute_ok(
        &self,
        key: &PrivateKeySigner,
        slug: &str,
        name: &str,
        bytes: &[u8],
    ) -> Value {
        self.client()
            .contribute(&domain(), key, slug, name, bytes.to_vec())
            .await
            .unwrap_or_else(|e| panic!("contribute {name} to {slug}: {e:#}"))
    }

    /// Review through the library client and expect success.
    pub(crate) async fn review_ok(
        &self,
        key: &PrivateKeySigner,
        slug: &str,
        ids: &[u64],
        accept: bool,
        reason: &str,
    ) -> Value {
        self.client()
            .review(&domain(), key, slug, ids, accept, reason)
            .await
            .unwrap_or_else(|e| panic!("review {ids:?} of {slug}: {e:#}"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Status and JSON body of a response (Null when the body is not JSON).
pub(crate) async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let bytes = r.bytes().await.expect("read the body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The one JSON document a successful `--json` command printed.
pub(crate) fn json_output(out: &Output, args: &[&str]) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "commons {args:?} failed with {}: {}{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout.trim_end_matches('\n');
    assert!(
        !text.is_empty() && !text.contains('\n'),
        "commons {args:?} --json printed not exactly one line:\n{stdout}"
    );
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("commons {args:?} --json printed invalid JSON ({e}): {text}"))
}

/// Expect a failed command with exactly one line on stderr; that line.
pub(crate) fn failure_line(out: &Output, args: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "commons {args:?} should have failed but exited 0; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = stderr.trim_end_matches('\n');
    assert!(
        !text.is_empty() && !text.contains('\n'),
        "commons {args:?} should print exactly one line on stderr, printed:\n{stderr}"
    );
    text.to_string()
}

/// The EIP-712 domain of a node with the default chain id.
pub(crate) fn domain() -> Eip712Domain {
    commons::auth::domain(1612)
}

/// Development key `i` (dev0 … dev9).
pub(crate) fn dev(i: u32) -> PrivateKeySigner {
    commons::auth::dev_key(i).expect("dev key")
}

/// A fresh random key (a contributor with empty quotas).
pub(crate) fn random_key() -> PrivateKeySigner {
    let k: [u8; 32] = rand::random();
    commons::auth::parse_key(&hex::encode(k), None).expect("random key")
}

/// `0x` + lowercase hex of a key's address.
pub(crate) fn address(k: &PrivateKeySigner) -> String {
    format!("{:#x}", k.address())
}

/// blake3 of `bytes`, lowercase hex.
pub(crate) fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The four `X-Commons-*` headers of a signed upload; `nonce` fixed or fresh.
pub(crate) fn upload_headers(
    key: &PrivateKeySigner,
    slug: &str,
    name: &str,
    bytes: &[u8],
    nonce: Option<U256>,
) -> Vec<(String, String)> {
    let (fresh, deadline) = commons::client::fresh();
    let nonce = nonce.unwrap_or(fresh);
    signed_upload_headers(key, slug, name, bytes, nonce, deadline)
}

/// The signed upload headers for an explicit nonce and deadline.
pub(crate) fn signed_upload_headers(
    key: &PrivateKeySigner,
    slug: &str,
    name: &str,
    bytes: &[u8],
    nonce: U256,
    deadline: u64,
) -> Vec<(String, String)> {
    let msg = commons::auth::Contribute {
        datanet: slug.to_string(),
        fileHash: B256::from(*blake3::hash(bytes).as_bytes()),
        fileName: name.to_string(),
        nonce,
        deadline: U256::from(deadline),
    };
    let s = commons::client::sign(&msg, &domain(), key, nonce, deadline).expect("sign");
    vec![
        ("x-commons-signer".into(), s.signer),
        ("x-commons-nonce".into(), s.nonce),
        ("x-commons-deadline".into(), s.deadline.to_string()),
        ("x-commons-signature".into(), s.signature),
    ]
}

/// A fixture of the storage crate's parser tests, if it exists.
pub(crate) fn fixture(name: &str) -> Option<Vec<u8>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("storage/tests/fixtures")
        .join(name);
    std::fs::read(p).ok()
}

/// Assert an error answer: status, code, and the `{"error":{"code","message"}}` shape.
#[track_caller]
pub(crate) fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    let (s, v) = got;
    assert_eq!(
        (*s, v["error"]["code"].as_str()),
        (status, Some(code)),
        "expected {status} {code}, got {s}: {v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without a message: {v}"
    );
}

/// Field `k` of `v` as u64.
#[track_caller]
pub(crate) fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} is not a number in {v}"))
}

/// The Merkle root of docs/API.md, computed here independently of the node: blake3 leaves
/// (the row hashes, hex) in row-id order, inner node `blake3(0x01 ‖ left ‖ right)`, an odd
/// node moves up unchanged, no rows is 32 zero bytes.
pub(crate) fn merkle_root(row_hashes: &[String]) -> String {
    let mut level: Vec<[u8; 32]> = row_hashes
        .iter()
        .map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).expect("row hash is 32 bytes of hex");
            out
        })
        .collect();
    if level.is_empty() {
        return hex::encode([0u8; 32]);
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => {
                    let mut h = blake3::Hasher::new();
                    h.update(&[1]);
                    h.update(l);
                    h.update(r);
                    *h.finalize().as_bytes()
                }
                [one] => *one,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    hex::encode(level[0])
}
