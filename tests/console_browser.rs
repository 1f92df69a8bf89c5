//! The console in a real browser: headless Chromium, driven by playwright-core
//! (`tests/browser/console.e2e.mjs`), clicks through sign-in → create → contribute → review →
//! rows → diff → edit → take-down, then the Models page (base model, adapter upload, tiers,
//! remove) and the Playground (a streamed chat with the adapter), against the real binary.
//! `cargo xtask test` installs Chromium and the npm packages; when they are missing and
//! `COMMONS_E2E_REQUIRED` is unset, the test says why and passes without running.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use commons_compute::config::ModelConfig;
use commons_compute::devmodel::synthetic_adapter;
use commons_compute::lora::Proj;

use crate::support::{Node, Opts, run_bounded};

fn missing_tools(browser_dir: &Path) -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("no Chromium at {chromium}"));
    }
    if !browser_dir.join("node_modules/playwright-core").exists() {
        return Some("tests/browser/node_modules is not installed (npm ci)".into());
    }
    let node = Command::new("node").arg("--version").output();
    if !node.map(|o| o.status.success()).unwrap_or(false) {
        return Some("no node on PATH".into());
    }
    None
}

/// A PEFT adapter directory for the dev model (rank 8 on every projection), as the browser
/// uploads it. The node creates the dev model in the background when it starts; the model's
/// directory is renamed into place whole, so its config.json appearing means it is complete.
async fn adapter_dir(node: &Node) -> PathBuf {
    let config = node.data_dir.join("models/dev/config.json");
    let started = Instant::now();
    while !config.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the dev model was not created in 180 s; node log:\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = std::fs::read_to_string(&config).expect("read the dev model's config");
    let cfg = ModelConfig::parse(&text).expect("the dev model's config parses");
    let files = synthetic_adapter(&cfg, 8, &Proj::ALL, 7, false).expect("synthetic adapter");
    let dir = node.scratch().join("e2e-adapter");
    std::fs::create_dir_all(&dir).expect("adapter dir");
    let weights = files.weights.as_slice();
    std::fs::write(dir.join("adapter_config.json"), &files.config).expect("write the config");
    std::fs::write(dir.join("adapter_model.safetensors"), weights).expect("write the weights");
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn console_click_through_in_chromium() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if let Some(why) = missing_tools(&browser_dir) {
        assert!(
            std::env::var_os("COMMONS_E2E_REQUIRED").is_none(),
            "the browser test must run here but cannot: {why}"
        );
        eprintln!("skipping the browser test: {why} (run `cargo xtask test` to install)");
        return;
    }
    let node = Node::start(Opts::default());
    let user = "console-e2e";
    let password = "correct horse battery";
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/console/users", node.url))
        .bearer_auth(node.admin_token())
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .await
        .expect("create console user");
    assert_eq!(resp.status().as_u16(), 201, "create console user");
    let adapter = adapter_dir(&node).await;
    // A withdrawal to L1 for the Ledger page to prove.
    let withdrawal = node.cli_json(&[
        "--key",
        "dev5",
        "ledger",
        "send",
        "0x4200000000000000000000000000000000000016",
        "1",
    ]);
    let withdrawal_tx = withdrawal["hash"]
        .as_str()
        .expect("withdrawal tx hash")
        .to_string();
    let shots = node.scratch().join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let mut cmd = Command::new("node");
    cmd.current_dir(&browser_dir)
        .arg("console.e2e.mjs")
        .env("COMMONS_URL", &node.url)
        .env("COMMONS_USER", user)
        .env("COMMONS_PASSWORD", password)
        .env("COMMONS_ADAPTER_DIR", &adapter)
        .env("COMMONS_WITHDRAWAL_TX", &withdrawal_tx)
        .env("SCREENSHOT_DIR", &shots);
    let out = tokio::task::spawn_blocking(move || run_bounded(cmd, Duration::from_secs(360)))
        .await
        .expect("browser run");
    assert!(
        out.status.success(),
        "the browser click-through failed:\n--- stdout\n{}\n--- stderr\n{}\n--- node log\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        node.log()
    );
}
