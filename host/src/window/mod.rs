//! [`TraceWindow`]: the traces a shard holds until they are complete. Bounded
//! in traces and in spans per trace; every trace leaves it through analysis,
//! never silently.

use std::time::{Duration, Instant};

use detector_api::TraceId;
use hashlink::{LinkedHashMap, LinkedHashSet};

use crate::model::TraceFragment;

/// Why a trace left the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Its root span ended and it stayed quiet for the settle delay.
    Complete,
    /// No span arrived for the TTL.
    Ttl,
    /// Room was needed for a new trace.
    Evicted,
    /// The daemon is shutting down.
    Shutdown,
}

impl CloseReason {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Complete => "complete",
            CloseReason::Ttl => "ttl",
            CloseReason::Evicted => "evicted",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// A trace ready for analysis.
#[derive(Debug)]
pub struct ClosedTrace {
    pub fragment: TraceFragment,
    pub reason: CloseReason,
}

/// The window's bounds and delays.
#[derive(Debug, Clone, Copy)]
pub struct WindowLimits {
    pub max_traces: usize,
    pub max_spans_per_trace: usize,
    pub ttl: Duration,
    pub settle: Duration,
    /// How many analyzed trace ids are remembered to recognise late spans.
    pub remembered: usize,
}

/// What one insert did, for the counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct InsertStats {
    /// Spans over `max_spans_per_trace`, dropped.
    pub dropped_over_cap: usize,
    /// Spans of a trace already analyzed (buffered again as a new fragment).
    pub late: usize,
    /// Traces added to the window.
    pub new_traces: usize,
}

struct Entry {
    fragment: TraceFragment,
    last_seen: Instant,
}

/// One shard's traces.
pub struct TraceWindow {
    limits: WindowLimits,
    /// Ordered by last activity, oldest first: the LRU and TTL order at once.
    traces: LinkedHashMap<TraceId, Entry>,
    /// Traces whose root has arrived, ordered by last activity.
    settling: LinkedHashSet<TraceId>,
    /// Recently analyzed trace ids, oldest first.
    done: LinkedHashSet<TraceId>,
}

impl TraceWindow {
    /// An empty window.
    pub fn new(limits: WindowLimits) -> Self {
        Self {
            limits,
            traces: LinkedHashMap::new(),
            settling: LinkedHashSet::new(),
            done: LinkedHashSet::new(),
        }
    }

    /// The trace `trace_id` as held so far.
    pub fn get(&self, trace_id: &TraceId) -> Option<&TraceFragment> {
        self.traces.get(trace_id).map(|e| &e.fragment)
    }

    /// Traces held.
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    /// True when no trace is held.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// Adds a fragment at time `now`; traces evicted to make room go to
    /// `closed`.
    pub fn insert(
        &mut self,
        mut fragment: TraceFragment,
        now: Instant,
        closed: &mut Vec<ClosedTrace>,
    ) -> InsertStats {
        let mut stats = InsertStats::default();
        let id = fragment.trace_id;
        let has_root = match self.traces.to_back(&id) {
            Some(entry) => {
                stats.dropped_over_cap = entry
                    .fragment
                    .absorb(fragment, self.limits.max_spans_per_trace);
                entry.last_seen = now;
                entry.fragment.has_root
            }
            None => {
                if self.done.contains(&id) {
                    stats.late = fragment.spans.len();
                }
                stats.dropped_over_cap = fragment.truncate(self.limits.max_spans_per_trace);
                fragment.shrink_to_fit();
                while self.traces.len() >= self.limits.max_traces.max(1) {
                    match self.pop_oldest() {
                        Some(f) => closed.push(ClosedTrace {
                            fragment: f,
                            reason: CloseReason::Evicted,
                        }),
                        None => break,
                    }
                }
                stats.new_traces = 1;
                let has_root = fragment.has_root;
                self.traces.insert(
                    id,
                    Entry {
                        fragment,
                        last_seen: now,
                    },
                );
                has_root
            }
        };
        if has_root {
            self.settling.to_back(&id);
            if !self.settling.contains(&id) {
                self.settling.insert(id);
            }
        }
        stats
    }

    /// Closes every trace whose settle delay or TTL has passed at `now`.
    pub fn expire(&mut self, now: Instant, closed: &mut Vec<ClosedTrace>) {
        while let Some(id) = self.settling.front().copied() {
            let Some(entry) = self.traces.get(&id) else {
                self.settling.pop_front();
                continue;
            };
            if now.saturating_duration_since(entry.last_seen) < self.limits.settle {
                break;
            }
            if let Some(f) = self.remove(&id) {
                closed.push(ClosedTrace {
                    fragment: f,
                    reason: CloseReason::Complete,
                });
            }
        }
        while let Some((_, entry)) = self.traces.front() {
            if now.saturating_duration_since(entry.last_seen) < self.limits.ttl {
                break;
            }
            if let Some(f) = self.pop_oldest() {
                closed.push(ClosedTrace {
                    fragment: f,
                    reason: CloseReason::Ttl,
                });
            }
        }
    }

    /// Closes every trace (shutdown).
    pub fn drain(&mut self, closed: &mut Vec<ClosedTrace>) {
        while let Some(f) = self.pop_oldest() {
            closed.push(ClosedTrace {
                fragment: f,
                reason: CloseReason::Shutdown,
            });
        }
    }

    /// When the next trace will be due, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let settle = self
            .settling
            .front()
            .and_then(|id| self.traces.get(id))
            .map(|e| e.last_seen + self.limits.settle);
        let ttl = self
            .traces
            .front()
            .map(|(_, e)| e.last_seen + self.limits.ttl);
        match (settle, ttl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn pop_oldest(&mut self) -> Option<TraceFragment> {
        let id = *self.traces.front()?.0;
        self.remove(&id)
    }

    fn remove(&mut self, id: &TraceId) -> Option<TraceFragment> {
        let entry = self.traces.remove(id)?;
        self.settling.remove(id);
        self.remember(*id);
        Some(entry.fragment)
    }

    fn remember(&mut self, id: TraceId) {
        if self.limits.remembered == 0 {
            return;
        }
        self.done.insert(id);
        while self.done.len() > self.limits.remembered {
            self.done.pop_front();
        }
    }
}

#[cfg(test)]
mod tests;
