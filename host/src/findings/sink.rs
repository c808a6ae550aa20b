//! The single findings writer: it takes findings from every shard through a
//! bounded channel and feeds the store and the metrics (always) and stdout
//! (best effort: a blocked pipe drops lines and counts them, it never stalls
//! analysis).

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use std::sync::{Arc, Mutex};

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
    let (line_tx, line_rx) = sync_channel::<Arc<FindingRecord>>(stdout_capacity.max(1));
    let stdout_metrics = metrics.clone();
    let writer = std::thread::Builder::new()
        .name("findings-writer".into())
        .spawn(move || write_loop(rx, line_tx, &store, &metrics, correlator.as_deref()))?;
    let stdout = std::thread::Builder::new()
        .name("findings-stdout".into())
        .spawn(move || print_loop(line_rx, out, &stdout_metrics))?;
    Ok((FindingsSink { tx }, SinkThreads { writer, stdout }))
}

fn write_loop(
    rx: Receiver<Vec<FindingRecord>>,
    lines: SyncSender<Arc<FindingRecord>>,
    store: &FindingsStore,
    metrics: &Metrics,
    correlator: Option<&Mutex<Correlator>>,
) {
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
            metrics
                .findings
                .get_or_create(&FindingLabels {
                    kind: TypeLabel {
                        r#type: r.finding.kind.to_string(),
                    },
                    severity: r.finding.severity.as_str(),
                })
                .inc_by(1, Some(exemplar.clone()), None);
            observe_slow(metrics, r, exemplar);
            match lines.try_send(r.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    metrics.findings_stdout_dropped.inc();
                }
            }
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

fn print_loop(rx: Receiver<Arc<FindingRecord>>, out: Box<dyn Write + Send>, metrics: &Metrics) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let (mut broken, mut warned) = (false, false);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(r) = next {
            if !broken {
                broken = writeln!(out, "{}", r.json).is_err();
            }
            if broken {
                metrics.findings_stdout_dropped.inc();
            }
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
