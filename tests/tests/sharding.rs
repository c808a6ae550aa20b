//! The number of analysis shards is an implementation detail: the same
//! traces give the same findings, cross-trace ones included, with one shard
//! or four.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Daemon, FAST, kv, n1_request, request};
use opentelemetry_proto::tonic::trace::v1::{Span, span};
use prost::Message;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Trace `id`: an inbound request making two slow report queries (600 ms
/// plus `id` ms): too few in one trace for a per-trace finding, but a slow
/// p99 across traces.
fn slow_trace(id: u8, t0: u64) -> Vec<Span> {
    let root = [id; 8];
    let mut spans = vec![Span {
        trace_id: vec![id; 16],
        span_id: root.to_vec(),
        name: "GET /reports/{id}".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: t0,
        end_time_unix_nano: t0 + 2_000_000_000,
        attributes: vec![
            kv("http.request.method", "GET"),
            kv("http.route", "/reports/{id}"),
        ],
        ..Span::default()
    }];
    for i in 0..2u64 {
        let start = t0 + i * 700_000_000;
        spans.push(Span {
            trace_id: vec![id; 16],
            span_id: (u64::from(id) << 8 | (i + 1)).to_be_bytes().to_vec(),
            parent_span_id: root.to_vec(),
            name: "SELECT".into(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + (600 + u64::from(id)) * 1_000_000,
            attributes: vec![
                kv("db.system", "postgresql"),
                kv(
                    "db.statement",
                    &format!("SELECT * FROM reports WHERE id = {id}"),
                ),
            ],
            ..Span::default()
        });
    }
    spans
}

/// Runs the same traffic through a daemon with `shards` shards; returns the
/// findings it printed, reduced to what must not depend on sharding.
async fn findings_with(shards: usize, t0: u64) -> Vec<String> {
    let mut daemon = Daemon::start(&format!("{FAST}analysis_shards = {shards}\n"), "");
    let client = reqwest::Client::new();
    for id in 1..=12u8 {
        let body = request("reports", slow_trace(id, t0)).encode_to_vec();
        let resp = client
            .post(daemon.http("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    for id in 20..26u8 {
        let body = n1_request([id; 16], "orders", 5 + u64::from(id % 7)).encode_to_vec();
        let resp = client
            .post(daemon.http("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    daemon
        .wait_for(Duration::from_secs(20), "every trace analyzed", || async {
            (daemon
                .metric("perf_sentinel_traces_analyzed_total{reason=\"complete\"}")
                .await
                == 18.0)
                .then_some(())
        })
        .await;
    assert!(daemon.terminate().success());
    let mut out: Vec<String> = daemon
        .stdout_findings()
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} {} {} {}",
                f["type"],
                f["severity"],
                f["trace_id"],
                f["service"],
                f["pattern"]["template"],
                f["pattern"]["occurrences"],
                f["extra"]
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shard_and_four_shards_report_the_same() {
    let t0 = now_ns() - 5_000_000_000;
    let one = findings_with(1, t0).await;
    let four = findings_with(4, t0).await;
    assert_eq!(one, four);
    // The cross-trace detector saw all twelve traces in both runs.
    let cross: Vec<&String> = one.iter().filter(|l| l.contains("cross_trace")).collect();
    assert_eq!(cross.len(), 1, "{one:#?}");
    assert!(cross[0].contains("slow_sql"), "{}", cross[0]);
    assert!(cross[0].contains("\"samples\":\"24\""), "{}", cross[0]);
    assert_eq!(
        one.iter().filter(|l| l.contains("n_plus_one_sql")).count(),
        6
    );
}
