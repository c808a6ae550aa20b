//! The query API as dashboards and runbooks read it: findings folded by
//! signature, every finding of one trace, and a trace explained as a span
//! tree with its findings inline, while it waits in the window and after.

mod common;

use std::time::Duration;

use common::{Daemon, FAST, hex, n1_request};

fn trace_id(n: u8) -> [u8; 16] {
    let mut id = [0x6e; 16];
    id[15] = n;
    id
}

async fn get_json(daemon: &Daemon, path: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(daemon.http(path)).await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_fold_by_signature_and_each_trace_keeps_its_own() {
    let daemon = Daemon::start(FAST, "");
    // Three traces of the same N+1 (one critical: 12 queries), one elsewhere.
    for (n, service, queries) in [
        (1, "orders", 6),
        (2, "orders", 12),
        (3, "orders", 6),
        (4, "users", 6),
    ] {
        let resp = daemon
            .post_otlp(&n1_request(trace_id(n), service, queries))
            .await;
        assert_eq!(resp.status(), 200);
    }
    let folded = daemon
        .wait_for(
            Duration::from_secs(20),
            "all four traces folded",
            || async {
                let f = daemon.findings("type=n_plus_one_sql").await;
                let seen: u64 = f.iter().map(|x| x["seen_count"].as_u64().unwrap()).sum();
                (seen == 4).then_some(f)
            },
        )
        .await;
    assert_eq!(folded.len(), 2, "{folded:#?}");
    // Newest sighting first: `users` arrived last.
    assert_eq!(folded[0]["service"], "users");
    let orders = &folded[1];
    assert_eq!(orders["seen_count"], 3);
    assert_eq!(orders["severity"], "critical", "the worst severity is kept");
    assert_eq!(
        orders["trace_id"],
        hex(&trace_id(2)),
        "shown: the critical one"
    );
    assert_eq!(orders["pattern"]["occurrences"], 12);
    assert!(orders["first_seen"].as_str().unwrap().ends_with('Z'));
    assert!(orders["last_seen"].as_str().unwrap() >= orders["first_seen"].as_str().unwrap());

    // Filters apply to the folded entry; limit is bounded.
    assert_eq!(
        daemon
            .findings("type=n_plus_one_sql&severity=critical")
            .await
            .len(),
        1
    );
    assert_eq!(
        daemon
            .findings("type=n_plus_one_sql&severity=warning")
            .await
            .len(),
        1
    );
    assert_eq!(
        daemon
            .findings("service=users")
            .await
            .iter()
            .filter(|f| f["type"] == "n_plus_one_sql")
            .count(),
        1
    );
    assert_eq!(daemon.findings("limit=1").await.len(), 1);
    let (status, _) = get_json(&daemon, "/api/findings?limit=0").await;
    assert_eq!(status, 400);
    let (status, body) = get_json(&daemon, "/api/findings?colour=red").await;
    assert_eq!(status, 400, "{body}");

    // Each trace's own findings, unfolded.
    let one = daemon.trace_findings(&hex(&trace_id(1))).await;
    assert!(
        one.iter()
            .any(|f| f["type"] == "n_plus_one_sql" && f["pattern"]["occurrences"] == 6)
    );
    assert!(one.iter().all(|f| f["trace_id"] == hex(&trace_id(1))));
    assert!(one.iter().all(|f| f.get("seen_count").is_none()));
    assert!(daemon.trace_findings(&hex(&trace_id(99))).await.is_empty());
    let (status, body) = get_json(&daemon, "/api/findings/not-a-trace-id").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("32 hex"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_span_tree_while_waiting_and_after_analysis() {
    let daemon = Daemon::start(FAST, "");
    let id = trace_id(7);
    // Without its root the trace waits in the window (TTL 60 s).
    let whole = n1_request(id, "orders", 6);
    let mut children = whole.clone();
    let root = children.resource_spans[0].scope_spans[0].spans.remove(0);
    assert_eq!(daemon.post_otlp(&children).await.status(), 200);
    let path = format!("/api/explain/{}", hex(&id));
    let waiting = daemon
        .wait_for(
            Duration::from_secs(10),
            "the trace in the window",
            || async {
                let (status, body) = get_json(&daemon, &path).await;
                (status == 200).then_some(body)
            },
        )
        .await;
    assert_eq!(waiting["source"], "window");
    assert_eq!(waiting["span_count"], 6);
    assert!(
        waiting["findings"].as_array().unwrap().is_empty(),
        "not analyzed yet"
    );
    // The root's children are orphans for now: all at depth 0.
    assert!(
        waiting["spans"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["depth"] == 0)
    );

    let mut root_only = whole.clone();
    root_only.resource_spans[0].scope_spans[0].spans = vec![root];
    assert_eq!(daemon.post_otlp(&root_only).await.status(), 200);
    let done = daemon
        .wait_for(Duration::from_secs(20), "the analyzed trace", || async {
            let (status, body) = get_json(&daemon, &path).await;
            (status == 200
                && body["source"] == "retained"
                && !body["findings"].as_array()?.is_empty())
            .then_some(body)
        })
        .await;
    let spans = done["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 7);
    assert_eq!(spans[0]["depth"], 0);
    assert_eq!(spans[0]["span_kind"], "server");
    assert_eq!(spans[0]["service"], "orders");
    assert!(
        spans[1..]
            .iter()
            .all(|s| s["depth"] == 1 && s["io"] == "sql")
    );
    assert!(
        spans[1]["target"]
            .as_str()
            .unwrap()
            .starts_with("SELECT * FROM items")
    );
    let offsets: Vec<f64> = spans[1..]
        .iter()
        .map(|s| s["offset_ms"].as_f64().unwrap())
        .collect();
    assert!(
        offsets.windows(2).all(|w| w[0] <= w[1]),
        "children by start time: {offsets:?}"
    );
    let n1 = done["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == "n_plus_one_sql")
        .expect("the N+1 inline");
    let signature = n1["signature"].as_str().unwrap();
    // Every SELECT is cited by the N+1; the root is not.
    for s in &spans[1..] {
        assert!(
            s["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == signature),
            "{s}"
        );
    }
    assert!(
        !spans[0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == signature)
    );

    let (status, _) = get_json(&daemon, &format!("/api/explain/{}", hex(&trace_id(98)))).await;
    assert_eq!(status, 404);
    let (status, _) = get_json(&daemon, "/api/explain/00000000000000000000000000000000").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_bounded_by_max_retained_traces() {
    let keys = format!("{FAST}max_retained_traces = 2\nanalysis_shards = 1\n");
    let daemon = Daemon::start(&keys, "");
    for n in 1..=3 {
        assert_eq!(
            daemon
                .post_otlp(&n1_request(trace_id(20 + n), "orders", 6))
                .await
                .status(),
            200
        );
        let path = format!("/api/explain/{}", hex(&trace_id(20 + n)));
        daemon
            .wait_for(Duration::from_secs(20), "the trace analyzed", || async {
                let (status, body) = get_json(&daemon, &path).await;
                (status == 200 && body["source"] == "retained").then_some(())
            })
            .await;
    }
    let (status, _) = get_json(&daemon, &format!("/api/explain/{}", hex(&trace_id(21)))).await;
    assert_eq!(status, 404, "the oldest was forgotten");
    let (status, _) = get_json(&daemon, &format!("/api/explain/{}", hex(&trace_id(23)))).await;
    assert_eq!(status, 200);

    // A trace without findings is not kept, and pushes nothing out.
    let clean = n1_request(trace_id(30), "orders", 1);
    assert_eq!(daemon.post_otlp(&clean).await.status(), 200);
    daemon
        .wait_for(
            Duration::from_secs(20),
            "the clean trace analyzed",
            || async {
                (daemon.metric("perf_sentinel_spans_analyzed_total").await >= 3.0 * 7.0 + 2.0)
                    .then_some(())
            },
        )
        .await;
    let (status, _) = get_json(&daemon, &format!("/api/explain/{}", hex(&trace_id(30)))).await;
    assert_eq!(status, 404, "analyzed without findings: not retained");
    let (status, _) = get_json(&daemon, &format!("/api/explain/{}", hex(&trace_id(22)))).await;
    assert_eq!(status, 200, "still the last two traces with findings");
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// An N+1 trace of `service` whose spans start `offset_ms` from `base_ns`
/// (the correlator's window is wall-clock time).
fn n1_at(
    n: u8,
    service: &str,
    base_ns: i64,
    offset_ms: i64,
) -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    let shift = (base_ns + offset_ms * 1_000_000 - common::T0 as i64) as u64;
    let mut req = n1_request(trace_id(n), service, 6);
    for span in &mut req.resource_spans[0].scope_spans[0].spans {
        span.start_time_unix_nano += shift;
        span.end_time_unix_nano += shift;
    }
    req
}

const CORRELATION: &str = "[daemon.correlation]\nenabled = true\nmin_co_occurrences = 3\n\
                           lag_threshold_ms = 1000\nwindow_minutes = 10\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correlations_name_findings_that_follow_each_other_across_services() {
    let daemon = Daemon::start(FAST, CORRELATION);
    // Four times: an N+1 in billing, then 200 ms later one in checkout.
    let base = now_ns();
    for i in 0..4u8 {
        let at = -120_000 + i64::from(i) * 10_000;
        assert_eq!(
            daemon
                .post_otlp(&n1_at(40 + i, "billing", base, at))
                .await
                .status(),
            200
        );
        assert_eq!(
            daemon
                .post_otlp(&n1_at(50 + i, "checkout", base, at + 200))
                .await
                .status(),
            200
        );
    }
    let found = daemon
        .wait_for(Duration::from_secs(20), "the correlation", || async {
            let (status, body) = get_json(&daemon, "/api/correlations").await;
            assert_eq!(status, 200, "{body}");
            let list = body.as_array()?.clone();
            list.into_iter().find(|c| {
                c["co_occurrences"] == 4
                    && c["leader"]["kind"] == "n_plus_one_sql"
                    && c["follower"]["kind"] == "n_plus_one_sql"
            })
        })
        .await;
    assert_eq!(found["leader"]["service"], "billing");
    assert_eq!(found["leader"]["kind"], "n_plus_one_sql");
    assert_eq!(found["follower"]["service"], "checkout");
    assert_eq!(found["leader_occurrences"], 4);
    assert_eq!(found["confidence"], 1.0);
    assert_eq!(found["median_lag_ms"], 200);
    let (_, all) = get_json(&daemon, "/api/correlations").await;
    assert!(
        !all.as_array()
            .unwrap()
            .iter()
            .any(|c| c["leader"]["service"] == "checkout"),
        "checkout never leads billing within the lag: {all}"
    );
    assert_eq!(
        daemon
            .metric("perf_sentinel_correlator_pairs_evicted_total")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correlator_stays_bounded_and_counts_what_it_forgets() {
    // Room for three signatures and three pairs; four services, each with
    // two findings a tenth of a second after the previous service's.
    let keys = format!("{CORRELATION}max_tracked_pairs = 3\n");
    let daemon = Daemon::start(FAST, &keys);
    let base = now_ns();
    for (i, service) in ["a-svc", "b-svc", "c-svc", "d-svc"].iter().enumerate() {
        let at = -60_000 + i as i64 * 100;
        assert_eq!(
            daemon
                .post_otlp(&n1_at(60 + i as u8, service, base, at))
                .await
                .status(),
            200
        );
    }
    daemon
        .wait_for(
            Duration::from_secs(20),
            "evictions to be counted",
            || async {
                // A snapshot settles evictions of pairs whose signatures went.
                let _ = get_json(&daemon, "/api/correlations").await;
                let evicted = daemon
                    .metric("perf_sentinel_correlator_pairs_evicted_total")
                    .await;
                (evicted > 0.0).then_some(())
            },
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correlations_answer_503_when_off() {
    let daemon = Daemon::start(FAST, "");
    let (status, body) = get_json(&daemon, "/api/correlations").await;
    assert_eq!(status, 503);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("[daemon.correlation]")
    );
}
