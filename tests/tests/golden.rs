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
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Daemon, FAST, metric_value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use serde_json::{Map, Value};

/// The phrase that identifies each N+1 SQL suggestion: one per framework
/// the fixtures cover, then the generic one. The first phrase found in a
/// suggestion is its key.
const SUGGESTION_KEYS: &[&str] = &[
    "JOIN FETCH",
    ".Include()",
    "select_related()",
    "includes",
    "with('relation')",
    "WHERE ... IN (...)",
];

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden")
}

fn bless() -> bool {
    std::env::var("PERF_SENTINEL_BLESS").is_ok_and(|v| v == "1")
}

struct Fixture {
    name: String,
    body: String,
    trace_ids: Vec<String>,
}

impl Fixture {
    fn load(name: &str) -> Self {
        let path = golden_dir().join(format!("{name}.otlp.json"));
        let body = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let json: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        Self {
            name: name.to_owned(),
            trace_ids: trace_ids(&json),
            body,
        }
    }

    fn expected_path(&self) -> PathBuf {
        golden_dir().join(format!("{}.expected.json", self.name))
    }

    fn expected(&self) -> Value {
        let path = self.expected_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
    }

    /// The request as the `opentelemetry-proto` types (its serde support
    /// reads OTLP/JSON: hex ids, string-encoded 64-bit integers).
    fn request(&self) -> ExportTraceServiceRequest {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{}: not an OTLP/JSON request: {e}", self.name))
    }
}

/// The distinct trace ids of an OTLP/JSON request, in order of appearance.
fn trace_ids(request: &Value) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let spans = request["resourceSpans"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rs| rs["scopeSpans"].as_array().into_iter().flatten())
        .flat_map(|ss| ss["spans"].as_array().into_iter().flatten());
    for span in spans {
        let id = span["traceId"]
            .as_str()
            .expect("traceId")
            .to_ascii_lowercase();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// A finding reduced to what does not depend on ids, timestamps or the
/// wording of titles: the fields a golden file states.
fn reduce(f: &Value) -> Value {
    let mut o = Map::new();
    for key in ["type", "severity", "service", "source_endpoint"] {
        o.insert(key.into(), f[key].clone());
    }
    o.insert("template".into(), f["pattern"]["template"].clone());
    o.insert("occurrences".into(), f["pattern"]["occurrences"].clone());
    o.insert(
        "distinct_params".into(),
        f["pattern"]["distinct_params"].clone(),
    );
    o.insert(
        "avoidable_io".into(),
        f["green_impact"]["estimated_extra_io_ops"].clone(),
    );
    for key in ["framework", "classified_by", "scope"] {
        if let Some(v) = f["extra"].get(key) {
            o.insert(key.into(), v.clone());
        }
    }
    if f["type"] == "n_plus_one_sql" {
        let suggestion = f["suggestion"].as_str().unwrap_or("");
        let key = SUGGESTION_KEYS
            .iter()
            .find(|k| suggestion.contains(**k))
            .map_or(Value::Null, |k| Value::from(*k));
        o.insert("suggestion_key".into(), key);
    }
    Value::Object(o)
}

fn sort_key(v: &Value) -> (String, String, String, String, String, u64) {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    (
        s("type"),
        s("service"),
        s("source_endpoint"),
        s("template"),
        s("severity"),
        v["occurrences"].as_u64().unwrap_or(0),
    )
}

/// Reduced and sorted on a stable key.
fn reduce_all(findings: &[Value]) -> Value {
    let mut reduced: Vec<Value> = findings.iter().map(reduce).collect();
    reduced.sort_by_key(sort_key);
    Value::Array(reduced)
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

/// One line per finding, `type` first, for diffs that show whole findings.
fn lines(findings: &Value) -> String {
    const FIRST: &[&str] = &["type", "severity", "service", "source_endpoint", "template"];
    let mut out = String::new();
    for f in findings.as_array().into_iter().flatten() {
        let Some(o) = f.as_object() else {
            out.push_str(&format!("{f}\n"));
            continue;
        };
        let keys = FIRST
            .iter()
            .map(|k| k.to_string())
            .chain(o.keys().filter(|k| !FIRST.contains(&k.as_str())).cloned());
        let fields: Vec<String> = keys
            .filter_map(|k| {
                o.get(&k)
                    .map(|v| format!("{}: {v}", Value::from(k.as_str())))
            })
            .collect();
        out.push_str(&format!("{{{}}}\n", fields.join(", ")));
    }
    out
}

/// A line diff (longest common subsequence), `-` expected, `+` actual.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        }
    }
    out
}

/// Compares (or, when blessing, records) one fixture's reduced findings.
fn check(fixture: &Fixture, transport: &str, findings: &[Value]) -> Result<(), String> {
    let actual = reduce_all(findings);
    if bless() {
        std::fs::write(fixture.expected_path(), pretty(&actual) + "\n").unwrap();
        return Ok(());
    }
    let expected = fixture.expected();
    if expected == actual {
        return Ok(());
    }
    let (e, a) = (lines(&expected), lines(&actual));
    Err(format!(
        "golden mismatch for {} over {transport} (- expected, + reported):\n{}\nevery finding reported for its traces:\n{}\n",
        fixture.name,
        diff(&e, &a),
        findings
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

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
