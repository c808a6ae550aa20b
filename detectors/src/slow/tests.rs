use detector_api::testkit::{SpanSpec, T0_NS, TraceBuilder, check_conformance};
use detector_api::{
    DetectorFactory, Finding, IoKind, RVec, Severity, SpanId, SpanKind, SpanView, TraceId,
    TraceIndex, TraceView,
};
use proptest::prelude::*;

use super::helpers::{NS_PER_MS, NS_PER_SEC, ms, nearest_rank};
use super::store::MAX_KEY_BYTES;
use super::*;
use crate::common::MAX_EVIDENCE;

const Q: &str = "SELECT * FROM orders WHERE customer_id = ?";
const MS: u64 = 1_000; // microseconds, the unit of `SpanSpec::at_us`

fn table(config: &str) -> toml::Table {
    config.parse().unwrap()
}

fn run(factory: &dyn DetectorFactory, config: &str, trace: &TraceBuilder) -> Vec<Finding> {
    let mut d = factory.build(&table(config)).unwrap();
    trace.run(d.as_mut()).unwrap()
}

fn sql_detector(config: &str) -> Slow {
    Slow::new(&SQL, parse_config(&table(config)).unwrap())
}

fn flush(d: &mut dyn Detector, now_ns: u64) -> Vec<Finding> {
    let mut out = RVec::new();
    d.flush(now_ns, &mut out).unwrap();
    out.into_vec()
}

/// A request that runs `Q` once per duration (milliseconds), one after the
/// other, with parameters `p0`, `p1`, ...
fn sql_calls(id: u8, durations_ms: &[u64]) -> TraceBuilder {
    let mut t = TraceBuilder::with_id(TraceId([id; 16]));
    let root = t.root(SpanSpec::server("GET", "/orders").at_us(0, 60_000 * MS));
    let mut at = 10 * MS;
    for (i, d) in durations_ms.iter().enumerate() {
        t.child(
            root,
            SpanSpec::sql(Q, &format!("p{i}")).at_us(at, d * MS).code(
                "list_orders",
                "src/orders.rs",
                17,
            ),
        );
        at += d * MS + MS;
    }
    t
}

/// Runs `d` over `trace` after `tweak` adjusted its spans (for nanosecond
/// durations, which `SpanSpec` cannot express).
fn run_tweaked(
    d: &mut dyn Detector,
    trace: &TraceBuilder,
    tweak: impl FnOnce(&mut [SpanView<'_>]),
) -> Vec<Finding> {
    trace.with_view(|v| {
        let mut spans = v.spans().to_vec();
        tweak(&mut spans);
        let index = TraceIndex::build(&spans);
        let view = TraceView::new(v.trace_id(), &spans, &index);
        let mut out = RVec::new();
        d.detect(&view, &mut out).unwrap();
        out.into_vec()
    })
}

fn messaging(span_kind: SpanKind, destination: &str, params: &str) -> SpanSpec {
    SpanSpec {
        name: format!("{destination} publish"),
        kind: IoKind::Messaging,
        span_kind,
        target: destination.into(),
        template: format!("kafka {destination}"),
        params: params.into(),
        messaging_system: "kafka".into(),
        messaging_destination: destination.into(),
        ..SpanSpec::default()
    }
}

// ---- nearest-rank percentiles ----

#[test]
fn nearest_rank_of_small_and_exact_sets() {
    assert_eq!(nearest_rank(&[], 50), None);
    assert_eq!(nearest_rank(&[7], 0), Some(7));
    assert_eq!(nearest_rank(&[7], 50), Some(7));
    assert_eq!(nearest_rank(&[7], 99), Some(7));
    assert_eq!(nearest_rank(&[7], 100), Some(7));
    // n = 2: ceil(0.5 * 2) = 1, ceil(0.95 * 2) = 2.
    assert_eq!(nearest_rank(&[1, 2], 50), Some(1));
    assert_eq!(nearest_rank(&[1, 2], 95), Some(2));
    assert_eq!(nearest_rank(&[1, 2], 99), Some(2));
    // p50 of 4 samples is rank 2.
    assert_eq!(nearest_rank(&[10, 20, 30, 40], 50), Some(20));
    // n = 100, values 1..=100: the p-th percentile is p itself.
    let hundred: Vec<u64> = (1..=100).collect();
    assert_eq!(nearest_rank(&hundred, 99), Some(99));
    assert_eq!(nearest_rank(&hundred, 95), Some(95));
    assert_eq!(nearest_rank(&hundred, 50), Some(50));
    assert_eq!(nearest_rank(&hundred, 100), Some(100));
    assert_eq!(nearest_rank(&hundred, 1), Some(1));
    // Out-of-range p is treated as 100.
    assert_eq!(nearest_rank(&hundred, 250), Some(100));
}

proptest! {
    #[test]
    fn percentiles_are_monotone_and_are_samples(mut values in prop::collection::vec(any::<u64>(), 1..300)) {
        values.sort_unstable();
        let p50 = nearest_rank(&values, 50).unwrap();
        let p95 = nearest_rank(&values, 95).unwrap();
        let p99 = nearest_rank(&values, 99).unwrap();
        prop_assert!(p50 <= p95 && p95 <= p99);
        for p in [p50, p95, p99] {
            prop_assert!(values.binary_search(&p).is_ok());
        }
    }
}

#[test]
fn milliseconds_are_printed_compactly() {
    assert_eq!(ms(0), "0");
    assert_eq!(ms(512 * NS_PER_MS), "512");
    assert_eq!(ms(500 * NS_PER_MS + 1_000), "500.001");
    assert_eq!(ms(1_500_000), "1.5");
    assert_eq!(ms(999), "0");
    assert_eq!(ms(u64::MAX), "18446744073709.551");
}

// ---- factories and configuration ----

#[test]
fn all_three_factories_pass_conformance() {
    check_conformance(&SlowSql).unwrap();
    check_conformance(&SlowHttp).unwrap();
    check_conformance(&SlowMessaging).unwrap();
}

#[test]
fn factories_are_cross_trace_and_inherit_the_detection_keys() {
    for f in [&SlowSql as &dyn DetectorFactory, &SlowHttp, &SlowMessaging] {
        assert!(f.cross_trace(), "{}", f.id());
        let keys = f.inherited_keys();
        assert!(keys.contains(&InheritedKey {
            detection_key: "slow_query_threshold_ms",
            key: "threshold_ms"
        }));
        assert!(keys.contains(&InheritedKey {
            detection_key: "slow_query_min_occurrences",
            key: "min_occurrences"
        }));
        let defaults = f.default_config();
        for k in keys {
            assert!(defaults.contains_key(k.key), "{} lacks {}", f.id(), k.key);
        }
        assert_eq!(defaults["threshold_ms"].as_integer(), Some(500));
        assert_eq!(defaults["min_occurrences"].as_integer(), Some(3));
        assert_eq!(defaults["critical_multiplier"].as_float(), Some(5.0));
        assert_eq!(defaults["percentile_window_secs"].as_integer(), Some(300));
        assert_eq!(defaults["cross_trace_min_traces"].as_integer(), Some(2));
        assert_eq!(
            defaults["max_samples_per_template"].as_integer(),
            Some(1024)
        );
        assert_eq!(defaults["max_templates"].as_integer(), Some(1024));
    }
    let ids: Vec<&str> = [&SlowSql as &dyn DetectorFactory, &SlowHttp, &SlowMessaging]
        .iter()
        .map(|f| f.id())
        .collect();
    assert_eq!(ids, ["slow_sql", "slow_http", "slow_messaging"]);
}

#[test]
fn bad_configuration_is_refused_with_the_key() {
    let err = |cfg: &str| SlowSql.build(&table(cfg)).err().unwrap().to_string();
    assert!(err("threshold_ms = 0").contains("threshold_ms"));
    assert!(err("min_occurrences = 0").contains("min_occurrences"));
    assert!(err("critical_multiplier = 0.5").contains("critical_multiplier"));
    assert!(err("critical_multiplier = nan").contains("critical_multiplier"));
    assert!(err("critical_multiplier = inf").contains("critical_multiplier"));
    assert!(err("percentile_window_secs = 0").contains("percentile_window_secs"));
    assert!(err("percentile_window_secs = 86401").contains("percentile_window_secs"));
    assert!(err("cross_trace_min_traces = 0").contains("cross_trace_min_traces"));
    assert!(err("max_samples_per_template = 0").contains("max_samples_per_template"));
    assert!(err("max_samples_per_template = 65537").contains("max_samples_per_template"));
    assert!(err("max_templates = 0").contains("max_templates"));
    assert!(err("threshold_ms = \"500\"").contains("threshold_ms"));
    assert!(err("threshold_ms = -1").contains("threshold_ms"));
    assert!(err("treshold_ms = 500").contains("treshold_ms"));
    // An integer multiplier is fine.
    assert!(SlowSql.build(&table("critical_multiplier = 3")).is_ok());
}

// ---- per trace ----

#[test]
fn two_slow_calls_are_not_reported_three_are() {
    let two = sql_calls(1, &[600, 700, 10, 20]);
    assert!(run(&SlowSql, "", &two).is_empty());

    let three = sql_calls(1, &[600, 10, 700, 800, 20]);
    let found = run(&SlowSql, "", &three);
    assert_eq!(found.len(), 1);
    let f = &found[0];
    assert_eq!(f.kind.as_str(), "slow_sql");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.template.as_str(), Q);
    assert_eq!(f.service.as_str(), "svc");
    assert_eq!(f.endpoint.as_str(), "GET /orders");
    // Only the slow calls count.
    assert_eq!((f.occurrences, f.distinct_params), (3, 3));
    assert_eq!(f.avoidable_io, 0);
    assert_eq!(f.trace_id, TraceId([1; 16]));
    let ids = [1usize, 3, 4].map(TraceBuilder::span_id);
    assert_eq!(f.evidence.as_slice(), &ids);
    assert_eq!(f.total_duration_ns, 2_100 * NS_PER_MS);
    assert_eq!(f.extra_value("max_ms"), Some("800"));
    assert_eq!(f.extra_value("threshold_ms"), Some("500"));
    assert_eq!(f.extra_value("scope"), None);
    assert_eq!(f.code.function.as_str(), "list_orders");
    assert_eq!(f.code.lineno, 17);
    assert!(f.title.contains("3 slow queries"));
    assert!(f.suggestion.contains("index"));
}

#[test]
fn distinct_params_count_distinct_parameter_sets() {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/a").at_us(0, 10_000 * MS));
    for (i, p) in ["x", "x", "y"].iter().enumerate() {
        t.child(
            root,
            SpanSpec::sql(Q, p).at_us(i as u64 * 1000 * MS, 600 * MS),
        );
    }
    let f = run(&SlowSql, "", &t);
    assert_eq!((f[0].occurrences, f[0].distinct_params), (3, 2));
}

#[test]
fn the_threshold_itself_is_not_slow_one_nanosecond_above_is() {
    let trace = sql_calls(1, &[500, 500, 500]);
    let mut d = SlowSql.build(&table("")).unwrap();
    assert!(trace.run(d.as_mut()).unwrap().is_empty());
    let found = run_tweaked(d.as_mut(), &trace, |spans| {
        for s in spans.iter_mut().skip(1) {
            s.duration_ns += 1;
        }
    });
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].occurrences, 3);
    // Two above, one exactly at the threshold: not enough.
    let found = run_tweaked(d.as_mut(), &trace, |spans| {
        for s in spans.iter_mut().skip(2) {
            s.duration_ns += 1;
        }
    });
    assert!(found.is_empty());
}

#[test]
fn critical_only_above_five_times_the_threshold() {
    let trace = sql_calls(1, &[600, 600, 2_500]);
    let mut d = SlowSql.build(&table("")).unwrap();
    let at_five = trace.run(d.as_mut()).unwrap();
    assert_eq!(at_five[0].severity, Severity::Warning);
    let above = run_tweaked(d.as_mut(), &trace, |spans| spans[3].duration_ns += 1);
    assert_eq!(above[0].severity, Severity::Critical);
    // A lower multiplier moves the line.
    let f = run(&SlowSql, "critical_multiplier = 2.0", &trace);
    assert_eq!(f[0].severity, Severity::Critical);
}

#[test]
fn inbound_spans_are_ignored() {
    // Server spans carrying a SQL template (mis-instrumented) never count.
    let mut t = TraceBuilder::new();
    for i in 0..5u64 {
        let mut s = SpanSpec::sql(Q, &i.to_string()).at_us(i * 1000 * MS, 900 * MS);
        s.span_kind = SpanKind::Server;
        t.root(s);
    }
    assert!(run(&SlowSql, "", &t).is_empty());

    // Slow inbound HTTP requests are not outbound calls either.
    let mut t = TraceBuilder::new();
    for i in 0..5u64 {
        let mut s = SpanSpec::server("GET", "/slow").at_us(i * 1000 * MS, 900 * MS);
        s.template = "GET /slow".into();
        t.root(s);
    }
    assert!(run(&SlowHttp, "", &t).is_empty());

    // Messaging: consumer (and internal) spans are not sends.
    let mut t = TraceBuilder::new();
    for i in 0..5u64 {
        t.root(messaging(SpanKind::Consumer, "orders", "").at_us(i * 1000 * MS, 900 * MS));
        t.root(messaging(SpanKind::Internal, "orders", "").at_us(i * 1000 * MS, 900 * MS));
    }
    assert!(run(&SlowMessaging, "", &t).is_empty());
}

#[test]
fn http_and_messaging_flavours() {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("POST", "/checkout").at_us(0, 10_000 * MS));
    for i in 0..3u64 {
        t.child(
            root,
            SpanSpec::http_client("GET", "pricing/prices/{id}", &i.to_string())
                .at_us(i * 1000 * MS, 700 * MS),
        );
        t.child(
            root,
            messaging(SpanKind::Producer, "payments", &i.to_string())
                .at_us(i * 1000 * MS, 800 * MS),
        );
    }
    // Client-kind sends count too.
    t.child(
        root,
        messaging(SpanKind::Client, "payments", "c").at_us(5000 * MS, 3_000 * MS),
    );
    let http = run(&SlowHttp, "", &t);
    assert_eq!(http.len(), 1);
    assert_eq!(http[0].kind.as_str(), "slow_http");
    assert_eq!(http[0].template.as_str(), "GET pricing/prices/{id}");
    assert_eq!(http[0].endpoint.as_str(), "POST /checkout");
    assert!(http[0].suggestion.contains("timeout"));

    let msg = run(&SlowMessaging, "", &t);
    assert_eq!(msg.len(), 1);
    assert_eq!(msg[0].kind.as_str(), "slow_messaging");
    assert_eq!(msg[0].template.as_str(), "kafka payments");
    assert_eq!(msg[0].occurrences, 4);
    assert_eq!(msg[0].severity, Severity::Critical);
    assert!(msg[0].suggestion.contains("lag"));

    assert!(run(&SlowSql, "", &t).is_empty());
}

#[test]
fn groups_split_on_service_and_template_and_are_ordered() {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/a").at_us(0, 100_000 * MS));
    for i in 0..3u64 {
        let at = i * 3000 * MS;
        t.child(root, SpanSpec::sql("SELECT b", "").at_us(at, 600 * MS));
        t.child(root, SpanSpec::sql("SELECT a", "").at_us(at + MS, 600 * MS));
        t.child(
            root,
            SpanSpec::sql("SELECT a", "")
                .service("billing")
                .at_us(at + 2 * MS, 600 * MS),
        );
    }
    // Two of another template in each service: not enough.
    for i in 0..2u64 {
        t.child(root, SpanSpec::sql("SELECT c", "").at_us(i * MS, 900 * MS));
    }
    let found = run(&SlowSql, "", &t);
    let keys: Vec<(&str, &str)> = found
        .iter()
        .map(|f| (f.service.as_str(), f.template.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("billing", "SELECT a"),
            ("svc", "SELECT a"),
            ("svc", "SELECT b")
        ]
    );
}

#[test]
fn configuration_changes_threshold_and_minimum() {
    let trace = sql_calls(1, &[150, 150, 40]);
    assert!(run(&SlowSql, "", &trace).is_empty());
    let f = run(&SlowSql, "threshold_ms = 100\nmin_occurrences = 2", &trace);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].occurrences, 2);
    assert_eq!(f[0].extra_value("threshold_ms"), Some("100"));
    assert_eq!(run(&SlowSql, "threshold_ms = 100", &trace).len(), 0);
}

#[test]
fn evidence_is_bounded_and_cites_the_slowest() {
    // 60 slow calls; the last ten are the slowest.
    let durations: Vec<u64> = (0..60).map(|i| if i >= 50 { 900 } else { 600 }).collect();
    let f = run(&SlowSql, "", &sql_calls(1, &durations));
    assert_eq!(f[0].occurrences, 60);
    assert_eq!(f[0].evidence.len(), MAX_EVIDENCE);
    let last = TraceBuilder::span_id(60);
    assert!(f[0].evidence.contains(&last));
    // Cited in start order.
    let order: Vec<SpanId> = f[0].evidence.to_vec();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
}

mod cross_trace;
