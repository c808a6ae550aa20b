//! Traces put back together: a file lists spans in no useful order (a
//! trace's spans may sit in batches far apart), so every fragment is merged
//! into its trace and nothing is analyzed before the input ends. Spans stay
//! in the compact arena form of the daemon's window; a trace keeps at most
//! `max_events_per_trace` spans, as in the daemon, and the rest are counted.

use std::collections::HashMap;

use detector_api::TraceId;

use crate::model::TraceFragment;

/// Every trace of the input, in order of first appearance.
pub struct Traces {
    index: HashMap<TraceId, usize>,
    traces: Vec<TraceFragment>,
    max_spans: usize,
    /// Spans kept.
    pub spans: usize,
    /// Spans over `max_spans` in their trace, not kept.
    pub dropped_over_cap: usize,
    /// The latest span end, ns since the epoch: "now" for detectors that
    /// report across traces.
    pub last_ns: u64,
}

impl Traces {
    /// Keeps at most `max_spans` spans per trace.
    pub fn new(max_spans: usize) -> Self {
        Self {
            index: HashMap::new(),
            traces: Vec::new(),
            max_spans: max_spans.max(1),
            spans: 0,
            dropped_over_cap: 0,
            last_ns: 0,
        }
    }

    /// Merges `fragment` into its trace.
    pub fn add(&mut self, mut fragment: TraceFragment) {
        for s in &fragment.spans {
            self.last_ns = self.last_ns.max(s.start_ns.saturating_add(s.duration_ns));
        }
        let before = fragment.spans.len();
        let dropped = match self.index.get(&fragment.trace_id) {
            Some(&i) => self.traces[i].absorb(fragment, self.max_spans),
            None => {
                let dropped = fragment.truncate(self.max_spans);
                self.index.insert(fragment.trace_id, self.traces.len());
                self.traces.push(fragment);
                dropped
            }
        };
        self.spans += before - dropped;
        self.dropped_over_cap += dropped;
    }

    /// Traces held.
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// The traces, in order of first appearance.
    pub fn into_traces(self) -> Vec<TraceFragment> {
        self.traces
    }
}

#[cfg(test)]
mod tests {
    use detector_api::SpanId;

    use super::*;
    use crate::model::SpanRecord;

    fn frag(trace: u8, spans: &[(u8, u64)]) -> TraceFragment {
        let mut f = TraceFragment::new(TraceId([trace; 16]));
        for &(id, start) in spans {
            f.spans.push(SpanRecord {
                span_id: SpanId([id; 8]),
                start_ns: start,
                duration_ns: 10,
                ..SpanRecord::default()
            });
        }
        f
    }

    #[test]
    fn fragments_join_their_trace_in_first_seen_order_under_the_cap() {
        let mut t = Traces::new(3);
        t.add(frag(2, &[(1, 100)]));
        t.add(frag(1, &[(1, 50)]));
        t.add(frag(2, &[(2, 300), (3, 200), (4, 0)]));
        t.add(frag(1, &[(2, 10)]));
        assert_eq!(
            (t.len(), t.spans, t.dropped_over_cap, t.last_ns),
            (2, 5, 1, 310)
        );
        let traces = t.into_traces();
        assert_eq!(traces[0].trace_id, TraceId([2; 16]));
        let ids: Vec<u8> = traces[0].spans.iter().map(|s| s.span_id.0[0]).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(traces[1].spans.len(), 2);
    }
}
