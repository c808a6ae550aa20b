//! The reader for a request prost already decoded (OTLP JSON and Zipkin
//! arrive this way): borrows its fields into [`SpanIn`] and [`Attr`]s.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::{Span, status};

use super::{Attr, Builder, ConvertLimits, Converted, Origin, SpanIn, Val, service_name};

/// Converts a decoded `request`, splitting traces over `shards` shards.
pub fn convert(
    request: &ExportTraceServiceRequest,
    shards: usize,
    limits: &ConvertLimits,
) -> Converted {
    let mut builder = Builder::new(shards, limits);
    let mut resource_attrs: Vec<Attr<'_>> = Vec::new();
    let mut attrs: Vec<Attr<'_>> = Vec::new();
    for rs in &request.resource_spans {
        resource_attrs.clear();
        if let Some(r) = &rs.resource {
            resource_attrs.extend(r.attributes.iter().map(attr));
        }
        let service = service_name(&resource_attrs);
        for ss in &rs.scope_spans {
            let origin = Origin {
                service,
                scope: ss.scope.as_ref().map_or("", |s| s.name.as_str()),
                resource_attrs: &resource_attrs,
            };
            for span in &ss.spans {
                attrs.clear();
                attrs.extend(span.attributes.iter().map(attr));
                builder.add(&span_in(span), &attrs, origin);
            }
        }
    }
    builder.finish()
}

fn span_in(span: &Span) -> SpanIn<'_> {
    SpanIn {
        trace_id: &span.trace_id,
        span_id: &span.span_id,
        parent_id: &span.parent_span_id,
        name: &span.name,
        kind: span.kind,
        start_ns: span.start_time_unix_nano,
        end_ns: span.end_time_unix_nano,
        is_error: span
            .status
            .as_ref()
            .is_some_and(|st| st.code == status::StatusCode::Error as i32),
    }
}

fn attr(kv: &KeyValue) -> Attr<'_> {
    (kv.key.as_str(), val(kv.value.as_ref()))
}

/// A prost value, borrowed.
pub(super) fn val(v: Option<&AnyValue>) -> Val<'_> {
    match v.and_then(|v| v.value.as_ref()) {
        None => Val::Empty,
        Some(Value::StringValue(s)) => Val::Str(s),
        Some(Value::BoolValue(b)) => Val::Bool(*b),
        Some(Value::IntValue(i)) => Val::Int(*i),
        Some(Value::DoubleValue(d)) => Val::Double(*d),
        Some(Value::BytesValue(b)) => Val::Bytes(b),
        Some(Value::ArrayValue(a)) => Val::ProtoArray(a),
        Some(Value::KvlistValue(l)) => Val::ProtoKvlist(l),
        // Profiles-only string-table reference: no table in traces.
        Some(Value::StringValueStrindex(_)) => Val::Empty,
    }
}
