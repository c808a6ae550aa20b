//! Runtime acknowledgments through the real HTTP API: every status code,
//! persistence across restarts, the file's safety rules, concurrent
//! writers, API keys that must match exactly, and the CI baseline.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use common::{Daemon, FAST, TempDir, hex, n1_request};
use serde_json::{Value, json};

const KEY_ENV: &str = "PERF_SENTINEL_ACK_API_KEY";
const KEY: &str = "s3cure-ack-key-for-tests";

fn trace_id(n: u8) -> [u8; 16] {
    let mut id = [0xac; 16];
    id[15] = n;
    id
}

/// A well-formed signature that no finding has to carry.
fn signature(n: usize) -> String {
    format!("n_plus_one_sql:svc-{n}:GET__orders:{:032x}", n)
}

fn ack_section(store: &std::path::Path, extra: &str) -> String {
    format!(
        "[daemon.ack]\nstorage_path = {:?}\n{extra}",
        store.display().to_string()
    )
}

async fn call(
    daemon: &Daemon,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, daemon.http(path));
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, json)
}

async fn ack(daemon: &Daemon, sig: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    call(
        daemon,
        reqwest::Method::POST,
        &format!("/api/findings/{sig}/ack"),
        key,
        Some(body),
    )
    .await
}

async fn unack(daemon: &Daemon, sig: &str, key: Option<&str>) -> (u16, Value) {
    call(
        daemon,
        reqwest::Method::DELETE,
        &format!("/api/findings/{sig}/ack"),
        key,
        None,
    )
    .await
}

async fn list(daemon: &Daemon, key: Option<&str>) -> (u16, Value) {
    call(daemon, reqwest::Method::GET, "/api/acks", key, None).await
}

/// Sends an N+1 trace and returns its finding's signature.
async fn n1_signature(daemon: &Daemon, n: u8, service: &str) -> String {
    assert_eq!(
        daemon
            .post_otlp(&n1_request(trace_id(n), service, 6))
            .await
            .status(),
        200
    );
    let id = hex(&trace_id(n));
    daemon
        .wait_for(Duration::from_secs(20), "the N+1 finding", || async {
            daemon
                .trace_findings(&id)
                .await
                .into_iter()
                .find(|f| f["type"] == "n_plus_one_sql")
                .map(|f| f["signature"].as_str().unwrap().to_owned())
        })
        .await
}

async fn listed_n1(daemon: &Daemon, query: &str) -> Vec<Value> {
    daemon
        .findings(query)
        .await
        .into_iter()
        .filter(|f| f["type"] == "n_plus_one_sql")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_code_and_acks_survive_a_restart() {
    let dir = TempDir::new("acks-codes");
    let store = dir.0.join("state").join("acks.jsonl");
    let extra = ack_section(&store, "");
    let env = [(KEY_ENV, KEY)];
    let mut daemon = Daemon::start_with_env(FAST, &extra, &env);
    let sig = n1_signature(&daemon, 1, "orders").await;

    // 401 without the key, and nothing changes.
    assert_eq!(ack(&daemon, &sig, None, json!({})).await.0, 401);
    assert_eq!(list(&daemon, None).await.0, 401);
    assert_eq!(unack(&daemon, &sig, None).await.0, 401);
    // Reads of findings stay open.
    assert_eq!(listed_n1(&daemon, "").await.len(), 1);

    let (status, body) = ack(
        &daemon,
        &sig,
        Some(KEY),
        json!({"by": "alice", "reason": "known; fixed in PR 42", "expires_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["signature"], sig.as_str());
    assert_eq!(body["by"], "alice");
    // Acked: hidden by default, shown with its annotation on request.
    assert!(listed_n1(&daemon, "").await.is_empty());
    let shown = listed_n1(&daemon, "include_acked=true").await;
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["acknowledged_by"]["source"], "daemon");
    assert_eq!(shown[0]["acknowledged_by"]["by"], "alice");
    assert_eq!(
        shown[0]["acknowledged_by"]["reason"],
        "known; fixed in PR 42"
    );

    // 409 twice; 400 for malformed input; X-User-Id wins over `by`.
    assert_eq!(ack(&daemon, &sig, Some(KEY), json!({})).await.0, 409);
    assert_eq!(
        ack(&daemon, "not-a-signature", Some(KEY), json!({}))
            .await
            .0,
        400
    );
    assert_eq!(
        ack(
            &daemon,
            &signature(7),
            Some(KEY),
            json!({"expires_at": "tomorrow"})
        )
        .await
        .0,
        400
    );
    assert_eq!(
        ack(&daemon, &signature(7), Some(KEY), json!({"by": 5}))
            .await
            .0,
        400
    );
    let (status, _) = call(
        &daemon,
        reqwest::Method::POST,
        &format!("/api/findings/{}/ack", signature(7)),
        Some(KEY),
        None,
    )
    .await;
    assert_eq!(status, 201, "an empty body is allowed");
    let resp = reqwest::Client::new()
        .post(daemon.http(&format!("/api/findings/{}/ack", signature(8))))
        .header("x-api-key", KEY)
        .header("x-user-id", "proxy-user")
        .json(&json!({"by": "self-declared", "reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["by"], "proxy-user");
    // 507: one entry larger than 4 KiB (1024 four-byte characters).
    let huge = "\u{1F600}".repeat(1024);
    assert_eq!(
        ack(&daemon, &signature(9), Some(KEY), json!({"reason": huge}))
            .await
            .0,
        507
    );

    // 204, then 404.
    assert_eq!(unack(&daemon, &signature(7), Some(KEY)).await.0, 204);
    assert_eq!(unack(&daemon, &signature(7), Some(KEY)).await.0, 404);
    let (status, active) = list(&daemon, Some(KEY)).await;
    assert_eq!(status, 200);
    let sigs: Vec<&str> = active
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["signature"].as_str().unwrap())
        .collect();
    assert_eq!(sigs.len(), 2);
    assert!(sigs.contains(&sig.as_str()) && sigs.contains(&signature(8).as_str()));
    let metrics = daemon.get("/metrics").await;
    assert_eq!(
        common::metric_value(
            &metrics,
            "perf_sentinel_ack_operations_total{action=\"ack\"}"
        ),
        3.0
    );
    assert_eq!(
        common::metric_value(
            &metrics,
            "perf_sentinel_ack_operations_failed_total{action=\"ack\",reason=\"unauthorized\"}"
        ),
        1.0
    );

    // The file is private; the acks survive a restart on the same file.
    let mode = std::fs::metadata(&store).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(store.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    assert!(daemon.terminate().success());
    let daemon = Daemon::start_with_env(FAST, &extra, &env);
    let (_, active) = list(&daemon, Some(KEY)).await;
    assert_eq!(active.as_array().unwrap().len(), 2, "{active}");
    let sig_again = n1_signature(&daemon, 2, "orders").await;
    assert_eq!(sig_again, sig, "signatures are stable across restarts");
    assert!(
        listed_n1(&daemon, "").await.is_empty(),
        "still acked after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_never_pass() {
    let dir = TempDir::new("acks-keys");
    let extra = ack_section(&dir.0.join("acks.jsonl"), "");
    let daemon = Daemon::start_with_env(FAST, &extra, &[(KEY_ENV, KEY)]);
    let prefix = &KEY[..KEY.len() - 1];
    // HTTP drops whitespace around a header value (RFC 9110, 5.5), so a
    // trailing space never reaches the daemon; a space that does reach it
    // is one inside the value or before more text.
    let spaced = format!("{KEY} x");
    let split = format!("{} {}", &KEY[..6], &KEY[6..]);
    let upper = KEY.to_uppercase();
    let longer = format!("{KEY}0");
    for wrong in ["", prefix, &spaced, &split, &upper, &longer] {
        assert_eq!(
            ack(&daemon, &signature(1), Some(wrong), json!({})).await.0,
            401,
            "{wrong:?}"
        );
    }
    assert_eq!(
        ack(&daemon, &signature(1), Some(KEY), json!({})).await.0,
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_acks_all_persist() {
    let dir = TempDir::new("acks-parallel");
    let extra = ack_section(&dir.0.join("acks.jsonl"), "");
    let mut daemon = Daemon::start(FAST, &extra);
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let url = daemon.http(&format!("/api/findings/{}/ack", signature(n)));
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&json!({"by": format!("user-{n}"), "reason": "bulk"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    assert!(daemon.terminate().success());
    let daemon = Daemon::start(FAST, &extra);
    let (status, active) = list(&daemon, None).await;
    assert_eq!(status, 200);
    assert_eq!(active.as_array().unwrap().len(), 200);
}

#[test]
fn a_symlink_at_the_configured_path_refuses_startup() {
    let dir = TempDir::new("acks-symlink");
    let target = dir.0.join("elsewhere.jsonl");
    std::fs::write(&target, "").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.0.join("acks.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (code, stderr) = Daemon::refused(FAST, &ack_section(&link, ""));
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("acks.jsonl") && stderr.to_lowercase().contains("symlink"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_world_readable_store_gives_503_while_ingest_goes_on() {
    let dir = TempDir::new("acks-0644");
    let store = dir.0.join("acks.jsonl");
    std::fs::write(&store, "").unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
    let daemon = Daemon::start(FAST, &ack_section(&store, ""));
    assert_eq!(ack(&daemon, &signature(1), None, json!({})).await.0, 503);
    assert_eq!(unack(&daemon, &signature(1), None).await.0, 503);
    assert_eq!(list(&daemon, None).await.0, 503);
    // Still ingesting and finding.
    n1_signature(&daemon, 3, "orders").await;
    assert!(
        daemon
            .stderr_text()
            .contains("acknowledgment store unavailable")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_line_is_skipped_with_a_warning() {
    let dir = TempDir::new("acks-torn");
    let store = dir.0.join("acks.jsonl");
    let good = json!({"action": "ack", "signature": signature(1), "by": "bob", "reason": "ok",
                      "at": "2026-01-01T00:00:00Z", "expires_at": null});
    std::fs::write(&store, format!("{good}\n{{\"action\":\"ack\",\"signa")).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o600)).unwrap();
    let daemon = Daemon::start(FAST, &ack_section(&store, ""));
    let (_, active) = list(&daemon, None).await;
    assert_eq!(active.as_array().unwrap().len(), 1);
    assert_eq!(active[0]["signature"], signature(1));
    let stderr = daemon.stderr_text();
    assert!(
        stderr.contains("WARN") && stderr.contains("skipped"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ci_baseline_hides_until_it_expires_and_wins_conflicts() {
    let dir = TempDir::new("acks-baseline");
    // Learn the two signatures from a first daemon.
    let probe = Daemon::start(FAST, &ack_section(&dir.0.join("probe.jsonl"), ""));
    let active_sig = n1_signature(&probe, 1, "orders").await;
    let expired_sig = n1_signature(&probe, 2, "users").await;
    let third_sig = n1_signature(&probe, 3, "billing").await;
    drop(probe);

    let baseline = dir.0.join("baseline.toml");
    std::fs::write(
        &baseline,
        format!(
            "[[acknowledged]]\nsignature = {active_sig:?}\nacknowledged_by = \"team-orders\"\n\
             acknowledged_at = \"2026-01-10\"\nreason = \"legacy endpoint\"\nexpires_at = 2099-12-31\n\n\
             [[acknowledged]]\nsignature = {expired_sig:?}\nacknowledged_by = \"team-users\"\n\
             acknowledged_at = \"2025-01-10\"\nreason = \"was temporary\"\nexpires_at = 2025-06-30\n"
        ),
    )
    .unwrap();
    let toml_line = format!("toml_path = {:?}\n", baseline.display().to_string());
    let daemon = Daemon::start(FAST, &ack_section(&dir.0.join("acks.jsonl"), &toml_line));
    for (n, service) in [(1, "orders"), (2, "users"), (3, "billing")] {
        n1_signature(&daemon, n, service).await;
    }
    // The baseline is authoritative: a runtime ack of its signature is a conflict.
    let (status, body) = ack(&daemon, &active_sig, None, json!({})).await;
    assert_eq!(status, 409);
    assert!(
        body["error"].as_str().unwrap().contains("baseline"),
        "{body}"
    );
    assert_eq!(
        ack(&daemon, &third_sig, None, json!({"by": "ops"})).await.0,
        201
    );

    let visible: Vec<String> = listed_n1(&daemon, "")
        .await
        .iter()
        .map(|f| f["signature"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        visible,
        std::slice::from_ref(&expired_sig),
        "only the expired baseline ack shows"
    );
    let all = listed_n1(&daemon, "include_acked=true").await;
    assert_eq!(all.len(), 3);
    let source = |sig: &str| {
        all.iter().find(|f| f["signature"] == sig).unwrap()["acknowledged_by"]["source"].clone()
    };
    assert_eq!(source(&active_sig), "toml");
    assert_eq!(source(&third_sig), "daemon");
    assert_eq!(source(&expired_sig), Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_acks_answer_503() {
    let dir = TempDir::new("acks-off");
    let daemon = Daemon::start(
        FAST,
        &ack_section(&dir.0.join("acks.jsonl"), "enabled = false\n"),
    );
    assert_eq!(ack(&daemon, &signature(1), None, json!({})).await.0, 503);
    assert_eq!(list(&daemon, None).await.0, 503);
    assert!(
        !dir.0.join("acks.jsonl").exists(),
        "nothing written when disabled"
    );
}
