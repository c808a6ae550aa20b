//! Jaeger JSON (what the Jaeger UI's "Download JSON" and its query API
//! return: `{"data":[trace, ...]}`): one trace decoded into OTLP
//! `ResourceSpans`, so its spans go through the same conversion and
//! detectors as OTLP.
//!
//! Mapping: `traceID`, `spanID` as hex ids (left-padded with zeros, as
//! Jaeger drops leading zeros); the parent is the first `CHILD_OF`
//! reference, else the first reference, else the legacy `parentSpanID`;
//! `startTime` and `duration` from microseconds; the process
//! (`processes[processID]`, or an inline `process`) as the resource, its
//! `serviceName` as `service.name` and its tags as resource attributes;
//! tags as typed attributes, except `span.kind` (the span kind), `error` and
//! `otel.status_code` (the status) and `otel.scope.*` / `otel.library.*`
//! (the instrumentation scope). Logs and warnings are ignored.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value as Any,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use serde::Deserialize;
use serde_json::Value;

/// One item of `data`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    #[serde(rename = "traceID", default)]
    trace_id: String,
    #[serde(default)]
    spans: Vec<JaegerSpan>,
    #[serde(default)]
    processes: HashMap<String, Process>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerSpan {
    #[serde(rename = "traceID", default)]
    trace_id: String,
    #[serde(rename = "spanID", default)]
    span_id: String,
    #[serde(rename = "parentSpanID", default)]
    parent_span_id: String,
    #[serde(default)]
    operation_name: String,
    #[serde(default)]
    references: Vec<Reference>,
    #[serde(default)]
    start_time: u64,
    #[serde(default)]
    duration: u64,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(rename = "processID", default)]
    process_id: String,
    #[serde(default)]
    process: Option<Process>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reference {
    #[serde(default)]
    ref_type: String,
    #[serde(rename = "spanID", default)]
    span_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    #[serde(default)]
    service_name: String,
    #[serde(default)]
    tags: Vec<Tag>,
}

#[derive(Debug, Clone, Deserialize)]
struct Tag {
    key: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    value: Value,
}

/// The spans of `trace`: one `ResourceSpans` per process, one `ScopeSpans`
/// per instrumentation scope, both in order of first appearance.
pub fn to_resource_spans(trace: Trace) -> Vec<ResourceSpans> {
    let mut out: Vec<ResourceSpans> = Vec::new();
    let mut by_process: HashMap<String, usize> = HashMap::new();
    for s in trace.spans {
        let process_key = if s.process.is_some() && s.process_id.is_empty() {
            // Inline processes have no id: one resource per service name.
            format!(
                "\0{}",
                s.process.as_ref().map_or("", |p| p.service_name.as_str())
            )
        } else {
            s.process_id.clone()
        };
        let idx = *by_process.entry(process_key).or_insert_with(|| {
            let process = s
                .process
                .clone()
                .or_else(|| trace.processes.get(&s.process_id).cloned())
                .unwrap_or_default();
            out.push(resource_of(process));
            out.len() - 1
        });
        let (scope, span) = to_span(s, &trace.trace_id);
        let rs = &mut out[idx];
        match rs
            .scope_spans
            .iter_mut()
            .find(|ss| ss.scope.as_ref().is_some_and(|s| s.name == scope.name))
        {
            Some(ss) => ss.spans.push(span),
            None => rs.scope_spans.push(ScopeSpans {
                scope: Some(scope),
                spans: vec![span],
                ..ScopeSpans::default()
            }),
        }
    }
    out
}

fn resource_of(process: Process) -> ResourceSpans {
    let mut attributes = Vec::with_capacity(process.tags.len() + 1);
    if !process.service_name.is_empty() {
        attributes.push(kv("service.name", Any::StringValue(process.service_name)));
    }
    attributes.extend(
        process
            .tags
            .into_iter()
            .map(|t| kv(&t.key, any_value(&t.kind, t.value))),
    );
    ResourceSpans {
        resource: Some(Resource {
            attributes,
            ..Resource::default()
        }),
        ..ResourceSpans::default()
    }
}

fn kv(key: &str, value: Any) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// A tag's value as OTLP types it: by its JSON type, or by the declared
/// `type` when a number or flag was written as a string.
fn any_value(kind: &str, value: Value) -> Any {
    match (kind, value) {
        (_, Value::Bool(b)) => Any::BoolValue(b),
        (_, Value::Number(n)) => match n.as_i64() {
            Some(i) => Any::IntValue(i),
            None => Any::DoubleValue(n.as_f64().unwrap_or(0.0)),
        },
        ("int64", Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
            Any::IntValue(s.trim().parse().unwrap_or(0))
        }
        ("float64", Value::String(s)) if s.trim().parse::<f64>().is_ok() => {
            Any::DoubleValue(s.trim().parse().unwrap_or(0.0))
        }
        ("bool", Value::String(s)) if s == "true" || s == "false" => Any::BoolValue(s == "true"),
        (_, Value::String(s)) => Any::StringValue(s),
        (_, Value::Null) => Any::StringValue(String::new()),
        (_, other) => Any::StringValue(other.to_string()),
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn to_span(s: JaegerSpan, trace_trace_id: &str) -> (InstrumentationScope, Span) {
    let mut scope = InstrumentationScope::default();
    let mut kind = span::SpanKind::Internal;
    let mut error = false;
    let mut message = String::new();
    let mut attributes = Vec::with_capacity(s.tags.len());
    for tag in s.tags {
        match tag.key.as_str() {
            "span.kind" => {
                kind = match text(&tag.value).to_ascii_lowercase().as_str() {
                    "client" => span::SpanKind::Client,
                    "server" => span::SpanKind::Server,
                    "producer" => span::SpanKind::Producer,
                    "consumer" => span::SpanKind::Consumer,
                    _ => span::SpanKind::Internal,
                };
            }
            "error" => error |= truthy(&tag.value),
            "otel.status_code" => error |= text(&tag.value).eq_ignore_ascii_case("ERROR"),
            "otel.status_description" => message = text(&tag.value),
            "otel.scope.name" | "otel.library.name" => scope.name = text(&tag.value),
            "otel.scope.version" | "otel.library.version" => scope.version = text(&tag.value),
            _ => attributes.push(kv(&tag.key, any_value(&tag.kind, tag.value))),
        }
    }
    let parent = s
        .references
        .iter()
        .find(|r| r.ref_type.eq_ignore_ascii_case("CHILD_OF"))
        .or_else(|| s.references.first())
        .map_or(s.parent_span_id.as_str(), |r| r.span_id.as_str());
    let trace_id = if s.trace_id.is_empty() {
        trace_trace_id
    } else {
        &s.trace_id
    };
    let start = s.start_time.saturating_mul(1000);
    let span = Span {
        trace_id: padded_hex(trace_id, 16),
        span_id: padded_hex(&s.span_id, 8),
        // An empty or all-zero parent is a root; a malformed one stays
        // malformed (one byte) so that the conversion refuses the span.
        parent_span_id: match parent {
            "" => Vec::new(),
            p if p.bytes().all(|b| b == b'0') => Vec::new(),
            p => padded_hex(p, 8),
        },
        name: s.operation_name,
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start.saturating_add(s.duration.saturating_mul(1000)),
        attributes,
        status: error.then_some(Status {
            code: status::StatusCode::Error as i32,
            message,
        }),
        ..Span::default()
    };
    (scope, span)
}

/// `hex` as `bytes` bytes, left-padded with zeros; anything that is not up
/// to `2 * bytes` hex digits gives one byte, which the conversion refuses
/// as an invalid id.
fn padded_hex(hex: &str, bytes: usize) -> Vec<u8> {
    if hex.is_empty() || hex.len() > 2 * bytes || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return vec![0];
    }
    let padded = format!("{hex:0>width$}", width = 2 * bytes);
    (0..bytes)
        .map(|i| u8::from_str_radix(&padded[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: &str) -> Vec<ResourceSpans> {
        to_resource_spans(serde_json::from_str(json).unwrap())
    }

    fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
        span.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    const TRACE: &str = r#"{
      "traceID": "abc123",
      "spans": [
        {"traceID": "abc123", "spanID": "1", "operationName": "GET /orders/{id}",
         "references": [], "startTime": 1700000000000000, "duration": 120000,
         "tags": [{"key": "span.kind", "type": "string", "value": "server"},
                  {"key": "http.route", "type": "string", "value": "/orders/{id}"},
                  {"key": "http.status_code", "type": "int64", "value": 500},
                  {"key": "error", "type": "bool", "value": true}],
         "processID": "p1"},
        {"traceID": "abc123", "spanID": "2", "operationName": "SELECT",
         "references": [{"refType": "FOLLOWS_FROM", "traceID": "abc123", "spanID": "9"},
                        {"refType": "CHILD_OF", "traceID": "abc123", "spanID": "1"}],
         "startTime": 1700000000001000, "duration": 500,
         "tags": [{"key": "db.statement", "type": "string", "value": "SELECT 1"},
                  {"key": "otel.scope.name", "type": "string", "value": "io.opentelemetry.jdbc"},
                  {"key": "code.lineno", "type": "int64", "value": "57"},
                  {"key": "ratio", "type": "float64", "value": 0.5}],
         "processID": "p2"},
        {"traceID": "abc123", "spanID": "3", "operationName": "SELECT",
         "references": [{"refType": "CHILD_OF", "spanID": "1"}],
         "startTime": 1700000000002000, "duration": 500,
         "tags": [{"key": "otel.library.name", "type": "string", "value": "io.opentelemetry.jdbc"}],
         "processID": "p2"}
      ],
      "processes": {
        "p1": {"serviceName": "gateway", "tags": [{"key": "hostname", "type": "string", "value": "gw-1"}]},
        "p2": {"serviceName": "orders", "tags": []}
      }
    }"#;

    #[test]
    fn processes_become_resources_and_scopes_group_spans() {
        let rs = decode(TRACE);
        assert_eq!(rs.len(), 2);
        let service = |r: &ResourceSpans| match r.resource.as_ref().unwrap().attributes[0]
            .value
            .as_ref()
            .and_then(|v| v.value.clone())
        {
            Some(Any::StringValue(s)) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(service(&rs[0]), "gateway");
        assert_eq!(
            rs[0].resource.as_ref().unwrap().attributes[1].key,
            "hostname"
        );
        assert_eq!(service(&rs[1]), "orders");
        assert_eq!(rs[1].scope_spans.len(), 1, "scope and library name agree");
        let ss = &rs[1].scope_spans[0];
        assert_eq!(ss.scope.as_ref().unwrap().name, "io.opentelemetry.jdbc");
        assert_eq!(ss.spans.len(), 2);
    }

    #[test]
    fn ids_times_kind_status_and_typed_tags_map_to_otlp() {
        let rs = decode(TRACE);
        let root = &rs[0].scope_spans[0].spans[0];
        assert_eq!(root.trace_id.len(), 16);
        assert_eq!(&root.trace_id[13..], &[0xab, 0xc1, 0x23]);
        assert_eq!(root.span_id, [0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(root.parent_span_id.is_empty());
        assert_eq!(root.kind, span::SpanKind::Server as i32);
        assert_eq!(root.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(root.end_time_unix_nano, 1_700_000_000_120_000_000);
        assert_eq!(
            root.status.as_ref().map(|s| s.code),
            Some(status::StatusCode::Error as i32)
        );
        assert!(attr(root, "span.kind").is_none());
        assert_eq!(attr(root, "http.status_code"), Some(&Any::IntValue(500)));
        let child = &rs[1].scope_spans[0].spans[0];
        assert_eq!(
            child.parent_span_id,
            [0, 0, 0, 0, 0, 0, 0, 1],
            "CHILD_OF wins"
        );
        assert_eq!(child.kind, span::SpanKind::Internal as i32);
        assert!(child.status.is_none());
        assert_eq!(attr(child, "code.lineno"), Some(&Any::IntValue(57)));
        assert_eq!(attr(child, "ratio"), Some(&Any::DoubleValue(0.5)));
        assert!(attr(child, "otel.scope.name").is_none());
    }

    #[test]
    fn malformed_ids_stay_invalid_for_the_conversion_to_refuse() {
        assert_eq!(padded_hex("zz", 8), [0]);
        assert_eq!(padded_hex("", 8), [0]);
        assert_eq!(padded_hex(&"f".repeat(17), 8), [0]);
        assert_eq!(padded_hex("ff", 2), [0, 0xff]);
        let rs = decode(
            r#"{"spans":[{"traceID":"1","spanID":"2","references":[{"refType":"CHILD_OF","spanID":"nope"}],
                "process":{"serviceName":"inline"}}]}"#,
        );
        let s = &rs[0].scope_spans[0].spans[0];
        assert_eq!(s.parent_span_id, [0]);
    }
}
