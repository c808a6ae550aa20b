//! Third-party plugins end to end: real `.so` files built from the example
//! and fixture crates, loaded by the real daemon from its TOML, reporting,
//! failing and being refused exactly as documented.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Daemon, FAST, TempDir, kv, plugin_library, request};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{Span, span};
use prost::Message;

const SELECT_STAR: &str = "perf-sentinel-plugin-select-star";
const ERROR_SPIKE: &str = "perf-sentinel-plugin-error-spike";
const PANICS: &str = "perf-sentinel-fixture-panics";
const WRONG_API: &str = "perf-sentinel-fixture-wrong-api";
const NOT_A_PLUGIN: &str = "perf-sentinel-fixture-not-a-plugin";

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// An inbound `name` span with `children` outbound spans, at the current
/// time (the error-spike plugin counts calls over a wall-clock window).
fn trace(
    id: u8,
    name: &str,
    children: Vec<Vec<opentelemetry_proto::tonic::common::v1::KeyValue>>,
) -> Vec<Span> {
    let t0 = now_ns();
    let root = [id; 8];
    let mut spans = vec![Span {
        trace_id: vec![id; 16],
        span_id: root.to_vec(),
        name: name.into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: t0,
        end_time_unix_nano: t0 + 50_000_000,
        attributes: vec![
            kv("http.request.method", "GET"),
            kv("http.route", "/orders"),
        ],
        ..Span::default()
    }];
    for (i, attributes) in children.into_iter().enumerate() {
        let start = t0 + 1_000_000 * (i as u64 + 1);
        spans.push(Span {
            trace_id: vec![id; 16],
            span_id: (0x1000 + i as u64).to_be_bytes().to_vec(),
            parent_span_id: root.to_vec(),
            name: "call".into(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + 300_000,
            attributes,
            ..Span::default()
        });
    }
    spans
}

async fn post(daemon: &Daemon, req: &ExportTraceServiceRequest) {
    let resp = reqwest::Client::new()
        .post(daemon.http("/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(req.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn detectors(daemon: &Daemon) -> Vec<serde_json::Value> {
    serde_json::from_str(&daemon.get("/api/detectors").await).unwrap()
}

fn entry<'a>(list: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    list.iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {list:?}"))
}

fn toml_path(p: &std::path::Path) -> String {
    format!("{:?}", p.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_example_plugins_from_one_directory_report_like_built_ins() {
    // Both plugins in one directory: guards against abi_stable's per-type
    // library cache handing the first plugin back for the second file.
    let dir = TempDir::new("plugins");
    for package in [SELECT_STAR, ERROR_SPIKE] {
        let lib = plugin_library(package);
        std::fs::copy(&lib, dir.0.join(lib.file_name().unwrap())).unwrap();
    }
    let extra = format!(
        "[plugins]\npaths = [{}]\n[detectors.downstream_error_spike]\nmin_calls = 10\n",
        toml_path(&dir.0)
    );
    let mut daemon = Daemon::start(FAST, &extra);

    let list = detectors(&daemon).await;
    for (id, plugin) in [
        ("select_star_without_limit", SELECT_STAR),
        ("downstream_error_spike", ERROR_SPIKE),
    ] {
        let d = entry(&list, id);
        assert_eq!(d["origin"], plugin, "{d}");
        assert_eq!(d["plugin"]["version"], "0.1.0");
        assert!(d["plugin"]["path"].as_str().unwrap().ends_with(".so"));
        assert_eq!(d["enabled"], true);
        assert_eq!(d["quarantined"], false);
    }
    assert_eq!(entry(&list, "downstream_error_spike")["cross_trace"], true);
    assert_eq!(entry(&list, "n_plus_one_sql")["origin"], "builtin");

    // Two traces: SELECT * on a request path, and 12 failing calls to one peer.
    let select = trace(
        1,
        "GET /orders",
        vec![vec![
            kv("db.system", "postgresql"),
            kv("db.statement", "SELECT * FROM orders WHERE customer_id = 7"),
        ]],
    );
    let failing = trace(
        2,
        "GET /pay",
        (0..12)
            .map(|i| {
                vec![
                    kv("http.request.method", "POST"),
                    kv("url.full", &format!("http://bank:8080/charge?n={i}")),
                    kv("peer.service", "bank"),
                    kv("http.response.status_code", "503"),
                ]
            })
            .collect(),
    );
    let mut spans = select;
    spans.extend(failing);
    post(&daemon, &request("shop", spans)).await;

    let found = daemon
        .wait_for(
            Duration::from_secs(20),
            "the select-star finding",
            || async {
                daemon
                    .findings("type=example.select_star_without_limit")
                    .await
                    .into_iter()
                    .next()
            },
        )
        .await;
    assert_eq!(found["detector"], "select_star_without_limit");
    assert_eq!(found["origin"], SELECT_STAR);
    assert_eq!(
        found["pattern"]["template"],
        "SELECT * FROM orders WHERE customer_id = ?"
    );
    assert_eq!(found["source_endpoint"], "GET /orders");

    let metrics = daemon.get("/metrics").await;
    assert!(
        metrics.contains("perf_sentinel_detector_duration_seconds_count{detector=\"select_star_without_limit\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "perf_sentinel_findings_total{type=\"example.select_star_without_limit\",severity=\"warning\"} 1"
    ));

    // The cross-trace plugin reports on flush; shutdown flushes.
    assert!(daemon.terminate().success());
    let printed = daemon.stdout_findings();
    let spike = printed
        .iter()
        .find(|f| f["type"] == "example.downstream_error_spike")
        .unwrap_or_else(|| panic!("no error-spike finding on stdout: {printed:?}"));
    assert_eq!(spike["origin"], ERROR_SPIKE);
    assert_eq!(spike["extra"]["peer"], "bank");
    assert_eq!(spike["pattern"]["occurrences"], 12);
    assert_eq!(spike["severity"], "critical");
    assert!(
        printed
            .iter()
            .any(|f| f["type"] == "example.select_star_without_limit")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_plugin_is_quarantined_and_the_daemon_keeps_serving() {
    let extra = format!(
        "[plugins]\npaths = [{}]\n",
        toml_path(&plugin_library(PANICS))
    );
    let mut daemon = Daemon::start(&format!("{FAST}quarantine_after = 3\n"), &extra);

    // Healthy first: it reports.
    post(&daemon, &request("svc", trace(1, "ping", vec![]))).await;
    daemon
        .wait_for(Duration::from_secs(20), "the ping finding", || async {
            daemon
                .findings("type=fixture.ping")
                .await
                .into_iter()
                .next()
        })
        .await;

    // One error, then panics: the third consecutive failure quarantines it.
    // Each trace waits for the previous one to be counted, so the order of
    // failures is the order sent.
    let names = ["fail", "boom", "boom"];
    for (n, name) in names.iter().enumerate() {
        post(&daemon, &request("svc", trace(2 + n as u8, name, vec![]))).await;
        daemon
            .wait_for(
                Duration::from_secs(20),
                "the failure to be counted",
                || async {
                    let list = detectors(&daemon).await;
                    (entry(&list, "panicky")["errors"] == n + 1).then_some(())
                },
            )
            .await;
    }
    let list = detectors(&daemon).await;
    assert_eq!(entry(&list, "panicky")["quarantined"], true);
    let panicky = entry(&list, "panicky");
    assert_eq!(panicky["errors"], 3, "{panicky}");
    let metrics = daemon.get("/metrics").await;
    let m = |s: &str| common::metric_value(&metrics, s);
    assert_eq!(
        m("perf_sentinel_detector_errors_total{detector=\"panicky\",reason=\"error\"}"),
        1.0
    );
    assert_eq!(
        m("perf_sentinel_detector_errors_total{detector=\"panicky\",reason=\"panic\"}"),
        2.0
    );
    assert_eq!(m("perf_sentinel_detectors_quarantined"), 1.0);

    // Quarantined: not called again; the built-ins keep reporting.
    post(&daemon, &request("svc", trace(6, "boom", vec![]))).await;
    post(&daemon, &request("svc", trace(7, "ping", vec![]))).await;
    post(&daemon, &common::n1_request([9; 16], "orders", 6)).await;
    daemon
        .wait_for(Duration::from_secs(20), "the N+1 finding", || async {
            daemon
                .findings("type=n_plus_one_sql")
                .await
                .into_iter()
                .next()
        })
        .await;
    assert_eq!(daemon.findings("type=fixture.ping").await.len(), 1);
    assert_eq!(entry(&detectors(&daemon).await, "panicky")["errors"], 3);
    assert!(daemon.terminate().success());
    let err = daemon.stderr_text();
    assert!(err.contains("quarantined"), "{err}");
    // The plugin's log line came through the host's logger.
    assert!(err.contains("panicky detector built"), "{err}");
}

#[test]
fn broken_plugins_refuse_startup_with_a_clear_message() {
    let wrong = plugin_library(WRONG_API);
    let (code, err) = Daemon::refused("", &format!("[plugins]\npaths = [{}]", toml_path(&wrong)));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&wrong.display().to_string()), "{err}");
    assert!(
        err.contains("detector API 999") && err.contains("detector API 1"),
        "{err}"
    );

    let not_plugin = plugin_library(NOT_A_PLUGIN);
    let (code, err) = Daemon::refused(
        "",
        &format!("[plugins]\npaths = [{}]", toml_path(&not_plugin)),
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("not a perf-sentinel plugin"), "{err}");
    assert!(err.contains(&not_plugin.display().to_string()), "{err}");

    let dir = TempDir::new("junk");
    let text = dir.0.join("notes.so");
    std::fs::write(&text, "plain text").unwrap();
    let missing = dir.0.join("gone.so");
    let (code, err) = Daemon::refused(
        "",
        &format!(
            "[plugins]\npaths = [{}, {}]",
            toml_path(&text),
            toml_path(&missing)
        ),
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("not a loadable shared library") && err.contains("notes.so"),
        "{err}"
    );
    assert!(
        err.contains("gone.so: no such file"),
        "both problems at once: {err}"
    );

    // A plugin id taken by a built-in.
    let (code, err) = Daemon::refused(
        "",
        &format!(
            "[plugins]\npaths = [{}, {}]",
            toml_path(&plugin_library(PANICS)),
            toml_path(&plugin_library(PANICS))
        ),
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("detector id `panicky` is already taken"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_directory_loads_the_good_plugin_and_warns_about_the_bad() {
    let dir = TempDir::new("optional");
    for package in [SELECT_STAR, WRONG_API] {
        let lib = plugin_library(package);
        std::fs::copy(&lib, dir.0.join(lib.file_name().unwrap())).unwrap();
    }
    let mut daemon = Daemon::start(
        FAST,
        &format!("[plugins]\noptional = [{}]", toml_path(&dir.0)),
    );
    let list = detectors(&daemon).await;
    assert_eq!(
        entry(&list, "select_star_without_limit")["origin"],
        SELECT_STAR
    );
    assert!(list.iter().all(|d| d["id"] != "wrong_api_detector"));
    assert!(daemon.terminate().success());
    let err = daemon.stderr_text();
    assert!(
        err.contains("optional plugin skipped") && err.contains("detector API 999"),
        "{err}"
    );
}
