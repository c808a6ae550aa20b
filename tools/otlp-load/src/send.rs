//! The two transports: OTLP/gRPC (`TraceService/Export`, message bytes as
//! encoded) and OTLP/HTTP protobuf (`POST /v1/traces`). Each returns what
//! the daemon said in a form the report can count.

use bytes::{Buf as _, BufMut as _, Bytes};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// How one export ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; spans the daemon refused inside it (partial success).
    Ok { rejected_spans: u64 },
    /// Refused: `503`, `UNAVAILABLE`, `connect error`...
    Refused(String),
}

/// A connected exporter.
#[derive(Clone)]
pub enum Transport {
    Grpc(tonic::client::Grpc<Channel>),
    // Boxed: the HTTP client is several times the size of a gRPC channel.
    Http(Box<HttpExporter>),
}

impl Transport {
    pub async fn grpc(endpoint: &str) -> Result<Transport, String> {
        let channel = Channel::from_shared(endpoint.to_owned())
            .map_err(|e| format!("bad gRPC endpoint {endpoint:?}: {e}"))?
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {endpoint}: {e}"))?;
        Ok(Transport::Grpc(tonic::client::Grpc::new(channel)))
    }

    pub fn http(endpoint: &str) -> Result<Transport, String> {
        let url: http::Uri = format!("{}/v1/traces", endpoint.trim_end_matches('/'))
            .parse()
            .map_err(|e| format!("bad HTTP endpoint {endpoint:?}: {e}"))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Transport::Http(Box::new(HttpExporter { client, url })))
    }

    /// Sends one encoded `ExportTraceServiceRequest`.
    pub async fn export(&mut self, body: Vec<u8>) -> Outcome {
        match self {
            Transport::Grpc(grpc) => {
                if let Err(e) = grpc.ready().await {
                    return Outcome::Refused(format!("channel: {e}"));
                }
                match export_raw(grpc, Bytes::from(body)).await {
                    Ok(reply) => accepted(&reply),
                    Err(status) => Outcome::Refused(format!("{:?}", status.code())),
                }
            }
            Transport::Http(exporter) => {
                let HttpExporter { client, url } = &**exporter;
                let request = http::Request::post(url.clone())
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                    .body(Full::new(Bytes::from(body)));
                let Ok(request) = request else {
                    return Outcome::Refused("request build".into());
                };
                match client.request(request).await {
                    Ok(resp) => {
                        let status = resp.status();
                        let body = resp.into_body().collect().await.map(|b| b.to_bytes());
                        match (status.is_success(), body) {
                            (true, Ok(bytes)) => accepted(&bytes),
                            (true, Err(e)) => Outcome::Refused(format!("body: {e}")),
                            (false, _) => Outcome::Refused(status.as_u16().to_string()),
                        }
                    }
                    Err(e) if e.is_connect() => Outcome::Refused("connect error".into()),
                    Err(_) => Outcome::Refused("transport error".into()),
                }
            }
        }
    }
}

/// OTLP/HTTP: a pooled client and the `/v1/traces` URL.
#[derive(Clone)]
pub struct HttpExporter {
    client: Client<HttpConnector, Full<Bytes>>,
    url: http::Uri,
}

fn accepted(reply: &[u8]) -> Outcome {
    let rejected_spans = ExportTraceServiceResponse::decode(reply)
        .ok()
        .and_then(|r| r.partial_success)
        .map_or(0, |p| p.rejected_spans.max(0) as u64);
    Outcome::Ok { rejected_spans }
}

/// `TraceService/Export` with `body` sent as it is (well-formed or not) on
/// a ready channel; the reply's bytes, or the status the receiver answered.
pub async fn export_raw(
    grpc: &mut tonic::client::Grpc<Channel>,
    body: Bytes,
) -> Result<Bytes, Status> {
    let path = http::uri::PathAndQuery::from_static(EXPORT);
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// Sends a message's bytes as they are and hands back the reply's bytes.
#[derive(Clone, Copy, Default)]
struct RawCodec;
struct RawEncoder;
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
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
