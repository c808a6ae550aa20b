use detector_api::testkit::{SpanSpec, T0_NS, TraceBuilder, check_conformance};
use detector_api::{DetectorFactory, Severity, SpanKind};
use proptest::prelude::*;

use super::*;
use crate::fanout::tests::{
    arb_hostile_trace, arb_trace_and_order, assert_order_invariant, assert_sound, refusal, run,
};

/// `n` SQL calls of service `service` under `parent`, all open over
/// `[start_us, start_us + 1000)` (each starts one microsecond after the
/// previous one, and all end together).
fn burst(t: &mut TraceBuilder, parent: usize, service: &str, n: u64, start_us: u64) {
    for i in 0..n {
        t.child(
            parent,
            SpanSpec::sql(
                &format!("SELECT * FROM stock WHERE sku = ? /* {} */", i % 2),
                &i.to_string(),
            )
            .service(service)
            .at_us(start_us + i, 1_000 - i),
        );
    }
}

fn request() -> (TraceBuilder, usize) {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/inventory").at_us(0, 1_000_000));
    (t, root)
}

#[test]
fn conformance() {
    check_conformance(&PoolSaturation).unwrap();
}

#[test]
fn nine_concurrent_calls_are_fine_ten_are_reported() {
    let (mut t, root) = request();
    burst(&mut t, root, "svc", 9, 100);
    assert!(run(&PoolSaturation, "", &t).is_empty());

    let (mut t, root) = request();
    burst(&mut t, root, "svc", 10, 100);
    let found = run(&PoolSaturation, "", &t);
    assert_eq!(found.len(), 1);
    let f = &found[0];
    assert_eq!(f.kind.as_str(), "pool_saturation");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.service.as_str(), "svc");
    assert_eq!(f.template.as_str(), "postgresql");
    assert_eq!(f.endpoint.as_str(), "GET /inventory");
    assert_eq!(
        (f.occurrences, f.distinct_params, f.avoidable_io),
        (10, 2, 0)
    );
    assert_eq!(f.extra_value("peak_concurrency"), Some("10"));
    // The peak is reached when the tenth call starts.
    let peak_at = T0_NS + 109_000;
    assert_eq!(f.extra_value("peak_at"), Some(peak_at.to_string().as_str()));
    assert_eq!(f.evidence.len(), 10);
    assert_eq!(f.evidence[0], TraceBuilder::span_id(1));
    assert!(f.suggestion.contains("pool"));
}

#[test]
fn twenty_concurrent_calls_are_critical() {
    let (mut t, root) = request();
    burst(&mut t, root, "svc", 19, 100);
    assert_eq!(run(&PoolSaturation, "", &t)[0].severity, Severity::Warning);
    let (mut t, root) = request();
    burst(&mut t, root, "svc", 20, 100);
    let f = &run(&PoolSaturation, "", &t)[0];
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.occurrences, 20);
}

#[test]
fn back_to_back_calls_do_not_overlap() {
    // Twenty calls, each starting exactly when the previous one ends.
    let (mut t, root) = request();
    for i in 0..20u64 {
        t.child(root, SpanSpec::sql("SELECT 1", "").at_us(100 + i * 50, 50));
    }
    assert!(run(&PoolSaturation, "concurrent_threshold = 2", &t).is_empty());
    // Two rows of five calls, the second row starting as the first ends: a
    // peak of five, never ten.
    let (mut t, root) = request();
    for _ in 0..5 {
        t.child(root, SpanSpec::sql("SELECT 1", "").at_us(100, 50));
        t.child(root, SpanSpec::sql("SELECT 2", "").at_us(150, 50));
    }
    assert!(run(&PoolSaturation, "", &t).is_empty());
    let found = run(&PoolSaturation, "concurrent_threshold = 5", &t);
    assert_eq!(found[0].occurrences, 5);
    // The first row is the peak.
    assert_eq!(
        found[0].extra_value("peak_at"),
        Some((T0_NS + 100_000).to_string().as_str())
    );
}

#[test]
fn the_peak_is_the_most_spans_open_at_one_instant() {
    // Calls that each overlap a few others but never ten at once.
    let (mut t, root) = request();
    for i in 0..40u64 {
        t.child(root, SpanSpec::sql("SELECT 1", "").at_us(100 + i * 10, 45));
    }
    // A call open over [s, s + 45) overlaps those that started within the
    // last 45 us: five at a time.
    let found = run(&PoolSaturation, "concurrent_threshold = 2", &t);
    assert_eq!(found[0].occurrences, 5);
    assert_eq!(found[0].evidence.len(), 5);
    assert!(run(&PoolSaturation, "concurrent_threshold = 6", &t).is_empty());
}

#[test]
fn services_are_separate() {
    let (mut t, root) = request();
    burst(&mut t, root, "orders", 6, 100);
    burst(&mut t, root, "billing", 6, 100);
    assert!(run(&PoolSaturation, "", &t).is_empty());
    burst(&mut t, root, "orders", 4, 200);
    burst(&mut t, root, "stock", 12, 100);
    let found = run(&PoolSaturation, "", &t);
    let services: Vec<(&str, u32)> = found
        .iter()
        .map(|f| (f.service.as_str(), f.occurrences))
        .collect();
    assert_eq!(services, [("orders", 10), ("stock", 12)]);
}

#[test]
fn inbound_and_zero_length_spans_hold_no_connection() {
    let (mut t, root) = request();
    burst(&mut t, root, "svc", 9, 100);
    let mut server = SpanSpec::sql("SELECT 1", "").at_us(150, 100);
    server.span_kind = SpanKind::Server;
    t.child(root, server);
    t.child(root, SpanSpec::sql("SELECT 1", "").at_us(150, 0));
    assert!(run(&PoolSaturation, "", &t).is_empty());
}

#[test]
fn mixed_databases_name_every_system() {
    let (mut t, root) = request();
    burst(&mut t, root, "svc", 10, 100);
    let mut redis = SpanSpec::sql("GET ?", "k").at_us(150, 100);
    redis.db_system = "redis".into();
    t.child(root, redis);
    let mut unknown = SpanSpec::sql("SELECT 3", "").at_us(150, 100);
    unknown.db_system = String::new();
    t.child(root, unknown);
    let f = &run(&PoolSaturation, "", &t)[0];
    assert_eq!(f.template.as_str(), "postgresql+redis");
    assert_eq!(f.occurrences, 12);
}

#[test]
fn bad_configuration_is_refused_with_the_key() {
    assert!(refusal(&PoolSaturation, "concurrent_threshold = 0").contains("concurrent_threshold"));
    assert!(
        refusal(&PoolSaturation, "concurrent_threshold = 1.5").contains("concurrent_threshold")
    );
    assert!(refusal(&PoolSaturation, "critical_multiplier = 5000").contains("critical_multiplier"));
    assert!(refusal(&PoolSaturation, "threshold = 3").contains("threshold"));
}

#[test]
fn defaults_and_inherited_keys() {
    let d = PoolSaturation.default_config();
    assert_eq!(d["concurrent_threshold"].as_integer(), Some(10));
    assert_eq!(d["critical_multiplier"].as_float(), Some(2.0));
    assert_eq!(
        PoolSaturation.inherited_keys()[0].detection_key,
        "pool_saturation_concurrent_threshold"
    );
    assert_eq!(
        PoolSaturation.inherited_keys()[0].key,
        "concurrent_threshold"
    );
}

proptest! {
    #[test]
    fn never_panics_on_any_trace(raw in arb_hostile_trace()) {
        for config in ["", "concurrent_threshold = 1", "concurrent_threshold = 2\ncritical_multiplier = 1"] {
            for f in assert_sound(&PoolSaturation, config, &raw)? {
                prop_assert!(f.occurrences >= 1);
                prop_assert!(f.evidence.len() as u32 == f.occurrences.min(50));
            }
        }
    }

    #[test]
    fn span_order_does_not_change_findings((raw, order) in arb_trace_and_order()) {
        for config in ["", "concurrent_threshold = 2"] {
            assert_order_invariant(&PoolSaturation, config, &raw, &order)?;
        }
    }
}
