//! The `commons` command line: `serve` runs the node; every other command is a client of a
//! running node (`--node`), signing as `--key` where an address acts.

use std::path::PathBuf;

use alloy_primitives::{Address, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use anyhow::{Context, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::auth;
use crate::client::{self, Client};
use crate::config::{Config, DEFAULT_DATA_DIR, Overrides};

/// Commons: host an open AI data-and-model economy on your own box.
#[derive(Debug, Parser)]
#[command(name = "commons", version, about)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// The node to talk to
    #[arg(
        long,
        global = true,
        env = "COMMONS_NODE",
        default_value = "http://127.0.0.1:8080"
    )]
    node: String,
    /// Sign as: dev0…dev9, a hex private key, or an Ethereum keystore file
    #[arg(long, global = true, env = "COMMONS_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Password of a keystore --key
    #[arg(
        long,
        global = true,
        env = "COMMONS_KEY_PASSWORD",
        hide_env_values = true
    )]
    key_password: Option<String>,
    /// Admin token (default: read DATA_DIR/admin.token)
    #[arg(
        long,
        global = true,
        env = "COMMONS_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// Data directory
    #[arg(long, global = true, env = "COMMONS_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Print one JSON document on stdout
    #[arg(long, global = true)]
    json: bool,
}

// `Serve` carries every serve flag; the enum is parsed once per process, so its size is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the appliance
    Serve {
        #[command(flatten)]
        overrides: Overrides,
        /// Print the effective configuration and exit
        #[arg(long)]
        print_config: bool,
    },
    /// Print the well-known development accounts
    DevKeys,
    /// Benchmarks that print their figures (see BENCHMARKS.md)
    Bench {
        #[command(subcommand)]
        cmd: BenchCmd,
    },
    /// About the node
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
    /// Datanets: create, contribute, review, read
    Datanet {
        #[command(subcommand)]
        cmd: DatanetCmd,
    },
    /// Custodial console accounts (admin)
    ConsoleUser {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// A contribution by id
    Contribution {
        /// Contribution id
        id: u64,
    },
    /// A row by id
    Row {
        /// Row id
        id: u64,
    },
    /// Save an original file by its blake3 hash
    Blob {
        /// blake3 hex
        hash: String,
        /// Where to write it (default: stdout)
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// A contributor's record
    Contributor {
        /// Address
        address: String,
    },
    /// Check a stopped node's databases offline (redb integrity, blob hashes, and the
    /// ledger's state against its last durable block's root)
    Check,
    /// The L2 ledger: status, blocks, transactions, balances, sending OPEN, deposits,
    /// derivation from DA
    Ledger {
        #[command(subcommand)]
        cmd: crate::cli_ledger::LedgerCmd,
    },
    /// Full-text search over rows: words (all must match), "phrases", OR, NOT, prefix*,
    /// field:value (datanet, contributor, tag, contribution, row)
    Search(SearchArgs),
    /// LoRA adapters served by OpenLoRA: add (PEFT directory), list, show, remove
    Adapter {
        #[command(subcommand)]
        cmd: AdapterCmd,
    },
    /// API keys for the OpenAI-compatible routes (admin)
    Apikey {
        #[command(subcommand)]
        cmd: ApikeyCmd,
    },
    /// Run a read-only SQL query on the node and print the result as a table
    Sql {
        /// The query, e.g. "SELECT slug, row_count FROM datanets"
        query: String,
        /// Print CSV instead of a table
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// Most rows to fetch
        #[arg(long, default_value_t = 10_000)]
        max_rows: usize,
    },
}

#[derive(Debug, Subcommand)]
enum AdapterCmd {
    /// Register a PEFT adapter directory (adapter_config.json + adapter_model.safetensors)
    Add {
        /// The adapter directory
        dir: PathBuf,
        /// Name apps use as `model`
        #[arg(long)]
        name: String,
        /// Replace an adapter of the same name
        #[arg(long)]
        replace: bool,
    },
    /// Every registered adapter with its residency tier
    List,
    /// One adapter with its counters
    Show {
        /// Name or id
        adapter: String,
    },
    /// Unregister an adapter and free its memory
    Remove {
        /// Name or id
        adapter: String,
    },
}

#[derive(Debug, Subcommand)]
enum ApikeyCmd {
    /// Issue a key (printed once)
    Create {
        /// Label of the key
        #[arg(long)]
        name: String,
        /// The key may load and unload adapters
        #[arg(long)]
        admin: bool,
    },
    /// Keys by name (secrets are not stored)
    List,
    /// Revoke the keys with this name
    Revoke {
        /// Label
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum NodeCmd {
    /// Peer id, endpoints, limits and totals
    Info,
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// Create a custodial account (the node holds its key)
    Create {
        /// Login name
        username: String,
        /// Password (at least 8 characters)
        #[arg(long, env = "COMMONS_USER_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// List accounts
    List,
}

#[derive(Debug, Subcommand)]
enum DatanetCmd {
    /// Create a datanet owned by --key
    Create {
        /// Unique slug: a-z, 0-9, '-'
        slug: String,
        /// Display name
        #[arg(long)]
        name: String,
        /// One-line summary
        #[arg(long, default_value = "")]
        summary: String,
        /// Markdown description from a file
        #[arg(long)]
        description_file: Option<PathBuf>,
        /// A tag (repeat for more)
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Kind of data: text, image, audio
        #[arg(long, default_value = "text")]
        kind: String,
        /// Only the owner and listed contributors may contribute
        #[arg(long)]
        private: bool,
    },
    /// Upload files (txt, md, jsonl, csv, pdf, docx)
    Contribute {
        /// Datanet slug
        slug: String,
        /// Files
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Accept or reject pending contributions
    Review {
        /// Datanet slug
        slug: String,
        /// Contribution ids
        #[arg(required = true)]
        ids: Vec<u64>,
        /// Accept into a new version
        #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
        accept: bool,
        /// Reject
        #[arg(long)]
        reject: bool,
        /// Why
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// List datanets
    List {
        /// Only those owned by this address
        #[arg(long)]
        owner: Option<String>,
        /// Only those with this tag
        #[arg(long)]
        tag: Option<String>,
    },
    /// One datanet
    Show {
        /// Slug
        slug: String,
    },
    /// Its versions
    Versions {
        /// Slug
        slug: String,
    },
    /// Rows of a version (default: the latest)
    Rows {
        /// Slug
        slug: String,
        /// Version number
        #[arg(long)]
        version: Option<u64>,
        /// Rows per page
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Start after this row id
        #[arg(long)]
        cursor: Option<u64>,
        /// Fetch every page
        #[arg(long)]
        all: bool,
    },
    /// Rows added and removed between two versions
    Diff {
        /// Slug
        slug: String,
        /// From version
        a: u64,
        /// To version
        b: u64,
    },
    /// Edit summary, description and tags (owner)
    Edit {
        /// Slug
        slug: String,
        /// New summary
        #[arg(long)]
        summary: Option<String>,
        /// New description from a file
        #[arg(long)]
        description_file: Option<PathBuf>,
        /// Replace the tags (repeat)
        #[arg(long = "tag")]
        tags: Option<Vec<String>>,
    },
    /// Contributions of a datanet
    Contributions {
        /// Slug
        slug: String,
        /// pending, accepted or rejected
        #[arg(long)]
        status: Option<String>,
        /// Only this contributor
        #[arg(long)]
        contributor: Option<String>,
    },
    /// Take rows down in a new version (owner or reviewer)
    Takedown {
        /// Slug
        slug: String,
        /// Row ids
        #[arg(required = true)]
        rows: Vec<u64>,
        /// Why
        #[arg(long)]
        reason: String,
    },
    /// Set reviewers and private contributors (owner)
    Roles {
        /// Slug
        slug: String,
        /// A reviewer address (repeat)
        #[arg(long = "reviewer")]
        reviewers: Vec<String>,
        /// A contributor address (repeat)
        #[arg(long = "contributor")]
        contributors: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCmd {
    /// The ledger under load: signed transfers over eth_sendRawTransaction from this process
    /// to a node it starts (or `--external`), counted once mined
    Ledger(crate::bench::LedgerBench),
}

/// Run the command line; errors come back for `main` to print on one line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let g = cli.global;
    match cli.command {
        Command::Serve {
            overrides,
            print_config,
        } => serve(&g, overrides, print_config).await,
        Command::DevKeys => dev_keys(g.json),
        Command::Check => check(&g),
        Command::Bench {
            cmd: BenchCmd::Ledger(a),
        } => {
            init_logging("warn");
            crate::bench::ledger(a, &g.node, g.json).await
        }
        cmd => client_command(&g, cmd).await,
    }
}

fn init_logging(filter: &str) {
    let f = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(f)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn serve(g: &Global, o: Overrides, print_config: bool) -> anyhow::Result<()> {
    let config = Config::load(&g.data_dir, &o)?;
    if print_config {
        if g.json {
            println!("{}", serde_json::to_string(&config)?);
        } else {
            print!("{}", config.to_toml());
        }
        return Ok(());
    }
    init_logging(&config.log);
    let dev = config.dev;
    let running = crate::node::start(config).await?;
    let n = &running.node;
    let url = format!("http://{}", running.addr());
    let info = json!({
        "console": format!("{url}/"),
        "api": format!("{url}/api/v1"),
        "openapi": format!("{url}/api/v1/openapi.json"),
        "metrics": format!("{url}/metrics"),
        "data_dir": n.config.data_dir.display().to_string(),
        "database": n.config.db_path().display().to_string(),
        "admin_token_file": n.config.data_dir.join("admin.token").display().to_string(),
        "peer_id": n.peer_id(),
        "chain_id": n.config.chain_id,
        "rpc": format!("{url}/rpc"),
        "rpc_listener": n.rpc_addr.map(|a| format!("http://{a}")),
        "block_time_secs": n.config.ledger.block_time_secs,
        "da_dir": n.ledger.da_dir.display().to_string(),
        "dev": dev,
        "pg": n.pg.as_ref().map(|p| json!({
            "addr": p.addr.to_string(),
            "user": p.user,
            "url": format!("postgres://{}@{}/commons", p.user, p.addr),
            "password_file": p.password_file.as_ref().map(|f| f.display().to_string()),
        })),
    });
    if g.json {
        println!("{info}");
    } else {
        println!(
            "Commons {}{} is running",
            env!("CARGO_PKG_VERSION"),
            if dev {
                " (dev mode: never hold real value)"
            } else {
                ""
            }
        );
        println!("  console      {url}/");
        println!("  REST API     {url}/api/v1   (OpenAPI: {url}/api/v1/openapi.json)");
        println!("  metrics      {url}/metrics");
        match n.rpc_addr {
            Some(a) => println!(
                "  JSON-RPC     http://{a}   (and {url}/rpc), chain id {}",
                n.config.chain_id
            ),
            None => println!("  JSON-RPC     {url}/rpc, chain id {}", n.config.chain_id),
        }
        println!("  DA           {}", n.ledger.da_dir.display());
        println!("  data dir     {}", n.config.data_dir.display());
        println!("  database     {}", n.config.db_path().display());
        println!(
            "  admin token  {}",
            n.config.data_dir.join("admin.token").display()
        );
        println!("  peer id      {}", n.peer_id());
        if let Some(p) = &n.pg {
            println!(
                "  PostgreSQL   postgres://{}@{}/commons   (psql -h {} -p {} -U {} commons)",
                p.user,
                p.addr,
                p.addr.ip(),
                p.addr.port(),
                p.user
            );
            match (&p.password_file, &p.new_password) {
                (None, _) => println!("  pg password  {} (dev mode)", p.user),
                (Some(f), Some(pw)) => println!(
                    "  pg password  {pw}   (generated now and shown once; kept in {})",
                    f.display()
                ),
                (Some(f), None) => println!("  pg password  in {}", f.display()),
            }
        }
        if dev {
            println!("  dev keys     `commons dev-keys` (sign with --key dev0 … dev9)");
        }
    }
    shutdown_signal().await;
    tracing::info!("stopping: finishing requests in flight");
    running.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn dev_keys(as_json: bool) -> anyhow::Result<()> {
    let mut keys = Vec::new();
    for i in 0..auth::DEV_ACCOUNTS {
        let k = auth::dev_key(i).map_err(|e| anyhow!(e))?;
        keys.push(json!({
            "name": format!("dev{i}"),
            "address": format!("{:#x}", k.address()),
            "private_key": format!("0x{}", hex::encode(k.to_bytes())),
        }));
    }
    if as_json {
        println!(
            "{}",
            json!({"mnemonic": auth::DEV_MNEMONIC, "path": "m/44'/60'/0'/0/i", "accounts": keys})
        );
    } else {
        println!(
            "Development accounts (mnemonic \"{}\", m/44'/60'/0'/0/i).",
            auth::DEV_MNEMONIC
        );
        println!("Everyone knows these keys: never send them real value.\n");
        for k in &keys {
            println!(
                "{:<6} {}  {}",
                k["name"].as_str().unwrap_or_default(),
                k["address"].as_str().unwrap_or_default(),
                k["private_key"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn check(g: &Global) -> anyhow::Result<()> {
    let path = g.data_dir.join("commons.redb");
    if !path.exists() {
        bail!("no database at {}", path.display());
    }
    let mut db = redb::Database::open(&path).with_context(|| {
        format!(
            "cannot open {} (is the node still running?)",
            path.display()
        )
    })?;
    let clean = db.check_integrity().context("integrity check failed")?;
    let store = commons_storage::Store::from_database(db, Default::default())?;
    let report = store.verify()?;
    // The chain's own file, when this node has run the ledger: its state, rebuilt from
    // every account and slot, against its last durable block's root.
    let ledger_path = g.data_dir.join("ledger.redb");
    let ledger = if ledger_path.exists() {
        let (clean, c) = commons_ledger::chain::verify_file(&ledger_path).with_context(|| {
            format!(
                "cannot check {} (is the node still running?)",
                ledger_path.display()
            )
        })?;
        let mut v = crate::ledger::state_check_json(&c);
        v["database"] = json!(ledger_path.display().to_string());
        v["integrity_ok"] = json!(clean);
        Some(v)
    } else {
        None
    };
    let out = json!({
        "database": path.display().to_string(),
        "integrity_ok": clean,
        "contributions": report.contributions,
        "rows": report.rows,
        "blobs": report.blobs,
        "problems": report.problems,
        "ledger": ledger,
    });
    if g.json {
        println!("{out}");
    } else {
        println!(
            "{}: redb integrity {}, {} contributions, {} rows, {} blobs checked, {} problems",
            path.display(),
            if clean { "ok" } else { "REPAIRED" },
            report.contributions,
            report.rows,
            report.blobs,
            report.problems.len()
        );
        for p in &report.problems {
            println!("  problem: {p}");
        }
        if let Some(l) = out["ledger"].as_object() {
            println!(
                "{}: redb integrity {}, block {} state root {} rebuilt from {} accounts and {} slots: {}",
                l["database"].as_str().unwrap_or(""),
                if l["integrity_ok"] == true {
                    "ok"
                } else {
                    "REPAIRED"
                },
                l["block"],
                l["rebuilt_root"].as_str().unwrap_or(""),
                l["accounts"],
                l["slots"],
                if l["ok"] == true {
                    "matches"
                } else {
                    "MISMATCH"
                }
            );
        }
    }
    if !report.problems.is_empty() {
        bail!("{} problems found", report.problems.len());
    }
    if out["ledger"].is_object()
        && let Some(e) = crate::ledger::state_check_failure(&out["ledger"])
    {
        return Err(e);
    }
    Ok(())
}

fn admin_token(g: &Global) -> Option<String> {
    g.admin_token.clone().or_else(|| {
        std::fs::read_to_string(g.data_dir.join("admin.token"))
            .ok()
            .map(|t| t.trim().to_string())
    })
}

fn key(g: &Global) -> anyhow::Result<PrivateKeySigner> {
    let spec = g.key.as_deref().ok_or_else(|| {
        anyhow!(
            "this command signs: give --key (dev0…dev9, a hex key or a keystore) or COMMONS_KEY"
        )
    })?;
    auth::parse_key(spec, g.key_password.as_deref()).map_err(|e| anyhow!(e))
}

/// Characters escaped in a path segment or query value: all but RFC 3986's unreserved ones.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// GET every page of a paged list (`items` + `next_cursor`), merging the arrays in `keys`.
async fn get_all(c: &Client, path: &str, keys: &[&str]) -> anyhow::Result<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut first = c.get(path).await?;
    let mut next = first["next_cursor"].as_str().map(str::to_string);
    while let Some(cur) = next {
        let page = c.get(&format!("{path}{sep}cursor={}", enc(&cur))).await?;
        for k in keys {
            let more = page[*k].as_array().cloned().unwrap_or_default();
            if let Some(a) = first[*k].as_array_mut() {
                a.extend(more);
            }
        }
        next = page["next_cursor"].as_str().map(str::to_string);
    }
    first["next_cursor"] = Value::Null;
    Ok(first)
}

fn print(g: &Global, v: &Value, human: impl FnOnce(&Value)) {
    if g.json {
        println!("{v}");
    } else {
        human(v);
    }
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

fn print_datanet(d: &Value) {
    println!("{} — {}", s(d, "slug"), s(d, "name"));
    if !s(d, "summary").is_empty() {
        println!("  {}", s(d, "summary"));
    }
    println!(
        "  owner {}  {}  kind {}  tags [{}]",
        s(d, "owner"),
        s(d, "visibility"),
        s(d, "kind"),
        d["tags"]
            .as_array()
            .map(|t| t
                .iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    );
    println!(
        "  latest version {}  rows {}  contributions {} ({} pending)",
        d["latest_version"], d["row_count"], d["contribution_count"], d["pending_count"]
    );
}

fn print_contribution(c: &Value) {
    println!(
        "#{:<6} {:<9} {:<28} {:>6} rows {:>9} bytes  by {}{}",
        c["id"],
        s(c, "status"),
        s(c, "file_name"),
        c["row_count"],
        c["size"],
        s(c, "contributor"),
        c["version"]
            .as_u64()
            .map(|v| format!("  (version {v})"))
            .unwrap_or_default()
    );
}

fn print_row(r: &Value) {
    let text = s(r, "text").replace('\n', " ");
    let short: String = text.chars().take(100).collect();
    println!(
        "{:>8}  {}  {}{}",
        r["id"],
        s(r, "contributor"),
        short,
        if text.chars().count() > 100 {
            "…"
        } else {
            ""
        }
    );
}

fn print_version(v: &Value) {
    println!(
        "v{:<4} +{:<6} -{:<6} rows {:<8} root {}  by {}",
        v["number"],
        v["rows_added"],
        v["rows_removed"],
        v["row_count"],
        s(v, "root"),
        s(v, "created_by")
    );
}

async fn client_command(g: &Global, cmd: Command) -> anyhow::Result<()> {
    let c = Client::new(&g.node, admin_token(g));
    match cmd {
        Command::Node { cmd: NodeCmd::Info } => {
            let v = c.get("/api/v1/node").await?;
            print(g, &v, |v| {
                println!("Commons {} at {}", s(v, "version"), c.base());
                println!("  peer id      {}", s(v, "peer_id"));
                println!("  chain id     {}", v["chain_id"]);
                println!("  dev mode     {}", v["dev"]);
                println!("  data dir     {}", s(v, "data_dir"));
                println!("  console      {}/", c.base());
                println!("  REST API     {}/api/v1", c.base());
                println!("  metrics      {}/metrics", c.base());
                println!("  schema       {}", v["schema_version"]);
                let st = &v["stats"];
                println!(
                    "  totals       {} datanets, {} contributions, {} rows, {} versions, {} blob bytes",
                    st["datanets"],
                    st["contributions"],
                    st["rows"],
                    st["versions"],
                    st["blob_bytes"]
                );
            });
        }
        Command::Sql {
            query,
            csv,
            max_rows,
        } => {
            let v = c
                .post("/api/v1/sql", &json!({"sql": query, "max_rows": max_rows}))
                .await?;
            if g.json {
                println!("{v}");
            } else if csv {
                print!("{}", sql_csv(&v));
            } else {
                print!("{}", sql_table(&v));
            }
        }
        Command::ConsoleUser { cmd } => match cmd {
            UserCmd::Create { username, password } => {
                let v = c
                    .post(
                        "/api/v1/console/users",
                        &json!({"username": username, "password": password}),
                    )
                    .await?;
                print(g, &v, |v| {
                    println!(
                        "created custodial account {} with address {}",
                        s(v, "username"),
                        s(v, "address")
                    )
                });
            }
            UserCmd::List => {
                let v = c.get("/api/v1/console/users").await?;
                print(g, &v, |v| {
                    for u in v["items"].as_array().into_iter().flatten() {
                        println!("{:<24} {}", s(u, "username"), s(u, "address"));
                    }
                });
            }
        },
        Command::Contribution { id } => {
            let v = c.get(&format!("/api/v1/contributions/{id}")).await?;
            print(g, &v, print_contribution);
        }
        Command::Row { id } => {
            let v = c.get(&format!("/api/v1/rows/{id}")).await?;
            print(g, &v, |v| {
                print_row(&v["row"]);
                print_contribution(&v["contribution"]);
            });
        }
        Command::Blob { hash, output } => {
            let bytes = c
                .get_bytes(&format!("/api/v1/blobs/{}", enc(&hash)))
                .await?;
            match output {
                Some(p) => std::fs::write(&p, &bytes)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&bytes)?;
                }
            }
        }
        Command::Contributor { address } => {
            let v = c
                .get(&format!("/api/v1/contributors/{}", enc(&address)))
                .await?;
            print(g, &v, |v| {
                println!(
                    "{}: {} contributions ({} accepted, {} rejected, {} pending), {} rows, {} bytes",
                    s(v, "address"),
                    v["contributions"],
                    v["accepted"],
                    v["rejected"],
                    v["pending"],
                    v["rows"],
                    v["bytes"]
                );
                for it in v["items"].as_array().into_iter().flatten() {
                    print_contribution(it);
                }
            });
        }
        Command::Datanet { cmd } => datanet(g, &c, cmd).await?,
        Command::Adapter { cmd } => adapter(g, &c, cmd).await?,
        Command::Apikey { cmd } => apikey(g, &c, cmd).await?,
        Command::Search(a) => search(g, &c, a).await?,
        Command::Ledger { cmd } => {
            crate::cli_ledger::run(cmd, &c, g.json, || key(g), &g.data_dir).await?
        }
        Command::Serve { .. } | Command::DevKeys | Command::Check | Command::Bench { .. } => {
            unreachable!("handled before a client is made")
        }
    }
    Ok(())
}

fn print_adapter(a: &Value) {
    let st = &a["stats"];
    println!(
        "{:<24} {}  rank {:<3} {:>10} bytes  tier {:<6} requests {} tokens {}  [{}]",
        s(a, "name"),
        s(a, "id"),
        a["rank"],
        a["size"],
        st["tier"].as_str().unwrap_or("-"),
        st["requests"],
        st["completion_tokens"],
        a["targets"]
            .as_array()
            .map(|t| t
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","))
            .unwrap_or_default()
    );
}

async fn adapter(g: &Global, c: &Client, cmd: AdapterCmd) -> anyhow::Result<()> {
    let enc = |x: &str| {
        percent_encoding::utf8_percent_encode(x, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    match cmd {
        AdapterCmd::Add { dir, name, replace } => {
            let files = crate::serving::read_adapter_dir(&dir)?;
            let weights =
                std::sync::Arc::try_unwrap(files.weights).unwrap_or_else(|a| (*a).clone());
            let v = c.add_adapter(&name, files.config, weights, replace).await?;
            print(g, &v, |v| {
                println!(
                    "added adapter {} (id {}, rank {})",
                    s(v, "name"),
                    s(v, "id"),
                    v["rank"]
                );
            });
        }
        AdapterCmd::List => {
            let v = c.get("/api/v1/adapters").await?;
            print(g, &v, |v| {
                for a in v["adapters"].as_array().into_iter().flatten() {
                    print_adapter(a);
                }
            });
        }
        AdapterCmd::Show { adapter } => {
            let v = c
                .get(&format!("/api/v1/adapters/{}", enc(&adapter)))
                .await?;
            print(g, &v, |v| {
                print_adapter(v);
                println!(
                    "  hash {}  base {}  added by {}",
                    s(v, "hash"),
                    s(v, "base_model"),
                    s(v, "added_by")
                );
                println!("  stats {}", v["stats"]);
            });
        }
        AdapterCmd::Remove { adapter } => {
            let v = c
                .send(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/adapters/{}", enc(&adapter)),
                    &json!({}),
                )
                .await?;
            print(g, &v, |v| println!("removed adapter {}", s(v, "removed")));
        }
    }
    Ok(())
}

async fn apikey(g: &Global, c: &Client, cmd: ApikeyCmd) -> anyhow::Result<()> {
    match cmd {
        ApikeyCmd::Create { name, admin } => {
            let v = c
                .post("/api/v1/apikeys", &json!({"name": name, "admin": admin}))
                .await?;
            print(g, &v, |v| {
                println!("{}", s(v, "key"));
                eprintln!("API key '{}' created; it is shown only now.", s(v, "name"));
            });
        }
        ApikeyCmd::List => {
            let v = c.get("/api/v1/apikeys").await?;
            print(g, &v, |v| {
                for k in v["keys"].as_array().into_iter().flatten() {
                    println!(
                        "{:<24} {}…  admin {}",
                        s(k, "name"),
                        s(k, "prefix"),
                        k["admin"]
                    );
                }
            });
        }
        ApikeyCmd::Revoke { name } => {
            let v = c
                .send(
                    reqwest::Method::DELETE,
                    &format!(
                        "/api/v1/apikeys/{}",
                        percent_encoding::utf8_percent_encode(
                            &name,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    ),
                    &json!({}),
                )
                .await?;
            print(g, &v, |v| println!("revoked {} key(s)", v["revoked"]));
        }
    }
    Ok(())
}

async fn datanet(g: &Global, c: &Client, cmd: DatanetCmd) -> anyhow::Result<()> {
    match cmd {
        DatanetCmd::Create {
            slug,
            name,
            summary,
            description_file,
            tags,
            kind,
            private,
        } => {
            let key = key(g)?;
            let description = match description_file {
                Some(p) => std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?,
                None => String::new(),
            };
            let domain = c.domain().await?;
            let v = c
                .create_datanet(
                    &domain,
                    &key,
                    &slug,
                    &name,
                    &summary,
                    &description,
                    &tags,
                    &kind,
                    private,
                )
                .await?;
            print(g, &v, |v| {
                println!("created datanet");
                print_datanet(v);
            });
        }
        DatanetCmd::Contribute { slug, files } => {
            let key = key(g)?;
            let domain = c.domain().await?;
            let v = if files.len() == 1 {
                let (name, bytes) = read_upload(&files[0])?;
                let v = c
                    .contribute(&domain, &key, &slug, &name, bytes)
                    .await
                    .with_context(|| files[0].display().to_string())?;
                Value::Array(vec![v])
            } else {
                contribute_many(g, c, &domain, &key, &slug, &files).await?
            };
            print(g, &v, |v| {
                for it in v.as_array().into_iter().flatten() {
                    if !it["error"].is_object() {
                        print_contribution(it);
                    }
                }
            });
            let refused: Vec<String> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter(|it| it["error"].is_object())
                .map(|it| {
                    format!(
                        "{}: {}",
                        it["file"].as_str().unwrap_or("?"),
                        it["error"]["message"].as_str().unwrap_or("refused")
                    )
                })
                .collect();
            if !refused.is_empty() {
                bail!(
                    "{} of {} files were refused: {}",
                    refused.len(),
                    files.len(),
                    refused.join("; ")
                );
            }
        }
        DatanetCmd::Review {
            slug,
            ids,
            accept,
            reject,
            reason,
        } => {
            let key = key(g)?;
            let domain = c.domain().await?;
            let v = c
                .review(&domain, &key, &slug, &ids, accept && !reject, &reason)
                .await?;
            print(g, &v, |v| {
                for it in v["contributions"].as_array().into_iter().flatten() {
                    print_contribution(it);
                }
                if v["version"].is_object() {
                    print!("new version: ");
                    print_version(&v["version"]);
                }
            });
        }
        DatanetCmd::List { owner, tag } => {
            let mut q = Vec::new();
            if let Some(o) = owner {
                q.push(format!("owner={}", enc(&o)));
            }
            if let Some(t) = tag {
                q.push(format!("tag={}", enc(&t)));
            }
            let v = get_all(
                c,
                &format!("/api/v1/datanets?limit=1000&{}", q.join("&")),
                &["items"],
            )
            .await?;
            print(g, &v, |v| {
                let items = v["items"].as_array().cloned().unwrap_or_default();
                if items.is_empty() {
                    println!("no datanets");
                }
                for d in &items {
                    print_datanet(d);
                }
            });
        }
        DatanetCmd::Show { slug } => {
            let v = c.get(&format!("/api/v1/datanets/{}", enc(&slug))).await?;
            print(g, &v, print_datanet);
        }
        DatanetCmd::Versions { slug } => {
            let v = c
                .get(&format!("/api/v1/datanets/{}/versions", enc(&slug)))
                .await?;
            print(g, &v, |v| {
                for it in v["items"].as_array().into_iter().flatten() {
                    print_version(it);
                }
            });
        }
        DatanetCmd::Rows {
            slug,
            version,
            limit,
            cursor,
            all,
        } => {
            let mut cur = cursor;
            let mut items = Vec::new();
            let mut next;
            loop {
                let mut path = format!("/api/v1/datanets/{}/rows?limit={limit}", enc(&slug));
                if let Some(v) = version {
                    path.push_str(&format!("&version={v}"));
                }
                if let Some(c) = cur {
                    path.push_str(&format!("&cursor={c}"));
                }
                let page = c.get(&path).await?;
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                next = page["next_cursor"].as_str().map(str::to_string);
                match (&next, all) {
                    (Some(n), true) => cur = Some(n.parse().context("bad cursor from the node")?),
                    _ => break,
                }
            }
            let v = json!({"items": items, "next_cursor": next});
            print(g, &v, |v| {
                for r in v["items"].as_array().into_iter().flatten() {
                    print_row(r);
                }
                if let Some(n) = v["next_cursor"].as_str() {
                    println!("… more: --cursor {n} (or --all)");
                }
            });
        }
        DatanetCmd::Diff { slug, a, b } => {
            let v = get_all(
                c,
                &format!(
                    "/api/v1/datanets/{}/diff?from={a}&to={b}&limit=1000",
                    enc(&slug)
                ),
                &["added", "removed"],
            )
            .await?;
            print(g, &v, |v| {
                println!(
                    "{} → {}: {} rows added, {} removed",
                    a, b, v["added_count"], v["removed_count"]
                );
                for r in v["added"].as_array().into_iter().flatten() {
                    print!("+ ");
                    print_row(r);
                }
                for r in v["removed"].as_array().into_iter().flatten() {
                    print!("- ");
                    print_row(r);
                }
            });
        }
        DatanetCmd::Edit {
            slug,
            summary,
            description_file,
            tags,
        } => {
            let key = key(g)?;
            let cur = c.get(&format!("/api/v1/datanets/{}", enc(&slug))).await?;
            let summary = summary.unwrap_or_else(|| s(&cur, "summary").to_string());
            let description = match description_file {
                Some(p) => std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?,
                None => s(&cur, "description").to_string(),
            };
            let tags = tags.unwrap_or_else(|| {
                cur["tags"]
                    .as_array()
                    .map(|t| {
                        t.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            });
            let domain = c.domain().await?;
            let (nonce, deadline) = client::fresh();
            let msg = auth::EditDatanet {
                datanet: slug.clone(),
                summary: summary.clone(),
                descriptionHash: B256::from(*blake3::hash(description.as_bytes()).as_bytes()),
                tags: tags.clone(),
                nonce,
                deadline: U256::from(deadline),
            };
            let sg = client::sign(&msg, &domain, &key, nonce, deadline)?;
            let v = c
                .send(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/datanets/{}", enc(&slug)),
                    &json!({"summary": summary, "description": description, "tags": tags, "auth": sg.json()}),
                )
                .await?;
            print(g, &v, print_datanet);
        }
        DatanetCmd::Contributions {
            slug,
            status,
            contributor,
        } => {
            let mut path = format!("/api/v1/datanets/{}/contributions?limit=1000", enc(&slug));
            if let Some(st) = status {
                path.push_str(&format!("&status={}", enc(&st)));
            }
            if let Some(a) = contributor {
                path.push_str(&format!("&contributor={}", enc(&a)));
            }
            let v = get_all(c, &path, &["items"]).await?;
            print(g, &v, |v| {
                for it in v["items"].as_array().into_iter().flatten() {
                    print_contribution(it);
                }
            });
        }
        DatanetCmd::Takedown { slug, rows, reason } => {
            let key = key(g)?;
            let domain = c.domain().await?;
            let (nonce, deadline) = client::fresh();
            let msg = auth::TakeDown {
                datanet: slug.clone(),
                rows: rows.iter().map(|r| U256::from(*r)).collect(),
                reason: reason.clone(),
                nonce,
                deadline: U256::from(deadline),
            };
            let sg = client::sign(&msg, &domain, &key, nonce, deadline)?;
            let v = c
                .post(
                    &format!("/api/v1/datanets/{}/takedown", enc(&slug)),
                    &json!({"rows": rows, "reason": reason, "auth": sg.json()}),
                )
                .await?;
            print(g, &v, |v| {
                print!("new version: ");
                print_version(v);
            });
        }
        DatanetCmd::Roles {
            slug,
            reviewers,
            contributors,
        } => {
            let key = key(g)?;
            let parse = |v: &[String]| -> anyhow::Result<Vec<Address>> {
                v.iter()
                    .map(|a| {
                        a.parse::<Address>()
                            .map_err(|_| anyhow!("'{a}' is not an address"))
                    })
                    .collect()
            };
            let (rv, ct) = (parse(&reviewers)?, parse(&contributors)?);
            let domain = c.domain().await?;
            let (nonce, deadline) = client::fresh();
            let msg = auth::SetRoles {
                datanet: slug.clone(),
                reviewers: rv.clone(),
                contributors: ct.clone(),
                nonce,
                deadline: U256::from(deadline),
            };
            let sg = client::sign(&msg, &domain, &key, nonce, deadline)?;
            let v = c
                .post(
                    &format!("/api/v1/datanets/{}/roles", enc(&slug)),
                    &json!({"reviewers": rv, "contributors": ct, "auth": sg.json()}),
                )
                .await?;
            print(g, &v, print_datanet);
        }
    }
    Ok(())
}

fn sql_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn sql_names(v: &Value) -> Vec<String> {
    v["columns"]
        .as_array()
        .map(|c| c.iter().map(|c| s(c, "name").to_string()).collect())
        .unwrap_or_default()
}

fn sql_rows(v: &Value) -> Vec<Vec<String>> {
    v["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    r.as_array()
                        .map(|r| r.iter().map(sql_cell).collect())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A SQL answer as CSV (header line, then rows; nulls are empty fields).
fn sql_csv(v: &Value) -> String {
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
    let mut out = String::new();
    let line = |cells: &[String]| cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(",");
    out.push_str(&line(&sql_names(v)));
    out.push('\n');
    for r in sql_rows(v) {
        out.push_str(&line(&r));
        out.push('\n');
    }
    out
}

/// A SQL answer as an aligned text table, cells cut at 60 characters.
fn sql_table(v: &Value) -> String {
    const MAX: usize = 60;
    let cut = |s: &str| -> String {
        let one_line = s.replace(['\n', '\r', '\t'], " ");
        if one_line.chars().count() > MAX {
            let mut t: String = one_line.chars().take(MAX - 1).collect();
            t.push('…');
            t
        } else {
            one_line
        }
    };
    let names = sql_names(v);
    let rows: Vec<Vec<String>> = sql_rows(v)
        .into_iter()
        .map(|r| r.iter().map(|c| cut(c)).collect())
        .collect();
    let mut w: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.chars().count());
            }
        }
    }
    let numeric: Vec<bool> = v["columns"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| {
                    matches!(
                        c["type"].as_str(),
                        Some("bigint" | "integer" | "smallint" | "real" | "double precision")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let pad = |s: &str, i: usize| {
        let n = w[i].saturating_sub(s.chars().count());
        if numeric.get(i).copied().unwrap_or(false) {
            format!("{}{s}", " ".repeat(n))
        } else {
            format!("{s}{}", " ".repeat(n))
        }
    };
    let mut out = String::new();
    let header: Vec<String> = names.iter().enumerate().map(|(i, n)| pad(n, i)).collect();
    out.push_str(header.join(" | ").trim_end());
    out.push('\n');
    let rule: Vec<String> = w.iter().map(|n| "-".repeat(*n)).collect();
    out.push_str(&rule.join("-+-"));
    out.push('\n');
    for r in &rows {
        let cells: Vec<String> = r.iter().enumerate().map(|(i, c)| pad(c, i)).collect();
        out.push_str(cells.join(" | ").trim_end());
        out.push('\n');
    }
    let n = v["row_count"].as_u64().unwrap_or(rows.len() as u64);
    let more = if v["truncated"].as_bool().unwrap_or(false) {
        " (truncated: raise --max-rows)"
    } else {
        ""
    };
    out.push_str(&format!(
        "({n} row{}{more}, {} ms)\n",
        if n == 1 { "" } else { "s" },
        v["elapsed_ms"]
    ));
    out
}

#[derive(Debug, Args)]
struct SearchArgs {
    /// The query
    query: String,
    /// Only this datanet (slug)
    #[arg(long)]
    datanet: Option<String>,
    /// As of this version of --datanet (default: the latest)
    #[arg(long, requires = "datanet")]
    version: Option<u64>,
    /// Only rows by this contributor address
    #[arg(long)]
    contributor: Option<String>,
    /// Only datanets with this tag
    #[arg(long)]
    tag: Option<String>,
    /// Include pending rows of datanets the admin token may see (needs the admin token)
    #[arg(long)]
    include_pending: bool,
    /// Hits per page (1-1000)
    #[arg(long, default_value_t = 10)]
    limit: usize,
    /// Continue after a previous page (its next_cursor)
    #[arg(long)]
    cursor: Option<String>,
}

/// `commons search`: one page of hits, best first.
async fn search(g: &Global, c: &Client, a: SearchArgs) -> anyhow::Result<()> {
    let mut path = format!("/api/v1/search?q={}&limit={}", enc(&a.query), a.limit);
    let opts = [
        ("datanet", a.datanet),
        ("version", a.version.map(|v| v.to_string())),
        ("contributor", a.contributor),
        ("tag", a.tag),
        ("cursor", a.cursor),
        (
            "include_pending",
            a.include_pending.then(|| "true".to_string()),
        ),
    ];
    for (k, v) in opts {
        if let Some(v) = v {
            path.push_str(&format!("&{k}={}", enc(&v)));
        }
    }
    let v = c.get(&path).await?;
    print(g, &v, |v| {
        use std::io::IsTerminal;
        let tty = std::io::stdout().is_terminal();
        let items = v["items"].as_array().cloned().unwrap_or_default();
        println!("{} matching rows", v["total"]);
        for h in &items {
            let versions = match (h["added_in"].as_u64(), h["removed_in"].as_u64()) {
                (Some(a), Some(r)) => format!("v{a}-v{}", r - 1),
                (Some(a), None) => format!("v{a}-"),
                _ => "pending".to_string(),
            };
            println!(
                "row {:<8} {:<20} {:<10} {}  score {:.3}",
                h["row"],
                s(h, "datanet"),
                versions,
                s(h, "contributor"),
                h["score"].as_f64().unwrap_or(0.0)
            );
            let (on, off) = if tty {
                ("\x1b[1m", "\x1b[0m")
            } else {
                ("[", "]")
            };
            let text = s(h, "snippet")
                .replace("<mark>", on)
                .replace("</mark>", off)
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&")
                .replace('\n', " ");
            println!("    {text}");
        }
        if let Some(next) = v["next_cursor"].as_str() {
            println!("more: --cursor {next}");
        }
    });
    Ok(())
}

/// A file to upload: its plain name and its bytes.
fn read_upload(f: &std::path::Path) -> anyhow::Result<(String, Vec<u8>)> {
    let bytes = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
    let name = f
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("{} has no usable file name", f.display()))?;
    Ok((name.to_string(), bytes))
}

/// Files per batch request and bytes per batch request the CLI sends.
const UPLOAD_BATCH_FILES: usize = 200;
const UPLOAD_BATCH_BYTES: usize = 32 << 20;

/// Upload many files in batch requests; one item per file, in order: the contribution, or
/// `{"file", "error"}` for a file the node refused.
async fn contribute_many(
    g: &Global,
    c: &Client,
    domain: &alloy_sol_types::Eip712Domain,
    key: &alloy_signer_local::PrivateKeySigner,
    slug: &str,
    files: &[PathBuf],
) -> anyhow::Result<Value> {
    let bar = if g.json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(files.len() as u64)
    };
    let mut out = Vec::with_capacity(files.len());
    let mut start = 0;
    while start < files.len() {
        let (mut batch, mut names, mut bytes) = (Vec::new(), Vec::new(), 0usize);
        while start + batch.len() < files.len()
            && batch.len() < UPLOAD_BATCH_FILES
            && (batch.is_empty() || bytes < UPLOAD_BATCH_BYTES)
        {
            let f = &files[start + batch.len()];
            let (name, data) = read_upload(f)?;
            bytes += data.len();
            names.push(f.display().to_string());
            batch.push((name, data));
        }
        let n = batch.len();
        let v = c.contribute_batch(domain, key, slug, batch).await?;
        let items = v["items"]
            .as_array()
            .ok_or_else(|| anyhow!("the node answered a batch upload without items"))?;
        for (it, name) in items.iter().zip(names) {
            if it["contribution"].is_object() {
                out.push(it["contribution"].clone());
            } else {
                out.push(json!({"file": name, "error": it["error"].clone()}));
            }
        }
        bar.inc(n as u64);
        start += n;
    }
    bar.finish_and_clear();
    Ok(Value::Array(out))
}
