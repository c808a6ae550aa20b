//! Admission to analysis: a bound on spans accepted but not yet analyzed,
//! shared by all shards. A request either fits whole or is refused whole
//! (503 / UNAVAILABLE), so an exporter's retry never duplicates spans.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::model::TraceFragment;

/// What a shard worker receives.
pub enum ShardMsg {
    /// Fragments of one request for this shard, holding `spans` admitted spans.
    Batch {
        fragments: Vec<TraceFragment>,
        spans: usize,
    },
    /// Render a trace held in the window or retained after analysis.
    Explain {
        trace_id: detector_api::TraceId,
        reply: tokio::sync::oneshot::Sender<Option<super::explain::ExplainedTrace>>,
    },
    /// Analyze everything held, then exit.
    Shutdown,
}

/// Why [`Admission::admit`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No room in the queue within the wait.
    QueueFull,
    /// The memory guard is engaged.
    MemoryPressure,
}

/// Counts spans between acceptance and analysis.
pub struct Admission {
    queued: AtomicUsize,
    capacity: usize,
    /// Set by the memory guard; refuses every request while true.
    memory_pressure: AtomicBool,
    /// Woken when room is given back, for requests waiting for it.
    room: Notify,
    metrics: Arc<Metrics>,
}

impl Admission {
    /// A bound of `capacity` queued spans.
    pub fn new(capacity: usize, metrics: Arc<Metrics>) -> Self {
        metrics.queue_capacity.set(capacity as i64);
        Self {
            queued: AtomicUsize::new(0),
            capacity: capacity.max(1),
            memory_pressure: AtomicBool::new(false),
            room: Notify::new(),
            metrics,
        }
    }

    /// Reserves room for `spans`, waiting up to `wait` for shards to give
    /// some back: a short burst is absorbed instead of bounced to the
    /// exporter's retry (which costs it a backoff of seconds).
    pub async fn admit(&self, spans: usize, wait: Duration) -> Result<(), Refusal> {
        if self.memory_pressure.load(Ordering::Relaxed) {
            return Err(Refusal::MemoryPressure);
        }
        if self.try_admit(spans) {
            return Ok(());
        }
        if wait.is_zero() {
            return Err(Refusal::QueueFull);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before the retry, so a release between the retry
            // and the await still wakes this request.
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.try_admit(spans) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                // One last look: room may have come back at the deadline.
                return if self.try_admit(spans) {
                    Ok(())
                } else {
                    Err(Refusal::QueueFull)
                };
            }
        }
    }

    /// Engages or releases the memory guard's refusal.
    pub fn set_memory_pressure(&self, engaged: bool) {
        self.memory_pressure.store(engaged, Ordering::Relaxed);
        self.metrics.memory_pressure.set(i64::from(engaged));
    }

    /// True while the memory guard refuses ingest.
    pub fn memory_pressure(&self) -> bool {
        self.memory_pressure.load(Ordering::Relaxed)
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
        self.room.notify_waiters();
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

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn a_full_queue_refuses_at_once_without_a_wait() {
        let a = Admission::new(10, Arc::new(Metrics::new()));
        assert!(a.try_admit(10));
        let got = runtime().block_on(a.admit(1, Duration::ZERO));
        assert_eq!(got, Err(Refusal::QueueFull));
    }

    #[test]
    fn a_waiting_request_gets_room_given_back_during_its_wait() {
        let a = Arc::new(Admission::new(10, Arc::new(Metrics::new())));
        assert!(a.try_admit(10));
        let releaser = a.clone();
        let got = runtime().block_on(async move {
            let release = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                releaser.release(10);
            });
            // Generous: the release comes long before the wait ends.
            let got = a.admit(4, Duration::from_secs(30)).await;
            release.await.unwrap();
            (got, a.depth())
        });
        assert_eq!(got, (Ok(()), 4));
    }

    #[test]
    fn a_wait_with_no_room_given_back_ends_in_a_refusal() {
        let a = Admission::new(10, Arc::new(Metrics::new()));
        assert!(a.try_admit(10));
        let got = runtime().block_on(a.admit(1, Duration::from_millis(30)));
        assert_eq!(got, Err(Refusal::QueueFull));
        assert_eq!(a.depth(), 10);
    }

    #[test]
    fn memory_pressure_refuses_even_an_empty_queue_until_released() {
        let metrics = Arc::new(Metrics::new());
        let a = Admission::new(10, metrics.clone());
        let rt = runtime();
        a.set_memory_pressure(true);
        assert_eq!(metrics.memory_pressure.get(), 1);
        assert_eq!(
            rt.block_on(a.admit(1, Duration::from_secs(1))),
            Err(Refusal::MemoryPressure)
        );
        assert_eq!(a.depth(), 0);
        a.set_memory_pressure(false);
        assert_eq!(metrics.memory_pressure.get(), 0);
        assert_eq!(rt.block_on(a.admit(1, Duration::ZERO)), Ok(()));
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
