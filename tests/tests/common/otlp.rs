//! OTLP requests the tests send: attributes, a canned N+1 trace, and
//! spans of one service wrapped into a request.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};

pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

pub const T0: u64 = 1_700_000_000_000_000_000;

/// A request holding one trace: an inbound `GET /orders/{id}` whose handler
/// runs `n` SELECTs with distinct ids, 1 ms apart (an N+1 from n = 5).
pub fn n1_request(trace_id: [u8; 16], service: &str, n: u64) -> ExportTraceServiceRequest {
    let root_id = [0xaa; 8];
    let mut spans = vec![Span {
        trace_id: trace_id.to_vec(),
        span_id: root_id.to_vec(),
        name: "GET /orders/{id}".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: T0,
        end_time_unix_nano: T0 + 100_000_000,
        attributes: vec![
            kv("http.request.method", "GET"),
            kv("http.route", "/orders/{id}"),
        ],
        ..Span::default()
    }];
    for i in 0..n {
        let start = T0 + 1_000_000 * (i + 1);
        spans.push(Span {
            trace_id: trace_id.to_vec(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            parent_span_id: root_id.to_vec(),
            name: "SELECT items".into(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + 500_000,
            attributes: vec![
                kv("db.system", "postgresql"),
                kv(
                    "db.statement",
                    &format!("SELECT * FROM items WHERE order_id = {i}"),
                ),
            ],
            ..Span::default()
        });
    }
    request(service, spans)
}

/// Wraps spans of one service into a request.
pub fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
