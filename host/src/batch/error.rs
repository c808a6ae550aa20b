//! Why `perf-sentinel analyze` could not produce a report. Every input
//! error says where in the file it is (byte offset, line and column) and
//! what was expected, so a broken capture is fixed without guessing.

use std::fmt;

/// A place in the input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// Bytes before it.
    pub offset: u64,
    /// 1-based.
    pub line: u64,
    /// 1-based, in bytes.
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {} (byte {})",
            self.line, self.column, self.offset
        )
    }
}

/// What the input formats are, for messages.
pub const EXPECTED: &str = "OTLP JSON (an ExportTraceServiceRequest object, or one per line), a Zipkin v2 JSON array or a Jaeger JSON export";

/// The input cannot be read as traces.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    #[error("is empty: expected {EXPECTED}")]
    Empty,
    #[error("is larger than --max-input-size ({limit} bytes); raise the limit or split the file")]
    TooLarge { limit: u64 },
    #[error("is not JSON: byte 0x{found:02x} at {at}; expected {EXPECTED}")]
    NotJson { at: Position, found: u8 },
    #[error("is UTF-16 (byte order mark at the start); convert it to UTF-8")]
    Utf16,
    #[error("is not valid UTF-8 at {at}")]
    InvalidUtf8 { at: Position },
    #[error(
        "ends in the middle of the JSON value that starts at {started} (truncated file?): input ends at {at}"
    )]
    Truncated { at: Position, started: Position },
    #[error("is malformed at {at}: {message}")]
    Structure { at: Position, message: String },
    #[error(
        "has a JSON object at {at} with neither `resourceSpans` (OTLP) nor `data` (Jaeger); expected {EXPECTED}"
    )]
    UnknownObject { at: Position },
    #[error("mixes formats: {then} at {at} after {first}")]
    MixedFormats {
        at: Position,
        first: &'static str,
        then: &'static str,
    },
    #[error(
        "has {container} larger than {limit} bytes at {at}; split the file into smaller batches"
    )]
    ElementTooLarge {
        at: Position,
        container: &'static str,
        limit: usize,
    },
    #[error("has an invalid {what} at {at}: {message}")]
    Malformed {
        at: Position,
        what: &'static str,
        message: String,
    },
    #[error("holds no spans")]
    NoSpans,
    #[error("holds more spans than one run can hold ({held} held, {over} more)")]
    TooManySpans { held: usize, over: usize },
    #[error("holds no valid spans ({rejected} refused: invalid trace or span id)")]
    NoValidSpans { rejected: usize },
    #[error("is gzip-compressed and cannot be decompressed: {0}")]
    Gzip(std::io::Error),
}

impl InputError {
    /// A read error; a too-large input shows up here from the size cap.
    pub fn from_read(e: std::io::Error) -> Self {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<TooLargeMarker>())
        {
            Some(marker) => InputError::TooLarge {
                limit: marker.limit,
            },
            None => InputError::Read(e),
        }
    }
}

/// Carried inside an `io::Error` by the size-capped reader, so the cap is
/// reported as itself rather than as a read failure.
#[derive(Debug)]
pub struct TooLargeMarker {
    pub limit: u64,
}

impl fmt::Display for TooLargeMarker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "input larger than {} bytes", self.limit)
    }
}

impl std::error::Error for TooLargeMarker {}

/// Why `analyze` stopped without a report (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("configuration refused:\n{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{name} {source}")]
    Input { name: String, source: InputError },
    #[error("acknowledgments: {0}")]
    Acks(#[from] crate::acks::AckError),
    #[error("detector `{id}` refused its configuration: {source}")]
    Detector {
        id: String,
        source: detector_api::BuildError,
    },
    #[error("cannot start an analysis thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot write the report: {0}")]
    Output(std::io::Error),
}
