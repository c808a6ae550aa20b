use detector_api::testkit::{SpanSpec, TraceBuilder, check_conformance};
use detector_api::{DetectorFactory, Finding, IoKind, Severity, SpanKind};

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

#[test]
fn messaging_passes_conformance() {
    check_conformance(&NPlusOneMessaging).unwrap();
}

fn send(params: &str) -> SpanSpec {
    SpanSpec {
        name: "orders publish".into(),
        kind: IoKind::Messaging,
        span_kind: SpanKind::Producer,
        target: "orders".into(),
        template: "kafka orders".into(),
        params: params.into(),
        messaging_system: "kafka".into(),
        messaging_destination: "orders".into(),
        ..SpanSpec::default()
    }
}

fn sends(n: u64, span_kind: SpanKind) -> TraceBuilder {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("POST", "/orders/import").at_us(0, 500_000));
    for i in 0..n {
        let mut s = send("").at_us(1_000 + i * 2_000, 500);
        s.span_kind = span_kind;
        t.child(root, s);
    }
    t
}

#[test]
fn messaging_counts_sends_alone() {
    // Identical parameters do not matter: five sends in the window suffice.
    assert!(run(&NPlusOneMessaging, "", &sends(4, SpanKind::Producer)).is_empty());
    let found = run(&NPlusOneMessaging, "", &sends(5, SpanKind::Producer));
    assert_eq!(found.len(), 1);
    let f = &found[0];
    assert_eq!(f.kind.as_str(), "n_plus_one_messaging");
    assert_eq!(f.template.as_str(), "kafka orders");
    assert_eq!(
        (f.occurrences, f.distinct_params, f.avoidable_io),
        (5, 1, 4)
    );
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.suggestion.contains("batch"));
    assert_eq!(f.endpoint.as_str(), "POST /orders/import");
    // Consumers receive; they do not send.
    assert!(run(&NPlusOneMessaging, "", &sends(8, SpanKind::Consumer)).is_empty());
    // Other detectors ignore messaging spans.
    assert!(run(&NPlusOneSql, "", &sends(8, SpanKind::Producer)).is_empty());
    // The window still applies.
    let t = sends(5, SpanKind::Producer);
    assert!(run(&NPlusOneMessaging, "window_duration_ms = 5", &t).is_empty());
}

const SANITIZED: &str = "SELECT * FROM items WHERE order_id = ?";

#[derive(Clone, Copy, PartialEq, Debug)]
enum Timing {
    /// One call after the other with idle time between: a loop.
    Spread,
    /// Overlapping calls: concurrent, not a loop.
    Burst,
    /// Sequential, but each call failed: retries.
    Retries,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Orm {
    Absent,
    /// The calls' own scope names the ORM.
    OwnScope,
    /// A Hibernate session span above plain JDBC calls.
    Parent,
    /// `code.namespace` names the ORM.
    CodeHint,
}

fn sanitized_loop(template: &str, n: u64, timing: Timing, orm: Orm) -> TraceBuilder {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/orders/{id}").at_us(0, 500_000));
    let parent = if orm == Orm::Parent {
        let mut s = SpanSpec::default().at_us(500, 400_000);
        s.name = "Session.find com.acme.Item".into();
        s.scope = "io.opentelemetry.hibernate-6.0".into();
        t.child(root, s)
    } else {
        root
    };
    for i in 0..n {
        let (start, dur) = match timing {
            Timing::Spread | Timing::Retries => (1_000 + i * 3_000, 1_000),
            Timing::Burst => (1_000 + i * 100, 2_000),
        };
        let mut s = SpanSpec::sql(template, "").at_us(start, dur);
        s.is_error = timing == Timing::Retries;
        s.scope = match orm {
            Orm::OwnScope => "opentelemetry.instrumentation.sqlalchemy".into(),
            _ => "io.opentelemetry.jdbc".into(),
        };
        if orm == Orm::CodeHint {
            s.code.2 = "org.hibernate.loader.ast.internal.SingleIdLoadPlan".into();
        }
        t.child(parent, s);
    }
    t
}

fn mode(m: &str) -> String {
    format!("sanitizer_aware_classification = \"{m}\"")
}

#[test]
fn sanitized_statements_under_each_mode() {
    use Orm::*;
    use Timing::*;
    // (mode, orm, timing, expected classified_by or None)
    let table: &[(&str, Orm, Timing, Option<&str>)] = &[
        ("never", OwnScope, Spread, None),
        ("never", Absent, Spread, None),
        ("strict", OwnScope, Burst, Some("orm_scope")),
        ("strict", Parent, Spread, Some("orm_scope")),
        ("strict", CodeHint, Spread, Some("orm_scope")),
        ("strict", Absent, Spread, None),
        ("always", Absent, Burst, Some("always")),
        ("always", Absent, Retries, Some("always")),
        ("always", OwnScope, Burst, Some("orm_scope")),
        ("auto", OwnScope, Burst, Some("orm_scope")),
        ("auto", Parent, Burst, Some("orm_scope")),
        ("auto", Absent, Spread, Some("timing_spread")),
        ("auto", Absent, Burst, None),
        ("auto", Absent, Retries, None),
    ];
    for &(m, orm, timing, want) in table {
        let t = sanitized_loop(SANITIZED, 6, timing, orm);
        let found = run(&NPlusOneSql, &mode(m), &t);
        let got = found.first().and_then(|f| f.extra_value("classified_by"));
        assert_eq!(got, want, "mode {m}, orm {orm:?}, timing {timing:?}");
        if let Some(f) = found.first() {
            assert_eq!(f.occurrences, 6);
            assert_eq!(f.distinct_params, 0);
            assert_eq!(f.extra_value("sanitized"), Some("true"));
            assert!(f.title.contains("sanitized"));
            let fw = f.extra_value("framework");
            match orm {
                OwnScope => assert_eq!(fw, Some("sqlalchemy")),
                Parent | CodeHint => assert_eq!(fw, Some("hibernate")),
                Absent => assert_eq!(fw, None),
            }
        }
    }
    // The default mode is auto.
    let spread = sanitized_loop(SANITIZED, 6, Spread, Absent);
    assert_eq!(run(&NPlusOneSql, "", &spread).len(), 1);
    let burst = sanitized_loop(SANITIZED, 6, Burst, Absent);
    assert!(run(&NPlusOneSql, "", &burst).is_empty());
}

#[test]
fn sanitized_statements_still_need_min_occurrences_in_the_window() {
    let four = sanitized_loop(SANITIZED, 4, Timing::Spread, Orm::OwnScope);
    assert!(run(&NPlusOneSql, &mode("always"), &four).is_empty());
    let five = sanitized_loop(SANITIZED, 5, Timing::Spread, Orm::Absent);
    assert_eq!(run(&NPlusOneSql, "", &five).len(), 1);
    // Spread over 12 ms: a 10 ms window holds only four of them.
    assert!(run(&NPlusOneSql, "window_duration_ms = 10", &five).is_empty());
}

#[test]
fn a_loop_run_is_cut_by_overlap_and_failure() {
    // Three sequential calls, one overlapping call, three more sequential:
    // no loop run of five.
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/x").at_us(0, 500_000));
    for start in [0, 2_000, 4_000, 4_500, 8_000, 10_000, 12_000] {
        t.child(root, SpanSpec::sql(SANITIZED, "").at_us(start, 1_000));
    }
    assert!(run(&NPlusOneSql, "", &t).is_empty());
    assert_eq!(run(&NPlusOneSql, "min_occurrences = 3", &t).len(), 1);
    // Back to back (no idle time between calls) is a burst too.
    let mut b2b = TraceBuilder::new();
    let root = b2b.root(SpanSpec::server("GET", "/x").at_us(0, 500_000));
    for i in 0..6 {
        b2b.child(root, SpanSpec::sql(SANITIZED, "").at_us(i * 1_000, 1_000));
    }
    assert!(run(&NPlusOneSql, "", &b2b).is_empty());
}

#[test]
fn every_placeholder_style_marks_a_sanitized_statement() {
    for template in [
        "SELECT * FROM items WHERE order_id = ?",
        "SELECT * FROM items WHERE order_id = $1",
        "SELECT * FROM items WHERE order_id = :order_id",
        "SELECT * FROM items WHERE order_id = :1",
        "SELECT * FROM items WHERE order_id = @p1",
    ] {
        let t = sanitized_loop(template, 6, Timing::Burst, Orm::Absent);
        let found = run(&NPlusOneSql, &mode("always"), &t);
        assert_eq!(found.len(), 1, "{template}");
    }
    // No parameter and no placeholder: a statement without parameters, the
    // same every time; not an N+1.
    for template in [
        "SELECT * FROM settings",
        "SELECT x::int FROM t",
        "SELECT @@ROWCOUNT",
    ] {
        let t = sanitized_loop(template, 6, Timing::Spread, Orm::OwnScope);
        assert!(
            run(&NPlusOneSql, &mode("always"), &t).is_empty(),
            "{template}"
        );
    }
}

#[test]
fn parameters_seen_win_over_the_sanitizer_mode() {
    // Literals extracted by the host: classic rule, even with mode never.
    let five = distinct(5, 10);
    let found = run(&NPlusOneSql, &mode("never"), &sql_loop(&as_refs(&five)));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].distinct_params, 5);
    assert_eq!(found[0].extra_value("sanitized"), None);
}

#[test]
fn the_framework_names_the_fix() {
    let mut t = TraceBuilder::new();
    let root = t.root(
        SpanSpec::server("GET", "/orders/{id}")
            .at_us(0, 100_000)
            .scope("opentelemetry.instrumentation.django"),
    );
    for i in 0..6u64 {
        t.child(
            root,
            SpanSpec::sql(Q, &i.to_string())
                .at_us(1_000 + i * 1_000, 500)
                .scope("opentelemetry.instrumentation.psycopg2"),
        );
    }
    let f = &run(&NPlusOneSql, "", &t)[0];
    assert_eq!(f.extra_value("framework"), Some("django"));
    assert!(
        f.suggestion.contains("select_related()"),
        "{}",
        f.suggestion
    );
    // Without a framework: the generic advice, no extra.
    let plain = &run(&NPlusOneSql, "", &sql_loop(&as_refs(&distinct(5, 10))))[0];
    assert_eq!(plain.extra_value("framework"), None);
    assert!(plain.suggestion.contains("IN (...)"));
}

#[test]
fn the_sanitizer_key_is_sql_only_and_inherited() {
    let keys: Vec<&str> = NPlusOneSql
        .inherited_keys()
        .iter()
        .map(|k| k.detection_key)
        .collect();
    assert!(keys.contains(&"sanitizer_aware_classification"));
    assert!(keys.contains(&"n_plus_one_min_occurrences"));
    assert_eq!(
        NPlusOneSql
            .default_config()
            .get("sanitizer_aware_classification"),
        Some(&toml::Value::String("auto".into()))
    );
    assert!(
        NPlusOneHttp
            .default_config()
            .get("sanitizer_aware_classification")
            .is_none()
    );
    for factory in [&NPlusOneHttp as &dyn DetectorFactory, &NPlusOneMessaging] {
        let table: toml::Table = mode("auto").parse().unwrap();
        let err = factory.build(&table).err().unwrap().to_string();
        assert!(err.contains("sanitizer_aware_classification"), "{err}");
    }
    let table: toml::Table = mode("sometimes").parse().unwrap();
    let err = NPlusOneSql.build(&table).err().unwrap().to_string();
    assert!(err.contains("sanitizer_aware_classification"), "{err}");
    for m in ["auto", "strict", "always", "never"] {
        let table: toml::Table = mode(m).parse().unwrap();
        assert!(NPlusOneSql.build(&table).is_ok());
    }
}
