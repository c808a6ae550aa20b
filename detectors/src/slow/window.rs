//! The recent durations of one (service, template): the samples the
//! cross-trace percentiles are computed from, bounded in count and pruned to
//! the rolling window.

use std::collections::VecDeque;

use detector_api::{OwnedCodeLocation, SpanId, TraceId};

use super::helpers::cap;

/// Longest endpoint, in bytes, remembered for a cross-trace finding.
const MAX_ENDPOINT_BYTES: usize = 512;

/// Distinct endpoints remembered per template; the slow calls of further
/// endpoints are reported without one.
const MAX_ENDPOINTS: usize = 4;

/// A sample's endpoint slot when none is known.
pub(super) const NO_ENDPOINT: u8 = u8::MAX;

/// One recorded call duration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) end_ns: u64,
    pub(super) duration_ns: u64,
    pub(super) trace_id: TraceId,
    pub(super) span_id: SpanId,
    /// Index into [`Series::endpoints`], or [`NO_ENDPOINT`].
    pub(super) endpoint: u8,
}

/// The recent durations of one (service, template).
#[derive(Debug)]
pub(super) struct Series {
    /// Arrival order, newest at the back, at most `max_samples_per_template`.
    pub(super) samples: VecDeque<Sample>,
    /// Endpoints of slow samples (fast samples never need one).
    pub(super) endpoints: Vec<String>,
    /// The code location of the latest slow calls that named one.
    pub(super) code: OwnedCodeLocation,
    /// Its node in [`Store::recency`](super::store::Store::recency).
    pub(super) node: u32,
    /// Samples arrived since this template was last reported.
    pub(super) new_since_report: bool,
    /// Samples arrived or left since this template was last evaluated.
    pub(super) changed_since_eval: bool,
}

impl Series {
    pub(super) fn new(node: u32) -> Self {
        Self {
            samples: VecDeque::new(),
            endpoints: Vec::new(),
            code: OwnedCodeLocation::default(),
            node,
            new_since_report: false,
            changed_since_eval: false,
        }
    }

    pub(super) fn endpoint_slot(&mut self, endpoint: &str) -> u8 {
        let endpoint = cap(endpoint, MAX_ENDPOINT_BYTES);
        if let Some(i) = self.endpoints.iter().position(|e| e == endpoint) {
            return u8::try_from(i).unwrap_or(NO_ENDPOINT);
        }
        if self.endpoints.len() >= MAX_ENDPOINTS {
            return NO_ENDPOINT;
        }
        self.endpoints.push(endpoint.to_owned());
        u8::try_from(self.endpoints.len() - 1).unwrap_or(NO_ENDPOINT)
    }

    pub(super) fn push(&mut self, sample: Sample, max: usize) {
        while self.samples.len() >= max {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        self.new_since_report = true;
        self.changed_since_eval = true;
    }

    /// Drops samples that ended before `cutoff_ns`; gives memory back when
    /// the buffer is mostly empty.
    pub(super) fn prune(&mut self, cutoff_ns: u64) {
        let before = self.samples.len();
        self.samples.retain(|s| s.end_ns >= cutoff_ns);
        if self.samples.len() != before {
            self.changed_since_eval = true;
            if self.samples.capacity() > 4 * self.samples.len().max(8) {
                self.samples.shrink_to(2 * self.samples.len().max(8));
            }
        }
    }
}
