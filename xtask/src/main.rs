//! Project automation. `cargo xtask test` is the one command that runs every test: it installs
//! what the end-to-end tests need when it is missing (Chromium from Debian, the npm clients),
//! checks formatting and lints, then runs the whole suite with the end-to-end tests required
//! (they fail instead of skipping when a tool is missing).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd} >/dev/null 2>&1"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {cmd:?}");
    let st = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {st}"))
    }
}

fn sudo() -> Vec<&'static str> {
    // Root on CI and the dev machines; sudo elsewhere.
    let uid = Command::new("id").arg("-u").output().ok();
    match uid {
        Some(o) if String::from_utf8_lossy(&o.stdout).trim() == "0" => vec![],
        _ => vec!["sudo"],
    }
}

fn apt_install(pkgs: &[&str]) -> Result<(), String> {
    let s = sudo();
    let mut update = Command::new(s.first().copied().unwrap_or("apt-get"));
    if !s.is_empty() {
        update.arg("apt-get");
    }
    update.args(["update", "-q"]);
    run(&mut update)?;
    let mut install = Command::new(s.first().copied().unwrap_or("apt-get"));
    if !s.is_empty() {
        install.arg("apt-get");
    }
    install
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(pkgs)
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(&mut install)
}

/// Install what the end-to-end tests drive: Chromium and the npm packages of tests/browser,
/// `psql`, psycopg and the `openai` client (in a venv under target/pyenv) for the wire tests,
/// web3.py (same venv) and viem (tests/ledger_clients) for the JSON-RPC tests.
fn prepare() -> Result<(), String> {
    let root = root();
    if !Path::new("/usr/bin/chromium").exists() {
        apt_install(&["chromium", "chromium-driver", "fonts-dejavu-core"])?;
    }
    if !have("node") || !have("npm") {
        apt_install(&["nodejs", "npm"])?;
    }
    let browser = root.join("tests/browser");
    if browser.join("package.json").exists()
        && !browser.join("node_modules/playwright-core").exists()
    {
        let mut npm = Command::new("npm");
        npm.current_dir(&browser)
            .args(["ci", "--no-audit", "--no-fund"]);
        run(&mut npm)?;
    }
    // viem for the JSON-RPC tests, solc-js for the system contracts' artifact check.
    for (dir, module) in [
        ("tests/ledger_clients", "viem"),
        ("ledger/contracts", "solc"),
    ] {
        let dir = root.join(dir);
        if dir.join("package.json").exists() && !dir.join("node_modules").join(module).exists() {
            let mut npm = Command::new("npm");
            npm.current_dir(&dir)
                .args(["ci", "--no-audit", "--no-fund"]);
            run(&mut npm)?;
        }
    }
    // SQL end-to-end tests: psql, and psycopg in a venv under target/; the OpenAI API test:
    // the official `openai` client in the same venv.
    if !Path::new("/usr/bin/psql").exists() {
        apt_install(&["postgresql-client"])?;
    }
    let py = root.join("target/pyenv/bin/python");
    let has_psycopg = |p: &Path| {
        Command::new(p)
            .args(["-c", "import psycopg, openai"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !has_psycopg(&py) {
        if !Command::new("python3")
            .args(["-c", "import venv, ensurepip"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
        {
            apt_install(&["python3-venv"])?;
        }
        run(Command::new("python3")
            .args(["-m", "venv"])
            .arg(root.join("target/pyenv")))?;
        run(Command::new(&py).args([
            "-m",
            "pip",
            "install",
            "-q",
            "psycopg[binary]>=3.1,<4",
            "openai>=1.40,<3",
        ]))?;
    }
    let has_web3 = Command::new(&py)
        .args(["-c", "import web3"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !has_web3 {
        run(Command::new(&py).args(["-m", "pip", "install", "-q", "web3>=7,<8"]))?;
    }
    Ok(())
}

/// The environment that makes every rustc call on a workspace crate a clippy call with
/// `-D warnings`, as `cargo clippy` does. Building and testing under it lints and compiles in
/// one pass: `cargo clippy` would first check every dependency in a separate build mode,
/// which on 2 cores costs minutes of CI for no new information.
fn clippy_env() -> Result<Vec<(&'static str, String)>, String> {
    let driver = Command::new("rustup")
        .args(["which", "clippy-driver"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "clippy-driver".into());
    if Command::new(&driver).arg("--version").output().is_err() {
        return Err(format!(
            "clippy-driver not found ({driver}); install it with `rustup component add clippy`"
        ));
    }
    Ok(vec![
        ("RUSTC_WORKSPACE_WRAPPER", driver),
        (
            "CLIPPY_ARGS",
            "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__".into(),
        ),
    ])
}

fn test(args: &[String]) -> Result<(), String> {
    let root = root();
    let lint = !args.iter().any(|a| a == "--no-lint");
    // The installs wait on the network and the build on the CPU: run them side by side
    // (minutes of CI wall time on 2 cores). Only the node steps and the tests need them.
    let installs = std::thread::spawn(prepare);
    let env = if lint { clippy_env()? } else { vec![] };
    if lint {
        run(Command::new("cargo")
            .current_dir(&root)
            .args(["fmt", "--all", "--", "--check"]))?;
        // Every target (benches and examples too) compiled once, linted as it compiles.
        run(Command::new("cargo")
            .current_dir(&root)
            .args(["build", "--workspace", "--all-targets"])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str()))))?;
    }
    installs
        .join()
        .map_err(|_| "installing the test clients panicked".to_string())??;
    let browser = root.join("tests/browser");
    if browser.join("package.json").exists() {
        run(Command::new("node")
            .current_dir(&browser)
            .args(["--test", "--test-reporter=spec"]))?;
    }
    // The committed contract artifacts must be what the pinned solc makes of the sources.
    run(Command::new("node")
        .current_dir(root.join("ledger/contracts"))
        .args(["compile.mjs", "--check"]))?;
    // The same environment as the build above, so the tests reuse what it compiled.
    run(Command::new("cargo")
        .current_dir(&root)
        .args(["test", "--workspace"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("COMMONS_E2E_REQUIRED", "1"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("prepare") => prepare(),
        _ => Err("usage: cargo xtask test [--no-lint] | cargo xtask prepare".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
