//! The OTLP/gRPC receiver: `TraceService/Export` served by tonic with a codec
//! that hands the handler the raw (decompressed) message, so decoding, its
//! errors and their counting stay in perf-sentinel's hands.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::body::Body as TonicBody;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Request, Response, Status};

use super::{IngestError, Ingestor};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// Marks a response whose refusal the handler already counted.
const COUNTED: &str = "x-perf-sentinel-counted";

/// Passes the message bytes through undecoded; encodes the response.
#[derive(Default, Clone, Copy)]
struct RawCodec;

struct RawDecoder;
struct ResponseEncoder;

impl Codec for RawCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Bytes;
    type Encoder = ResponseEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n)))
    }
}

impl Encoder for ResponseEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;
    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("cannot encode response: {e}")))
    }
}

/// The tonic service for `opentelemetry.proto.collector.trace.v1.TraceService`.
#[derive(Clone)]
pub struct TraceGrpc {
    ingestor: Arc<Ingestor>,
}

impl TraceGrpc {
    /// Serves into `ingestor`.
    pub fn new(ingestor: Arc<Ingestor>) -> Self {
        Self { ingestor }
    }
}

impl NamedService for TraceGrpc {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

struct Export(Arc<Ingestor>);

impl UnaryService<Bytes> for Export {
    type Response = ExportTraceServiceResponse;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Response<Self::Response>, Status>> + Send>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let ingestor = self.0.clone();
        Box::pin(async move {
            let result = ingestor.ingest_protobuf(request.get_ref()).await;
            match result {
                Ok(accepted) => Ok(Response::new(ExportTraceServiceResponse {
                    partial_success: (accepted.rejected_spans > 0).then_some(
                        ExportTracePartialSuccess {
                            rejected_spans: accepted.rejected_spans as i64,
                            error_message: accepted.message,
                        },
                    ),
                })),
                Err(e) => {
                    let e = ingestor.refused(e);
                    let mut status = Status::new(e.grpc_code(), e.to_string());
                    status
                        .metadata_mut()
                        .insert(COUNTED, tonic::metadata::MetadataValue::from_static("1"));
                    Err(status)
                }
            }
        })
    }
}

impl<B> tower_service::Service<http::Request<B>> for TraceGrpc
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<TonicBody>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<http::Response<TonicBody>, Infallible>> + Send>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let ingestor = self.ingestor.clone();
        Box::pin(async move {
            if req.uri().path() != EXPORT_PATH {
                return Ok(Status::unimplemented("only TraceService/Export is served").into_http());
            }
            let limit = ingestor.max_payload_size;
            let mut grpc = Grpc::new(RawCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Deflate)
                .max_decoding_message_size(limit);
            let mut response = grpc.unary(Export(ingestor.clone()), req).await;
            account_for_transport_refusals(&ingestor, &mut response, limit);
            Ok(response)
        })
    }
}

/// tonic refuses some requests before the handler runs (message too large,
/// decompression over the limit, unknown compression). Count those, and
/// answer an oversized message with RESOURCE_EXHAUSTED as for a decompressed
/// one (tonic says OUT_OF_RANGE).
fn account_for_transport_refusals(
    ingestor: &Ingestor,
    response: &mut http::Response<TonicBody>,
    limit: usize,
) {
    let headers = response.headers_mut();
    if headers.remove(COUNTED).is_some() {
        return;
    }
    let Some(code) = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return;
    };
    let error = match Code::from_i32(code) {
        Code::Ok => return,
        Code::OutOfRange => IngestError::PayloadTooLarge { limit },
        Code::ResourceExhausted => IngestError::DecompressedTooLarge { limit },
        Code::Unimplemented => IngestError::UnsupportedEncoding("grpc-encoding".into()),
        _ => IngestError::MalformedProtobuf(format!("refused by the gRPC layer ({code})")),
    };
    let error = ingestor.refused(error);
    if code == Code::OutOfRange as i32 {
        headers.insert(
            "grpc-status",
            http::HeaderValue::from(Code::ResourceExhausted as i32),
        );
        if let Ok(msg) = http::HeaderValue::from_str(&error.to_string()) {
            headers.insert("grpc-message", msg);
        }
    }
}
