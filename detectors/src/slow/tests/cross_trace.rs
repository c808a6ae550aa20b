//! Tests of the cross-trace percentiles: the window, the flush, and the
//! bounds on tracked templates and samples. Apart from the per-trace tests so
//! each file stays readable; the helpers are the parent's.

use super::*;

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
