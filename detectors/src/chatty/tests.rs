use detector_api::testkit::{SpanSpec, TraceBuilder, check_conformance};
use detector_api::{DetectorFactory, Severity};
use proptest::prelude::*;

use super::*;
use crate::fanout::tests::{
    arb_hostile_trace, arb_trace_and_order, assert_order_invariant, assert_sound, refusal, run,
};

/// A checkout request whose service `checkout` makes `n` outbound HTTP calls:
/// the i-th goes to the template `templates[i % templates.len()]`.
fn chatty(n: u64, templates: &[&str]) -> TraceBuilder {
    let mut t = TraceBuilder::new();
    let root = t.root(
        SpanSpec::server("POST", "/checkout")
            .service("checkout")
            .at_us(0, 5_000_000),
    );
    for i in 0..n {
        let path = templates[(i as usize) % templates.len()];
        t.child(
            root,
            SpanSpec::http_client("GET", path, &i.to_string())
                .service("checkout")
                .at_us(1_000 + i * 1_000, 500),
        );
    }
    t
}

#[test]
fn conformance() {
    check_conformance(&ChattyService).unwrap();
}

#[test]
fn fifteen_calls_are_fine_sixteen_are_reported() {
    assert!(run(&ChattyService, "", &chatty(15, &["pricing/prices/{id}"])).is_empty());
    let found = run(&ChattyService, "", &chatty(16, &["pricing/prices/{id}"]));
    assert_eq!(found.len(), 1);
    let f = &found[0];
    assert_eq!(f.kind.as_str(), "chatty_service");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.service.as_str(), "checkout");
    assert_eq!(f.template.as_str(), "POST /checkout");
    assert_eq!(f.endpoint.as_str(), "POST /checkout");
    assert_eq!(
        (f.occurrences, f.distinct_params, f.avoidable_io),
        (16, 1, 0)
    );
    assert_eq!(f.extra_value("calls"), Some("16"));
    assert_eq!(f.evidence.len(), 16);
    assert_eq!(f.evidence[0], TraceBuilder::span_id(1));
}

#[test]
fn forty_five_calls_are_a_warning_forty_six_are_critical() {
    let f = run(&ChattyService, "", &chatty(45, &["a/x"]));
    assert_eq!(f[0].severity, Severity::Warning);
    let f = run(&ChattyService, "", &chatty(46, &["a/x"]));
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(f[0].evidence.len(), crate::common::MAX_EVIDENCE.min(46));
}

#[test]
fn the_suggestion_names_the_top_three_templates_most_frequent_first() {
    // 8 x a, 4 x b, 4 x c, 4 x d: b and c tie with d, the name order decides.
    let mut plan = vec!["svc-a/a"; 8];
    plan.extend(
        ["svc-d/d", "svc-c/c", "svc-b/b"]
            .iter()
            .flat_map(|p| [*p; 4]),
    );
    let found = run(&ChattyService, "", &chatty(plan.len() as u64, &plan));
    let f = &found[0];
    assert_eq!(f.occurrences, 20);
    assert_eq!(f.distinct_params, 4);
    assert_eq!(f.extra_value("distinct_templates"), Some("4"));
    let top = "`GET svc-a/a` (8), `GET svc-b/b` (4), `GET svc-c/c` (4)";
    assert_eq!(f.extra_value("top_templates"), Some(top));
    assert!(f.suggestion.contains(top), "{}", f.suggestion);
    assert!(!f.suggestion.contains("svc-d/d"));
}

#[test]
fn inbound_calls_are_ignored() {
    // Sixteen requests served by `pricing` are not calls it made.
    let mut t = TraceBuilder::new();
    for i in 0..16u64 {
        t.root(
            SpanSpec::server("GET", "/prices/{id}")
                .service("pricing")
                .at_us(i * 1_000, 100),
        );
    }
    assert!(run(&ChattyService, "", &t).is_empty());
    // Fifteen outbound calls plus one inbound span are still fifteen.
    let mut t = chatty(15, &["a/x"]);
    t.root(
        SpanSpec::server("GET", "/x")
            .service("checkout")
            .at_us(10, 10),
    );
    assert!(run(&ChattyService, "", &t).is_empty());
}

#[test]
fn rpc_and_internal_http_count_sql_and_producers_do_not() {
    let mut t = chatty(10, &["a/x"]);
    for i in 0..3u64 {
        let mut rpc = SpanSpec::default().service("checkout").at_us(50_000 + i, 1);
        rpc.kind = IoKind::Rpc;
        rpc.span_kind = SpanKind::Client;
        rpc.template = "grpc inventory.Stock/Reserve".into();
        t.child(0, rpc);
        let mut internal = SpanSpec::http_client("GET", "b/y", "").service("checkout");
        internal.span_kind = SpanKind::Internal;
        t.child(0, internal.at_us(60_000 + i, 1));
        let mut producer = SpanSpec::http_client("POST", "c/z", "").service("checkout");
        producer.span_kind = SpanKind::Producer;
        t.child(0, producer.at_us(70_000 + i, 1));
        t.child(
            0,
            SpanSpec::sql("SELECT 1", "")
                .service("checkout")
                .at_us(80_000 + i, 1),
        );
    }
    // 10 + 3 RPC + 3 internal HTTP = 16.
    let found = run(&ChattyService, "", &t);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].occurrences, 16);
    assert_eq!(found[0].distinct_params, 3);
}

#[test]
fn services_are_counted_separately_and_sorted() {
    let mut t = TraceBuilder::new();
    let root = t.root(
        SpanSpec::server("GET", "/a")
            .service("zeta")
            .at_us(0, 1_000_000),
    );
    let inner = t.child(
        root,
        SpanSpec::server("GET", "/b")
            .service("alpha")
            .at_us(1, 900_000),
    );
    for i in 0..16u64 {
        t.child(
            root,
            SpanSpec::http_client("GET", "x/1", "")
                .service("zeta")
                .at_us(10 + i, 1),
        );
        t.child(
            inner,
            SpanSpec::http_client("GET", "y/2", "")
                .service("alpha")
                .at_us(10 + i, 1),
        );
    }
    for i in 0..10u64 {
        t.child(
            inner,
            SpanSpec::http_client("GET", "z/3", "")
                .service("beta")
                .at_us(10 + i, 1),
        );
    }
    let found = run(&ChattyService, "", &t);
    let services: Vec<&str> = found.iter().map(|f| f.service.as_str()).collect();
    assert_eq!(services, ["alpha", "zeta"]);
    assert_eq!(found[0].endpoint.as_str(), "GET /b");
    assert_eq!(found[1].endpoint.as_str(), "GET /a");
}

#[test]
fn without_an_inbound_span_the_template_is_the_service() {
    let mut t = TraceBuilder::new();
    for i in 0..16u64 {
        t.root(
            SpanSpec::http_client("GET", "x/1", "")
                .service("batch-job")
                .at_us(i, 1),
        );
    }
    let f = &run(&ChattyService, "", &t)[0];
    assert_eq!(f.template.as_str(), "batch-job");
    assert_eq!(f.endpoint.as_str(), "");
}

#[test]
fn configuration_changes_thresholds() {
    let t = chatty(6, &["a/x"]);
    assert_eq!(
        run(&ChattyService, "min_calls = 5", &t)[0].severity,
        Severity::Warning
    );
    let f = run(
        &ChattyService,
        "min_calls = 2\ncritical_multiplier = 2.5",
        &t,
    );
    assert_eq!(f[0].severity, Severity::Critical);
}

#[test]
fn bad_configuration_is_refused_with_the_key() {
    assert!(refusal(&ChattyService, "min_calls = 0").contains("min_calls"));
    assert!(refusal(&ChattyService, "min_calls = \"many\"").contains("min_calls"));
    assert!(refusal(&ChattyService, "critical_multiplier = 0.9").contains("critical_multiplier"));
    assert!(refusal(&ChattyService, "critical_multiplier = inf").contains("critical_multiplier"));
    assert!(refusal(&ChattyService, "max_calls = 3").contains("max_calls"));
}

#[test]
fn defaults_and_inherited_keys() {
    let d = ChattyService.default_config();
    assert_eq!(d["min_calls"].as_integer(), Some(15));
    assert_eq!(d["critical_multiplier"].as_float(), Some(3.0));
    assert_eq!(
        ChattyService.inherited_keys()[0].detection_key,
        "chatty_service_min_calls"
    );
    assert_eq!(ChattyService.inherited_keys()[0].key, "min_calls");
}

proptest! {
    #[test]
    fn never_panics_on_any_trace(raw in arb_hostile_trace()) {
        for config in ["", "min_calls = 1", "min_calls = 2\ncritical_multiplier = 1"] {
            for f in assert_sound(&ChattyService, config, &raw)? {
                prop_assert!(f.occurrences > 1);
            }
        }
    }

    #[test]
    fn span_order_does_not_change_findings((raw, order) in arb_trace_and_order()) {
        for config in ["", "min_calls = 2"] {
            assert_order_invariant(&ChattyService, config, &raw, &order)?;
        }
    }
}
