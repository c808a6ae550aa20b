use detector_api::testkit::{SpanSpec, T0_NS, TraceBuilder, check_conformance};
use detector_api::{DetectorFactory, Finding, IoKind, Severity, SpanId, SpanKind};
use proptest::prelude::*;

use super::*;
use crate::n_plus_one::{NPlusOneHttp, NPlusOneMessaging, NPlusOneSql};
use crate::redundant::{RedundantHttp, RedundantSql};

fn run(factory: &dyn DetectorFactory, config: &str, trace: &TraceBuilder) -> Vec<Finding> {
    let table: toml::Table = config.parse().unwrap();
    let mut d = factory.build(&table).unwrap();
    trace.run(d.as_mut()).unwrap()
}

/// One request to `GET /a` making `repeats` identical SQL calls and `unique`
/// calls with templates of their own.
fn waste(repeats: u64, unique: u64) -> TraceBuilder {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/a").at_us(0, 2_000_000));
    for i in 0..repeats {
        t.child(
            root,
            SpanSpec::sql("SELECT * FROM config WHERE key = ?", "k").at_us(i * 100, 50),
        );
    }
    for i in 0..unique {
        t.child(
            root,
            SpanSpec::sql(&format!("SELECT * FROM t{i} WHERE id = ?"), "1")
                .at_us(500_000 + i * 100, 50),
        );
    }
    t
}

#[test]
fn passes_conformance() {
    check_conformance(&IoWasteFactory).unwrap();
}

#[test]
fn bands_switch_exactly_at_their_edges() {
    assert_eq!(Band::waste(0, 10), Band::Healthy);
    assert_eq!(Band::waste(99, 1000), Band::Healthy);
    assert_eq!(Band::waste(1, 10), Band::Moderate);
    assert_eq!(Band::waste(299, 1000), Band::Moderate);
    assert_eq!(Band::waste(3, 10), Band::High);
    assert_eq!(Band::waste(499, 1000), Band::High);
    assert_eq!(Band::waste(5, 10), Band::Critical);
    assert_eq!(Band::waste(10, 10), Band::Critical);
    assert_eq!(Band::intensity(19, 10), Band::Healthy);
    assert_eq!(Band::intensity(2, 1), Band::Moderate);
    assert_eq!(Band::intensity(49, 10), Band::Moderate);
    assert_eq!(Band::intensity(5, 1), Band::High);
    assert_eq!(Band::intensity(99, 10), Band::High);
    assert_eq!(Band::intensity(10, 1), Band::Critical);
}

#[test]
fn waste_ratio_edges_in_traces() {
    // 99 of 1000: healthy, not reported.
    assert!(run(&IoWasteFactory, "", &waste(100, 900)).is_empty());
    let cases = [
        (2, 8, "0.100", "moderate", Severity::Info),
        (4, 6, "0.300", "high", Severity::Warning),
        (6, 4, "0.500", "critical", Severity::Critical),
    ];
    for (repeats, unique, ratio, band, severity) in cases {
        let found = run(&IoWasteFactory, "", &waste(repeats, unique));
        assert_eq!(found.len(), 1, "{ratio}");
        let f = &found[0];
        assert_eq!(f.kind.as_str(), "io_waste");
        assert_eq!(f.extra_value("io_waste_ratio"), Some(ratio));
        assert_eq!(f.extra_value("io_waste_band"), Some(band));
        assert_eq!(f.extra_value("total_io_ops"), Some("10"));
        let avoidable = (repeats - 1).to_string();
        assert_eq!(f.extra_value("avoidable_io_ops"), Some(avoidable.as_str()));
        assert_eq!(f.severity, severity);
        assert_eq!(u64::from(f.occurrences), repeats - 1);
        assert_eq!(u64::from(f.avoidable_io), repeats - 1);
        assert_eq!(f.distinct_params, 1);
        assert_eq!(f.template.as_str(), "GET /a");
        assert_eq!(f.endpoint.as_str(), "GET /a");
        assert_eq!(f.evidence.len() as u64, repeats);
        assert_eq!(f.first_ns, T0_NS);
        assert!(f.suggestion.contains("SELECT * FROM config WHERE key = ?"));
    }
    // A higher minimum leaves the moderate trace out.
    assert!(run(&IoWasteFactory, "waste_ratio_min = 0.3", &waste(2, 8)).is_empty());
    assert_eq!(
        run(&IoWasteFactory, "waste_ratio_min = 0.3", &waste(4, 6)).len(),
        1
    );
}

#[test]
fn intensity_is_ops_per_invocation_of_the_endpoint() {
    // 10 ops under one invocation: critical intensity.
    let f = &run(&IoWasteFactory, "", &waste(2, 8))[0];
    assert_eq!(f.extra_value("io_intensity_score"), Some("10.00"));
    assert_eq!(f.extra_value("io_intensity_band"), Some("critical"));
    // 9 ops: high.
    let f = &run(&IoWasteFactory, "", &waste(2, 7))[0];
    assert_eq!(f.extra_value("io_intensity_score"), Some("9.00"));
    assert_eq!(f.extra_value("io_intensity_band"), Some("high"));
    // Two invocations of GET /a with 2 ops each: 2 per invocation, moderate.
    let mut t = TraceBuilder::new();
    for r in 0..2u64 {
        let root = t.root(SpanSpec::server("GET", "/a").at_us(r * 100_000, 50_000));
        t.child(
            root,
            SpanSpec::sql("SELECT * FROM c WHERE k = ?", "k").at_us(r * 100_000 + 10, 5),
        );
        t.child(
            root,
            SpanSpec::sql("SELECT * FROM d WHERE k = ?", "k").at_us(r * 100_000 + 20, 5),
        );
    }
    let f = &run(&IoWasteFactory, "", &t)[0];
    assert_eq!(f.extra_value("total_io_ops"), Some("4"));
    assert_eq!(f.extra_value("avoidable_io_ops"), Some("2"));
    assert_eq!(f.extra_value("io_intensity_score"), Some("2.00"));
    assert_eq!(f.extra_value("io_intensity_band"), Some("moderate"));
    // One op per invocation: healthy.
    let mut t = TraceBuilder::new();
    for r in 0..2u64 {
        let root = t.root(SpanSpec::server("GET", "/b").at_us(r * 1000, 500));
        t.child(root, SpanSpec::sql("SELECT 1", "").at_us(r * 1000 + 1, 5));
    }
    let f = &run(&IoWasteFactory, "", &t)[0];
    assert_eq!(f.extra_value("io_intensity_score"), Some("1.00"));
    assert_eq!(f.extra_value("io_intensity_band"), Some("healthy"));
}

#[test]
fn a_template_both_n_plus_one_and_redundant_counts_once() {
    // Six distinct ids then id 1 twice more: N+1 of 8 calls (7 avoidable),
    // and a repeat of 3 (2 avoidable): 7, not 9.
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/orders").at_us(0, 100_000));
    let params = ["1", "2", "3", "4", "5", "6", "1", "1"];
    for (i, p) in params.iter().enumerate() {
        t.child(
            root,
            SpanSpec::sql("SELECT * FROM items WHERE id = ?", p).at_us(i as u64 * 1_000, 500),
        );
    }
    t.child(
        root,
        SpanSpec::http_client("GET", "users/{id}", "1").at_us(50_000, 100),
    );
    t.child(
        root,
        SpanSpec::http_client("GET", "users/{id}", "1").at_us(51_000, 100),
    );
    let f = &run(&IoWasteFactory, "", &t)[0];
    assert_eq!(f.extra_value("total_io_ops"), Some("10"));
    assert_eq!(f.extra_value("avoidable_io_ops"), Some("8"));
    assert_eq!(f.distinct_params, 2);
    assert_eq!(f.extra_value("io_waste_ratio"), Some("0.800"));
}

#[test]
fn every_io_kind_counts_and_inbound_spans_do_not() {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("POST", "/import").at_us(0, 100_000));
    for i in 0..5u64 {
        let mut s = SpanSpec {
            kind: IoKind::Messaging,
            span_kind: SpanKind::Producer,
            template: "kafka orders".into(),
            ..SpanSpec::default()
        };
        s.start_us = 1_000 + i * 1_000;
        t.child(root, s);
    }
    for i in 0..5u64 {
        let mut s = SpanSpec {
            kind: IoKind::Rpc,
            span_kind: SpanKind::Client,
            template: format!("grpc Svc/M{i}"),
            ..SpanSpec::default()
        };
        s.start_us = 10_000 + i * 1_000;
        t.child(root, s);
    }
    // A consumer (inbound) span is not an operation of this request.
    let mut consumer = SpanSpec {
        kind: IoKind::Messaging,
        span_kind: SpanKind::Consumer,
        template: "kafka orders".into(),
        ..SpanSpec::default()
    };
    consumer.start_us = 20_000;
    t.child(root, consumer);
    let f = &run(&IoWasteFactory, "", &t)[0];
    assert_eq!(f.extra_value("total_io_ops"), Some("10"));
    assert_eq!(f.extra_value("avoidable_io_ops"), Some("4"));
    assert_eq!(f.endpoint.as_str(), "POST /import");
}

#[test]
fn the_endpoint_with_the_most_waste_is_named() {
    let mut t = TraceBuilder::new();
    let a = t.root(
        SpanSpec::server("GET", "/a")
            .service("front")
            .at_us(0, 10_000),
    );
    let b = t.root(
        SpanSpec::server("GET", "/b")
            .service("back")
            .at_us(20_000, 10_000),
    );
    for i in 0..2u64 {
        t.child(
            a,
            SpanSpec::sql("SELECT a FROM x WHERE k = ?", "1")
                .service("front")
                .at_us(100 + i * 10, 5),
        );
    }
    for i in 0..4u64 {
        t.child(
            b,
            SpanSpec::sql("SELECT b FROM y WHERE k = ?", "1")
                .service("back")
                .at_us(20_100 + i * 10, 5),
        );
    }
    let f = &run(&IoWasteFactory, "", &t)[0];
    assert_eq!(f.endpoint.as_str(), "GET /b");
    assert_eq!(f.service.as_str(), "back");
    assert_eq!(f.extra_value("avoidable_io_ops"), Some("4"));
    assert_eq!(f.extra_value("io_intensity_score"), Some("4.00"));
    // No inbound span at all: the root's name stands for the endpoint.
    let mut t = TraceBuilder::new();
    let mut job = SpanSpec::default().at_us(0, 10_000);
    job.name = "nightly-job".into();
    let root = t.root(job);
    for i in 0..3u64 {
        t.child(
            root,
            SpanSpec::sql("SELECT 1 FROM z", "").at_us(100 + i * 10, 5),
        );
    }
    let f = &run(&IoWasteFactory, "", &t)[0];
    assert_eq!(f.endpoint.as_str(), "");
    assert_eq!(f.template.as_str(), "nightly-job");
    assert_eq!(f.extra_value("io_intensity_score"), Some("3.00"));
}

#[test]
fn sanitized_loops_follow_the_inherited_mode() {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/a").at_us(0, 100_000));
    for i in 0..6u64 {
        t.child(
            root,
            SpanSpec::sql("SELECT * FROM items WHERE id = $1", "").at_us(i * 2_000, 1_000),
        );
    }
    for i in 0..4u64 {
        t.child(
            root,
            SpanSpec::sql(&format!("SELECT {i}"), "").at_us(50_000 + i * 10, 5),
        );
    }
    let f = &run(&IoWasteFactory, "", &t)[0];
    assert_eq!(f.extra_value("avoidable_io_ops"), Some("5"));
    assert!(
        run(
            &IoWasteFactory,
            "sanitizer_aware_classification = \"never\"",
            &t
        )
        .is_empty()
    );
    let keys: Vec<_> = IoWasteFactory
        .inherited_keys()
        .iter()
        .map(|k| k.detection_key)
        .collect();
    assert!(keys.contains(&"sanitizer_aware_classification"));
}

#[test]
fn bad_configuration_is_refused_with_the_key() {
    let err = |cfg: &str| {
        let table: toml::Table = cfg.parse().unwrap();
        IoWasteFactory.build(&table).err().unwrap().to_string()
    };
    assert!(err("waste_ratio_min = 0.0").contains("waste_ratio_min"));
    assert!(err("waste_ratio_min = 1.5").contains("waste_ratio_min"));
    assert!(err("waste_ratio_min = nan").contains("waste_ratio_min"));
    assert!(err("n_plus_one_min_occurrences = 1").contains("n_plus_one_min_occurrences"));
    assert!(err("window_duration_ms = 0").contains("window_duration_ms"));
    assert!(
        err("sanitizer_aware_classification = \"maybe\"")
            .contains("sanitizer_aware_classification")
    );
    assert!(err("waste_ratio = 0.2").contains("waste_ratio"));
    let defaults = IoWasteFactory.default_config();
    assert_eq!(
        defaults.get("waste_ratio_min"),
        Some(&toml::Value::Float(0.10))
    );
}

// --- Properties over random traces, for every detector of this family. ---

const TEMPLATES: [&str; 4] = [
    "SELECT * FROM a WHERE id = ?",
    "SELECT * FROM b WHERE id = $1",
    "SELECT * FROM settings",
    "UPDATE c SET x = ? WHERE id = ?",
];

#[derive(Debug, Clone)]
struct Gen {
    shape: u8,
    template: usize,
    param: u8,
    service: bool,
    scope: u8,
    error: bool,
    offset_us: u64,
    duration_us: u64,
    parent: Option<usize>,
}

fn spec(g: &Gen, start_us: u64) -> SpanSpec {
    let template = TEMPLATES[g.template % TEMPLATES.len()];
    let params = if g.param == 0 {
        String::new()
    } else {
        g.param.to_string()
    };
    let mut s = match g.shape % 6 {
        0 | 1 => SpanSpec::sql(template, &params),
        2 => SpanSpec::http_client(["GET", "POST"][g.template % 2], "svc/items/{id}", &params),
        3 => SpanSpec::server("GET", "/r"),
        4 => SpanSpec {
            kind: IoKind::Messaging,
            span_kind: SpanKind::Producer,
            template: "kafka t".into(),
            params: params.clone(),
            ..SpanSpec::default()
        },
        _ => SpanSpec::default(),
    };
    s.scope = [
        "",
        "io.opentelemetry.hibernate-6.0",
        "io.opentelemetry.jdbc",
    ][g.scope as usize % 3]
        .into();
    if g.service {
        s.service = "other".into();
    }
    s.is_error = g.error;
    s.at_us(start_us, g.duration_us)
}

fn gens(max: usize) -> impl Strategy<Value = Vec<Gen>> {
    prop::collection::vec(
        (
            0u8..6,
            0usize..4,
            0u8..5,
            any::<bool>(),
            0u8..3,
            prop::bool::weighted(0.1),
            0u64..900,
            0u64..3_000,
            prop::option::weighted(0.8, 0usize..64),
        )
            .prop_map(
                |(
                    shape,
                    template,
                    param,
                    service,
                    scope,
                    error,
                    offset_us,
                    duration_us,
                    parent,
                )| Gen {
                    shape,
                    template,
                    param,
                    service,
                    scope,
                    error,
                    offset_us,
                    duration_us,
                    parent,
                },
            ),
        0..max,
    )
}

fn factories() -> [&'static dyn DetectorFactory; 6] {
    [
        &NPlusOneSql,
        &NPlusOneHttp,
        &NPlusOneMessaging,
        &RedundantSql,
        &RedundantHttp,
        &IoWasteFactory,
    ]
}

/// Builds the trace adding logical span `order[k]` k-th; returns the trace
/// and, per builder position, the logical span.
fn build(gens: &[Gen], order: &[usize], unique_starts: bool) -> (TraceBuilder, Vec<usize>) {
    let n = gens.len();
    let mut pos = vec![0usize; n];
    for (k, &logical) in order.iter().enumerate() {
        pos[logical] = k;
    }
    let mut t = TraceBuilder::new();
    for &logical in order {
        let g = &gens[logical];
        let start = if unique_starts {
            logical as u64 * 1_000 + g.offset_us
        } else {
            g.offset_us * 10
        };
        let s = spec(g, start);
        match g.parent.filter(|&p| p < n) {
            Some(p) => t.child(pos[p], s),
            None => t.root(s),
        };
    }
    (t, order.to_vec())
}

/// Findings with their evidence renamed to logical span ids.
fn logical(found: Vec<Finding>, logical_of: &[usize]) -> Vec<Finding> {
    let id = |s: &SpanId| {
        let pos = u64::from_be_bytes(s.0) as usize - 1;
        TraceBuilder::span_id(logical_of[pos])
    };
    found
        .into_iter()
        .map(|mut f| {
            f.evidence = f.evidence.iter().map(id).collect();
            f
        })
        .collect()
}

proptest! {
    #[test]
    fn span_order_does_not_change_findings(
        (gens, order) in gens(48).prop_flat_map(|g| {
            let n = g.len();
            (Just(g), Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
        })
    ) {
        let identity: Vec<usize> = (0..gens.len()).collect();
        let (a, a_map) = build(&gens, &identity, true);
        let (b, b_map) = build(&gens, &order, true);
        for factory in factories() {
            // Low thresholds, so that random traces do produce findings.
            let config = if factory.id() == "io_waste" {
                "n_plus_one_min_occurrences = 2\nwaste_ratio_min = 0.01"
            } else {
                "min_occurrences = 2"
            };
            let fa = logical(run(factory, config, &a), &a_map);
            let fb = logical(run(factory, config, &b), &b_map);
            prop_assert_eq!(fa, fb, "{}", factory.id());
        }
    }

    #[test]
    fn random_traces_never_fail(gens in gens(64), mode in 0usize..4) {
        let identity: Vec<usize> = (0..gens.len()).collect();
        let (t, _) = build(&gens, &identity, false);
        let m = ["auto", "strict", "always", "never"][mode];
        for factory in factories() {
            let mut config = String::new();
            if matches!(factory.id(), "n_plus_one_sql" | "io_waste") {
                config = format!("sanitizer_aware_classification = \"{m}\"");
            }
            let table: toml::Table = config.parse().unwrap();
            let mut d = factory.build(&table).unwrap();
            let found = t.run(d.as_mut()).unwrap();
            for f in &found {
                prop_assert!(f.evidence.len() <= MAX_EVIDENCE);
                prop_assert!(f.avoidable_io <= f.occurrences);
                prop_assert!(f.first_ns <= f.last_ns);
            }
        }
    }
}
