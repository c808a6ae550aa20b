//! Captured-trace files for `perf-sentinel analyze`: the same pattern mix the
//! load generator sends, written as OTLP JSON the way an OpenTelemetry
//! Collector's file exporter leaves it (one `ExportTraceServiceRequest` per
//! line), or as one big request object. Deterministic: the same arguments
//! give the same bytes, so a measurement can be repeated on another machine.

use std::collections::BTreeMap;
use std::io::Write;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use crate::patterns::{Mix, kv};

/// How the file is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One `ExportTraceServiceRequest` per line (the Collector file exporter).
    Ndjson,
    /// One request whose `resourceSpans` holds every batch.
    Object,
}

/// What to write.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Spans to write at least (whole traces, so a few more may be written).
    pub spans: usize,
    pub spans_per_trace: usize,
    /// Traces per batch (per line in NDJSON).
    pub traces_per_batch: usize,
    pub mix: Mix,
    pub layout: Layout,
}

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub spans: usize,
    pub traces: usize,
    pub batches: usize,
}

/// Start of the first trace: a fixed instant, so files are reproducible.
const T0: u64 = 1_750_000_000_000_000_000;
/// Services the traces are spread over.
const SERVICES: usize = 5;

/// Writes the file described by `plan` to `out`.
///
/// Each trace's root span is written in the batch after its children, as
/// exporters do (children end first), so a reader has to assemble traces
/// across batches.
pub fn write(plan: &Plan, out: &mut impl Write) -> std::io::Result<Written> {
    let mut written = Written::default();
    let mut held_roots: Vec<(usize, Span)> = Vec::new();
    let mut first = true;
    if plan.layout == Layout::Object {
        out.write_all(b"{\"resourceSpans\":[")?;
    }
    while written.spans < plan.spans || !held_roots.is_empty() {
        let mut by_service: BTreeMap<usize, Vec<Span>> = BTreeMap::new();
        for (service, root) in held_roots.drain(..) {
            by_service.entry(service).or_default().push(root);
        }
        let mut next_roots = Vec::new();
        for _ in 0..plan.traces_per_batch {
            if written.spans >= plan.spans {
                break;
            }
            let n = written.traces;
            let pattern = plan.mix.pick(n);
            let t0 = T0 + n as u64 * 1_000_000;
            let mut spans = pattern.spans(trace_id(n), plan.spans_per_trace, t0);
            for (i, s) in spans.iter_mut().enumerate() {
                decorate(s, i);
            }
            written.spans += spans.len();
            written.traces += 1;
            let service = n % SERVICES;
            let mut spans = spans.into_iter();
            if let Some(root) = spans.next() {
                next_roots.push((service, root));
            }
            by_service.entry(service).or_default().extend(spans);
        }
        held_roots = next_roots;
        let resource_spans: Vec<ResourceSpans> = by_service
            .into_iter()
            .map(|(service, spans)| resource_spans(service, spans))
            .collect();
        if resource_spans.is_empty() {
            continue;
        }
        written.batches += 1;
        match plan.layout {
            Layout::Ndjson => {
                let request = ExportTraceServiceRequest { resource_spans };
                serde_json::to_writer(&mut *out, &compact(&request)?)?;
                out.write_all(b"\n")?;
            }
            Layout::Object => {
                for rs in &resource_spans {
                    if !first {
                        out.write_all(b",")?;
                    }
                    first = false;
                    serde_json::to_writer(&mut *out, &compact(rs)?)?;
                }
            }
        }
    }
    if plan.layout == Layout::Object {
        out.write_all(b"]}\n")?;
    }
    out.flush()?;
    Ok(written)
}

/// `value` as OTLP JSON without the fields that hold their default (empty
/// strings and lists, zeros), as the Collector's JSON marshaller writes it.
fn compact(value: &impl serde::Serialize) -> std::io::Result<serde_json::Value> {
    let mut v = serde_json::to_value(value)?;
    prune(&mut v);
    Ok(v)
}

fn prune(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            for child in map.values_mut() {
                prune(child);
            }
            map.retain(|_, child| match child {
                Value::Null => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                Value::Bool(b) => *b,
            });
        }
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

/// Trace `n`'s id: never zero, distinct for every `n`.
pub fn trace_id(n: usize) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&0x5eed_ca97_0000_0001u64.to_be_bytes());
    id[8..].copy_from_slice(&(n as u64).to_be_bytes());
    id
}

/// Adds the source location that database instrumentation records (and
/// that SARIF output points code scanning at).
fn decorate(span: &mut Span, index: usize) {
    let is_sql = span.attributes.iter().any(|a| a.key == "db.statement");
    if is_sql {
        span.attributes.push(kv(
            "code.function",
            "com.example.orders.OrderItemRepository.findByOrderId",
        ));
        span.attributes.push(kv(
            "code.filepath",
            "src/main/java/com/example/orders/OrderItemRepository.java",
        ));
        span.attributes.push(KeyValue {
            key: "code.lineno".into(),
            value: Some(AnyValue {
                value: Some(
                    opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(
                        42 + (index % 3) as i64,
                    ),
                ),
            }),
            ..KeyValue::default()
        });
    }
}

fn resource_spans(service: usize, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", &format!("shop-{service}")),
                kv("service.version", "2.14.1"),
                kv("deployment.environment.name", "ci"),
                kv("host.name", &format!("shop-{service}-7d9f8b6c4-x2p9q")),
                kv("telemetry.sdk.name", "opentelemetry"),
                kv("telemetry.sdk.language", "java"),
                kv("telemetry.sdk.version", "1.42.1"),
            ],
            ..Resource::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "io.opentelemetry.jdbc".into(),
                version: "2.8.0-alpha".into(),
                ..InstrumentationScope::default()
            }),
            spans,
            ..ScopeSpans::default()
        }],
        ..ResourceSpans::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(layout: Layout) -> Plan {
        Plan {
            spans: 1000,
            spans_per_trace: 9,
            traces_per_batch: 20,
            mix: Mix::parse("n1,redundant,slow,chatty,fanout,clean=5").unwrap(),
            layout,
        }
    }

    fn spans_of(request: &ExportTraceServiceRequest) -> usize {
        request
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum()
    }

    #[test]
    fn ndjson_lines_are_requests_holding_every_span_once() {
        let mut out = Vec::new();
        let w = write(&plan(Layout::Ndjson), &mut out).unwrap();
        assert!(w.spans >= 1000);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), w.batches);
        let total: usize = lines
            .iter()
            .map(|l| spans_of(&serde_json::from_str(l).unwrap()))
            .sum();
        assert_eq!(total, w.spans);
    }

    #[test]
    fn one_object_holds_the_same_spans_and_files_repeat_byte_for_byte() {
        let mut a = Vec::new();
        let w = write(&plan(Layout::Object), &mut a).unwrap();
        let request: ExportTraceServiceRequest = serde_json::from_slice(&a).unwrap();
        assert_eq!(spans_of(&request), w.spans);
        let mut b = Vec::new();
        write(&plan(Layout::Object), &mut b).unwrap();
        assert_eq!(a, b);
    }
}
