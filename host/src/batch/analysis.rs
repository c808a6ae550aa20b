//! The detectors over every assembled trace, exactly as the daemon runs
//! them: per-trace detectors on several threads (each with its own
//! instances, as the daemon's shards), cross-trace detectors as one
//! instance that sees every trace in input order and is flushed once at the
//! end, at the time of the latest span. Findings are stamped `ci_batch`.

use std::sync::Arc;

use std::sync::mpsc::{SyncSender, sync_channel};

use crate::findings::Stamp;
use crate::metrics::Metrics;
use crate::model::TraceFragment;
use crate::pipeline::analyze::{Analyzer, PrepScratch, io_accounting, prepare, with_view};
use crate::pipeline::detectors::{ActiveDetector, DetectorSpec};

use super::assemble::Traces;
use super::error::AnalyzeError;
use super::fold::Folder;

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

/// The findings, folded by signature, and the I/O totals.
#[derive(Default)]
pub struct Analysis {
    pub findings: Folder,
    pub io: IoTotals,
}

/// Batches of traces waiting for the cross-trace detectors, per worker.
const CROSS_QUEUE: usize = 4;
/// Traces per batch sent to the cross-trace detectors: one hand-off (and
/// at most one thread wake-up) per batch instead of per trace.
const CROSS_BATCH: usize = 32;

/// A trace on its way to the cross-trace detectors.
type Prepared = (TraceFragment, crate::pipeline::analyze::Prepared);

/// Runs `specs` over every trace of `traces` with `threads` worker threads
/// (plus the calling thread for cross-trace detectors). `acked` says
/// whether a signature is acknowledged (for the unacknowledged I/O share);
/// `now_ns` is what cross-trace detectors are flushed at.
pub fn run(
    traces: &Traces,
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
        // Per-trace findings are folded; only the few shown are printed.
        Ok(Analyzer::new(detectors, stamp.clone()).with_deferred_lines())
    };
    let workers = threads.clamp(1, traces.len().max(1));
    let analyzers: Vec<Analyzer> = (0..workers)
        .map(|_| build(false))
        .collect::<Result<_, _>>()?;
    let mut cross = build(true)?;
    let feed_cross = !cross.is_empty();
    let metrics = &metrics;
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(workers);
        let mut queues = Vec::with_capacity(workers);
        for (k, analyzer) in analyzers.into_iter().enumerate() {
            let (tx, rx) = sync_channel::<Vec<Prepared>>(CROSS_QUEUE);
            let handle = std::thread::Builder::new()
                .name("analyze".into())
                .spawn_scoped(scope, move || {
                    let tx = feed_cross.then_some(tx);
                    per_trace_pass(analyzer, traces, k, workers, acked, metrics, tx)
                })
                .map_err(AnalyzeError::Thread)?;
            handles.push(handle);
            queues.push(rx);
        }
        let mut out = Analysis::default();
        if feed_cross {
            // In input order: worker `n % workers` analyzed trace `n`, and
            // sends its traces in order, in batches.
            let mut pending: Vec<std::vec::IntoIter<Prepared>> =
                (0..workers).map(|_| Vec::new().into_iter()).collect();
            for n in 0..traces.len() {
                let k = n % workers;
                let next = match pending[k].next() {
                    Some(p) => Some(p),
                    None => queues[k].recv().ok().and_then(|batch| {
                        pending[k] = batch.into_iter();
                        pending[k].next()
                    }),
                };
                let Some((frag, prep)) = next else {
                    break;
                };
                for r in with_view(&frag, &prep, |view| cross.run(view, metrics)) {
                    out.findings.add(r);
                }
            }
            for r in cross.flush(now_ns, metrics) {
                out.findings.add(r);
            }
        }
        drop(queues);
        for handle in handles {
            // A detector's panic is caught where it is called: a worker
            // itself panicking is a bug, reported as one.
            let part = handle.join().map_err(|_| {
                AnalyzeError::Thread(std::io::Error::other("an analysis thread panicked"))
            })?;
            out.findings.merge(part.findings);
            out.io.add(part.io);
        }
        Ok(out)
    })
}

/// Worker `k` of `workers`: traces `k`, `k + workers`, ... through the
/// per-trace detectors, each then handed to the cross-trace detectors.
fn per_trace_pass(
    mut analyzer: Analyzer,
    traces: &Traces,
    k: usize,
    workers: usize,
    acked: &(dyn Fn(&str) -> bool + Sync),
    metrics: &Metrics,
    cross: Option<SyncSender<Vec<Prepared>>>,
) -> Analysis {
    let mut out = Analysis::default();
    let mut batch = Vec::with_capacity(CROSS_BATCH);
    let mut scratch = PrepScratch::default();
    for n in (k..traces.len()).step_by(workers) {
        let Some(frag) = traces.fragment(n) else {
            continue;
        };
        let prep = prepare(&frag, &mut scratch);
        with_view(&frag, &prep, |view| {
            let records = analyzer.run(view, metrics);
            let (total, avoidable) = io_accounting(view, &records);
            let avoidable_unacked = if records.iter().any(|r| acked(&r.signature)) {
                let (shown, hidden): (Vec<_>, Vec<_>) =
                    records.into_iter().partition(|r| !acked(&r.signature));
                let (_, avoidable) = io_accounting(view, &shown);
                shown
                    .into_iter()
                    .chain(hidden)
                    .for_each(|r| out.findings.add(r));
                avoidable
            } else {
                records.into_iter().for_each(|r| out.findings.add(r));
                avoidable
            };
            out.io.add(IoTotals {
                total,
                avoidable,
                avoidable_unacked,
            });
        });
        if let Some(tx) = &cross {
            batch.push((frag, prep));
            if batch.len() == CROSS_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(CROSS_BATCH));
                if tx.send(full).is_err() {
                    return out;
                }
            }
        }
    }
    if let Some(tx) = &cross
        && !batch.is_empty()
    {
        let _ = tx.send(batch);
    }
    out
}
