//! The conformance check: what the host relies on from every detector.

use abi_stable::std_types::RVec;

use super::{SpanSpec, TraceBuilder};
use crate::{DetectorFactory, Finding, SpanId, TraceId};

/// A handful of traces with the usual patterns (N+1 SQL and HTTP loops,
/// repeated identical calls, a wide fan-out, a clean request), for
/// determinism checks and for detector authors' own tests.
pub fn sample_traces() -> Vec<TraceBuilder> {
    let mut out = Vec::new();

    let mut n1 = TraceBuilder::with_id(TraceId([1; 16]));
    let root = n1.root(SpanSpec::server("GET", "/orders/{id}").at_us(0, 90_000));
    for i in 0..12 {
        n1.child(
            root,
            SpanSpec::sql("SELECT * FROM items WHERE order_id = ?", &i.to_string())
                .at_us(1_000 + i * 2_000, 800)
                .code("load_items", "src/orders.rs", 42),
        );
    }
    for i in 0..6 {
        n1.child(
            root,
            SpanSpec::http_client("GET", "users.internal/users/{id}", &format!("id={i}"))
                .at_us(40_000 + i * 3_000, 2_000),
        );
    }
    out.push(n1);

    let mut redundant = TraceBuilder::with_id(TraceId([2; 16]));
    let root = redundant.root(SpanSpec::server("POST", "/checkout").at_us(0, 50_000));
    for i in 0..7 {
        redundant.child(
            root,
            SpanSpec::sql("SELECT * FROM config WHERE key = ?", "feature_x")
                .at_us(1_000 + i * 500, 300),
        );
    }
    for i in 0..30 {
        redundant.child(
            root,
            SpanSpec::http_client("GET", "pricing/prices/{id}", &i.to_string())
                .service("checkout")
                .at_us(5_000 + i * 100, 20_000),
        );
    }
    out.push(redundant);

    let mut clean = TraceBuilder::with_id(TraceId([3; 16]));
    let root = clean.root(SpanSpec::server("GET", "/health").at_us(0, 2_000));
    clean.child(root, SpanSpec::sql("SELECT 1", "").at_us(100, 100));
    out.push(clean);

    out
}

/// Checks that `factory` and the detectors it builds behave as the host
/// requires. Returns every problem found, one per line.
///
/// - the id is lower_snake_case and the description is not empty;
/// - the default (empty) configuration builds, and so does `default_config()`;
/// - an unknown key is refused;
/// - an empty trace yields no finding and no error, and so does `flush`;
/// - two fresh instances give identical findings on [`sample_traces`];
/// - every finding names its own trace and only spans of that trace.
pub fn check_conformance(factory: &dyn DetectorFactory) -> Result<(), String> {
    let mut problems = Vec::new();
    let id = factory.id();
    let snake = !id.is_empty()
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !snake {
        problems.push(format!("id `{id}` is not lower_snake_case"));
    }
    if factory.description().trim().is_empty() {
        problems.push(format!("`{id}` has an empty description"));
    }

    let empty = toml::Table::new();
    let mut unknown = toml::Table::new();
    unknown.insert("conformance_unknown_key".into(), toml::Value::Integer(1));
    if factory.build(&unknown).is_ok() {
        problems.push(format!("`{id}` accepted an unknown configuration key"));
    }

    if let Err(e) = factory.build(&factory.default_config()) {
        problems.push(format!("`{id}` refused its own default_config(): {e}"));
    }

    match (factory.build(&empty), factory.build(&empty)) {
        (Ok(mut a), Ok(mut b)) => {
            let mut out = RVec::new();
            match TraceBuilder::new().with_view(|v| a.detect(v, &mut out)) {
                Ok(()) if out.is_empty() => {}
                Ok(()) => problems.push(format!("`{id}` reported findings on an empty trace")),
                Err(e) => problems.push(format!("`{id}` failed on an empty trace: {e}")),
            }
            for trace in sample_traces() {
                let fa = trace.run(a.as_mut());
                let fb = trace.run(b.as_mut());
                match (fa, fb) {
                    (Ok(fa), Ok(fb)) => {
                        if fa != fb {
                            problems
                                .push(format!("`{id}` gave different findings for the same trace"));
                        }
                        check_findings(id, &trace, &fa, &mut problems);
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        problems.push(format!("`{id}` failed on a sample trace: {e}"))
                    }
                }
            }
            let mut flushed = RVec::new();
            if let Err(e) = a.flush(super::T0_NS, &mut flushed) {
                problems.push(format!("`{id}` failed to flush: {e}"));
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            problems.push(format!("`{id}` refused its default configuration: {e}"))
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn check_findings(id: &str, trace: &TraceBuilder, found: &[Finding], problems: &mut Vec<String>) {
    let span_count = trace.with_view(|v| v.len());
    let known: Vec<SpanId> = (0..span_count).map(TraceBuilder::span_id).collect();
    for f in found {
        if f.trace_id != trace.trace_id() {
            problems.push(format!("`{id}` reported a finding for another trace"));
        }
        if f.kind.is_empty() {
            problems.push(format!("`{id}` reported a finding with an empty kind"));
        }
        if f.evidence.iter().any(|s| !known.contains(s)) {
            problems.push(format!("`{id}` cited a span that is not in the trace"));
        }
    }
}
