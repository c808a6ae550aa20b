//! OTLP ingest, shared by the gRPC and HTTP receivers: decode, convert to
//! trace fragments, admit to analysis (or refuse whole with a retryable
//! error), dispatch to shards. Every refusal is counted by reason.

pub mod body;
pub mod convert;
pub mod grpc;
pub mod http;
pub mod memory_guard;
pub mod sampling;
pub mod wire;
pub mod zipkin;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::metrics::{Metrics, ReasonLabel};
use crate::pipeline::Pipeline;
use crate::pipeline::queue::Refusal;
use convert::{ConvertLimits, Converted, convert, convert_wire};
use sampling::Sampler;
use wire::WireError;

/// Why a request was refused. Each maps to an HTTP status, a gRPC code and
/// a metric reason.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("request body is larger than max_payload_size ({limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("decompressed request is larger than max_payload_size ({limit} bytes)")]
    DecompressedTooLarge { limit: usize },
    #[error("cannot decompress {encoding} body: {detail}")]
    BadCompression {
        encoding: &'static str,
        detail: String,
    },
    #[error("unsupported Content-Encoding `{0}` (use gzip, deflate or none)")]
    UnsupportedEncoding(String),
    #[error("unsupported Content-Type `{0}` (use application/x-protobuf or application/json)")]
    UnsupportedMediaType(String),
    #[error("cannot read the request body: {0}")]
    BodyRead(String),
    #[error("invalid protobuf: {0}")]
    MalformedProtobuf(String),
    #[error("invalid UTF-8 in a string field: {0}")]
    InvalidUtf8(String),
    #[error("invalid OTLP JSON: {0}")]
    MalformedJson(String),
    #[error("every span had an invalid trace or span id ({0} spans)")]
    AllSpansInvalid(usize),
    #[error("analysis is behind; retry later")]
    Backpressure,
    #[error("memory use is above memory_high_water_pct; retry later")]
    MemoryPressure,
    #[error("the daemon is shutting down; retry against another instance")]
    ShuttingDown,
}

impl IngestError {
    /// The `reason` label of `perf_sentinel_otlp_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::PayloadTooLarge { .. } => "payload_too_large",
            IngestError::DecompressedTooLarge { .. } => "decompressed_too_large",
            IngestError::BadCompression { .. } => "bad_compression",
            IngestError::UnsupportedEncoding(_) => "unsupported_encoding",
            IngestError::UnsupportedMediaType(_) => "unsupported_media_type",
            IngestError::BodyRead(_) => "body_read_error",
            IngestError::MalformedProtobuf(_) => "malformed_protobuf",
            IngestError::InvalidUtf8(_) => "invalid_utf8",
            IngestError::MalformedJson(_) => "malformed_json",
            IngestError::AllSpansInvalid(_) => "invalid_id",
            IngestError::Backpressure => "backpressure",
            IngestError::MemoryPressure => "memory_pressure",
            IngestError::ShuttingDown => "shutting_down",
        }
    }

    /// HTTP status for the OTLP/HTTP receiver.
    pub fn http_status(&self) -> u16 {
        match self {
            IngestError::PayloadTooLarge { .. } | IngestError::DecompressedTooLarge { .. } => 413,
            IngestError::UnsupportedMediaType(_) | IngestError::UnsupportedEncoding(_) => 415,
            IngestError::Backpressure | IngestError::MemoryPressure | IngestError::ShuttingDown => {
                503
            }
            _ => 400,
        }
    }

    /// gRPC status code for the OTLP/gRPC receiver.
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            IngestError::PayloadTooLarge { .. } | IngestError::DecompressedTooLarge { .. } => {
                tonic::Code::ResourceExhausted
            }
            IngestError::UnsupportedEncoding(_) => tonic::Code::Unimplemented,
            IngestError::Backpressure | IngestError::MemoryPressure | IngestError::ShuttingDown => {
                tonic::Code::Unavailable
            }
            _ => tonic::Code::InvalidArgument,
        }
    }
}

/// What an accepted request reports back (OTLP partial success).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub accepted_spans: usize,
    pub rejected_spans: usize,
    pub message: String,
}

/// Decodes an OTLP/JSON `ExportTraceServiceRequest` (hex ids, int64 as
/// strings or numbers, enums as integers).
pub fn decode_json(bytes: &[u8]) -> Result<ExportTraceServiceRequest, IngestError> {
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(IngestError::InvalidUtf8(e.to_string()));
    }
    serde_json::from_slice(bytes).map_err(|e| IngestError::MalformedJson(e.to_string()))
}

impl From<WireError> for IngestError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::InvalidUtf8 { .. } => IngestError::InvalidUtf8(e.to_string()),
            other => IngestError::MalformedProtobuf(other.to_string()),
        }
    }
}

/// How an [`Ingestor`] admits requests (from `[daemon]`).
#[derive(Debug, Clone, Copy)]
pub struct IngestSettings {
    /// Bytes, compressed and decompressed.
    pub max_payload_size: usize,
    /// How long a request may wait for room in the analysis queue.
    pub admission_wait: Duration,
    /// Which traces are analyzed.
    pub sampler: Sampler,
}

/// The entry point both receivers call once a request is decoded.
pub struct Ingestor {
    pipeline: Arc<Pipeline>,
    metrics: Arc<Metrics>,
    limits: ConvertLimits,
    admission_wait: Duration,
    pub max_payload_size: usize,
}

impl Ingestor {
    /// Ingest into `pipeline`.
    pub fn new(pipeline: Arc<Pipeline>, metrics: Arc<Metrics>, settings: IngestSettings) -> Self {
        Self {
            pipeline,
            metrics,
            limits: ConvertLimits {
                sampler: settings.sampler,
                ..ConvertLimits::default()
            },
            admission_wait: settings.admission_wait,
            max_payload_size: settings.max_payload_size,
        }
    }

    /// The metrics, for receivers counting their own refusals.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Counts a refusal and passes it on.
    pub fn refused(&self, e: IngestError) -> IngestError {
        self.metrics.reject(e.reason());
        if let IngestError::Backpressure = e {
            self.metrics.shed_batches.inc();
        }
        e
    }

    /// Converts, admits and dispatches one decoded request. A refusal is
    /// returned uncounted: the receiver counts it once with [`Self::refused`].
    pub async fn ingest(
        &self,
        request: &ExportTraceServiceRequest,
    ) -> Result<Accepted, IngestError> {
        // Before converting: that would allocate what the guard protects.
        if self.pipeline.admission.memory_pressure() {
            return Err(IngestError::MemoryPressure);
        }
        let converted = convert(request, self.pipeline.shard_count(), &self.limits);
        self.admit(converted).await
    }

    /// Walks, converts, admits and dispatches one protobuf request body
    /// (the zero-copy path of both receivers).
    pub async fn ingest_protobuf(&self, body: &[u8]) -> Result<Accepted, IngestError> {
        if self.pipeline.admission.memory_pressure() {
            return Err(IngestError::MemoryPressure);
        }
        let converted = convert_wire(body, self.pipeline.shard_count(), &self.limits)?;
        self.admit(converted).await
    }

    async fn admit(&self, converted: Converted) -> Result<Accepted, IngestError> {
        let invalid = converted.rejected_invalid_id;
        if converted.accepted == 0 && converted.sampled_out == 0 && invalid > 0 {
            return Err(IngestError::AllSpansInvalid(invalid));
        }
        if converted.accepted > 0 {
            let admitted = self
                .pipeline
                .admission
                .admit(converted.accepted, self.admission_wait)
                .await;
            match admitted {
                Ok(()) => {}
                Err(Refusal::MemoryPressure) => return Err(IngestError::MemoryPressure),
                Err(Refusal::QueueFull) => {
                    self.metrics.shed_spans.inc_by(converted.accepted as u64);
                    let traces: usize = converted.shards.iter().map(Vec::len).sum();
                    self.metrics.shed_traces.inc_by(traces as u64);
                    return Err(IngestError::Backpressure);
                }
            }
            if self.pipeline.dispatch(converted.shards).is_err() {
                return Err(IngestError::ShuttingDown);
            }
            self.metrics
                .spans_received
                .inc_by(converted.accepted as u64);
        }
        if invalid > 0 {
            self.metrics
                .spans_rejected
                .get_or_create(&ReasonLabel {
                    reason: "invalid_id",
                })
                .inc_by(invalid as u64);
        }
        if converted.sampled_out > 0 {
            self.metrics
                .spans_sampled_out
                .inc_by(converted.sampled_out as u64);
        }
        if converted.truncated_strings > 0 {
            self.metrics
                .strings_truncated
                .inc_by(converted.truncated_strings as u64);
        }
        if converted.dropped_attributes > 0 {
            self.metrics
                .attributes_dropped
                .inc_by(converted.dropped_attributes as u64);
        }
        Ok(Accepted {
            // Sampled-out spans were taken in as far as the exporter is
            // concerned: refusing them would only make it retry.
            accepted_spans: converted.accepted + converted.sampled_out,
            rejected_spans: invalid,
            message: if invalid > 0 {
                format!("{invalid} spans refused: invalid trace or span id")
            } else {
                String::new()
            },
        })
    }
}
