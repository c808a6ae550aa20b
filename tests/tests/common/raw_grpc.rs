//! A gRPC client that sends `TraceService/Export` message bytes exactly as
//! given (malformed ones too) and decodes the reply: what the OTLP exporter
//! crates cannot do, since they only send well-formed requests. The sending
//! is the load generator's (`otlp_load::send::export_raw`).

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::Status;
use tonic::transport::Channel;

use super::Daemon;

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
    let reply = otlp_load::send::export_raw(grpc, body.into()).await?;
    Ok(ExportTraceServiceResponse::decode(reply).expect("a response message"))
}
