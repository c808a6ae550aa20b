//! `perf-sentinel analyze`: the daemon's detectors, built-in and plugin,
//! over a captured trace file, for a CI quality gate. Same configuration,
//! registry, plugins, environments and overlays as the daemon; the same
//! finding objects; a gate from `[thresholds]`; the CI acknowledgment
//! baseline honoured.
//!
//! `input` opens and caps the file, `split` cuts it into elements as it
//! streams, `decode` parses them (`otlp_json` reads OTLP items fast, `jaeger`
//! maps Jaeger traces), `read` runs
//! those on every core and `assemble` rebuilds the traces, held compactly;
//! `analysis` runs the detectors, `fold` folds their findings by signature
//! as they come, `report` orders them and `gate` judges them; `render`
//! prints text, JSON or SARIF.

pub mod analysis;
pub mod assemble;
pub mod decode;
pub mod error;
pub mod fold;
pub mod gate;
pub mod input;
pub mod jaeger;
pub mod otlp_json;
pub mod read;
pub mod render;
pub mod report;
pub mod split;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;

use crate::acks::{AckError, AckInfo, Baseline, DEFAULT_BASELINE};
use crate::config::Config;
use crate::pipeline::detectors::DetectorSpec;

pub use error::{AnalyzeError, InputError};
pub use report::Report;

/// The largest element (an OTLP `resourceSpans` item, a Jaeger trace, a
/// Zipkin span or trace) read whole, in bytes.
pub const MAX_ELEMENT: usize = 256 << 20;

/// What `analyze` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The trace file; `-` for standard input.
    pub input: PathBuf,
    /// Bytes read at most (after decompression).
    pub max_input: u64,
    /// Whether the CI baseline applies.
    pub acknowledgments: bool,
    /// Threads for parsing and for detection.
    pub threads: usize,
}

/// What the run gives the command line besides the report.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    /// The baseline that was read, if any, as messages name it.
    pub baseline: Option<String>,
}

/// The CI baseline `[daemon.ack]` names (or the default file in `cwd`,
/// when present); none when acks are off.
pub fn load_baseline(
    config: &Config,
    cwd: &Path,
    wanted: bool,
) -> Result<Option<Baseline>, AckError> {
    let ack = &config.daemon.ack;
    if !wanted || ack.enabled == Some(false) {
        return Ok(None);
    }
    match &ack.toml_path {
        Some(path) => Baseline::load(&cwd.join(path)).map(Some),
        None => match Baseline::load(&cwd.join(DEFAULT_BASELINE)) {
            Ok(b) => Ok(Some(b)),
            Err(AckError::BaselineMissing { .. }) => Ok(None),
            Err(e) => Err(e),
        },
    }
}

/// Reads, analyzes and reports.
pub fn run(
    config: &Config,
    specs: &[Arc<DetectorSpec>],
    options: &Options,
    cwd: &Path,
) -> Result<Outcome, AnalyzeError> {
    let baseline = load_baseline(config, cwd, options.acknowledgments)?;
    let now = OffsetDateTime::now_utc();
    let opened = input::open(&options.input, options.max_input)
        .map_err(|(name, source)| AnalyzeError::Input { name, source })?;
    let name = opened.name.clone();
    let gzip = opened.gzip;
    let input_error = |source: InputError| AnalyzeError::Input {
        name: name.clone(),
        source: match source {
            InputError::Read(e) if gzip => InputError::Gzip(e),
            other => other,
        },
    };
    let started = std::time::Instant::now();
    let outcome = read::read(
        opened.reader,
        read::ReadSettings {
            max_element: MAX_ELEMENT,
            max_spans_per_trace: config.daemon.max_events_per_trace,
            workers: options.threads,
        },
    )
    .map_err(input_error)?;
    if outcome.traces.dropped_over_store > 0 {
        return Err(input_error(InputError::TooManySpans {
            held: outcome.traces.spans,
            over: outcome.traces.dropped_over_store,
        }));
    }
    if outcome.traces.is_empty() {
        return Err(input_error(match outcome.rejected_invalid_id {
            0 => InputError::NoSpans,
            rejected => InputError::NoValidSpans { rejected },
        }));
    }
    let summary = report::InputSummary {
        format: match outcome.format {
            split::Format::Otlp if outcome.values > 1 => "otlp_ndjson",
            other => other.name(),
        },
        gzip,
        bytes: outcome.bytes,
        traces: outcome.traces.len(),
        spans: outcome.traces.spans,
        spans_rejected_invalid_id: outcome.rejected_invalid_id,
        spans_over_trace_cap: outcome.traces.dropped_over_cap,
        strings_truncated: outcome.truncated_strings,
        attributes_dropped: outcome.dropped_attributes,
    };
    let traces = outcome.traces;
    tracing::debug!(
        spans = summary.spans,
        traces = summary.traces,
        held_bytes = traces.heap_bytes(),
        ms = started.elapsed().as_millis() as u64,
        "input read"
    );
    let started = std::time::Instant::now();
    let acked = |signature: &str| {
        baseline
            .as_ref()
            .is_some_and(|b| b.get(signature, now).is_some())
    };
    let environment = config.daemon.environment.as_str();
    let analysis = analysis::run(
        &traces,
        specs,
        environment,
        &acked,
        traces.last_ns,
        options.threads,
    )?;
    drop(traces);
    tracing::debug!(
        signatures = analysis.findings.len(),
        ms = started.elapsed().as_millis() as u64,
        "detectors run"
    );
    let lookup = |signature: &str| {
        baseline
            .as_ref()
            .and_then(|b| b.get(signature, now))
            .map(AckInfo::from_baseline)
    };
    let report = Report::build(
        analysis,
        summary,
        environment,
        specs,
        &config.thresholds,
        &lookup,
    );
    Ok(Outcome {
        report,
        baseline: baseline.and_then(|b| b.path().map(|p| p.display().to_string())),
    })
}
