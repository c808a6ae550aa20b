use detector_api::testkit::{SpanSpec, TraceBuilder, check_conformance};
use detector_api::{DetectorFactory, Finding, IoKind, Severity, SpanId, SpanKind};
use proptest::prelude::*;

use super::*;

pub(crate) fn run(
    factory: &dyn DetectorFactory,
    config: &str,
    trace: &TraceBuilder,
) -> Vec<Finding> {
    let table: toml::Table = config.parse().unwrap();
    let mut d = factory.build(&table).unwrap();
    trace.run(d.as_mut()).unwrap()
}

/// The message of the error `factory` refuses `config` with.
pub(crate) fn refusal(factory: &dyn DetectorFactory, config: &str) -> String {
    let table: toml::Table = config.parse().unwrap();
    factory.build(&table).err().unwrap().to_string()
}

/// A request whose handler makes `n` SQL calls, cycling through `templates`
/// distinct statements.
fn fan(n: u64, templates: u64) -> TraceBuilder {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/dashboard").at_us(0, 1_000_000));
    for i in 0..n {
        t.child(
            root,
            SpanSpec::sql(
                &format!("SELECT * FROM t{} WHERE id = ?", i % templates),
                &i.to_string(),
            )
            .at_us(100 + i * 10, 50),
        );
    }
    t
}

#[test]
fn conformance() {
    check_conformance(&ExcessiveFanout).unwrap();
}

#[test]
fn twenty_children_are_fine_twenty_one_are_reported() {
    assert!(run(&ExcessiveFanout, "", &fan(20, 1)).is_empty());
    let found = run(&ExcessiveFanout, "", &fan(21, 3));
    assert_eq!(found.len(), 1);
    let f = &found[0];
    assert_eq!(f.kind.as_str(), "excessive_fanout");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.template.as_str(), "GET /dashboard");
    assert_eq!(f.endpoint.as_str(), "GET /dashboard");
    assert_eq!(f.service.as_str(), "svc");
    assert_eq!(
        (f.occurrences, f.distinct_params, f.avoidable_io),
        (21, 3, 0)
    );
    assert_eq!(f.extra_value("children"), Some("21"));
    assert_eq!(f.extra_value("distinct_child_templates"), Some("3"));
    // t0 and t1 and t2 appear 7 times each: the tie goes to the first name.
    assert_eq!(
        f.extra_value("top_child_template"),
        Some("SELECT * FROM t0 WHERE id = ?")
    );
    // The parent first, then its children in start order.
    assert_eq!(f.evidence.len(), 22);
    assert_eq!(f.evidence[0], TraceBuilder::span_id(0));
    assert_eq!(f.evidence[1], TraceBuilder::span_id(1));
    assert!(f.suggestion.contains("Batch"));
    // Timing covers the children.
    let first = detector_api::testkit::T0_NS + 100_000;
    assert_eq!(f.first_ns, first);
    assert_eq!(f.last_ns, first + 200_000 + 50_000);
    assert_eq!(f.total_duration_ns, 21 * 50_000);
}

#[test]
fn sixty_children_are_a_warning_sixty_one_are_critical() {
    let f = run(&ExcessiveFanout, "", &fan(60, 2));
    assert_eq!(f[0].severity, Severity::Warning);
    let f = run(&ExcessiveFanout, "", &fan(61, 2));
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(f[0].occurrences, 61);
    // Evidence is bounded: the parent and the first 49 children.
    assert_eq!(f[0].evidence.len(), crate::common::MAX_EVIDENCE);
}

#[test]
fn the_most_frequent_child_template_is_named() {
    let mut t = fan(21, 1);
    let root = 0;
    for i in 0..3u64 {
        t.child(
            root,
            SpanSpec::http_client("GET", "users/users/{id}", &i.to_string()).at_us(900 + i, 5),
        );
    }
    let f = &run(&ExcessiveFanout, "", &t)[0];
    assert_eq!(f.occurrences, 24);
    assert_eq!(f.distinct_params, 2);
    assert_eq!(
        f.extra_value("top_child_template"),
        Some("SELECT * FROM t0 WHERE id = ?")
    );
    assert_eq!(f.extra_value("top_child_count"), Some("21"));
    assert!(f.suggestion.contains("SELECT * FROM t0 WHERE id = ?"));
}

#[test]
fn a_parent_without_template_is_named_by_its_span_name() {
    let mut t = TraceBuilder::new();
    let mut job = SpanSpec::default().at_us(0, 10_000);
    job.name = "nightly-export".into();
    let root = t.root(job);
    for i in 0..25u64 {
        let mut c = SpanSpec::default().at_us(i, 1);
        c.name = format!("step-{}", i % 2);
        t.child(root, c);
    }
    let f = &run(&ExcessiveFanout, "", &t)[0];
    assert_eq!(f.template.as_str(), "nightly-export");
    assert_eq!(f.endpoint.as_str(), "");
    assert_eq!(f.distinct_params, 2);
}

#[test]
fn each_parent_is_judged_on_its_own_children() {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/a").at_us(0, 100_000));
    let left = t.child(root, SpanSpec::default().at_us(1, 50_000));
    let right = t.child(root, SpanSpec::default().at_us(2, 50_000));
    for i in 0..15u64 {
        t.child(left, SpanSpec::sql("SELECT 1", "").at_us(10 + i, 1));
        t.child(right, SpanSpec::sql("SELECT 2", "").at_us(10 + i, 1));
    }
    assert!(run(&ExcessiveFanout, "", &t).is_empty());
    assert_eq!(run(&ExcessiveFanout, "max_fanout = 14", &t).len(), 2);
}

#[test]
fn configuration_changes_thresholds() {
    let t = fan(10, 1);
    let f = run(&ExcessiveFanout, "max_fanout = 5", &t);
    assert_eq!(f[0].severity, Severity::Warning);
    let f = run(
        &ExcessiveFanout,
        "max_fanout = 4\ncritical_multiplier = 2",
        &t,
    );
    assert_eq!(f[0].severity, Severity::Critical);
}

#[test]
fn bad_configuration_is_refused_with_the_key() {
    assert!(refusal(&ExcessiveFanout, "max_fanout = 0").contains("max_fanout"));
    assert!(refusal(&ExcessiveFanout, "max_fanout = -1").contains("max_fanout"));
    assert!(refusal(&ExcessiveFanout, "critical_multiplier = 0.5").contains("critical_multiplier"));
    assert!(refusal(&ExcessiveFanout, "critical_multiplier = nan").contains("critical_multiplier"));
    assert!(refusal(&ExcessiveFanout, "max_fanot = 3").contains("max_fanot"));
}

#[test]
fn defaults_and_inherited_keys() {
    let d = ExcessiveFanout.default_config();
    assert_eq!(d["max_fanout"].as_integer(), Some(20));
    assert_eq!(d["critical_multiplier"].as_float(), Some(3.0));
    assert_eq!(
        ExcessiveFanout.inherited_keys(),
        &[InheritedKey {
            detection_key: "max_fanout",
            key: "max_fanout"
        }]
    );
}

// ---- random traces, shared with the other modules' tests -----------------

/// One span of a random trace.
#[derive(Debug, Clone)]
pub(crate) struct RawSpan {
    /// Parent index; may be out of range, the span itself, or a later span.
    pub parent: Option<usize>,
    pub kind: IoKind,
    pub span_kind: SpanKind,
    pub service: u8,
    pub template: u8,
    pub start_us: u64,
    pub duration_us: u64,
}

fn arb_kind() -> impl Strategy<Value = IoKind> {
    prop::sample::select(IoKind::ALL.to_vec())
}

fn arb_span_kind() -> impl Strategy<Value = SpanKind> {
    prop::sample::select(vec![
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ])
}

/// Any trace: arbitrary parents (cycles, self-parents, out of range),
/// equal and huge timestamps, durations that overflow the end.
pub(crate) fn arb_hostile_trace() -> impl Strategy<Value = Vec<RawSpan>> {
    let span = (
        prop::option::weighted(0.8, 0usize..90),
        arb_kind(),
        arb_span_kind(),
        0u8..3,
        0u8..5,
        prop_oneof![0u64..100, 0u64..1_000_000_000],
        prop_oneof![0u64..100, Just(0u64), Just(u64::MAX / 1000)],
    )
        .prop_map(
            |(parent, kind, span_kind, service, template, start_us, duration_us)| RawSpan {
                parent,
                kind,
                span_kind,
                service,
                template,
                start_us,
                duration_us,
            },
        );
    prop::collection::vec(span, 0..90)
}

/// A trace whose spans all start at distinct instants (so the order of
/// equal starts never matters), mostly shaped as a tree with few wide
/// parents, together with a permutation of its spans.
pub(crate) fn arb_trace_and_order() -> impl Strategy<Value = (Vec<RawSpan>, Vec<usize>)> {
    (1usize..80)
        .prop_flat_map(|n| {
            (
                prop::collection::btree_set(0u64..6_000, n),
                prop::collection::vec(
                    (
                        prop::option::weighted(0.9, 0usize..6),
                        arb_kind(),
                        arb_span_kind(),
                        0u8..3,
                        0u8..5,
                        prop::sample::select(vec![0u64, 1, 5, 20, 40, 100, 2_000]),
                    ),
                    n,
                ),
            )
        })
        .prop_flat_map(|(starts, specs)| {
            let spans: Vec<RawSpan> = starts
                .into_iter()
                .zip(specs)
                .map(
                    |(start_us, (parent, kind, span_kind, service, template, duration_us))| {
                        RawSpan {
                            parent,
                            kind,
                            span_kind,
                            service,
                            template,
                            start_us,
                            duration_us,
                        }
                    },
                )
                .collect();
            let order: Vec<usize> = (0..spans.len()).collect();
            (Just(spans), Just(order).prop_shuffle())
        })
}

fn spec_of(raw: &RawSpan) -> SpanSpec {
    let template = if raw.template == 0 {
        String::new()
    } else {
        format!("CALL t{}", raw.template)
    };
    let mut s = SpanSpec {
        service: format!("s{}", raw.service),
        name: format!("op{}", raw.template % 3),
        kind: raw.kind,
        span_kind: raw.span_kind,
        template,
        params: raw.start_us.to_string(),
        ..SpanSpec::default()
    }
    .at_us(raw.start_us, raw.duration_us);
    if raw.kind == IoKind::Sql {
        s.db_system = if raw.template.is_multiple_of(2) {
            "postgresql"
        } else {
            "mysql"
        }
        .into();
    }
    if raw.span_kind.is_inbound() && raw.template % 2 == 1 {
        s.http_method = "GET".into();
        s.http_route = format!("/r{}", raw.template);
    }
    s
}

/// Builds `raw` with span `order[k]` at position `k`, parents remapped.
pub(crate) fn build(raw: &[RawSpan], order: &[usize]) -> TraceBuilder {
    let mut position = vec![0usize; raw.len()];
    for (k, &i) in order.iter().enumerate() {
        position[i] = k;
    }
    let mut t = TraceBuilder::new();
    for &i in order {
        let spec = spec_of(&raw[i]);
        match raw[i].parent {
            Some(p) if p < raw.len() => t.child(position[p], spec),
            Some(p) => t.child(p, spec),
            None => t.root(spec),
        };
    }
    t
}

/// Runs `factory` with `config` over `raw` in its own order and in `order`,
/// and checks both give the same findings (evidence compared as the
/// original spans).
pub(crate) fn assert_order_invariant(
    factory: &dyn DetectorFactory,
    config: &str,
    raw: &[RawSpan],
    order: &[usize],
) -> Result<(), TestCaseError> {
    let identity: Vec<usize> = (0..raw.len()).collect();
    let expected = run(factory, config, &build(raw, &identity));
    let mut shuffled = run(factory, config, &build(raw, order));
    for f in &mut shuffled {
        for id in f.evidence.iter_mut() {
            let k = u64::from_be_bytes(id.0) as usize - 1;
            *id = TraceBuilder::span_id(order[k]);
        }
    }
    prop_assert_eq!(expected, shuffled);
    Ok(())
}

/// Runs `factory` over `raw` and checks it neither fails nor cites a span
/// outside the trace.
pub(crate) fn assert_sound(
    factory: &dyn DetectorFactory,
    config: &str,
    raw: &[RawSpan],
) -> Result<Vec<Finding>, TestCaseError> {
    let identity: Vec<usize> = (0..raw.len()).collect();
    let found = run(factory, config, &build(raw, &identity));
    let known: Vec<SpanId> = (0..raw.len()).map(TraceBuilder::span_id).collect();
    for f in &found {
        prop_assert!(f.evidence.len() <= crate::common::MAX_EVIDENCE);
        prop_assert!(f.evidence.iter().all(|s| known.contains(s)));
        prop_assert!(f.first_ns <= f.last_ns);
    }
    Ok(found)
}

proptest! {
    #[test]
    fn never_panics_on_any_trace(raw in arb_hostile_trace()) {
        for config in ["", "max_fanout = 1", "max_fanout = 3\ncritical_multiplier = 1"] {
            for f in assert_sound(&ExcessiveFanout, config, &raw)? {
                prop_assert!(f.occurrences > 1);
            }
        }
    }

    #[test]
    fn span_order_does_not_change_findings((raw, order) in arb_trace_and_order()) {
        for config in ["", "max_fanout = 3"] {
            assert_order_invariant(&ExcessiveFanout, config, &raw, &order)?;
        }
    }
}
