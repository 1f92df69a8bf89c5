//! The console in a real browser: headless Chromium, driven by playwright-core
//! (`tests/browser/console.e2e.mjs`), clicks through sign-in → create → contribute → review →
//! rows → diff → edit → take-down against the real binary. `cargo xtask test` installs
//! Chromium and the npm packages; when they are missing and `COMMONS_E2E_REQUIRED` is unset,
//! the test says why and passes without running.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

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
    let shots = node.scratch().join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let mut cmd = Command::new("node");
    cmd.current_dir(&browser_dir)
        .arg("console.e2e.mjs")
        .env("COMMONS_URL", &node.url)
        .env("COMMONS_USER", user)
        .env("COMMONS_PASSWORD", password)
        .env("SCREENSHOT_DIR", &shots);
    let out = tokio::task::spawn_blocking(move || run_bounded(cmd, Duration::from_secs(240)))
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
