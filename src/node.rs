//! Node assembly: the data dir (database, node key, admin token), the HTTP server, and a
//! clean stop.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use commons_storage::Store;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::oneshot;

use crate::config::Config;

/// Everything a request handler needs.
pub struct Node {
    /// The database.
    pub store: Store,
    /// Effective config.
    pub config: Config,
    /// The node's ed25519 identity (peering, signing receipts).
    pub identity: libp2p_identity::Keypair,
    /// Token that authorizes admin calls.
    pub admin_token: String,
    /// Prometheus renderer.
    pub metrics: PrometheusHandle,
    /// The EIP-712 domain of signed requests.
    pub domain: alloy_sol_types::Eip712Domain,
    /// Where HTTP actually listens (the port may have been 0).
    pub http_addr: SocketAddr,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("config", &self.config)
            .field("http_addr", &self.http_addr)
            .finish()
    }
}

impl Node {
    /// The libp2p peer id derived from the node key.
    pub fn peer_id(&self) -> String {
        self.identity.public().to_peer_id().to_string()
    }
}

/// A running node; dropping the stop sender or calling [`Running::stop`] shuts it down.
#[derive(Debug)]
pub struct Running {
    /// The node.
    pub node: Arc<Node>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Where HTTP listens.
    pub fn addr(&self) -> SocketAddr {
        self.node.http_addr
    }

    /// Stop accepting, finish requests in flight, and return.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.server).await;
    }

    /// Wait until the server ends (after a stop signal).
    pub async fn wait(mut self) {
        let _ = (&mut self.server).await;
    }
}

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may be installed (a test process hosting several nodes).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Write `contents` to `path` readable by the owner only.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn load_or_create_identity(dir: &Path) -> anyhow::Result<libp2p_identity::Keypair> {
    let path = dir.join("node.key");
    if path.exists() {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return libp2p_identity::Keypair::from_protobuf_encoding(&bytes)
            .with_context(|| format!("{} is not a node key", path.display()));
    }
    let key = libp2p_identity::Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .context("cannot encode the node key")?;
    write_private(&path, &bytes)?;
    tracing::info!(path = %path.display(), "created node key");
    Ok(key)
}

fn load_or_create_admin_token(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("admin.token");
    if path.exists() {
        let t = std::fs::read_to_string(&path)?.trim().to_string();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, token.as_bytes())?;
    Ok(token)
}

/// Open the data dir: create it, upgrade the database, load or create keys.
pub fn open(config: Config, http_addr: SocketAddr) -> anyhow::Result<Node> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let (db, before) = commons_migrations::open(&config.db_path())?;
    if before != 0 && before != commons_migrations::CURRENT {
        tracing::info!(
            from = before,
            to = commons_migrations::CURRENT,
            "upgraded database"
        );
    }
    let store = Store::from_database(db, config.limits.into())?;
    let identity = load_or_create_identity(&config.data_dir)?;
    let admin_token = load_or_create_admin_token(&config.data_dir)?;
    Ok(Node {
        store,
        domain: crate::auth::domain(config.chain_id),
        config,
        identity,
        admin_token,
        metrics: metrics_handle(),
        http_addr,
    })
}

/// Open the data dir and start serving HTTP; returns once listening.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("cannot listen on {}", config.http))?;
    let addr = listener.local_addr()?;
    let node = Arc::new(
        tokio::task::spawn_blocking(move || open(config, addr))
            .await
            .context("opening the data dir panicked")??,
    );
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let routes = crate::api::routes(node.clone());
    let server = tokio::spawn(async move {
        warp::serve(routes)
            .incoming(listener)
            .graceful(async {
                let _ = stop_rx.await;
            })
            .run()
            .await;
    });
    Ok(Running {
        node,
        stop: Some(stop_tx),
        server,
    })
}
