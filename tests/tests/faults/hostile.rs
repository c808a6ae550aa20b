//! Hostile strings and span trees: BiDi controls, C1 and zero-width
//! characters, terminal escapes, a 20,000-deep parent chain, parent cycles
//! and a span that is its own parent. They flow through to the API and
//! stdout as valid JSON, raw escapes never reach stdout, nothing hangs or
//! recurses, and the daemon keeps serving.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::trace::v1::{Span, span};
use prost::Message as _;

use crate::common::{Daemon, FAST, T0, hex, kv, n1_request, request};

const DEPTH: u64 = 20_000;

/// Service `service`, inbound `route`, then five SELECTs with distinct
/// ids; `parents` decides each span's parent from its index (0 is the
/// root), `extra` spans are appended.
fn trace(
    trace_id: [u8; 16],
    route: &str,
    statement: &str,
    parent_of_root: Option<[u8; 8]>,
    extra: Vec<Span>,
) -> Vec<Span> {
    let root_id = [0xaa; 8];
    let mut spans = vec![Span {
        trace_id: trace_id.to_vec(),
        span_id: root_id.to_vec(),
        parent_span_id: parent_of_root.map(|p| p.to_vec()).unwrap_or_default(),
        name: "GET".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: T0,
        end_time_unix_nano: T0 + 100_000_000,
        attributes: vec![kv("http.request.method", "GET"), kv("http.route", route)],
        ..Span::default()
    }];
    for i in 0..5u64 {
        let start = T0 + 1_000_000 * (i + 1);
        spans.push(Span {
            trace_id: trace_id.to_vec(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            parent_span_id: root_id.to_vec(),
            name: "SELECT".into(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + 500_000,
            attributes: vec![
                kv("db.system", "postgresql"),
                kv("db.statement", &format!("{statement} WHERE id = {i}")),
            ],
            ..Span::default()
        });
    }
    spans.extend(extra);
    spans
}

/// A chain of `DEPTH` internal spans under the root, each the child of the
/// one before.
fn deep_chain(trace_id: [u8; 16]) -> Vec<Span> {
    (0..DEPTH)
        .map(|i| {
            let id = 0x1000_0000 + i;
            let parent = if i == 0 {
                [0xaa; 8]
            } else {
                (id - 1).to_be_bytes()
            };
            Span {
                trace_id: trace_id.to_vec(),
                span_id: id.to_be_bytes().to_vec(),
                parent_span_id: parent.to_vec(),
                name: "step".into(),
                kind: span::SpanKind::Internal as i32,
                start_time_unix_nano: T0 + 10,
                end_time_unix_nano: T0 + 20,
                ..Span::default()
            }
        })
        .collect()
}

/// Two spans that are each other's parent, and one that is its own.
fn cycles(trace_id: [u8; 16]) -> Vec<Span> {
    let span = |id: u64, parent: u64| Span {
        trace_id: trace_id.to_vec(),
        span_id: id.to_be_bytes().to_vec(),
        parent_span_id: parent.to_be_bytes().to_vec(),
        name: "loop".into(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: T0 + 10,
        end_time_unix_nano: T0 + 20,
        ..Span::default()
    };
    vec![span(0xc1, 0xc2), span(0xc2, 0xc1), span(0xc3, 0xc3)]
}

async fn post(daemon: &Daemon, service: &str, spans: Vec<Span>) {
    let body = request(service, spans).encode_to_vec();
    let r = reqwest::Client::new()
        .post(daemon.http("/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// `GET path` as parsed JSON, answered within 10 s.
async fn json(daemon: &Daemon, path: &str) -> serde_json::Value {
    let started = Instant::now();
    let text = tokio::time::timeout(Duration::from_secs(10), daemon.get(path))
        .await
        .unwrap_or_else(|_| panic!("{path} did not answer within 10 s"));
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {}", &text[..text.len().min(300)]));
    assert!(started.elapsed() < Duration::from_secs(10));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidi_controls_deep_chains_and_parent_cycles_pass_through_harmlessly() {
    // Room for the whole deep trace (the default keeps 1,000 spans).
    let mut daemon = Daemon::start(&format!("{FAST}max_events_per_trace = 30000\n"), "");
    // Right-to-left override, isolates, zero-width joiner, a C1 CSI, an
    // ESC sequence and a NUL.
    let sly = "\u{202e}gpj.exe\u{202c}\u{2066}x\u{2069}\u{200d}\u{9b}31m\u{1b}]0;pwned\u{7}\u{0}";
    let service = format!("svc{sly}");
    let route = format!("/orders/{{id}}{sly}");
    let statement = format!("SELECT \"{sly}\" FROM items");

    let bidi_id = [0xb1; 16];
    post(
        &daemon,
        &service,
        trace(bidi_id, &route, &statement, None, vec![]),
    )
    .await;
    let deep_id = [0xde; 16];
    post(
        &daemon,
        "deep",
        trace(
            deep_id,
            "/deep",
            "SELECT a FROM deep",
            None,
            deep_chain(deep_id),
        ),
    )
    .await;
    let cycle_id = [0xcc; 16];
    // The root's own parent is one of the cycle: no span is a true root.
    post(
        &daemon,
        "cyclic",
        trace(
            cycle_id,
            "/cyclic",
            "SELECT a FROM cyc",
            Some(0xc1u64.to_be_bytes()),
            cycles(cycle_id),
        ),
    )
    .await;

    // Every span is analyzed; each trace's findings and explanation are
    // valid JSON, answered in bounded time.
    let total = (6 + 6 + DEPTH + 6 + 3) as f64;
    daemon
        .wait_for(Duration::from_secs(60), "every span analyzed", || async {
            (daemon.metric("perf_sentinel_spans_analyzed_total").await >= total).then_some(())
        })
        .await;
    for id in [bidi_id, deep_id, cycle_id] {
        let id = hex(&id);
        let findings = json(&daemon, &format!("/api/findings/{id}")).await;
        assert!(findings.is_array(), "{findings}");
        let explained = json(&daemon, &format!("/api/explain/{id}")).await;
        assert!(explained.is_object(), "{explained}");
    }
    // The N+1 under a sound root is found whatever hangs below it.
    for id in [bidi_id, deep_id] {
        let findings = json(&daemon, &format!("/api/findings/{}", hex(&id))).await;
        assert!(
            findings
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["type"] == "n_plus_one_sql"),
            "{}: {findings}",
            hex(&id)
        );
    }
    // The strings come back intact (JSON escapes them; the reader decides).
    let f = &json(&daemon, &format!("/api/findings/{}", hex(&bidi_id))).await[0];
    assert_eq!(f["service"], service.as_str(), "{f}");
    assert_eq!(f["source_endpoint"], format!("GET {route}"));
    let raw = daemon
        .get(&format!("/api/findings/{}", hex(&bidi_id)))
        .await;
    assert!(
        !raw.contains('\u{1b}') && !raw.contains('\u{0}') && !raw.contains('\u{7}'),
        "C0 controls are escaped in the API"
    );
    // The explanation of the deep trace holds every span.
    let deep = json(&daemon, &format!("/api/explain/{}", hex(&deep_id))).await;
    let spans = deep["spans"].as_array().map_or(0, Vec::len);
    assert_eq!(spans as u64, DEPTH + 6, "spans in the deep explanation");

    // Still serving.
    let next = [0xe7; 16];
    assert_eq!(
        daemon
            .post_otlp(&n1_request(next, "after", 6))
            .await
            .status(),
        200
    );
    let next = hex(&next);
    daemon
        .wait_for(Duration::from_secs(20), "the next finding", || async {
            (!daemon.trace_findings(&next).await.is_empty()).then_some(())
        })
        .await;
    assert_eq!(daemon.get("/health").await, r#"{"status":"ok"}"#);
    assert!(daemon.terminate().success());

    // stdout: NDJSON, no raw C0 control on any line.
    for line in daemon.stdout_lines() {
        assert!(
            !line.chars().any(|c| c.is_ascii_control()),
            "raw control character on stdout: {line:?}"
        );
    }
    let printed = daemon.stdout_findings();
    for id in [bidi_id, deep_id] {
        assert!(
            printed.iter().any(|p| p["trace_id"] == hex(&id)),
            "trace {} not printed",
            hex(&id)
        );
    }
    let line = printed
        .iter()
        .find(|p| p["trace_id"] == hex(&bidi_id))
        .unwrap();
    assert_eq!(line["service"], service.as_str());
}
