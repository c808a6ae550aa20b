//! Zipkin v2 JSON (`POST /api/v2/spans`): decodes a body into the OTLP
//! `ExportTraceServiceRequest` the shared conversion reads, so Zipkin spans
//! go through exactly the same conversion, window and detectors as OTLP.
//!
//! The body must be a JSON array of objects; anything else is refused whole.
//! Inside a span the decoder is lenient: a field of the wrong type reads as
//! absent, numbers are clamped, and an invalid id is passed on so that the
//! shared conversion refuses that span alone (partial acceptance). Strings
//! are borrowed from the body where JSON escapes allow.
//!
//! Mapping: `traceId` (16 or 32 hex; 16 is left-padded with zeros), `id`,
//! `parentId` as id bytes; `timestamp` and `duration` from microseconds to
//! nanoseconds; `kind`; `localEndpoint.serviceName` as the resource's
//! `service.name` (one `ResourceSpans` per service);
//! `remoteEndpoint.serviceName` as `peer.service`; every tag as a string
//! attribute (so `db.statement`, `http.route`, `code.*`... map as in OTLP); a
//! tag `error` (or `otel.status_code = ERROR`) makes the span an error.
//! `annotations`, `shared` and `debug` are ignored.
//!
//! `model` and `scalar` read the JSON, `to_otlp` maps what they read.

mod model;
mod scalar;
mod to_otlp;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::IngestError;
use model::ZipkinSpan;
use to_otlp::to_request;

/// Decodes a Zipkin v2 JSON body (already decompressed and size-capped).
pub fn decode(bytes: &[u8]) -> Result<ExportTraceServiceRequest, IngestError> {
    let text = std::str::from_utf8(bytes).map_err(|e| IngestError::InvalidUtf8(e.to_string()))?;
    let spans: Vec<ZipkinSpan<'_>> = serde_json::from_str(text).map_err(|e| {
        IngestError::MalformedJson(format!("expected a JSON array of Zipkin v2 spans: {e}"))
    })?;
    Ok(to_request(spans))
}

#[cfg(test)]
mod tests;
