//! A gRPC client that sends `TraceService/Export` message bytes exactly as
//! given (malformed ones too) and decodes the reply: what the OTLP exporter
//! crates cannot do, since they only send well-formed requests.

use bytes::{Buf as _, BufMut as _, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use super::Daemon;

pub const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends a message's bytes as they are and hands back the reply's bytes.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;
pub struct RawEncoder;
pub struct RawDecoder;

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

pub type RawGrpc = tonic::client::Grpc<Channel>;

/// A client connected to the daemon's gRPC port.
pub async fn grpc_client(daemon: &Daemon) -> RawGrpc {
    let channel = Channel::from_shared(daemon.grpc_endpoint())
        .unwrap()
        .connect()
        .await
        .expect("connect to the gRPC port");
    tonic::client::Grpc::new(channel)
}

/// `TraceService/Export` with `body` as the message.
pub async fn export(
    grpc: &mut RawGrpc,
    body: impl Into<Bytes>,
) -> Result<ExportTraceServiceResponse, Status> {
    grpc.ready().await.expect("channel ready");
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(EXPORT);
    let reply = grpc
        .unary(tonic::Request::new(body.into()), path, RawCodec)
        .await?;
    Ok(ExportTraceServiceResponse::decode(reply.into_inner()).expect("a response message"))
}
