//! The cross-trace stage: one thread running the detectors that keep
//! statistics across traces (percentiles, correlations), so they see every
//! trace whatever the number of shards. Shards hand it traces they have
//! already normalized, through a bounded channel: a slow stage slows the
//! shards (and through admission the receivers), it never drops a trace.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::analyze::{Analyzer, Prepared, with_view};
use super::shard::{FLUSH_EVERY, wall_ns};
use crate::findings::FindingsSink;
use crate::metrics::Metrics;
use crate::model::TraceFragment;

/// Batches waiting for the cross-trace stage.
const QUEUE: usize = 64;
/// Traces a shard gathers at most before handing them over: one hand-off,
/// and at most one wake-up of the stage, per batch instead of per trace.
pub const BATCH: usize = 64;

/// Traces on their way to the cross-trace stage, in a shard's order.
pub type CrossMsg = Vec<(Arc<TraceFragment>, Prepared)>;

/// Starts the stage; it ends once every sender is dropped, after a last
/// flush.
pub fn spawn(
    analyzer: Analyzer,
    metrics: Arc<Metrics>,
    sink: FindingsSink,
) -> std::io::Result<(SyncSender<CrossMsg>, JoinHandle<()>)> {
    let (tx, rx) = sync_channel(QUEUE);
    let handle = std::thread::Builder::new()
        .name("cross-trace".into())
        .spawn(move || {
            super::priority::lower_current_thread();
            run(rx, analyzer, &metrics, &sink)
        })?;
    Ok((tx, handle))
}

fn run(rx: Receiver<CrossMsg>, mut analyzer: Analyzer, metrics: &Metrics, sink: &FindingsSink) {
    let mut last_flush = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(batch) => {
                let mut records = Vec::new();
                for (frag, prep) in batch {
                    records.extend(with_view(&frag, &prep, |view| analyzer.run(view, metrics)));
                }
                sink.publish(records);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_flush.elapsed() >= FLUSH_EVERY {
            last_flush = Instant::now();
            sink.publish(analyzer.flush(wall_ns(), metrics));
        }
    }
    sink.publish(analyzer.flush(wall_ns(), metrics));
}
