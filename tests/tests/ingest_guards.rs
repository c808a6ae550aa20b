//! The guards in front of analysis, through the real ports: the memory
//! high-water mark (cgroup v2 files), whole-trace sampling, and the short
//! wait that absorbs a burst before refusing it.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::raw_grpc::{export, grpc_client};
use common::{Daemon, FAST, TempDir, hex, n1_request, request};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use tonic::Code;

const CGROUP_DIR_ENV: &str = "PERF_SENTINEL_CGROUP_DIR";

/// Fake cgroup v2 memory files: `current` and `inactive_file` bytes of a
/// 1000-byte limit.
fn write_cgroup(dir: &TempDir, current: u64, inactive_file: u64) {
    // Written whole then renamed, so the daemon never reads half a file.
    let put = |name: &str, text: String| {
        let tmp = dir.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.0.join(name)).unwrap();
    };
    put("memory.max", "1000\n".into());
    put("memory.current", format!("{current}\n"));
    put(
        "memory.stat",
        format!("anon 100\nfile 400\nactive_file 20\ninactive_file {inactive_file}\n"),
    );
}

fn trace_id(n: u8) -> [u8; 16] {
    let mut id = [0x3c; 16];
    id[15] = n;
    id
}

async fn pressure(daemon: &Daemon) -> f64 {
    daemon.metric("perf_sentinel_ingest_memory_pressure").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_guard_refuses_above_the_mark_and_resumes_five_points_lower() {
    let cgroup = TempDir::new("cgroup");
    // 950 in use, but 300 of it is inactive file cache: 65 %.
    write_cgroup(&cgroup, 950, 300);
    let dir = cgroup.0.to_str().unwrap();
    let keys = format!("{FAST}memory_high_water_pct = 80\n");
    let daemon = Daemon::start_with_env(&keys, "", &[(CGROUP_DIR_ENV, dir)]);

    let before = daemon.post_otlp(&n1_request(trace_id(1), "api", 6)).await;
    assert_eq!(before.status(), 200, "65 % is under the mark");
    assert_eq!(pressure(&daemon).await, 0.0);

    write_cgroup(&cgroup, 900, 0);
    daemon
        .wait_for(Duration::from_secs(10), "the guard to engage", || async {
            (pressure(&daemon).await == 1.0).then_some(())
        })
        .await;
    let refused = daemon.post_otlp(&n1_request(trace_id(2), "api", 6)).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let mut grpc = grpc_client(&daemon).await;
    let status = export(&mut grpc, n1_request(trace_id(3), "api", 6).encode_to_vec())
        .await
        .expect_err("refused over gRPC too");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("memory"), "{status:?}");

    // 78 %: under the mark but above the resume mark (75 %): still refused.
    write_cgroup(&cgroup, 780, 0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        pressure(&daemon).await,
        1.0,
        "no flapping just under the mark"
    );
    let still = daemon.post_otlp(&n1_request(trace_id(4), "api", 6)).await;
    assert_eq!(still.status(), 503);

    write_cgroup(&cgroup, 700, 0);
    daemon
        .wait_for(Duration::from_secs(10), "the guard to release", || async {
            (pressure(&daemon).await == 0.0).then_some(())
        })
        .await;
    let after = daemon.post_otlp(&n1_request(trace_id(5), "api", 6)).await;
    assert_eq!(after.status(), 200);

    assert_eq!(
        daemon
            .metric("perf_sentinel_otlp_rejected_total{reason=\"memory_pressure\"}")
            .await,
        3.0
    );
    // What was accepted is analyzed; what was refused never entered.
    for n in [1, 5] {
        let id = hex(&trace_id(n));
        daemon
            .wait_for(
                Duration::from_secs(15),
                "an accepted trace's findings",
                || async { (!daemon.trace_findings(&id).await.is_empty()).then_some(()) },
            )
            .await;
    }
    for n in [2, 3, 4] {
        assert!(daemon.trace_findings(&hex(&trace_id(n))).await.is_empty());
    }
}

#[test]
fn a_memory_guard_without_cgroup_v2_warns_and_keeps_serving() {
    let empty = TempDir::new("no-cgroup");
    let dir = empty.0.to_str().unwrap();
    let keys = format!("{FAST}memory_high_water_pct = 80\n");
    let daemon = Daemon::start_with_env(&keys, "", &[(CGROUP_DIR_ENV, dir)]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        daemon
            .post_otlp(&n1_request(trace_id(9), "api", 6))
            .await
            .status()
    });
    assert_eq!(status, 200);
    let stderr = daemon.stderr_text();
    assert!(
        stderr.contains("memory_high_water_pct is set but memory cannot be watched")
            && stderr.contains("memory.current"),
        "{stderr}"
    );
}

/// Trace `n` as two requests: the root with two SELECTs, then four more.
fn split_trace(n: u8) -> [ExportTraceServiceRequest; 2] {
    let whole = n1_request(trace_id(n), "shop", 6);
    let spans = whole.resource_spans[0].scope_spans[0].spans.clone();
    let (first, second) = spans.split_at(3);
    [
        request("shop", first.to_vec()),
        request("shop", second.to_vec()),
    ]
}

const SAMPLED_TRACES: u8 = 60;
const SPANS_PER_TRACE: u8 = 7;

/// Sends every trace, in two requests each, and returns the trace ids with
/// findings once every span is accounted for.
async fn sampled_findings(daemon: &Daemon) -> (BTreeSet<String>, f64) {
    for n in 0..SAMPLED_TRACES {
        for part in split_trace(n) {
            let resp = daemon.post_otlp(&part).await;
            assert_eq!(resp.status(), 200, "sampled-out spans are still accepted");
        }
    }
    let total = f64::from(SAMPLED_TRACES) * f64::from(SPANS_PER_TRACE);
    let sampled_out = daemon
        .wait_for(
            Duration::from_secs(20),
            "every span accounted for",
            || async {
                let metrics = daemon.get("/metrics").await;
                let out = common::metric_value(&metrics, "perf_sentinel_spans_sampled_out_total");
                let analyzed = common::metric_value(&metrics, "perf_sentinel_spans_analyzed_total");
                (out + analyzed == total).then_some(out)
            },
        )
        .await;
    // Stdout has every finding, one line each (the API folds them): one
    // N+1 per analyzed trace, once the writer has caught up.
    let metrics = daemon.get("/metrics").await;
    let analyzed_traces: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("perf_sentinel_traces_analyzed_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    let findings = daemon
        .wait_for(
            Duration::from_secs(20),
            "one N+1 line per trace",
            || async {
                let n1: Vec<_> = daemon
                    .stdout_findings()
                    .into_iter()
                    .filter(|f| f["type"] == "n_plus_one_sql")
                    .collect();
                (n1.len() as f64 == analyzed_traces).then_some(n1)
            },
        )
        .await;
    for f in &findings {
        assert_eq!(
            f["pattern"]["occurrences"], 6,
            "a kept trace is kept whole, across requests: {f}"
        );
    }
    let ids = findings
        .iter()
        .map(|f| f["trace_id"].as_str().unwrap().to_owned())
        .collect();
    (ids, sampled_out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_keeps_whole_traces_and_the_same_ones_on_every_replica() {
    let keys = format!("{FAST}sampling_rate = 0.5\n");
    let first = Daemon::start(&keys, "");
    let second = Daemon::start(&keys, "");
    let (kept, sampled_out) = sampled_findings(&first).await;
    let (kept_again, _) = sampled_findings(&second).await;
    // 30 expected; the binomial standard deviation is under 4.
    assert!((12..=48).contains(&kept.len()), "kept {}", kept.len());
    assert_eq!(
        sampled_out,
        f64::from(SAMPLED_TRACES - kept.len() as u8) * f64::from(SPANS_PER_TRACE),
        "every span of every dropped trace is counted"
    );
    assert_eq!(kept, kept_again, "replicas keep the same traces");
}

/// Twenty 25-span N+1 traces in one request, ids from `first`.
fn heavy_request(first: u16) -> Vec<u8> {
    let spans = (first..first + 20)
        .flat_map(|n| {
            let mut id = [0x4d; 16];
            id[14..].copy_from_slice(&n.to_be_bytes());
            n1_request(id, "api", 24).resource_spans[0].scope_spans[0]
                .spans
                .clone()
        })
        .collect();
    request("api", spans).encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_queue_waits_for_room_instead_of_a_503() {
    // The burst the backpressure test needs to see refusals (one queued
    // span at most, each request 500 spans), here with a long wait: every
    // request gets in as the shard drains the one before it.
    let keys = "analysis_queue_capacity = 1\nanalysis_shards = 1\nmax_active_traces = 1\n\
                trace_settle_ms = 100\ntrace_ttl_ms = 60000\nadmission_wait_ms = 10000\n";
    let daemon = Daemon::start(keys, "");
    let client = reqwest::Client::new();
    let sends: Vec<_> = (0..64u16)
        .map(|n| {
            let body = heavy_request(n * 20);
            let url = daemon.http("/v1/traces");
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for s in sends {
        statuses.push(s.await.unwrap());
    }
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(
        daemon
            .metric("perf_sentinel_analysis_shed_batches_total")
            .await,
        0.0
    );
    assert_eq!(
        daemon.metric("perf_sentinel_spans_received_total").await,
        64.0 * 500.0
    );
}
