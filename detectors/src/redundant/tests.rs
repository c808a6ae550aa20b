use detector_api::testkit::{SpanSpec, TraceBuilder, check_conformance};
use detector_api::{DetectorFactory, Finding, Severity};

use super::*;

const Q: &str = "SELECT * FROM config WHERE key = ?";

fn run(factory: &dyn DetectorFactory, config: &str, trace: &TraceBuilder) -> Vec<Finding> {
    let table: toml::Table = config.parse().unwrap();
    let mut d = factory.build(&table).unwrap();
    trace.run(d.as_mut()).unwrap()
}

/// A request that runs `template` once per param, 1 ms apart.
fn calls(template: &str, params: &[&str]) -> TraceBuilder {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("POST", "/checkout").at_us(0, 900_000));
    for (i, p) in params.iter().enumerate() {
        t.child(
            root,
            SpanSpec::sql(template, p)
                .at_us(1_000 + i as u64 * 1_000, 300)
                .code("load_config", "src/config.rs", 12),
        );
    }
    t
}

#[test]
fn both_factories_pass_conformance() {
    check_conformance(&RedundantSql).unwrap();
    check_conformance(&RedundantHttp).unwrap();
}

#[test]
fn one_call_is_fine_two_identical_calls_are_redundant() {
    assert!(run(&RedundantSql, "", &calls(Q, &["a"])).is_empty());
    let found = run(&RedundantSql, "", &calls(Q, &["a", "a"]));
    assert_eq!(found.len(), 1);
    let f = &found[0];
    assert_eq!(f.kind.as_str(), "redundant_sql");
    assert_eq!(f.severity, Severity::Info);
    assert_eq!(
        (f.occurrences, f.distinct_params, f.avoidable_io),
        (2, 1, 1)
    );
    assert_eq!(f.template.as_str(), Q);
    assert_eq!(f.endpoint.as_str(), "POST /checkout");
    assert_eq!(f.service.as_str(), "svc");
    assert_eq!(f.evidence.len(), 2);
    assert_eq!(f.code.function.as_str(), "load_config");
    assert!(f.suggestion.contains("reuse"));
    // Same template, different parameters: not redundant.
    assert!(run(&RedundantSql, "", &calls(Q, &["a", "b"])).is_empty());
}

#[test]
fn four_repeats_are_info_five_are_a_warning() {
    let f = run(&RedundantSql, "", &calls(Q, &["a"; 4]));
    assert_eq!((f[0].severity, f[0].occurrences), (Severity::Info, 4));
    let f = run(&RedundantSql, "", &calls(Q, &["a"; 5]));
    assert_eq!((f[0].severity, f[0].occurrences), (Severity::Warning, 5));
    let f = run(
        &RedundantSql,
        "warning_occurrences = 3",
        &calls(Q, &["a"; 3]),
    );
    assert_eq!(f[0].severity, Severity::Warning);
    assert!(run(&RedundantSql, "min_occurrences = 3", &calls(Q, &["a"; 2])).is_empty());
}

#[test]
fn each_parameter_set_is_its_own_finding_in_a_stable_order() {
    let found = run(&RedundantSql, "", &calls(Q, &["b", "a", "b", "a", "c"]));
    assert_eq!(found.len(), 2);
    // Ordered by first occurrence within one template.
    assert!(found[0].first_ns < found[1].first_ns);
    assert_eq!(found[0].evidence[0], TraceBuilder::span_id(1));
}

#[test]
fn an_n_plus_one_template_is_not_also_redundant() {
    // Six distinct ids (an N+1) among which one repeats.
    let params = ["1", "2", "3", "4", "5", "6", "1"];
    let t = calls("SELECT * FROM items WHERE id = ?", &params);
    assert!(run(&RedundantSql, "", &t).is_empty());
    // With a higher N+1 minimum it is no N+1, so the repeat is reported.
    let found = run(&RedundantSql, "n_plus_one_min_occurrences = 7", &t);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].occurrences, 2);
    // A narrow N+1 window: no N+1 either.
    assert_eq!(run(&RedundantSql, "window_duration_ms = 2", &t).len(), 1);
}

#[test]
fn sanitized_statements_are_never_redundant_parameterless_ones_are() {
    // A placeholder and no parameter: the values are unknown.
    assert!(run(&RedundantSql, "", &calls(Q, &["", "", ""])).is_empty());
    let dollar = "SELECT * FROM config WHERE key = $1";
    assert!(run(&RedundantSql, "", &calls(dollar, &["", ""])).is_empty());
    // No placeholder at all: the same statement every time.
    let found = run(
        &RedundantSql,
        "",
        &calls("SELECT * FROM settings", &["", "", ""]),
    );
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].occurrences, 3);
}

#[test]
fn retries_after_failures_are_not_redundant() {
    let mut t = calls(Q, &["a", "a", "a"]);
    t.span_mut(1).is_error = true;
    t.span_mut(2).is_error = true;
    assert!(run(&RedundantSql, "", &t).is_empty());
}

#[test]
fn services_are_separate() {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/x").at_us(0, 10_000));
    t.child(root, SpanSpec::sql(Q, "a").at_us(100, 10));
    t.child(root, SpanSpec::sql(Q, "a").service("other").at_us(200, 10));
    assert!(run(&RedundantSql, "", &t).is_empty());
}

fn http_calls(method: &str, n: u64) -> TraceBuilder {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/cart").at_us(0, 100_000));
    for i in 0..n {
        t.child(
            root,
            SpanSpec::http_client(method, "pricing/prices/{id}", "id=7")
                .at_us(1_000 + i * 1_000, 500),
        );
    }
    t
}

#[test]
fn http_repeats_of_safe_methods_only() {
    let found = run(&RedundantHttp, "", &http_calls("GET", 2));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind.as_str(), "redundant_http");
    assert_eq!(found[0].template.as_str(), "GET pricing/prices/{id}");
    assert!(found[0].suggestion.contains("reuse"));
    assert_eq!(run(&RedundantHttp, "", &http_calls("DELETE", 2)).len(), 1);
    // A POST body carries what the span does not show.
    assert!(run(&RedundantHttp, "", &http_calls("POST", 3)).is_empty());
    assert!(run(&RedundantHttp, "", &http_calls("PATCH", 3)).is_empty());
    // SQL and HTTP detectors stay in their lane.
    assert!(run(&RedundantSql, "", &http_calls("GET", 3)).is_empty());
    assert!(run(&RedundantHttp, "", &calls(Q, &["a", "a"])).is_empty());
}

#[test]
fn evidence_is_bounded() {
    let params = vec!["a"; 60];
    let found = run(&RedundantSql, "", &calls(Q, &params));
    assert_eq!(found[0].occurrences, 60);
    assert_eq!(found[0].avoidable_io, 59);
    assert_eq!(found[0].evidence.len(), MAX_EVIDENCE);
}

#[test]
fn bad_configuration_is_refused_with_the_key() {
    let err = |cfg: &str| {
        let table: toml::Table = cfg.parse().unwrap();
        RedundantHttp.build(&table).err().unwrap().to_string()
    };
    assert!(err("min_occurrences = 1").contains("min_occurrences"));
    assert!(err("min_occurrences = 4\nwarning_occurrences = 3").contains("warning_occurrences"));
    assert!(err("n_plus_one_min_occurrences = 1").contains("n_plus_one_min_occurrences"));
    assert!(err("window_duration_ms = 0").contains("window_duration_ms"));
    assert!(err("min_occurences = 2").contains("min_occurences"));
    let keys: Vec<_> = RedundantSql
        .inherited_keys()
        .iter()
        .map(|k| k.key)
        .collect();
    assert_eq!(keys, ["n_plus_one_min_occurrences", "window_duration_ms"]);
    assert_eq!(
        RedundantSql.default_config().get("warning_occurrences"),
        Some(&toml::Value::Integer(5))
    );
}
