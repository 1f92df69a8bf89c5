//! OpenLoRA through its real interfaces: `commons adapter add`, the REST adapter routes, the
//! OpenAI-compatible API with SSE streaming (by hand and through the official `openai` Python
//! client, which `cargo xtask prepare` installs), API keys, vLLM's load/unload routes, and bad
//! input.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use commons_compute::config::ModelConfig;
use commons_compute::devmodel::synthetic_adapter;
use commons_compute::lora::Proj;
use serde_json::{Value, json};

use crate::support::{Node, Opts, assert_error, run_bounded};

/// Wait until the dev model is loaded (it is created on first start, in the background).
pub(crate) async fn ready(n: &Node) -> Value {
    let started = Instant::now();
    loop {
        let r = n
            .http()
            .get(n.at("/api/v1/models/base"))
            .bearer_auth("dev")
            .send()
            .await
            .expect("get");
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if status == 200 {
            return v;
        }
        assert_eq!(v["error"]["code"], "model_loading", "{v}");
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the dev model did not load"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write_adapter(n: &Node, name: &str, rank: usize, targets: &[Proj], seed: u64) -> PathBuf {
    let cfg = ModelConfig::parse(
        &std::fs::read_to_string(n.data_dir.join("models/dev/config.json")).expect("dev config"),
    )
    .expect("config");
    let files = synthetic_adapter(&cfg, rank, targets, seed, false).expect("adapter");
    let dir = n.scratch().join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("adapter_config.json"), &files.config).expect("write");
    std::fs::write(
        dir.join("adapter_model.safetensors"),
        files.weights.as_slice(),
    )
    .expect("write");
    dir
}

async fn call(n: &Node, key: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = n
        .http()
        .post(n.at(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("post");
    crate::support::answer(r).await
}

fn python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    [venv, PathBuf::from("python3")].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import openai"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[tokio::test]
async fn adapters_and_chat_over_http_and_cli() {
    let n = Node::start(Opts::default());
    let base = ready(&n).await;
    assert_eq!(base["arch"], "llama");
    assert!(base["chat_template"].as_bool().unwrap_or(false), "{base}");

    // The CLI registers a PEFT directory; the listing shows it.
    let dir = write_adapter(&n, "legal", 8, &Proj::ALL, 1);
    let added = n.cli_json(&[
        "adapter",
        "add",
        dir.to_str().expect("utf8"),
        "--name",
        "legal",
    ]);
    assert_eq!(added["name"], "legal");
    assert_eq!(added["rank"], 8);
    let listed = n.cli_json(&["adapter", "list"]);
    assert_eq!(listed["adapters"].as_array().map(Vec::len), Some(1));
    let again = n.cli_fails(&[
        "adapter",
        "add",
        dir.to_str().expect("utf8"),
        "--name",
        "legal",
    ]);
    assert!(again.contains("exists already"), "{again}");

    // A key from `commons apikey create` works; a wrong one does not.
    let key = n.cli_json(&["apikey", "create", "--name", "app"])["key"]
        .as_str()
        .expect("key")
        .to_string();
    let body = json!({"model": "legal", "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 6, "temperature": 0});
    let (s, v) = call(&n, &key, "/v1/chat/completions", &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["usage"]["completion_tokens"], 6);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let text = v["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_string();
    assert_error(
        &call(&n, "nope", "/v1/chat/completions", &body).await,
        401,
        "unauthorized",
    );

    // Streaming gives the same text, chunk by chunk, then [DONE].
    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    sbody["stream_options"] = json!({"include_usage": true});
    let r = n
        .http()
        .post(n.at("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&sbody)
        .send()
        .await
        .expect("stream");
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let raw = r.text().await.expect("body");
    let events: Vec<&str> = raw.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"), "{raw}");
    let mut streamed = String::new();
    let mut usage = Value::Null;
    for e in &events[..events.len() - 1] {
        let v: Value =
            serde_json::from_str(e.strip_prefix("data: ").expect("data:")).expect("json");
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            streamed.push_str(c);
        }
        if !v["usage"].is_null() {
            usage = v["usage"].clone();
        }
    }
    assert_eq!(streamed, text);
    assert_eq!(usage["completion_tokens"], 6);

    // The adapter changes the output; the base model is there too.
    let mut bbody = body.clone();
    bbody["model"] = json!("commons-dev");
    let (s, bv) = call(&n, &key, "/v1/chat/completions", &bbody).await;
    assert_eq!(s, 200, "{bv}");

    // Stats count requests and say the tier; unload frees memory, the next request reloads.
    let id = added["id"].as_str().expect("id");
    let st = n.get_ok(&format!("/api/v1/adapters/{id}/stats")).await;
    assert_eq!(st["stats"]["requests"], 2, "{st}");
    assert_eq!(st["stats"]["tier"], "device");
    let (s, _) = call(
        &n,
        "dev",
        &format!("/api/v1/adapters/{id}/unload"),
        &json!({}),
    )
    .await;
    assert_eq!(s, 200);
    let st = n.get_ok(&format!("/api/v1/adapters/{id}/stats")).await;
    assert_eq!(st["stats"]["tier"], "cold", "{st}");
    let (s, again) = call(&n, &key, "/v1/chat/completions", &body).await;
    assert_eq!(s, 200);
    assert_eq!(
        again["choices"][0]["message"]["content"],
        json!(text),
        "same weights, same tokens"
    );
    let metrics = n
        .http()
        .get(n.at("/metrics"))
        .send()
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    assert!(
        metrics.contains("commons_adapter_requests_total{adapter=\"legal\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("commons_adapter_tier{adapter=\"legal\"} 2"),
        "{metrics}"
    );

    // Replacing the adapter under the same name serves the new weights (cache keys are hashes).
    let dir2 = write_adapter(&n, "legal2", 4, &[Proj::Q, Proj::V], 99);
    n.cli_json(&[
        "adapter",
        "add",
        dir2.to_str().expect("utf8"),
        "--name",
        "legal",
        "--replace",
    ]);
    let (_, replaced) = call(&n, &key, "/v1/chat/completions", &body).await;
    assert_ne!(replaced["choices"][0]["message"]["content"], json!(text));

    // Bad input: clear errors, and the node keeps serving.
    assert_error(
        &call(&n, &key, "/v1/chat/completions", &json!({"model": "legal"})).await,
        400,
        "bad_request",
    );
    assert_error(
        &call(
            &n,
            &key,
            "/v1/chat/completions",
            &json!({"model": "legal", "messages": [{"role": "wizard", "content": "x"}]}),
        )
        .await,
        400,
        "bad_request",
    );
    let mut long = body.clone();
    long["max_tokens"] = json!(100_000);
    assert_error(
        &call(&n, &key, "/v1/chat/completions", &long).await,
        400,
        "bad_request",
    );
    let mut unknown = body.clone();
    unknown["model"] = json!("nope");
    assert_error(
        &call(&n, &key, "/v1/chat/completions", &unknown).await,
        404,
        "model_not_found",
    );
    let huge = "word ".repeat(5000);
    let mut over = body.clone();
    over["messages"] = json!([{"role": "user", "content": huge}]);
    assert_error(
        &call(&n, &key, "/v1/chat/completions", &over).await,
        400,
        "bad_request",
    );
    // An adapter for another base model is refused at upload, naming the problem.
    let bad = n.scratch().join("bad");
    std::fs::create_dir_all(&bad).expect("mkdir");
    std::fs::write(
        bad.join("adapter_config.json"),
        r#"{"r":8,"lora_alpha":16,"target_modules":["lm_head"],"modules_to_save":["lm_head"]}"#,
    )
    .expect("w");
    std::fs::copy(
        dir.join("adapter_model.safetensors"),
        bad.join("adapter_model.safetensors"),
    )
    .expect("cp");
    let e = n.cli_fails(&[
        "adapter",
        "add",
        bad.to_str().expect("utf8"),
        "--name",
        "bad",
    ]);
    assert!(e.contains("modules_to_save"), "{e}");
    let trunc = n.scratch().join("trunc");
    std::fs::create_dir_all(&trunc).expect("mkdir");
    std::fs::copy(
        dir.join("adapter_config.json"),
        trunc.join("adapter_config.json"),
    )
    .expect("cp");
    let w = std::fs::read(dir.join("adapter_model.safetensors")).expect("r");
    std::fs::write(trunc.join("adapter_model.safetensors"), &w[..w.len() / 2]).expect("w");
    let e = n.cli_fails(&[
        "adapter",
        "add",
        trunc.to_str().expect("utf8"),
        "--name",
        "trunc",
    ]);
    assert!(e.contains("safetensors"), "{e}");

    // vLLM's admin routes: an app key may not, the admin may.
    let vdir = write_adapter(&n, "vllm", 16, &[Proj::Q, Proj::K, Proj::V, Proj::O], 5);
    let load = json!({"lora_name": "vllm", "lora_path": vdir.to_str().expect("utf8")});
    assert_error(
        &call(&n, &key, "/v1/load_lora_adapter", &load).await,
        403,
        "forbidden",
    );
    let (s, v) = call(&n, &n.admin_token(), "/v1/load_lora_adapter", &load).await;
    assert_eq!(s, 200, "{v}");
    let (s, models) = n
        .http()
        .get(n.at("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .expect("models");
    assert_eq!(s, 200);
    let models: Value = models.json().await.expect("json");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["commons-dev", "legal", "vllm"]);
    let (s, _) = call(
        &n,
        &n.admin_token(),
        "/v1/unload_lora_adapter",
        &json!({"lora_name": "vllm"}),
    )
    .await;
    assert_eq!(s, 200);
    let mut vb = body.clone();
    vb["model"] = json!("vllm");
    assert_error(
        &call(&n, &key, "/v1/chat/completions", &vb).await,
        404,
        "model_not_found",
    );
    n.cli_json(&["adapter", "remove", "legal"]);
    assert_eq!(n.cli_json(&["adapter", "list"])["adapters"], json!([]));
}

#[tokio::test]
async fn official_openai_python_client() {
    let Some(py) = python() else {
        assert!(
            std::env::var_os("COMMONS_E2E_REQUIRED").is_none(),
            "the openai Python package is missing (run `cargo xtask prepare`)"
        );
        eprintln!(
            "SKIPPED: the openai Python package is missing; `cargo xtask prepare` installs it"
        );
        return;
    };
    let n = Node::start(Opts::default());
    ready(&n).await;
    let dir = write_adapter(&n, "support-bot", 16, &Proj::ALL, 3);
    n.cli_json(&[
        "adapter",
        "add",
        dir.to_str().expect("utf8"),
        "--name",
        "support-bot",
    ]);
    let mut c = Command::new(py);
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client.py"))
        .args([&n.url, "dev", "support-bot"]);
    let out = run_bounded(c, Duration::from_secs(300));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "openai_client.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(v["models"], json!(["commons-dev", "support-bot"]), "{v}");
    assert_eq!(v["chat"]["object"], "chat.completion");
    assert_eq!(v["chat"]["usage"]["completion_tokens"], 8);
    assert_eq!(v["chat_repeat_same"], true, "greedy is deterministic");
    assert_eq!(v["stream"]["text"], v["chat"]["content"], "{v}");
    assert_eq!(v["stream"]["roles"], json!(["assistant"]));
    assert_eq!(v["stream"]["usage"]["completion_tokens"], 8);
    assert_eq!(v["logprobs"]["n"], 3);
    assert_eq!(v["logprobs"]["top"], 2);
    assert!(v["logprobs"]["lp"].as_f64().is_some_and(|l| l <= 0.0));
    assert_eq!(v["completion"]["object"], "text_completion");
    assert_eq!(v["completion"]["usage"]["completion_tokens"], 5);
    assert_eq!(v["base_completion_tokens"], 4);
    assert_eq!(v["unknown_model"], 404);
    assert_eq!(v["bad_key"], 401);
    assert_eq!(v["too_many_tokens"], 400);
}
