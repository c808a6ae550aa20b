use detector_api::testkit::{SpanSpec, TraceBuilder, check_conformance};
use detector_api::{DetectorFactory, Finding, Severity};

use super::*;

const Q: &str = "SELECT * FROM items WHERE order_id = ?";

fn run(factory: &dyn DetectorFactory, config: &str, trace: &TraceBuilder) -> Vec<Finding> {
    let table: toml::Table = config.parse().unwrap();
    let mut d = factory.build(&table).unwrap();
    trace.run(d.as_mut()).unwrap()
}

/// A request that runs `Q` once per `(start_ms, param)`.
fn sql_loop(calls: &[(u64, &str)]) -> TraceBuilder {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/orders/{id}").at_us(0, 2_000_000));
    for (start_ms, param) in calls {
        t.child(root, SpanSpec::sql(Q, param).at_us(start_ms * 1000, 300));
    }
    t
}

fn distinct(n: u64, step_ms: u64) -> Vec<(u64, String)> {
    (0..n)
        .map(|i| (10 + i * step_ms, format!("p{i}")))
        .collect()
}

fn as_refs(v: &[(u64, String)]) -> Vec<(u64, &str)> {
    v.iter().map(|(t, p)| (*t, p.as_str())).collect()
}

#[test]
fn both_factories_pass_conformance() {
    check_conformance(&NPlusOneSql).unwrap();
    check_conformance(&NPlusOneHttp).unwrap();
}

#[test]
fn four_distinct_calls_are_not_an_n_plus_one_but_five_are() {
    let four = distinct(4, 10);
    assert!(run(&NPlusOneSql, "", &sql_loop(&as_refs(&four))).is_empty());
    let five = distinct(5, 10);
    let found = run(&NPlusOneSql, "", &sql_loop(&as_refs(&five)));
    assert_eq!(found.len(), 1);
    let f = &found[0];
    assert_eq!(f.kind.as_str(), "n_plus_one_sql");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!((f.occurrences, f.distinct_params), (5, 5));
    assert_eq!(f.avoidable_io, 4);
    assert_eq!(f.template.as_str(), Q);
    assert_eq!(f.endpoint.as_str(), "GET /orders/{id}");
    assert_eq!(f.evidence.len(), 5);
}

#[test]
fn ten_occurrences_are_critical_nine_are_a_warning() {
    let nine = distinct(9, 5);
    let f = run(&NPlusOneSql, "", &sql_loop(&as_refs(&nine)));
    assert_eq!(f[0].severity, Severity::Warning);
    let ten = distinct(10, 5);
    let f = run(&NPlusOneSql, "", &sql_loop(&as_refs(&ten)));
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(f[0].occurrences, 10);
}

#[test]
fn the_window_edge_is_inclusive() {
    // Five starts spanning exactly 500 ms fit the window.
    let on_edge = distinct(5, 125);
    assert_eq!(
        run(&NPlusOneSql, "", &sql_loop(&as_refs(&on_edge))).len(),
        1
    );
    // One millisecond more and no 500 ms window holds five of them.
    let mut past = distinct(5, 125);
    past[4].0 += 1;
    assert!(run(&NPlusOneSql, "", &sql_loop(&as_refs(&past))).is_empty());
}

#[test]
fn the_same_parameters_repeated_are_not_an_n_plus_one() {
    let same: Vec<(u64, &str)> = (0..12).map(|i| (i * 10, "42")).collect();
    assert!(run(&NPlusOneSql, "", &sql_loop(&same)).is_empty());
    // Twelve calls cycling through four values: only four distinct sets.
    let cycling: Vec<(u64, String)> = (0..12).map(|i| (i * 10, format!("p{}", i % 4))).collect();
    assert!(run(&NPlusOneSql, "", &sql_loop(&as_refs(&cycling))).is_empty());
}

#[test]
fn the_densest_window_is_reported() {
    // Three early calls, then a burst of six 2 s later.
    let mut calls = distinct(3, 10);
    calls.extend((0..6).map(|i| (2_000 + i * 10, format!("q{i}"))));
    let found = run(&NPlusOneSql, "", &sql_loop(&as_refs(&calls)));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].occurrences, 6);
}

#[test]
fn different_templates_and_services_are_separate_groups() {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/a").at_us(0, 100_000));
    for i in 0..3u64 {
        t.child(
            root,
            SpanSpec::sql(Q, &format!("a{i}")).at_us(i * 1000, 100),
        );
        t.child(
            root,
            SpanSpec::sql("SELECT * FROM users WHERE id = ?", &format!("b{i}"))
                .at_us(i * 1000, 100),
        );
    }
    for i in 0..3u64 {
        t.child(
            root,
            SpanSpec::sql(Q, &format!("c{i}"))
                .service("other")
                .at_us(i * 1000, 100),
        );
    }
    assert!(run(&NPlusOneSql, "", &t).is_empty());
}

#[test]
fn http_counts_outbound_calls_only() {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/cart").at_us(0, 100_000));
    for i in 0..6u64 {
        t.child(
            root,
            SpanSpec::http_client("GET", "catalog/products/{id}", &i.to_string())
                .at_us(1_000 + i * 1_000, 500)
                .code("fetch_product", "cart/client.py", 88),
        );
    }
    // Inbound spans of the same template never count.
    let mut inbound = TraceBuilder::new();
    for i in 0..6u64 {
        let mut s = SpanSpec::server("GET", "/products/{id}").at_us(i * 1000, 100);
        s.template = "GET catalog/products/{id}".into();
        s.params = i.to_string();
        inbound.root(s);
    }
    assert!(run(&NPlusOneHttp, "", &inbound).is_empty());
    assert!(run(&NPlusOneSql, "", &t).is_empty());

    let found = run(&NPlusOneHttp, "", &t);
    assert_eq!(found.len(), 1);
    let f = &found[0];
    assert_eq!(f.kind.as_str(), "n_plus_one_http");
    assert_eq!(f.template.as_str(), "GET catalog/products/{id}");
    assert_eq!(f.endpoint.as_str(), "GET /cart");
    assert_eq!(f.code.function.as_str(), "fetch_product");
    assert_eq!(f.code.lineno, 88);
}

#[test]
fn configuration_changes_thresholds() {
    let four = distinct(4, 10);
    let t = sql_loop(&as_refs(&four));
    let f = run(
        &NPlusOneSql,
        "min_occurrences = 3\ncritical_occurrences = 4",
        &t,
    );
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Critical);
    let wide = distinct(5, 200);
    assert!(run(&NPlusOneSql, "", &sql_loop(&as_refs(&wide))).is_empty());
    assert_eq!(
        run(
            &NPlusOneSql,
            "window_duration_ms = 1000",
            &sql_loop(&as_refs(&wide))
        )
        .len(),
        1
    );
}

#[test]
fn a_high_minimum_raises_the_default_critical_threshold() {
    let twelve = distinct(12, 5);
    let f = run(
        &NPlusOneSql,
        "min_occurrences = 12",
        &sql_loop(&as_refs(&twelve)),
    );
    assert_eq!(f[0].severity, Severity::Critical);
    let eleven = distinct(11, 5);
    assert!(
        run(
            &NPlusOneSql,
            "min_occurrences = 12",
            &sql_loop(&as_refs(&eleven))
        )
        .is_empty()
    );
}

#[test]
fn bad_configuration_is_refused_with_the_key() {
    let err = |cfg: &str| {
        let table: toml::Table = cfg.parse().unwrap();
        NPlusOneSql.build(&table).err().unwrap().to_string()
    };
    assert!(err("min_occurrences = 1").contains("min_occurrences"));
    assert!(err("window_duration_ms = 0").contains("window_duration_ms"));
    assert!(err("min_occurrences = 8\ncritical_occurrences = 4").contains("critical_occurrences"));
    assert!(err("min_occurrences = \"five\"").contains("min_occurrences"));
    assert!(err("min_ocurrences = 5").contains("min_ocurrences"));
}
