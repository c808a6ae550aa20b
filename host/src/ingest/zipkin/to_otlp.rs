//! Mapping decoded Zipkin spans onto OTLP: resources per service, ids from hex, times from
//! microseconds, tags as string attributes. Only builds the request; the shared conversion
//! validates it, so Zipkin and OTLP spans are refused for the same reasons.

use std::borrow::Cow;
use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};

use super::model::{Fields, ZipkinSpan};
use super::scalar::Scalar;

/// Builds the OTLP request: one `ResourceSpans` per local service name, in
/// order of first appearance.
pub(super) fn to_request(spans: Vec<ZipkinSpan<'_>>) -> ExportTraceServiceRequest {
    let mut resource_spans: Vec<ResourceSpans> = Vec::new();
    let mut by_service: HashMap<Cow<'_, str>, usize> = HashMap::new();
    for z in spans {
        let service = z
            .local_service
            .into_text()
            .filter(|s| !s.is_empty())
            .unwrap_or(Cow::Borrowed(""));
        let idx = *by_service.entry(service).or_insert_with_key(|name| {
            resource_spans.push(resource_for(name));
            resource_spans.len() - 1
        });
        let scope = scope_of(&z.fields);
        let otlp = to_span(z.fields);
        let Some(rs) = resource_spans.get_mut(idx) else {
            continue;
        };
        match rs
            .scope_spans
            .iter_mut()
            .find(|ss| ss.scope.as_ref().map(|s| s.name.as_str()).unwrap_or("") == scope.name)
        {
            Some(ss) => ss.spans.push(otlp),
            None => rs.scope_spans.push(ScopeSpans {
                scope: (!scope.name.is_empty()).then_some(scope),
                spans: vec![otlp],
                ..ScopeSpans::default()
            }),
        }
    }
    ExportTraceServiceRequest { resource_spans }
}

fn resource_for(service: &str) -> ResourceSpans {
    let attributes = if service.is_empty() {
        Vec::new()
    } else {
        vec![string_kv("service.name", service.to_owned())]
    };
    ResourceSpans {
        resource: Some(Resource {
            attributes,
            ..Resource::default()
        }),
        ..ResourceSpans::default()
    }
}

/// Tags OpenTelemetry's Zipkin exporter writes for the instrumentation
/// scope; they become the span's scope, not attributes.
const SCOPE_TAGS: [&str; 4] = [
    "otel.scope.name",
    "otel.library.name",
    "otel.scope.version",
    "otel.library.version",
];

/// The instrumentation scope named by the span's tags (empty when none).
fn scope_of(f: &Fields<'_>) -> InstrumentationScope {
    let tag = |keys: [&str; 2]| {
        f.tags
            .0
            .iter()
            .find(|(k, _)| keys.contains(&k.as_ref()))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    InstrumentationScope {
        name: tag(["otel.scope.name", "otel.library.name"]),
        version: tag(["otel.scope.version", "otel.library.version"]),
        ..InstrumentationScope::default()
    }
}

fn string_kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value)),
        }),
        ..KeyValue::default()
    }
}

fn to_span(f: Fields<'_>) -> Span {
    let start = f.timestamp.micros().saturating_mul(1000);
    let end = start.saturating_add(f.duration.micros().saturating_mul(1000));
    let kind = match f.kind.as_str() {
        Some(k) if k.eq_ignore_ascii_case("CLIENT") => span::SpanKind::Client,
        Some(k) if k.eq_ignore_ascii_case("SERVER") => span::SpanKind::Server,
        Some(k) if k.eq_ignore_ascii_case("PRODUCER") => span::SpanKind::Producer,
        Some(k) if k.eq_ignore_ascii_case("CONSUMER") => span::SpanKind::Consumer,
        _ => span::SpanKind::Internal,
    };
    let mut error: Option<String> = None;
    let mut attributes = Vec::with_capacity(f.tags.0.len() + 1);
    for (key, value) in f.tags.0 {
        if SCOPE_TAGS.contains(&key.as_ref()) {
            continue;
        }
        let Some(value) = value.into_text() else {
            continue;
        };
        if key == "error" {
            error = Some(value.clone().into_owned());
        } else if key == "otel.status_code" && value.eq_ignore_ascii_case("ERROR") {
            error.get_or_insert_with(String::new);
        }
        attributes.push(string_kv(&key, value.into_owned()));
    }
    // A tag names the peer first; the remote endpoint otherwise (the
    // conversion keeps the first `peer.service`).
    if let Some(peer) = f.remote_service.into_text().filter(|s| !s.is_empty()) {
        attributes.push(string_kv("peer.service", peer.into_owned()));
    }
    Span {
        trace_id: trace_id_bytes(f.trace_id.as_str()),
        span_id: span_id_bytes(f.id.as_str()),
        parent_span_id: parent_id_bytes(&f.parent_id),
        name: f.name.into_text().map(Cow::into_owned).unwrap_or_default(),
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        status: error.map(|message| Status {
            code: status::StatusCode::Error as i32,
            message,
        }),
        ..Span::default()
    }
}

/// 32 hex digits, or 16 left-padded with zeros; anything else becomes an
/// empty id, which the conversion refuses.
fn trace_id_bytes(s: Option<&str>) -> Vec<u8> {
    match s.map(|s| (s.len(), hex(s))) {
        Some((32, Some(bytes))) => bytes,
        Some((16, Some(bytes))) => {
            let mut padded = vec![0u8; 8];
            padded.extend_from_slice(&bytes);
            padded
        }
        _ => Vec::new(),
    }
}

/// 16 hex digits; anything else becomes an empty id, which the conversion
/// refuses.
fn span_id_bytes(s: Option<&str>) -> Vec<u8> {
    match s.map(|s| (s.len(), hex(s))) {
        Some((16, Some(bytes))) => bytes,
        _ => Vec::new(),
    }
}

/// Absent, null or empty means a root span. An invalid parent id (or one
/// that is not a string) must not turn the span into a root: it becomes one
/// byte, which the conversion refuses.
fn parent_id_bytes(v: &Scalar<'_>) -> Vec<u8> {
    match v {
        Scalar::Absent => Vec::new(),
        Scalar::Str(s) if s.is_empty() => Vec::new(),
        Scalar::Str(s) => match (s.len(), hex(s)) {
            (16, Some(bytes)) => bytes,
            _ => vec![0],
        },
        _ => vec![0],
    }
}

pub(super) fn hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => None,
        })
        .collect()
}
