//! The OTLP/HTTP receiver: `POST /v1/traces` with protobuf or JSON bodies,
//! optionally gzip/deflate, answering with a real `ExportTraceServiceResponse`
//! in the request's format, or a `google.rpc.Status` on refusal. Also the
//! Zipkin v2 JSON receiver, `POST /api/v2/spans`, sharing body reading,
//! decompression, ingest and refusal counting.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;

use super::body::{MediaType, decompress};
use super::{Accepted, IngestError, Ingestor, decode_json, zipkin};

/// `google.rpc.Status`, the body OTLP/HTTP prescribes for errors.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// Handles `POST /v1/traces`.
pub async fn export_traces(
    State(ingestor): State<Arc<Ingestor>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let header_str = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    // Answer errors in the format the client speaks; protobuf when unknown.
    let media = MediaType::from_content_type(header_str(header::CONTENT_TYPE));
    let reply_as = *media.as_ref().unwrap_or(&MediaType::Protobuf);
    match receive(&ingestor, media, header_str(header::CONTENT_ENCODING), body).await {
        Ok(accepted) => ok_response(reply_as, &accepted),
        Err(e) => error_response(reply_as, &ingestor.refused(e)),
    }
}

async fn receive(
    ingestor: &Ingestor,
    media: Result<MediaType, IngestError>,
    encoding: Option<&str>,
    body: Body,
) -> Result<Accepted, IngestError> {
    let media = media?;
    let plain = read_body(ingestor, encoding, body).await?;
    match media {
        MediaType::Protobuf => ingestor.ingest_protobuf(&plain).await,
        MediaType::Json => ingestor.ingest(&decode_json(&plain)?).await,
    }
}

/// Handles `POST /api/v2/spans`: a Zipkin v2 JSON array of spans, optionally
/// gzip/deflate. Answers 202 with an empty body as Zipkin collectors do, or
/// a JSON `{"code", "message"}` on refusal.
pub async fn zipkin_spans(
    State(ingestor): State<Arc<Ingestor>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // A Content-Type that is not text is present but unusable: refused.
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?"));
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    match receive_zipkin(&ingestor, content_type, encoding, body).await {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e) => {
            let e = ingestor.refused(e);
            let message = match &e {
                IngestError::UnsupportedMediaType(ct) => format!(
                    "unsupported Content-Type `{ct}` (Zipkin v2 spans are application/json)"
                ),
                IngestError::MalformedJson(detail) => format!("invalid Zipkin v2 JSON: {detail}"),
                other => other.to_string(),
            };
            error_reply(MediaType::Json, &e, message)
        }
    }
}

async fn receive_zipkin(
    ingestor: &Ingestor,
    content_type: Option<&str>,
    encoding: Option<&str>,
    body: Body,
) -> Result<Accepted, IngestError> {
    // JSON, or no Content-Type at all (as some Zipkin clients send).
    if let Some(ct) = content_type
        && MediaType::from_content_type(Some(ct))? != MediaType::Json
    {
        return Err(IngestError::UnsupportedMediaType(
            ct.chars().take(64).collect(),
        ));
    }
    let plain = read_body(ingestor, encoding, body).await?;
    ingestor.ingest(&zipkin::decode(&plain)?).await
}

/// Reads the whole body, at most `max_payload_size` bytes on the wire and
/// after undoing `Content-Encoding`.
async fn read_body(
    ingestor: &Ingestor,
    encoding: Option<&str>,
    body: Body,
) -> Result<bytes::Bytes, IngestError> {
    let limit = ingestor.max_payload_size;
    let raw = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                IngestError::PayloadTooLarge { limit }
            } else {
                IngestError::BodyRead(e.to_string())
            }
        })?
        .to_bytes();
    decompress(encoding, raw, limit)
}

fn ok_response(media: MediaType, accepted: &Accepted) -> Response {
    let response = ExportTraceServiceResponse {
        partial_success: (accepted.rejected_spans > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: accepted.rejected_spans as i64,
            error_message: accepted.message.clone(),
        }),
    };
    let body = match media {
        MediaType::Protobuf => response.encode_to_vec(),
        // The OTLP/JSON form omits an absent partial success.
        MediaType::Json => match &response.partial_success {
            Some(p) => serde_json::json!({
                "partialSuccess": {
                    "rejectedSpans": p.rejected_spans.to_string(),
                    "errorMessage": p.error_message,
                }
            })
            .to_string()
            .into_bytes(),
            None => b"{}".to_vec(),
        },
    };
    ([(header::CONTENT_TYPE, media.content_type())], body).into_response()
}

fn error_response(media: MediaType, e: &IngestError) -> Response {
    error_reply(media, e, e.to_string())
}

/// The refusal of `e` in `media`, saying `message`; 503 carries `Retry-After`.
fn error_reply(media: MediaType, e: &IngestError, message: String) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let code = e.grpc_code() as i32;
    let body = match media {
        MediaType::Protobuf => RpcStatus { code, message }.encode_to_vec(),
        MediaType::Json => serde_json::json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
    };
    let mut response =
        (status, [(header::CONTENT_TYPE, media.content_type())], body).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
