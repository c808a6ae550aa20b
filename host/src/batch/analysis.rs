//! The detectors over every assembled trace, exactly as the daemon runs
//! them: per-trace detectors on several threads (each with its own
//! instances, as the daemon's shards), cross-trace detectors as one
//! instance that sees every trace in input order and is flushed once at the
//! end, at the time of the latest span. Findings are stamped `ci_batch`.

use std::sync::Arc;

use crate::findings::{FindingRecord, Stamp};
use crate::metrics::Metrics;
use crate::model::TraceFragment;
use crate::pipeline::analyze::{Analyzer, PrepScratch, io_accounting, prepare, with_view};
use crate::pipeline::detectors::{ActiveDetector, DetectorSpec};

use super::error::AnalyzeError;

/// The confidence batch findings carry.
pub const CONFIDENCE: &str = "ci_batch";

/// Outbound I/O calls and how many the findings call avoidable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoTotals {
    pub total: u64,
    /// Counting every finding.
    pub avoidable: u64,
    /// Counting only findings that are not acknowledged.
    pub avoidable_unacked: u64,
}

impl IoTotals {
    fn add(&mut self, other: IoTotals) {
        self.total += other.total;
        self.avoidable += other.avoidable;
        self.avoidable_unacked += other.avoidable_unacked;
    }
}

/// Every finding, in no particular order, and the I/O totals.
#[derive(Debug, Default)]
pub struct Analysis {
    pub records: Vec<FindingRecord>,
    pub io: IoTotals,
}

/// Runs `specs` over `traces` with up to `threads` threads. `acked` says
/// whether a signature is acknowledged (for the unacknowledged I/O share);
/// `now_ns` is what cross-trace detectors are flushed at.
pub fn run(
    traces: &[TraceFragment],
    specs: &[Arc<DetectorSpec>],
    environment: &str,
    acked: &(dyn Fn(&str) -> bool + Sync),
    now_ns: u64,
    threads: usize,
) -> Result<Analysis, AnalyzeError> {
    let metrics = Metrics::new();
    let stamp = Stamp {
        environment: environment.into(),
        confidence: CONFIDENCE,
    };
    let build = |cross: bool| -> Result<Analyzer, AnalyzeError> {
        let detectors = specs
            .iter()
            .filter(|s| s.cross_trace == cross)
            .map(|s| {
                ActiveDetector::build(s.clone(), &metrics).map_err(|source| {
                    AnalyzeError::Detector {
                        id: s.id.clone(),
                        source,
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Analyzer::new(detectors, stamp.clone()))
    };
    let workers = threads.clamp(1, traces.len().div_ceil(256).max(1));
    let per_trace: Vec<Analyzer> = (0..workers)
        .map(|_| build(false))
        .collect::<Result<_, _>>()?;
    let mut cross = build(true)?;
    let slice = traces.len().div_ceil(workers).max(1);
    let metrics = &metrics;
    let (mut analysis, cross_records) = std::thread::scope(|scope| {
        let handles: Vec<_> = per_trace
            .into_iter()
            .zip(traces.chunks(slice))
            .map(|(analyzer, part)| {
                std::thread::Builder::new()
                    .name("analyze".into())
                    .spawn_scoped(scope, move || {
                        per_trace_pass(analyzer, part, acked, metrics)
                    })
            })
            .collect::<Result<_, _>>()
            .map_err(AnalyzeError::Thread)?;
        let cross_records = (!cross.is_empty()).then(|| {
            let mut scratch = PrepScratch::default();
            let mut records = Vec::new();
            for frag in traces {
                let prep = prepare(frag, &mut scratch);
                records.extend(with_view(frag, &prep, |view| cross.run(view, metrics)));
            }
            records.extend(cross.flush(now_ns, metrics));
            records
        });
        let mut analysis = Analysis::default();
        for handle in handles {
            // A detector's panic is caught where it is called: a worker
            // itself panicking is a bug, reported as one.
            let part = handle.join().map_err(|_| {
                AnalyzeError::Thread(std::io::Error::other("an analysis thread panicked"))
            })?;
            analysis.records.extend(part.records);
            analysis.io.add(part.io);
        }
        Ok::<_, AnalyzeError>((analysis, cross_records))
    })?;
    analysis.records.extend(cross_records.into_iter().flatten());
    Ok(analysis)
}

fn per_trace_pass(
    mut analyzer: Analyzer,
    traces: &[TraceFragment],
    acked: &(dyn Fn(&str) -> bool + Sync),
    metrics: &Metrics,
) -> Analysis {
    let mut out = Analysis::default();
    let mut scratch = PrepScratch::default();
    for frag in traces {
        let prep = prepare(frag, &mut scratch);
        with_view(frag, &prep, |view| {
            let records = analyzer.run(view, metrics);
            let (total, avoidable) = io_accounting(view, &records);
            let avoidable_unacked = if records.iter().any(|r| acked(&r.signature)) {
                let (shown, hidden): (Vec<_>, Vec<_>) =
                    records.into_iter().partition(|r| !acked(&r.signature));
                let (_, avoidable) = io_accounting(view, &shown);
                out.records.extend(shown);
                out.records.extend(hidden);
                avoidable
            } else {
                out.records.extend(records);
                avoidable
            };
            out.io.add(IoTotals {
                total,
                avoidable,
                avoidable_unacked,
            });
        });
    }
    out
}
