//! Cross-trace correlation of findings, for `GET /api/correlations`: which
//! finding in one service tends to be followed, shortly after and in any
//! trace, by a finding in another (a slow query in `billing` repeatedly
//! followed by an N+1 in `checkout`). Per-trace detectors cannot see this:
//! the two findings rarely share a trace.
//!
//! # What is counted
//!
//! Findings are identified by their signature and placed in time by their
//! first timestamp (`at_ns`), never by the wall clock, so the result
//! depends only on the findings and the `now_ns` a snapshot is taken at.
//!
//! * A finding `A` *leads* a finding `B` when they come from different
//!   services and `B` starts no earlier than `A` and at most
//!   `lag_threshold_ms` after it. Simultaneous findings lead each other.
//! * For each ordered pair of signatures (leader, follower), a
//!   *co-occurrence* is one occurrence of the leader that some occurrence of
//!   the follower followed. An occurrence of the leader is counted at most
//!   once per follower signature, however many times that follower fired
//!   after it, so `co_occurrences <= leader_occurrences`.
//! * `confidence = co_occurrences / leader_occurrences`, both over the
//!   window. A pair is reported when `co_occurrences >= min_co_occurrences`
//!   and `confidence >= min_confidence`.
//!
//! Findings usually reach the correlator out of order (each is emitted when
//! its own trace completes), so matching looks both ways: a finding arriving
//! late can still lead, or follow, findings already seen.
//!
//! # The window
//!
//! Counts are kept per time slice: one minute, or 1/60 of the window when
//! the window is longer than an hour. Both a leader's occurrences and a
//! pair's co-occurrences sit in the slice of the leader's timestamp, so they
//! leave the window together, a whole slice at a time: a finding stops being
//! counted between `window_minutes` and one slice later than that.
//!
//! # Bounded memory
//!
//! * At most `max_tracked_pairs` pairs; a new pair beyond that evicts the
//!   least recently updated one, counted by the eviction counter the host
//!   exports as `perf_sentinel_correlator_pairs_evicted_total`. The same
//!   bound caps the distinct signatures followed; when one is evicted, its
//!   pairs go with it (also counted, at the next snapshot).
//! * Each signature and pair keeps at most 61 slices, and each pair the
//!   lags of its latest [`LAG_SAMPLES`] co-occurrences for the median.
//! * Findings are matched against a buffer of recent findings, those within
//!   `lag_threshold_ms` plus [`REORDER_TOLERANCE_MS`] of the newest one,
//!   at most [`MAX_RECENT_EVENTS`], the oldest dropped first. A finding
//!   later than the tolerance still counts as an occurrence but may miss
//!   partners already dropped; which only lowers confidence.
//! * A buffered finding leads at most [`MAX_FOLLOWERS_PER_EVENT`] follower
//!   signatures.

mod buckets;
mod correlator;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use detector_api::TraceId;
use serde::Serialize;

use crate::findings::FindingRecord;

pub use correlator::Correlator;

/// Lags kept per pair for `median_lag_ms`: the latest co-occurrences'.
pub const LAG_SAMPLES: usize = 32;
/// Findings held for matching, at most.
pub const MAX_RECENT_EVENTS: usize = 10_000;
/// How much later than its neighbours in time a finding may arrive and still
/// be matched in full: the default `trace_ttl_ms`, after which the window
/// analyzes even a trace that has not completed.
pub const REORDER_TOLERANCE_MS: u64 = 30_000;
/// Distinct follower signatures one finding is counted as leading, at most.
pub const MAX_FOLLOWERS_PER_EVENT: usize = 128;

/// `[daemon.correlation]`: whether and how findings are correlated across
/// traces.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CorrelationConfig {
    /// The host builds a [`Correlator`] only when set.
    pub enabled: bool,
    /// The rolling window counts cover.
    pub window_minutes: u64,
    /// How long after a leader a follower may start.
    pub lag_threshold_ms: u64,
    pub min_co_occurrences: u32,
    pub min_confidence: f64,
    pub max_tracked_pairs: usize,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            window_minutes: 10,
            lag_threshold_ms: 2_000,
            min_co_occurrences: 5,
            min_confidence: 0.5,
            max_tracked_pairs: 10_000,
        }
    }
}

/// Why a [`CorrelationConfig`] was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CorrelationConfigError {
    #[error("window_minutes must be at least 1")]
    EmptyWindow,
    #[error("lag_threshold_ms ({lag_ms}) must be shorter than the window ({window_ms} ms)")]
    LagBeyondWindow { lag_ms: u64, window_ms: u64 },
    #[error("min_confidence must be between 0 and 1, got {0}")]
    Confidence(f64),
    #[error("max_tracked_pairs must be at least 1")]
    NoPairs,
}

impl CorrelationConfig {
    /// Checks the ranges. [`Correlator::new`] does not refuse a bad
    /// configuration (it clamps it), so the config loader should call this.
    pub fn validate(&self) -> Result<(), CorrelationConfigError> {
        if self.window_minutes == 0 {
            return Err(CorrelationConfigError::EmptyWindow);
        }
        let window_ms = self.window_minutes.saturating_mul(60_000);
        if self.lag_threshold_ms >= window_ms {
            return Err(CorrelationConfigError::LagBeyondWindow {
                lag_ms: self.lag_threshold_ms,
                window_ms,
            });
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return Err(CorrelationConfigError::Confidence(self.min_confidence));
        }
        if self.max_tracked_pairs == 0 {
            return Err(CorrelationConfigError::NoPairs);
        }
        Ok(())
    }
}

/// What the correlator needs of a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingEvent {
    pub signature: Arc<str>,
    pub kind: Arc<str>,
    pub service: Arc<str>,
    /// The finding's first timestamp, nanoseconds since the Unix epoch.
    pub at_ns: u64,
    /// Not used to match: correlations are across traces by design. Kept so
    /// the host can log what it fed in.
    pub trace_id: TraceId,
}

impl From<&FindingRecord> for FindingEvent {
    fn from(r: &FindingRecord) -> Self {
        let f = &r.finding;
        Self {
            signature: r.signature.as_str().into(),
            kind: f.kind.as_str().into(),
            service: f.service.as_str().into(),
            at_ns: f.first_ns,
            trace_id: f.trace_id,
        }
    }
}

/// One side of a [`Correlation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CorrelatedFinding {
    pub signature: String,
    pub kind: String,
    pub service: String,
}

/// A leader reliably followed by a follower, as `GET /api/correlations`
/// lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Correlation {
    pub leader: CorrelatedFinding,
    pub follower: CorrelatedFinding,
    /// Leader occurrences in the window that the follower followed.
    pub co_occurrences: u64,
    /// Leader occurrences in the window.
    pub leader_occurrences: u64,
    /// `co_occurrences / leader_occurrences`, to 3 decimals.
    pub confidence: f64,
    /// Median time from leader to follower over the latest co-occurrences,
    /// to the nearest millisecond.
    pub median_lag_ms: u64,
    /// RFC 3339 times of the first and last leader occurrence in the window
    /// that the follower followed.
    pub first_seen: String,
    pub last_seen: String,
}

/// `ns` since the Unix epoch as RFC 3339 UTC; empty if out of range.
fn rfc3339(ns: u64) -> String {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_ranges_are_refused() {
        let d = CorrelationConfig::default();
        assert!(!d.enabled);
        assert_eq!(d.validate(), Ok(()));
        let bad = |c: CorrelationConfig| c.validate().unwrap_err();
        assert_eq!(
            bad(CorrelationConfig {
                window_minutes: 0,
                ..d.clone()
            }),
            CorrelationConfigError::EmptyWindow
        );
        assert!(matches!(
            bad(CorrelationConfig {
                lag_threshold_ms: 600_000,
                ..d.clone()
            }),
            CorrelationConfigError::LagBeyondWindow { .. }
        ));
        assert!(matches!(
            bad(CorrelationConfig {
                min_confidence: f64::NAN,
                ..d.clone()
            }),
            CorrelationConfigError::Confidence(_)
        ));
        assert_eq!(
            bad(CorrelationConfig {
                max_tracked_pairs: 0,
                ..d
            }),
            CorrelationConfigError::NoPairs
        );
    }
}
