//! Backpressure through the real ports: with a tiny admission bound, bursts
//! of concurrent exports are partly refused whole (HTTP 503 with
//! `Retry-After`, gRPC `UNAVAILABLE`), and every span answered OK is
//! analyzed: none is lost, and every refusal is counted once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::raw_grpc::{RawGrpc, export, grpc_client};
use common::{Daemon, metric_value, n1_request, request};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::Code;

/// One shard that takes one queued span at a time, one trace in its window
/// (so each new trace evicts the previous one into analysis, inline).
const KEYS: &str = "analysis_queue_capacity = 1\nanalysis_shards = 1\nmax_active_traces = 1\n\
                    trace_settle_ms = 100\ntrace_ttl_ms = 60000\n";
/// Concurrent requests per round.
const CONCURRENCY: usize = 64;
/// Rounds tried before giving up on seeing a refusal.
const MAX_ROUNDS: usize = 8;
const TRACES_PER_REQUEST: usize = 20;
/// A root and 24 SELECTs.
const SPANS_PER_TRACE: u64 = 25;

/// Distinct trace ids for the whole test.
fn next_trace_id(counter: &AtomicU64) -> [u8; 16] {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    let mut id = [0x5a; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    id
}

/// One encoded request: `TRACES_PER_REQUEST` N+1 traces; returns it and its
/// span count.
fn burst_request(counter: &AtomicU64, service: &str) -> (Vec<u8>, u64) {
    let spans: Vec<_> = (0..TRACES_PER_REQUEST)
        .flat_map(|_| {
            let req = n1_request(next_trace_id(counter), service, SPANS_PER_TRACE - 1);
            req.resource_spans
                .into_iter()
                .flat_map(|rs| rs.scope_spans)
                .flat_map(|ss| ss.spans)
        })
        .collect();
    let n = spans.len() as u64;
    assert_eq!(n, TRACES_PER_REQUEST as u64 * SPANS_PER_TRACE);
    (request(service, spans).encode_to_vec(), n)
}

/// What one burst got back.
#[derive(Debug, Default)]
struct Tally {
    ok_requests: u64,
    ok_spans: u64,
    refused: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.ok_requests += other.ok_requests;
        self.ok_spans += other.ok_spans;
        self.refused += other.refused;
    }
}

/// How one request ended.
enum Outcome {
    Ok(u64),
    Refused,
}

fn tally(outcomes: Vec<Outcome>) -> Tally {
    let mut t = Tally::default();
    for o in outcomes {
        match o {
            Outcome::Ok(spans) => {
                t.ok_requests += 1;
                t.ok_spans += spans;
            }
            Outcome::Refused => t.refused += 1,
        }
    }
    t
}

/// `RpcStatus`, the body of an OTLP/HTTP protobuf error.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

async fn http_export(client: reqwest::Client, url: String, body: Vec<u8>, spans: u64) -> Outcome {
    let resp = client
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .expect("the daemon answers");
    match resp.status().as_u16() {
        200 => {
            let reply = ExportTraceServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
            assert_eq!(reply.partial_success, None, "accepted whole");
            Outcome::Ok(spans)
        }
        503 => {
            let retry_after = resp
                .headers()
                .get("retry-after")
                .expect("a 503 carries Retry-After")
                .to_str()
                .unwrap()
                .to_owned();
            assert!(
                retry_after.parse::<u64>().is_ok(),
                "Retry-After is delay-seconds: {retry_after:?}"
            );
            let status = RpcStatus::decode(resp.bytes().await.unwrap()).unwrap();
            assert_eq!(status.code, Code::Unavailable as i32, "{status:?}");
            assert!(!status.message.is_empty());
            Outcome::Refused
        }
        other => panic!(
            "unexpected status {other}: {}",
            resp.text().await.unwrap_or_default()
        ),
    }
}

/// Rounds of `CONCURRENCY` concurrent exports until one was refused.
async fn burst<F, Fut>(counter: &Arc<AtomicU64>, what: &str, send: F) -> Tally
where
    F: Fn(Vec<u8>, u64) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let mut total = Tally::default();
    for _ in 0..MAX_ROUNDS {
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let (body, spans) = burst_request(counter, what);
                tokio::spawn(send(body, spans))
            })
            .collect();
        let mut outcomes = Vec::with_capacity(tasks.len());
        for t in tasks {
            outcomes.push(t.await.expect("export task"));
        }
        total.add(&tally(outcomes));
        if total.refused > 0 {
            break;
        }
    }
    total
}

/// Waits until everything received has been analyzed; returns the count.
async fn wait_until_analyzed(daemon: &Daemon, received: u64) {
    daemon
        .wait_for(
            Duration::from_secs(15),
            "every received span to be analyzed",
            || async {
                let metrics = daemon.get("/metrics").await;
                let analyzed = metric_value(&metrics, "perf_sentinel_spans_analyzed_total");
                (analyzed == received as f64).then_some(())
            },
        )
        .await;
}

/// Checks the counters against what the clients saw.
async fn check_accounting(daemon: &Daemon, seen: &Tally) {
    let metrics = daemon.get("/metrics").await;
    let m = |s: &str| metric_value(&metrics, s);
    assert_eq!(
        m("perf_sentinel_spans_received_total"),
        seen.ok_spans as f64,
        "received == spans answered OK ({seen:?})\n{metrics}"
    );
    wait_until_analyzed(daemon, seen.ok_spans).await;
    let metrics = daemon.get("/metrics").await;
    let m = |s: &str| metric_value(&metrics, s);
    assert_eq!(
        m("perf_sentinel_analysis_shed_batches_total"),
        seen.refused as f64,
        "one shed batch per refused request ({seen:?})\n{metrics}"
    );
    assert_eq!(
        m("perf_sentinel_otlp_rejected_total{reason=\"backpressure\"}"),
        seen.refused as f64,
        "one backpressure rejection per refused request ({seen:?})\n{metrics}"
    );
    assert_eq!(
        m("perf_sentinel_analysis_shed_spans_total"),
        (seen.refused * TRACES_PER_REQUEST as u64 * SPANS_PER_TRACE) as f64,
        "every span of a refused request is counted as shed ({seen:?})\n{metrics}"
    );
    assert_eq!(m("perf_sentinel_analysis_queue_depth"), 0.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_are_shed_whole_and_nothing_answered_ok_is_lost() {
    let mut daemon = Daemon::start(KEYS, "");
    let counter = Arc::new(AtomicU64::new(1));

    // HTTP/protobuf.
    let client = reqwest::Client::new();
    let url = daemon.http("/v1/traces");
    let http = burst(&counter, "burst-http", |body, spans| {
        http_export(client.clone(), url.clone(), body, spans)
    })
    .await;
    assert!(http.refused > 0, "no 503 in {MAX_ROUNDS} rounds: {http:?}");
    assert!(http.ok_requests > 0, "nothing accepted: {http:?}");
    check_accounting(&daemon, &http).await;

    // gRPC, over two connections.
    let channels = [grpc_client(&daemon).await, grpc_client(&daemon).await];
    let next = AtomicU64::new(0);
    let grpc = burst(&counter, "burst-grpc", |body, spans| {
        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
        grpc_export(channels[i % channels.len()].clone(), body, spans)
    })
    .await;
    assert!(
        grpc.refused > 0,
        "no UNAVAILABLE in {MAX_ROUNDS} rounds: {grpc:?}"
    );
    assert!(grpc.ok_requests > 0, "nothing accepted: {grpc:?}");
    let mut both = Tally::default();
    both.add(&http);
    both.add(&grpc);
    check_accounting(&daemon, &both).await;

    // Findings came out of the accepted traces.
    assert!(
        !daemon
            .findings("service=burst-grpc&limit=1")
            .await
            .is_empty()
    );

    let status = daemon.terminate();
    assert!(status.success(), "exit status {status}");
}

// ---------------------------------------------------------------- gRPC

async fn grpc_export(mut grpc: RawGrpc, body: Vec<u8>, spans: u64) -> Outcome {
    match export(&mut grpc, body).await {
        Ok(reply) => {
            assert_eq!(reply.partial_success, None, "accepted whole");
            Outcome::Ok(spans)
        }
        Err(s) if s.code() == Code::Unavailable => {
            assert!(!s.message().is_empty(), "{s:?}");
            Outcome::Refused
        }
        Err(s) => panic!("unexpected gRPC status: {s:?}"),
    }
}
