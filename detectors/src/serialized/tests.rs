use detector_api::testkit::{SpanSpec, T0_NS, TraceBuilder, check_conformance};
use detector_api::{DetectorFactory, Severity, SpanKind};
use proptest::prelude::*;

use super::*;
use crate::fanout::tests::{
    arb_hostile_trace, arb_trace_and_order, assert_order_invariant, assert_sound, refusal, run,
};

/// A request whose handler makes one call per `(template, start_ms,
/// duration_ms)`, SQL for templates starting with `SELECT`, else HTTP.
fn calls(plan: &[(&str, u64, u64)]) -> TraceBuilder {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/profile").at_us(0, 10_000_000));
    for &(template, start_ms, duration_ms) in plan {
        let spec = if template.starts_with("SELECT") {
            SpanSpec::sql(template, "1")
        } else {
            SpanSpec::http_client("GET", template, "")
        };
        t.child(root, spec.at_us(start_ms * 1_000, duration_ms * 1_000));
    }
    t
}

const A: &str = "SELECT * FROM users WHERE id = ?";
const B: &str = "SELECT * FROM prefs WHERE user_id = ?";
const C: &str = "avatars/avatars/{id}";
const D: &str = "billing/accounts/{id}";

#[test]
fn conformance() {
    check_conformance(&SerializedCalls).unwrap();
}

#[test]
fn two_sequential_calls_are_fine_three_are_reported() {
    assert!(run(&SerializedCalls, "", &calls(&[(A, 10, 100), (B, 110, 100)])).is_empty());
    let found = run(
        &SerializedCalls,
        "",
        &calls(&[(A, 10, 100), (B, 110, 100), (C, 215, 150)]),
    );
    assert_eq!(found.len(), 1);
    let f = &found[0];
    assert_eq!(f.kind.as_str(), "serialized_calls");
    assert_eq!(f.template.as_str(), "GET /profile");
    assert_eq!(f.endpoint.as_str(), "GET /profile");
    assert_eq!(
        (f.occurrences, f.distinct_params, f.avoidable_io),
        (3, 3, 0)
    );
    // From 10 ms to 365 ms in sequence; the longest call alone is 150 ms.
    assert_eq!(f.extra_value("sequential_ms"), Some("355.000"));
    assert_eq!(f.extra_value("parallel_ms"), Some("150.000"));
    assert_eq!(f.extra_value("saving_ms"), Some("205.000"));
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.extra_value("calls"),
        Some(format!("{A} -> {B} -> GET {C}").as_str())
    );
    assert_eq!(
        f.evidence.as_slice(),
        [1, 2, 3].map(TraceBuilder::span_id).as_slice()
    );
    assert_eq!(
        (f.first_ns, f.last_ns),
        (T0_NS + 10_000_000, T0_NS + 365_000_000)
    );
    assert_eq!(f.total_duration_ns, 350_000_000);
    assert!(f.suggestion.contains("concurrently"));
}

#[test]
fn a_small_saving_is_info_and_the_threshold_is_inclusive() {
    // 3 x 50 ms back to back: 150 ms in sequence, 50 ms in parallel.
    let t = calls(&[(A, 0, 50), (B, 50, 50), (C, 100, 50)]);
    assert_eq!(run(&SerializedCalls, "", &t)[0].severity, Severity::Warning);
    let f = run(&SerializedCalls, "warning_saving_ms = 101", &t);
    assert_eq!(f[0].severity, Severity::Info);
    assert_eq!(f[0].extra_value("saving_ms"), Some("100.000"));
}

#[test]
fn an_overlap_breaks_the_run() {
    // B starts before A ends: A and B already run side by side.
    let t = calls(&[(A, 0, 100), (B, 90, 100), (C, 190, 100)]);
    assert!(run(&SerializedCalls, "", &t).is_empty());
    // The run after the overlap still counts.
    let t = calls(&[(A, 0, 100), (B, 90, 100), (C, 190, 100), (D, 290, 100)]);
    let found = run(&SerializedCalls, "", &t);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].evidence.as_slice(),
        [2, 3, 4].map(TraceBuilder::span_id).as_slice()
    );
}

#[test]
fn calls_sharing_a_template_are_not_reported() {
    // The same statement three times in a row is an N+1, not this.
    let t = calls(&[(A, 0, 100), (A, 100, 100), (A, 200, 100)]);
    assert!(run(&SerializedCalls, "", &t).is_empty());
    // A, B, A: no three distinct templates in a row.
    let t = calls(&[(A, 0, 100), (B, 100, 100), (A, 200, 100)]);
    assert!(run(&SerializedCalls, "", &t).is_empty());
    // A, B, A, C: the run restarts after the first A.
    let t = calls(&[(A, 0, 100), (B, 100, 100), (A, 200, 100), (C, 300, 100)]);
    let found = run(&SerializedCalls, "", &t);
    assert_eq!(
        found[0].evidence.as_slice(),
        [2, 3, 4].map(TraceBuilder::span_id).as_slice()
    );
}

#[test]
fn a_gap_above_max_gap_ms_breaks_the_run() {
    // 50 ms between calls is back to back, 51 ms is not.
    let t = calls(&[(A, 0, 100), (B, 150, 100), (C, 300, 100)]);
    assert_eq!(run(&SerializedCalls, "", &t).len(), 1);
    let t = calls(&[(A, 0, 100), (B, 151, 100), (C, 301, 100)]);
    assert!(run(&SerializedCalls, "", &t).is_empty());
    assert_eq!(run(&SerializedCalls, "max_gap_ms = 51", &t).len(), 1);
    // With no gap allowed, only calls starting exactly at the end count.
    let t = calls(&[(A, 0, 100), (B, 100, 100), (C, 201, 100)]);
    assert!(run(&SerializedCalls, "max_gap_ms = 0", &t).is_empty());
}

#[test]
fn the_longest_run_of_each_parent_is_reported() {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/a").at_us(0, 10_000_000));
    let worker = t.child(root, SpanSpec::default().at_us(5_000_000, 4_000_000));
    // Under root: a run of 3, a long pause, then a run of 4.
    for (i, tpl) in ["q1", "q2", "q3"].iter().enumerate() {
        t.child(
            root,
            SpanSpec::sql(tpl, "").at_us(i as u64 * 10_000, 10_000),
        );
    }
    for (i, tpl) in ["q1", "q2", "q3", "q4"].iter().enumerate() {
        t.child(
            root,
            SpanSpec::sql(tpl, "").at_us(1_000_000 + i as u64 * 10_000, 10_000),
        );
    }
    // Under the worker: three calls, all different.
    for (i, tpl) in ["x", "y", "z"].iter().enumerate() {
        t.child(
            worker,
            SpanSpec::sql(tpl, "").at_us(5_000_000 + i as u64 * 10_000, 10_000),
        );
    }
    let found = run(&SerializedCalls, "", &t);
    let shape: Vec<(u32, &str)> = found
        .iter()
        .map(|f| (f.occurrences, f.template.as_str()))
        .collect();
    assert_eq!(shape, [(4, "GET /a"), (3, "span")]);
    assert_eq!(found[0].severity, Severity::Info);
}

#[test]
fn only_outbound_io_calls_count() {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/a").at_us(0, 10_000_000));
    t.child(root, SpanSpec::sql(A, "").at_us(0, 100));
    let mut internal = SpanSpec::default().at_us(100, 100);
    internal.template = "render".into();
    t.child(root, internal);
    t.child(root, SpanSpec::server("GET", "/b").at_us(200, 100));
    let mut message = SpanSpec::default().at_us(300, 100);
    message.kind = IoKind::Messaging;
    message.span_kind = SpanKind::Producer;
    message.template = "publish orders".into();
    t.child(root, message);
    t.child(root, SpanSpec::sql(B, "").at_us(400, 100));
    assert!(run(&SerializedCalls, "", &t).is_empty());
    let mut rpc = SpanSpec::default().at_us(500, 100);
    rpc.kind = IoKind::Rpc;
    rpc.span_kind = SpanKind::Client;
    rpc.template = "grpc users.Users/Get".into();
    t.child(root, rpc);
    assert_eq!(run(&SerializedCalls, "", &t)[0].occurrences, 3);
}

#[test]
fn milliseconds_are_printed_exactly() {
    assert_eq!(ms_text(0), "0.000");
    assert_eq!(ms_text(1_234_567), "1.234");
    assert_eq!(ms_text(u64::MAX), "18446744073709.551");
}

#[test]
fn bad_configuration_is_refused_with_the_key() {
    assert!(refusal(&SerializedCalls, "min_sequential = 1").contains("min_sequential"));
    assert!(refusal(&SerializedCalls, "max_gap_ms = 60001").contains("max_gap_ms"));
    assert!(refusal(&SerializedCalls, "max_gap_ms = -5").contains("max_gap_ms"));
    assert!(refusal(&SerializedCalls, "warning_saving_ms = 3600001").contains("warning_saving_ms"));
    assert!(refusal(&SerializedCalls, "min_seq = 3").contains("min_seq"));
}

#[test]
fn defaults_and_inherited_keys() {
    let d = SerializedCalls.default_config();
    assert_eq!(d["min_sequential"].as_integer(), Some(3));
    assert_eq!(d["max_gap_ms"].as_integer(), Some(50));
    assert_eq!(d["warning_saving_ms"].as_integer(), Some(100));
    assert_eq!(
        SerializedCalls.inherited_keys()[0].detection_key,
        "serialized_min_sequential"
    );
    assert_eq!(SerializedCalls.inherited_keys()[0].key, "min_sequential");
}

proptest! {
    #[test]
    fn never_panics_on_any_trace(raw in arb_hostile_trace()) {
        for config in ["", "min_sequential = 2\nmax_gap_ms = 0", "max_gap_ms = 60000"] {
            for f in assert_sound(&SerializedCalls, config, &raw)? {
                prop_assert!(f.occurrences >= 2);
                prop_assert_eq!(f.occurrences, f.distinct_params);
            }
        }
    }

    #[test]
    fn span_order_does_not_change_findings((raw, order) in arb_trace_and_order()) {
        for config in ["", "min_sequential = 2"] {
            assert_order_invariant(&SerializedCalls, config, &raw, &order)?;
        }
    }
}
