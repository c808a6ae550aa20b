//! Golden fixtures: OTLP/JSON traces shaped the way each stack's
//! OpenTelemetry instrumentation emits them (`tests/fixtures/golden/NAME.otlp.json`)
//! go through the real daemon, and the findings it reports for their traces,
//! reduced to the fields that do not depend on ids or timing, must equal
//! `NAME.expected.json` exactly.
//!
//! | Fixture | Shape | Expected |
//! |---|---|---|
//! | `hibernate_jpa_n_plus_one` | Spring Data + Hibernate 6 + JDBC (new db semconv), `?` statements | N+1 SQL by ORM scope (Hibernate), io_waste |
//! | `efcore_n_plus_one` | ASP.NET Core + EF Core lazy loads, `@__p_0` | N+1 SQL by ORM scope (EF Core), critical; io_waste |
//! | `django_n_plus_one` | Django + psycopg2, `%s` and Django's `LIMIT 21` | N+1 SQL by ORM scope (Django); io_waste |
//! | `activerecord_n_plus_one` | Rails: ActiveRecord spans above PG spans, `$1` | N+1 SQL by ORM scope (ActiveRecord); io_waste |
//! | `laravel_eloquent_n_plus_one` | Laravel hasMany lazy load, `?` | N+1 SQL by ORM scope (Eloquent); io_waste |
//! | `laravel_belongs_to_n_plus_one` | Laravel belongsTo lazy load, `? limit 1` | N+1 SQL by ORM scope (Eloquent); io_waste |
//! | `go_database_sql_n_plus_one` | otelhttp + otelsql, `$1`, no ORM, a sequential loop | N+1 SQL by timing spread; io_waste |
//! | `clean_go_pgx_concurrent_lookups` | otelpgx, `$1`, concurrent calls (no loop timing) | nothing |
//! | `redundant_calls` | Express: same flag lookup 5 times, same settings query twice | redundant HTTP (warning), SQL (info); io_waste |
//! | `slow_calls` | Spring: 3 slow SELECTs, 3 slow POSTs (one > 5x threshold) | slow SQL warning, slow HTTP critical |
//! | `excessive_fanout` | Go gateway scattering 24 gRPC calls from one span | fan-out, chatty service |
//! | `chatty_service` | Node BFF: 18 HTTP calls in 3 parallel stages | chatty service |
//! | `pool_saturation` | 12 concurrent JDBC queries | pool saturation |
//! | `serialized_calls` | 4 independent calls back to back, then a write after a pause | serialized calls (4) |
//! | `kafka_producer_n_plus_one` | one Kafka send per item | N+1 messaging; io_waste |
//! | `clean_spring_petclinic` | JOIN FETCH, `IN (...)` batch, one HTTP call | nothing |
//! | `clean_express_api` | two traces, parallel cache / HTTP / SQL | nothing |
//!
//! The fixtures carry fixed (old) timestamps: per-trace detectors ignore the
//! wall clock, and the cross-trace slow percentiles prune samples older than
//! their window, so these traces never yield a cross-trace finding. A
//! separate test rewrites the slow fixture's timestamps to now and checks
//! the cross-trace percentiles reported at shutdown.
//!
//! `PERF_SENTINEL_BLESS=1` rewrites the expected files from what the daemon
//! reports. Read the diff before committing it: an expected file states
//! what the detectors should report, not what they happen to report.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::golden::{Fixture, bless, check, diff, golden_dir, lines, reduce_all};
use common::{Daemon, FAST, metric_value};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use serde_json::Value;

async fn post_http(daemon: &Daemon, fixture: &Fixture) {
    let resp = reqwest::Client::new()
        .post(daemon.http("/v1/traces"))
        .header("content-type", "application/json")
        .body(fixture.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}: POST /v1/traces", fixture.name);
    let reply: Value = resp.json().await.unwrap();
    let rejected = reply["partialSuccess"]["rejectedSpans"]
        .as_str()
        .map(|s| s.parse::<u64>().unwrap())
        .or_else(|| reply["partialSuccess"]["rejectedSpans"].as_u64())
        .unwrap_or(0);
    assert_eq!(rejected, 0, "{}: spans refused: {reply}", fixture.name);
}

async fn post_grpc(daemon: &Daemon, fixtures: &[Fixture]) {
    let mut client = TraceServiceClient::connect(daemon.grpc_endpoint())
        .await
        .expect("gRPC connect");
    for fixture in fixtures {
        let reply = client
            .export(fixture.request())
            .await
            .unwrap_or_else(|e| panic!("{}: gRPC export refused: {e}", fixture.name))
            .into_inner();
        let rejected = reply.partial_success.map_or(0, |p| p.rejected_spans);
        assert_eq!(rejected, 0, "{}: spans refused", fixture.name);
    }
}

/// Sum of every sample of metric family `name` (any labels).
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (sample, value) = l.rsplit_once(' ')?;
            let family = sample.split('{').next()?;
            (family == name).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// Waits until `traces` traces went through the shards and through the
/// cross-trace stage (which reports the per-trace slow findings), then until
/// the findings of `trace_ids` stop changing (the findings writer runs after
/// the analysis), and returns them.
async fn findings_when_analyzed(
    daemon: &Daemon,
    traces: usize,
    trace_ids: &[String],
) -> Vec<Value> {
    let traces = traces as f64;
    daemon
        .wait_for(
            Duration::from_secs(30),
            "the traces to be analyzed",
            || async {
                let text = daemon.get("/metrics").await;
                let shards = metric_sum(&text, "perf_sentinel_traces_analyzed_total");
                let cross = metric_value(
                    &text,
                    "perf_sentinel_detector_duration_seconds_count{detector=\"slow_sql\"}",
                );
                (shards >= traces && cross >= traces).then_some(())
            },
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last: Option<Vec<Value>> = None;
    loop {
        let mut now = Vec::new();
        for id in trace_ids {
            now.extend(daemon.findings(&format!("trace_id={id}&limit=10000")).await);
        }
        now.sort_by_key(Value::to_string);
        if last.as_ref() == Some(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "findings kept changing");
        last = Some(now);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One fixture through its own daemon over OTLP/HTTP JSON.
async fn golden_http(name: &str) {
    let fixture = Fixture::load(name);
    let daemon = Daemon::start(FAST, "");
    post_http(&daemon, &fixture).await;
    let findings =
        findings_when_analyzed(&daemon, fixture.trace_ids.len(), &fixture.trace_ids).await;
    if let Err(message) = check(&fixture, "OTLP/HTTP JSON", &findings) {
        panic!("{message}");
    }
}

macro_rules! golden_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                golden_http(stringify!($name)).await;
            }
        )*

        /// Every fixture, by name; each has the test of the same name.
        const FIXTURES: &[&str] = &[$(stringify!($name)),*];
    };
}

golden_tests!(
    activerecord_n_plus_one,
    chatty_service,
    clean_express_api,
    clean_go_pgx_concurrent_lookups,
    clean_spring_petclinic,
    django_n_plus_one,
    efcore_n_plus_one,
    excessive_fanout,
    go_database_sql_n_plus_one,
    hibernate_jpa_n_plus_one,
    kafka_producer_n_plus_one,
    laravel_belongs_to_n_plus_one,
    laravel_eloquent_n_plus_one,
    pool_saturation,
    redundant_calls,
    serialized_calls,
    slow_calls,
);

#[test]
fn every_fixture_has_an_expected_file_a_test_and_its_own_trace_ids() {
    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if let Some(name) = file.strip_suffix(".otlp.json") {
            on_disk.insert(name.to_owned());
        } else {
            let name = file
                .strip_suffix(".expected.json")
                .unwrap_or_else(|| panic!("unexpected file in fixtures/golden: {file}"));
            assert!(
                golden_dir().join(format!("{name}.otlp.json")).exists(),
                "{file} has no fixture"
            );
        }
    }
    let tested: BTreeSet<String> = FIXTURES.iter().map(|s| s.to_string()).collect();
    assert_eq!(on_disk, tested, "every fixture needs its golden test");
    let mut seen = BTreeSet::new();
    for name in FIXTURES {
        let fixture = Fixture::load(name);
        assert!(!fixture.trace_ids.is_empty(), "{name} holds no span");
        assert!(
            fixture.expected_path().exists(),
            "{name} has no expected file"
        );
        for id in &fixture.trace_ids {
            assert!(seen.insert(id.clone()), "{name} reuses trace id {id}");
        }
        // The reference decoder reads every fixture.
        let request = fixture.request();
        assert!(!request.resource_spans.is_empty());
    }
}

/// Every fixture, decoded into the `opentelemetry-proto` types and sent
/// with a tonic `TraceServiceClient` to one daemon, yields the same findings
/// as its expected file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_fixtures_over_grpc() {
    if bless() {
        return;
    }
    let fixtures: Vec<Fixture> = FIXTURES.iter().map(|n| Fixture::load(n)).collect();
    let daemon = Daemon::start(FAST, "");
    post_grpc(&daemon, &fixtures).await;
    let all_ids: Vec<String> = fixtures
        .iter()
        .flat_map(|f| f.trace_ids.iter().cloned())
        .collect();
    findings_when_analyzed(&daemon, all_ids.len(), &all_ids).await;
    let mut failures = Vec::new();
    for fixture in &fixtures {
        let mut findings = Vec::new();
        for id in &fixture.trace_ids {
            findings.extend(daemon.findings(&format!("trace_id={id}&limit=10000")).await);
        }
        if let Err(message) = check(fixture, "OTLP/gRPC", &findings) {
            failures.push(message);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ over gRPC:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The slow fixture moved to the present (its root starts `ago` before
/// now) under trace id `trace_id`.
fn slow_fixture_now(trace_id: &str, ago: Duration) -> String {
    let mut json: Value = serde_json::from_str(&Fixture::load("slow_calls").body).unwrap();
    let field = |s: &Value, k: &str| s[k].as_str().unwrap().parse::<u64>().unwrap();
    let mut first = u64::MAX;
    for rs in json["resourceSpans"].as_array().unwrap() {
        for ss in rs["scopeSpans"].as_array().unwrap() {
            for s in ss["spans"].as_array().unwrap() {
                first = first.min(field(s, "startTimeUnixNano"));
            }
        }
    }
    let shift = now_ns() - ago.as_nanos() as u64 - first;
    for rs in json["resourceSpans"].as_array_mut().unwrap() {
        for ss in rs["scopeSpans"].as_array_mut().unwrap() {
            for s in ss["spans"].as_array_mut().unwrap() {
                for k in ["startTimeUnixNano", "endTimeUnixNano"] {
                    let moved = field(s, k) + shift;
                    s[k] = Value::from(moved.to_string());
                }
                s["traceId"] = Value::from(trace_id);
            }
        }
    }
    json.to_string()
}

/// The cross-trace slow percentiles: the slow fixture, moved to the
/// present, in two traces. At shutdown the daemon flushes nearest-rank
/// percentiles over both: SQL 640/910/1180 ms twice (p50 910, p99 1180,
/// warning), HTTP 700/2700/560 ms twice (p50 700, p99 2700 > 5 x 500,
/// critical); 6 slow calls each, in 2 of 2 traces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_calls_cross_trace_percentiles_at_shutdown() {
    let ids = [
        "5a0c1d2e3f405162738495a6b7c8d9e0",
        "5a0c1d2e3f405162738495a6b7c8d9e1",
    ];
    let mut daemon = Daemon::start(FAST, "");
    for id in ids {
        let resp = reqwest::Client::new()
            .post(daemon.http("/v1/traces"))
            .header("content-type", "application/json")
            .body(slow_fixture_now(id, Duration::from_secs(20)))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    findings_when_analyzed(&daemon, ids.len(), &ids).await;
    assert!(daemon.terminate().success(), "{}", daemon.stderr_text());
    let stdout = daemon.stdout_findings();

    let (cross, per_trace): (Vec<Value>, Vec<Value>) = stdout
        .into_iter()
        .partition(|f| f["extra"]["scope"] == "cross_trace");
    for id in &ids {
        let mine: Vec<Value> = per_trace
            .iter()
            .filter(|f| f["trace_id"] == id.as_str())
            .cloned()
            .collect();
        assert_eq!(
            reduce_all(&mine),
            Fixture::load("slow_calls").expected(),
            "per-trace findings of {id}"
        );
    }
    let reduced = reduce_all(&cross);
    let expected = serde_json::json!([
        {
            "type": "slow_http", "severity": "critical", "service": "billing-service",
            "source_endpoint": "GET /invoices/export",
            "template": "POST tax-engine.internal:8080/v1/tax/summary",
            "occurrences": 6, "distinct_params": 0, "avoidable_io": 0, "scope": "cross_trace"
        },
        {
            "type": "slow_sql", "severity": "warning", "service": "billing-service",
            "source_endpoint": "GET /invoices/export",
            "template": "SELECT i.id, i.customer_id, i.total FROM invoices i WHERE i.issued_at >= ? AND i.issued_at < ? ORDER BY i.total DESC",
            "occurrences": 6, "distinct_params": 0, "avoidable_io": 0, "scope": "cross_trace"
        }
    ]);
    assert_eq!(
        reduced,
        expected,
        "cross-trace findings:\n{}",
        diff(&lines(&expected), &lines(&reduced))
    );
    let stat = |kind: &str, key: &str| -> String {
        let f = cross.iter().find(|f| f["type"] == kind).unwrap();
        f["extra"][key].as_str().unwrap_or("").to_owned()
    };
    for (kind, p50, p99) in [("slow_sql", "910", "1180"), ("slow_http", "700", "2700")] {
        assert_eq!(stat(kind, "p50_ms"), p50, "{kind} p50");
        assert_eq!(stat(kind, "p99_ms"), p99, "{kind} p99");
        assert_eq!(stat(kind, "samples"), "6", "{kind} samples");
        assert_eq!(stat(kind, "traces"), "2", "{kind} traces");
        assert_eq!(stat(kind, "slow_traces"), "2", "{kind} slow traces");
    }
}
