//! Admission to analysis: a bound on spans accepted but not yet analyzed,
//! shared by all shards. A request either fits whole or is refused whole
//! (503 / UNAVAILABLE), so an exporter's retry never duplicates spans.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::metrics::Metrics;
use crate::model::TraceFragment;

/// What a shard worker receives.
pub enum ShardMsg {
    /// Fragments of one request for this shard, holding `spans` admitted spans.
    Batch {
        fragments: Vec<TraceFragment>,
        spans: usize,
    },
    /// Analyze everything held, then exit.
    Shutdown,
}

/// Counts spans between acceptance and analysis.
pub struct Admission {
    queued: AtomicUsize,
    capacity: usize,
    metrics: Arc<Metrics>,
}

impl Admission {
    /// A bound of `capacity` queued spans.
    pub fn new(capacity: usize, metrics: Arc<Metrics>) -> Self {
        metrics.queue_capacity.set(capacity as i64);
        Self {
            queued: AtomicUsize::new(0),
            capacity: capacity.max(1),
            metrics,
        }
    }

    /// Reserves room for `spans`, or refuses. A request larger than the
    /// whole capacity is admitted when the queue is empty, so no request is
    /// refused forever.
    pub fn try_admit(&self, spans: usize) -> bool {
        let mut current = self.queued.load(Ordering::Relaxed);
        loop {
            if current > 0 && current.saturating_add(spans) > self.capacity {
                return false;
            }
            match self.queued.compare_exchange_weak(
                current,
                current + spans,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.metrics.queue_depth.inc_by(spans as i64);
                    return true;
                }
                Err(seen) => current = seen,
            }
        }
    }

    /// Gives back room once `spans` have been taken in by a shard.
    pub fn release(&self, spans: usize) {
        self.queued.fetch_sub(spans, Ordering::AcqRel);
        self.metrics.queue_depth.dec_by(spans as i64);
    }

    /// Spans queued now.
    pub fn depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_until_full_then_refuses_whole_requests() {
        let a = Admission::new(10, Arc::new(Metrics::new()));
        assert!(a.try_admit(6));
        assert!(!a.try_admit(5));
        assert!(a.try_admit(4));
        a.release(6);
        assert_eq!(a.depth(), 4);
        assert!(a.try_admit(6));
    }

    #[test]
    fn an_oversized_request_passes_an_empty_queue() {
        let a = Admission::new(10, Arc::new(Metrics::new()));
        assert!(a.try_admit(50));
        assert!(!a.try_admit(1));
        a.release(50);
        assert!(a.try_admit(1));
    }
}
