//! The single findings writer: it takes findings from every shard through a
//! bounded channel and feeds the store and the metrics (always) and stdout
//! (best effort: a blocked pipe drops lines and counts them, it never stalls
//! analysis).

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use std::sync::{Arc, Mutex};

use prometheus_client::metrics::exemplar::CounterWithExemplar;

use super::{FindingRecord, FindingsStore};
use crate::correlation::{Correlator, FindingEvent};
use crate::metrics::{FindingLabels, IoTypeLabel, Metrics, TraceIdLabel, TypeLabel};

/// Where shards send their findings. Cloned into every shard.
#[derive(Clone)]
pub struct FindingsSink {
    tx: SyncSender<Vec<FindingRecord>>,
}

impl FindingsSink {
    /// Publishes the findings of one trace. Blocks when the writer is behind,
    /// which slows analysis and, through admission, the receivers.
    pub fn publish(&self, records: Vec<FindingRecord>) {
        if records.is_empty() {
            return;
        }
        // The writer only exits once every sink is dropped.
        let _ = self.tx.send(records);
    }
}

/// The writer and stdout threads, joined at shutdown.
pub struct SinkThreads {
    writer: JoinHandle<()>,
    stdout: JoinHandle<()>,
}

impl SinkThreads {
    /// Waits until every finding published before the last sink was dropped
    /// is stored and printed.
    pub fn join(self) {
        let _ = self.writer.join();
        let _ = self.stdout.join();
    }
}

/// The shared correlator, when `[daemon.correlation]` is enabled.
pub type SharedCorrelator = Arc<Mutex<Correlator>>;

/// Starts the writer and the stdout printer. The writer sees every finding
/// exactly once, in publication order: the one place to feed `correlator`.
pub fn spawn_sink(
    store: Arc<FindingsStore>,
    metrics: Arc<Metrics>,
    queue_capacity: usize,
    stdout_capacity: usize,
    out: Box<dyn Write + Send>,
    correlator: Option<SharedCorrelator>,
) -> std::io::Result<(FindingsSink, SinkThreads)> {
    let (tx, rx) = sync_channel::<Vec<FindingRecord>>(queue_capacity.max(1));
    let (line_tx, line_rx) = channel();
    let lines = StdoutQueue {
        tx: line_tx,
        queued: Arc::new(AtomicUsize::new(0)),
        capacity: stdout_capacity.max(1),
    };
    let queued = lines.queued.clone();
    let stdout_metrics = metrics.clone();
    let writer = std::thread::Builder::new()
        .name("findings-writer".into())
        .spawn(move || {
            crate::pipeline::priority::lower_current_thread();
            write_loop(rx, lines, &store, &metrics, correlator.as_deref())
        })?;
    let stdout = std::thread::Builder::new()
        .name("findings-stdout".into())
        .spawn(move || {
            crate::pipeline::priority::lower_current_thread();
            print_loop(line_rx, &queued, out, &stdout_metrics)
        })?;
    Ok((FindingsSink { tx }, SinkThreads { writer, stdout }))
}

/// Lines on their way to stdout, in batches (one wake-up of the printer
/// per batch), bounded in lines: `queued` counts the lines sent and not yet
/// printed, and only the writer adds to it.
struct StdoutQueue {
    tx: Sender<Vec<Arc<FindingRecord>>>,
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

impl StdoutQueue {
    /// Queues what fits of `batch`; returns how many lines did not.
    fn offer(&self, mut batch: Vec<Arc<FindingRecord>>) -> usize {
        let room = self
            .capacity
            .saturating_sub(self.queued.load(Ordering::Acquire));
        let dropped = batch.len().saturating_sub(room);
        batch.truncate(room);
        if batch.is_empty() {
            return dropped;
        }
        let sent = batch.len();
        self.queued.fetch_add(sent, Ordering::AcqRel);
        match self.tx.send(batch) {
            Ok(()) => dropped,
            Err(_) => {
                self.queued.fetch_sub(sent, Ordering::AcqRel);
                dropped + sent
            }
        }
    }
}

/// Kinds whose finding counters the writer keeps at hand; past that
/// (plugins may name many kinds) it looks them up in the family.
const COUNTER_CACHE: usize = 256;

fn write_loop(
    rx: Receiver<Vec<FindingRecord>>,
    lines: StdoutQueue,
    store: &FindingsStore,
    metrics: &Metrics,
    correlator: Option<&Mutex<Correlator>>,
) {
    // The family's lookup builds an owned label set per finding; the
    // counters themselves are shared handles.
    let mut counters: HashMap<String, Vec<(&'static str, CounterWithExemplar<TraceIdLabel>)>> =
        HashMap::new();
    for batch in rx {
        let batch: Vec<Arc<FindingRecord>> = batch.into_iter().map(Arc::new).collect();
        if let Some(c) = correlator {
            let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
            for r in &batch {
                c.observe(FindingEvent::from(&**r));
            }
        }
        for r in &batch {
            let exemplar = TraceIdLabel {
                trace_id: r.finding.trace_id.to_string(),
            };
            let severity = r.finding.severity.as_str();
            let kind = r.finding.kind.as_str();
            let cached = counters
                .get(kind)
                .and_then(|by| by.iter().find(|(s, _)| *s == severity))
                .map(|(_, c)| c.clone());
            let counter = cached.unwrap_or_else(|| {
                let c = metrics
                    .findings
                    .get_or_create(&FindingLabels {
                        kind: TypeLabel {
                            r#type: kind.to_string(),
                        },
                        severity,
                    })
                    .clone();
                if counters.len() < COUNTER_CACHE || counters.contains_key(kind) {
                    counters
                        .entry(kind.to_string())
                        .or_default()
                        .push((severity, c.clone()));
                }
                c
            });
            counter.inc_by(1, Some(exemplar.clone()), None);
            observe_slow(metrics, r, exemplar);
        }
        let dropped = lines.offer(batch.clone());
        if dropped > 0 {
            metrics.findings_stdout_dropped.inc_by(dropped as u64);
        }
        store.push(batch);
    }
}

/// Slow-operation findings feed `perf_sentinel_slow_duration_seconds` with
/// their slowest call, the trace as exemplar.
fn observe_slow(metrics: &Metrics, r: &FindingRecord, exemplar: TraceIdLabel) {
    let kind = match r.finding.kind.as_str() {
        "slow_sql" => "sql",
        "slow_http" => "http",
        "slow_messaging" => "messaging",
        _ => return,
    };
    let Some(max_ms) = r
        .finding
        .extra_value("max_ms")
        .and_then(|v| v.parse::<f64>().ok())
    else {
        return;
    };
    metrics
        .slow_duration
        .get_or_create(&IoTypeLabel { r#type: kind })
        .observe(max_ms / 1000.0, Some(exemplar), None);
}

fn print_loop(
    rx: Receiver<Vec<Arc<FindingRecord>>>,
    queued: &AtomicUsize,
    out: Box<dyn Write + Send>,
    metrics: &Metrics,
) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let (mut broken, mut warned) = (false, false);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(batch) = next {
            for r in &batch {
                if !broken {
                    broken = writeln!(out, "{}", r.json).is_err();
                }
                if broken {
                    metrics.findings_stdout_dropped.inc();
                }
            }
            queued.fetch_sub(batch.len(), Ordering::AcqRel);
            next = rx.try_recv().ok();
        }
        // Flush once the queue is empty: lines reach a pipe promptly without
        // a syscall per finding under load.
        if !broken {
            broken = out.flush().is_err();
        }
        if broken && !warned {
            warned = true;
            tracing::warn!("stdout is closed; findings are no longer printed (still stored)");
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use detector_api::Severity;

    use super::*;

    fn lines(n: u8) -> Vec<Arc<FindingRecord>> {
        (0..n)
            .map(|i| {
                Arc::new(crate::batch::report::tests::record(
                    "slow_sql",
                    "api",
                    Severity::Warning,
                    i,
                    u64::from(i),
                ))
            })
            .collect()
    }

    #[test]
    fn the_stdout_queue_holds_at_most_its_capacity_in_lines() {
        let (tx, rx) = channel();
        let queue = StdoutQueue {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            capacity: 3,
        };
        assert_eq!(queue.offer(lines(2)), 0);
        // One line of room left: the rest of the batch is dropped.
        assert_eq!(queue.offer(lines(4)), 3);
        assert_eq!(queue.offer(lines(1)), 1);
        let sent: Vec<usize> = rx.try_iter().map(|b| b.len()).collect();
        assert_eq!(sent, [2, 1]);
        // The printer gives the room back as it prints.
        queue.queued.fetch_sub(3, Ordering::AcqRel);
        assert_eq!(queue.offer(lines(3)), 0);
        drop(rx);
        // A printer gone: everything offered is dropped and nothing stays
        // counted as queued.
        queue.queued.store(0, Ordering::Release);
        assert_eq!(queue.offer(lines(2)), 2);
        assert_eq!(queue.queued.load(Ordering::Acquire), 0);
    }
}
