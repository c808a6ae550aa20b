//! One analysis shard: a thread that owns a [`TraceWindow`] and an
//! [`Analyzer`], takes batches from its queue, closes traces on time and
//! publishes their findings. No lock is shared with other shards.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::sync::mpsc::SyncSender;

use super::analyze::{
    Analyzer, PrepScratch, avoidable_energy, io_accounting_by_service, prepare, with_view,
};
use super::cross::CrossMsg;
use super::explain::{RetainedTraces, TraceSource, explain};
use super::queue::{Admission, ShardMsg};
use crate::findings::FindingsSink;
use crate::metrics::{Metrics, ReasonLabel};
use crate::window::{ClosedTrace, TraceWindow};

/// How often a shard wakes without traffic: flush tick for cross-trace
/// detectors, and an upper bound on timer lateness.
const TICK: Duration = Duration::from_millis(250);
/// How often cross-trace detectors are flushed.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// The parts a shard thread owns.
pub struct Shard {
    pub window: TraceWindow,
    pub analyzer: Analyzer,
    pub scratch: PrepScratch,
    /// The cross-trace stage, when a cross-trace detector is enabled.
    pub cross: Option<SyncSender<CrossMsg>>,
    pub rx: Receiver<ShardMsg>,
    pub admission: Arc<Admission>,
    pub metrics: Arc<Metrics>,
    pub sink: FindingsSink,
    /// Analyzed traces kept for `GET /api/explain`.
    pub retained: RetainedTraces,
    /// Findings and traces analyzed since the last hand-off: handed to the
    /// writer and the cross-trace stage once per turn of the loop, so a
    /// request's fifty traces cost one wake-up of each, not fifty.
    pub pending: Pending,
}

/// What a shard hands on in one go.
#[derive(Default)]
pub struct Pending {
    records: Vec<crate::findings::FindingRecord>,
    cross: super::cross::CrossMsg,
    /// Traces analyzed since the last hand-off: a turn that closes many
    /// (a burst expiring at once) still hands on every [`cross::BATCH`],
    /// so findings wait for at most that many traces.
    ///
    /// [`cross::BATCH`]: super::cross::BATCH
    traces: usize,
}

pub(crate) fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Shard {
    /// Runs until told to shut down (or every sender is gone), then analyzes
    /// everything it holds.
    pub fn run(mut self) {
        let mut closed = Vec::new();
        let mut last_flush = Instant::now();
        loop {
            let now = Instant::now();
            let wait = self
                .window
                .next_deadline()
                .map_or(TICK, |d| d.saturating_duration_since(now).min(TICK));
            match self.rx.recv_timeout(wait) {
                Ok(ShardMsg::Batch { fragments, spans }) => {
                    self.take(fragments, &mut closed);
                    self.admission.release(spans);
                }
                Ok(ShardMsg::Explain { trace_id, reply }) => {
                    let found = match self.window.get(&trace_id) {
                        Some(f) => Some(explain(f, TraceSource::Window)),
                        None => self
                            .retained
                            .get(&trace_id)
                            .map(|f| explain(f, TraceSource::Retained)),
                    };
                    // The asker may have given up; nothing to do then.
                    let _ = reply.send(found);
                }
                Ok(ShardMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.window.expire(Instant::now(), &mut closed);
            self.analyze_all(&mut closed);
            self.hand_off();
            if last_flush.elapsed() >= FLUSH_EVERY {
                last_flush = Instant::now();
                self.flush();
            }
        }
        // Batches still queued were answered OK: analyze them too.
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                ShardMsg::Batch { fragments, spans } => {
                    self.take(fragments, &mut closed);
                    self.admission.release(spans);
                    self.analyze_all(&mut closed);
                    self.hand_off();
                }
                ShardMsg::Explain { reply, .. } => {
                    let _ = reply.send(None);
                }
                ShardMsg::Shutdown => {}
            }
        }
        self.window.drain(&mut closed);
        self.analyze_all(&mut closed);
        self.hand_off();
        self.flush();
    }

    fn take(&mut self, fragments: Vec<crate::model::TraceFragment>, closed: &mut Vec<ClosedTrace>) {
        let now = Instant::now();
        for f in fragments {
            let stats = self.window.insert(f, now, closed);
            if stats.new_traces > 0 {
                self.metrics.active_traces.inc();
            }
            if stats.dropped_over_cap > 0 {
                self.metrics
                    .spans_dropped
                    .get_or_create(&ReasonLabel {
                        reason: "max_events_per_trace",
                    })
                    .inc_by(stats.dropped_over_cap as u64);
            }
            if stats.late > 0 {
                self.metrics.late_spans.inc_by(stats.late as u64);
            }
            // Evicted traces are analyzed right away so the window never
            // holds more than its bound.
            self.analyze_all(closed);
        }
    }

    fn analyze_all(&mut self, closed: &mut Vec<ClosedTrace>) {
        for c in closed.drain(..) {
            self.metrics.active_traces.dec();
            let prep = prepare(&c.fragment, &mut self.scratch);
            let metrics = &self.metrics;
            let analyzer = &mut self.analyzer;
            let records = with_view(&c.fragment, &prep, |view| {
                let records = analyzer.run(view, metrics);
                let (total, avoidable) =
                    io_accounting_by_service(view, &records, |service, calls| {
                        metrics.record_service_io(service, calls)
                    });
                metrics.record_io(total, avoidable);
                if let Some(green) = analyzer.green() {
                    let trace = green.score_trace(view);
                    let (kwh, gco2) = avoidable_energy(view, &records, green);
                    metrics.record_energy(trace.io_kwh, trace.io_gco2, kwh, gco2);
                }
                records
            });
            self.metrics
                .spans_analyzed
                .inc_by(c.fragment.spans.len() as u64);
            self.metrics
                .traces_analyzed
                .get_or_create(&ReasonLabel {
                    reason: c.reason.as_str(),
                })
                .inc();
            // Explaining serves findings: a trace without any is not kept.
            // Keeping every trace pinned pages of the whole churn in memory
            // (140 MB after a load of clean traces, 28 MB without).
            let explainable = !records.is_empty();
            self.pending.records.extend(records);
            let fragment = Arc::new(c.fragment);
            if explainable {
                self.retained.keep(fragment.clone());
            }
            if self.cross.is_some() {
                self.pending.cross.push((fragment, prep));
            }
            self.pending.traces += 1;
            if self.pending.traces >= super::cross::BATCH {
                self.hand_off();
            }
        }
    }

    /// Publishes the pending findings and sends the pending traces on.
    fn hand_off(&mut self) {
        self.pending.traces = 0;
        self.sink.publish(std::mem::take(&mut self.pending.records));
        if let Some(cross) = &self.cross
            && !self.pending.cross.is_empty()
        {
            let batch = std::mem::replace(
                &mut self.pending.cross,
                Vec::with_capacity(super::cross::BATCH),
            );
            // Blocks when the stage is behind: backpressure, not loss.
            let _ = cross.send(batch);
        }
    }

    fn flush(&mut self) {
        let records = self.analyzer.flush(wall_ns(), &self.metrics);
        self.sink.publish(records);
    }
}
