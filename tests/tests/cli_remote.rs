//! `perf-sentinel ack` and `perf-sentinel query` against a running daemon:
//! what an operator types, what it prints, and the exit codes scripts
//! branch on.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{Daemon, FAST, TempDir, binary, hex, kv, n1_request};

const KEY: &str = "remote-cli-key-0123";

fn cli(args: &[&str], key: Option<&str>) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(args).env_remove("PERF_SENTINEL_DAEMON_API_KEY");
    if let Some(k) = key {
        cmd.env("PERF_SENTINEL_DAEMON_API_KEY", k);
    }
    cmd.output().expect("cannot run perf-sentinel")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn operators_ack_and_query_a_running_daemon() {
    let dir = TempDir::new("cli-remote");
    let extra = format!(
        "[daemon.ack]\nstorage_path = {:?}\n",
        dir.0.join("acks.jsonl").display().to_string()
    );
    let daemon = Daemon::start_with_env(FAST, &extra, &[("PERF_SENTINEL_ACK_API_KEY", KEY)]);
    let url = daemon.http("");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // An N+1 whose service name tries to drive the terminal.
    let trace = [0x5e; 16];
    let mut req = n1_request(trace, "orders", 6);
    req.resource_spans[0].resource.as_mut().unwrap().attributes =
        vec![kv("service.name", "ord\u{1b}[2Jers\u{202e}")];
    let signature = rt.block_on(async {
        assert_eq!(daemon.post_otlp(&req).await.status(), 200);
        daemon
            .wait_for(Duration::from_secs(20), "the finding", || async {
                daemon
                    .trace_findings(&hex(&trace))
                    .await
                    .into_iter()
                    .find(|f| f["type"] == "n_plus_one_sql")
                    .map(|f| f["signature"].as_str().unwrap().to_owned())
            })
            .await
    });

    let out = cli(&["query", "findings", "--daemon", &url], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("n_plus_one_sql") && shown.contains("seen 1x"),
        "{shown}"
    );
    assert!(
        shown.contains("ord\\u{1b}[2Jers\\u{202e}"),
        "escaped: {shown}"
    );
    assert!(!shown.contains('\u{1b}') && !shown.contains('\u{202e}'));

    // Writes need the key: refused without it (exit 1, the daemon's reason).
    let out = cli(
        &[
            "ack", "create", &signature, "--reason", "legacy", "--daemon", &url,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    let key_file = dir.0.join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let out = cli(
        &[
            "ack",
            "create",
            &signature,
            "--by",
            "alice",
            "--reason",
            "legacy",
            "--daemon",
            &url,
            "--api-key-file",
            key_file.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("acknowledged "));
    let out = cli(
        &["ack", "list", "--daemon", &url, "--format", "json"],
        Some(KEY),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["signature"], signature.as_str());
    assert_eq!(listed[0]["by"], "alice");
    // Acked findings are hidden, and shown annotated on request.
    let out = cli(
        &[
            "query",
            "findings",
            "--daemon",
            &url,
            "--type",
            "n_plus_one_sql",
        ],
        None,
    );
    assert_eq!(text(&out.stdout), "no findings\n");
    let out = cli(
        &["query", "findings", "--daemon", &url, "--include-acked"],
        None,
    );
    assert!(text(&out.stdout).contains("acknowledged (daemon) by alice"));

    let out = cli(&["query", "explain", &hex(&trace), "--daemon", &url], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tree = text(&out.stdout);
    assert!(
        tree.lines().nth(1).unwrap().starts_with("GET /orders/{id}"),
        "{tree}"
    );
    let selects: Vec<&str> = tree
        .lines()
        .filter(|l| l.starts_with("  SELECT items ["))
        .collect();
    assert_eq!(selects.len(), 6, "{tree}");
    assert!(
        selects
            .iter()
            .all(|l| l.contains("<- ") && l.contains("n_plus_one_sql")),
        "{tree}"
    );

    let out = cli(&["query", "status", "--daemon", &url], None);
    assert!(
        text(&out.stdout).contains("spans_received"),
        "{}",
        text(&out.stdout)
    );

    let out = cli(&["ack", "revoke", &signature, "--daemon", &url], Some(KEY));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(&["ack", "revoke", &signature, "--daemon", &url], Some(KEY));
    assert_eq!(out.status.code(), Some(1), "already revoked: 404");
    assert!(text(&out.stderr).contains("404"));
}

#[test]
fn bad_addresses_have_their_own_exit_codes() {
    let out = cli(&["query", "status", "--daemon", "localhost:4318"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--daemon must be an http"));
    // Nothing listens on this port.
    let port = common::free_port();
    let out = cli(
        &[
            "query",
            "status",
            "--daemon",
            &format!("http://127.0.0.1:{port}"),
            "--timeout",
            "2",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot reach the daemon"));
}
