use detector_api::testkit::{SpanSpec, T0_NS, TraceBuilder, check_conformance};
use detector_api::{DetectorFactory, Finding, Severity, TraceIndex};
use proptest::prelude::*;

use super::*;

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

// ---- across traces ----

#[test]
fn p99_above_the_threshold_in_two_traces_is_reported_on_flush() {
    let mut d = SlowSql.build(&table("")).unwrap();
    // One slow call per trace: no per-trace finding.
    assert!(
        sql_calls(1, &[600, 20, 30])
            .run(d.as_mut())
            .unwrap()
            .is_empty()
    );
    assert!(sql_calls(2, &[40, 900]).run(d.as_mut()).unwrap().is_empty());

    let found = flush(d.as_mut(), T0_NS + 60 * NS_PER_SEC);
    assert_eq!(found.len(), 1);
    let f = &found[0];
    assert_eq!(f.kind.as_str(), "slow_sql");
    assert_eq!(f.extra_value("scope"), Some("cross_trace"));
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.template.as_str(), Q);
    assert_eq!(f.service.as_str(), "svc");
    assert_eq!(f.endpoint.as_str(), "GET /orders");
    // Samples 20, 30, 40, 600, 900 ms.
    assert_eq!(f.extra_value("samples"), Some("5"));
    assert_eq!(f.extra_value("traces"), Some("2"));
    assert_eq!(f.extra_value("slow_traces"), Some("2"));
    assert_eq!(f.extra_value("p50_ms"), Some("40"));
    assert_eq!(f.extra_value("p95_ms"), Some("900"));
    assert_eq!(f.extra_value("p99_ms"), Some("900"));
    assert_eq!(f.extra_value("threshold_ms"), Some("500"));
    assert_eq!(f.occurrences, 2);
    // The slowest sample: trace 2, its second call.
    assert_eq!(f.trace_id, TraceId([2; 16]));
    assert_eq!(f.evidence.as_slice(), &[TraceBuilder::span_id(2)]);
    assert_eq!(f.code.function.as_str(), "list_orders");
    assert_eq!(f.total_duration_ns, 1_500 * NS_PER_MS);
}

#[test]
fn slow_calls_in_one_trace_only_are_not_a_cross_trace_finding() {
    let mut d = SlowSql.build(&table("")).unwrap();
    sql_calls(1, &[600, 700, 20]).run(d.as_mut()).unwrap();
    // A second trace with only fast calls.
    sql_calls(2, &[20, 30]).run(d.as_mut()).unwrap();
    assert!(flush(d.as_mut(), T0_NS + NS_PER_SEC).is_empty());
    // With a minimum of one trace it is.
    let mut d = SlowSql.build(&table("cross_trace_min_traces = 1")).unwrap();
    sql_calls(1, &[600, 700, 20]).run(d.as_mut()).unwrap();
    assert_eq!(flush(d.as_mut(), T0_NS + NS_PER_SEC).len(), 1);
}

#[test]
fn p99_at_or_below_the_threshold_is_not_reported() {
    let mut d = SlowSql.build(&table("")).unwrap();
    // 2 slow calls among 300 samples: p99 (rank 297) is fast.
    for id in 0..3u8 {
        let mut durations = vec![10; 100];
        if id < 2 {
            durations[0] = 800;
        }
        sql_calls(id, &durations).run(d.as_mut()).unwrap();
    }
    assert!(flush(d.as_mut(), T0_NS + NS_PER_SEC).is_empty());
}

#[test]
fn samples_older_than_the_window_are_ignored() {
    let feed = |d: &mut dyn Detector| {
        sql_calls(1, &[600]).run(d).unwrap();
        // The second trace starts 400 s later.
        let mut late = sql_calls(2, &[700]);
        for i in 0..2 {
            late.span_mut(i).start_us += 400_000 * MS;
        }
        late.run(d).unwrap();
    };
    // Flushed 1 s after the late trace ended: the first is 400 s old.
    let now = T0_NS + 402 * NS_PER_SEC;
    let mut d = SlowSql.build(&table("")).unwrap();
    feed(d.as_mut());
    assert!(flush(d.as_mut(), now).is_empty());

    let mut wide = SlowSql
        .build(&table("percentile_window_secs = 600"))
        .unwrap();
    feed(wide.as_mut());
    let f = flush(wide.as_mut(), now);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].extra_value("window_secs"), Some("600"));
}

#[test]
fn the_window_edge_is_inclusive_on_span_end() {
    let mut d = sql_detector("");
    sql_calls(1, &[600]).run(&mut d).unwrap();
    sql_calls(2, &[600]).run(&mut d).unwrap();
    // Both end at T0 + 610 ms.
    let end = T0_NS + 610 * NS_PER_MS;
    let window = 300 * NS_PER_SEC;
    assert_eq!(flush(&mut d, end + window).len(), 1);

    let mut d = sql_detector("");
    sql_calls(1, &[600]).run(&mut d).unwrap();
    sql_calls(2, &[600]).run(&mut d).unwrap();
    assert!(flush(&mut d, end + window + 1).is_empty());
    // And expired series are forgotten.
    assert_eq!(d.tracked_templates(), 0);
}

#[test]
fn no_report_again_without_new_samples() {
    let mut d = SlowSql.build(&table("")).unwrap();
    sql_calls(1, &[600]).run(d.as_mut()).unwrap();
    sql_calls(2, &[700]).run(d.as_mut()).unwrap();
    let now = T0_NS + 10 * NS_PER_SEC;
    assert_eq!(flush(d.as_mut(), now).len(), 1);
    assert!(flush(d.as_mut(), now + NS_PER_SEC).is_empty());
    assert!(flush(d.as_mut(), now + 2 * NS_PER_SEC).is_empty());
    // A new sample, even a fast one, allows a fresh report.
    sql_calls(3, &[10]).run(d.as_mut()).unwrap();
    let again = flush(d.as_mut(), now + 3 * NS_PER_SEC);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].extra_value("samples"), Some("3"));
}

#[test]
fn a_template_reported_later_once_it_crosses_the_threshold() {
    let mut d = SlowSql.build(&table("")).unwrap();
    sql_calls(1, &[600]).run(d.as_mut()).unwrap();
    let now = T0_NS + 10 * NS_PER_SEC;
    assert!(flush(d.as_mut(), now).is_empty());
    sql_calls(2, &[700]).run(d.as_mut()).unwrap();
    assert_eq!(flush(d.as_mut(), now).len(), 1);
}

#[test]
fn each_template_is_reported_once_per_flush_in_a_stable_order() {
    let mut d = SlowSql.build(&table("")).unwrap();
    for id in 0..4u8 {
        let mut t = TraceBuilder::with_id(TraceId([id; 16]));
        let root = t.root(SpanSpec::server("GET", "/x").at_us(0, 10_000 * MS));
        for (i, q) in ["SELECT z", "SELECT a", "SELECT m"].iter().enumerate() {
            t.child(root, SpanSpec::sql(q, "").at_us(i as u64 * MS, 700 * MS));
            t.child(
                root,
                SpanSpec::sql(q, "")
                    .service("api")
                    .at_us(i as u64 * MS, 700 * MS),
            );
        }
        t.run(d.as_mut()).unwrap();
    }
    let found = flush(d.as_mut(), T0_NS + NS_PER_SEC);
    let keys: Vec<(&str, &str)> = found
        .iter()
        .map(|f| (f.service.as_str(), f.template.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("api", "SELECT a"),
            ("api", "SELECT m"),
            ("api", "SELECT z"),
            ("svc", "SELECT a"),
            ("svc", "SELECT m"),
            ("svc", "SELECT z"),
        ]
    );
    for f in &found {
        assert_eq!(f.extra_value("samples"), Some("4"));
        assert_eq!(f.extra_value("traces"), Some("4"));
    }
}

#[test]
fn the_template_cap_keeps_the_most_recently_seen() {
    let mut d = sql_detector("max_templates = 3\ncross_trace_min_traces = 1");
    for round in 0..2u8 {
        for k in 0..10u8 {
            let mut t = TraceBuilder::with_id(TraceId([round * 16 + k; 16]));
            let root = t.root(SpanSpec::server("GET", "/x").at_us(0, 10_000 * MS));
            t.child(
                root,
                SpanSpec::sql(&format!("SELECT {k}"), "").at_us(MS, 700 * MS),
            );
            t.run(&mut d).unwrap();
            assert!(d.tracked_templates() <= 3);
        }
    }
    assert_eq!(d.tracked_templates(), 3);
    assert_eq!(d.store.recency.len(), 3);
    let found = flush(&mut d, T0_NS + NS_PER_SEC);
    let templates: Vec<&str> = found.iter().map(|f| f.template.as_str()).collect();
    assert_eq!(templates, ["SELECT 7", "SELECT 8", "SELECT 9"]);
}

/// One trace with `templates` (in that arrival order), each run once, slow.
fn one_call_each(id: u8, templates: &[&str]) -> TraceBuilder {
    let mut t = TraceBuilder::with_id(TraceId([id; 16]));
    let root = t.root(SpanSpec::server("GET", "/x").at_us(0, 10_000 * MS));
    for (i, q) in templates.iter().enumerate() {
        t.child(
            root,
            SpanSpec::sql(q, "").at_us((1 + i as u64 * 800) * MS, 700 * MS),
        );
    }
    t
}

#[test]
fn templates_of_one_trace_are_evicted_in_template_order() {
    // The templates one trace sees count as seen in (service, template)
    // order, whatever order they arrived in, and whether or not the cap was
    // reached while that trace was recorded.
    for (cap, first) in [
        (3, &["SELECT c", "SELECT a", "SELECT b"][..]),
        (2, &["SELECT c", "SELECT a", "SELECT b"][..]),
    ] {
        let mut d = sql_detector(&format!(
            "max_templates = {cap}\ncross_trace_min_traces = 1"
        ));
        one_call_each(1, first).run(&mut d).unwrap();
        one_call_each(2, &["SELECT d"]).run(&mut d).unwrap();
        let found = flush(&mut d, T0_NS + 10 * NS_PER_SEC);
        let templates: Vec<&str> = found.iter().map(|f| f.template.as_str()).collect();
        let want: &[&str] = if cap == 3 {
            &["SELECT b", "SELECT c", "SELECT d"]
        } else {
            &["SELECT c", "SELECT d"]
        };
        assert_eq!(templates, want, "max_templates = {cap}");
        assert_eq!(d.tracked_templates(), cap);
        assert_eq!(d.store.recency.len(), cap);
    }
}

#[test]
fn a_template_seen_again_is_not_evicted() {
    let mut d = sql_detector("max_templates = 2");
    let one = |d: &mut Slow, id: u8, q: &str| {
        let mut t = TraceBuilder::with_id(TraceId([id; 16]));
        let root = t.root(SpanSpec::server("GET", "/x").at_us(0, 10_000 * MS));
        t.child(root, SpanSpec::sql(q, "").at_us(MS, 700 * MS));
        t.run(d).unwrap();
    };
    one(&mut d, 1, "SELECT a");
    one(&mut d, 2, "SELECT b");
    one(&mut d, 3, "SELECT a"); // a is now the most recent
    one(&mut d, 4, "SELECT c"); // evicts b
    let found = flush(&mut d, T0_NS + NS_PER_SEC);
    let templates: Vec<&str> = found.iter().map(|f| f.template.as_str()).collect();
    assert_eq!(templates, ["SELECT a"]);
    assert_eq!(d.tracked_templates(), 2);
}

#[test]
fn the_sample_cap_keeps_the_newest() {
    let mut d = sql_detector("max_samples_per_template = 4\ncross_trace_min_traces = 1");
    // One trace with 1000 slow calls and then four fast traces.
    sql_calls(1, &[900; 1000]).run(&mut d).unwrap();
    let series_len = |d: &Slow| d.store.by_service["svc"][Q].samples.len();
    assert_eq!(series_len(&d), 4);
    for id in 2..6u8 {
        sql_calls(id, &[10]).run(&mut d).unwrap();
        assert_eq!(series_len(&d), 4);
    }
    // The slow calls have left: nothing to report.
    assert!(flush(&mut d, T0_NS + NS_PER_SEC).is_empty());
}

#[test]
fn long_keys_are_capped() {
    let mut d = sql_detector("cross_trace_min_traces = 1");
    let long = format!("SELECT {}", "é".repeat(5000));
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/x").at_us(0, 10_000 * MS));
    t.child(root, SpanSpec::sql(&long, "").at_us(MS, 700 * MS));
    t.run(&mut d).unwrap();
    let found = flush(&mut d, T0_NS + NS_PER_SEC);
    assert_eq!(found.len(), 1);
    assert!(found[0].template.len() <= MAX_KEY_BYTES);
    assert!(long.starts_with(found[0].template.as_str()));
}

#[test]
fn cross_trace_critical_above_five_times_the_threshold() {
    let mut d = SlowHttp.build(&table("")).unwrap();
    for id in 1..=2u8 {
        let mut t = TraceBuilder::with_id(TraceId([id; 16]));
        let root = t.root(SpanSpec::server("GET", "/cart").at_us(0, 10_000 * MS));
        t.child(
            root,
            SpanSpec::http_client("GET", "catalog/items", "").at_us(MS, 3_000 * MS),
        );
        t.run(d.as_mut()).unwrap();
    }
    let f = flush(d.as_mut(), T0_NS + NS_PER_SEC);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].kind.as_str(), "slow_http");
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(f[0].endpoint.as_str(), "GET /cart");
    // Equal durations: the slowest is the latest to end, then the lowest ids.
    assert_eq!(f[0].trace_id, TraceId([1; 16]));
}

#[test]
fn empty_and_odd_input_does_not_panic() {
    let mut d = sql_detector("");
    assert!(flush(&mut d, 0).is_empty());
    assert!(flush(&mut d, u64::MAX).is_empty());
    // Zero and huge durations, spans ending past the flush time.
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/x").at_us(0, 0));
    t.child(root, SpanSpec::sql(Q, "").at_us(0, 0));
    t.child(
        root,
        SpanSpec::sql(Q, "").at_us(u64::MAX / 4_000, u64::MAX / 4_000),
    );
    t.run(&mut d).unwrap();
    assert!(flush(&mut d, 0).is_empty());
}
