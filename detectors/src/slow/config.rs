//! The `[detectors.slow_*]` configuration, its validation and the detection
//! keys it inherits, and the nanosecond limits derived from it once per
//! detector so the hot path never converts units.

use detector_api::{BuildError, DetectorConfig, InheritedKey};
use serde::{Deserialize, Serialize};

use super::helpers::{NS_PER_MS, NS_PER_SEC};

/// Configuration of `slow_sql`, `slow_http` and `slow_messaging`.
///
/// Memory of the cross-trace statistics is bounded by `max_templates` x
/// `max_samples_per_template` samples of 48 bytes each, plus at most
/// 2 x 4 KiB of key and 4 x 512 B of endpoints per template: about 60 MiB per
/// detector at the defaults in the worst case, far less in practice since a
/// template's buffer grows with its traffic and is freed when its samples
/// leave the window.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SlowConfig {
    /// A call is slow when its duration is strictly above this, in
    /// milliseconds (default 500, inherited from
    /// `[detection] slow_query_threshold_ms`).
    pub threshold_ms: u64,
    /// Slow calls of one template needed in one trace (default 3, inherited
    /// from `[detection] slow_query_min_occurrences`).
    pub min_occurrences: u32,
    /// A finding is critical when its slowest call (per trace) or its p99
    /// (across traces) is above this multiple of the threshold (default 5.0).
    pub critical_multiplier: f64,
    /// The rolling window of the cross-trace percentiles, in seconds, measured
    /// on span end times (default 300).
    pub percentile_window_secs: u64,
    /// Distinct traces with a slow call needed for a cross-trace finding
    /// (default 2).
    pub cross_trace_min_traces: u32,
    /// Durations kept per (service, template); the oldest leave first
    /// (default 1024).
    pub max_samples_per_template: u32,
    /// (service, template) pairs tracked across traces; the least recently
    /// seen is forgotten to make room (default 1024).
    pub max_templates: u32,
}

impl Default for SlowConfig {
    fn default() -> Self {
        Self {
            threshold_ms: 500,
            min_occurrences: 3,
            critical_multiplier: 5.0,
            percentile_window_secs: 300,
            cross_trace_min_traces: 2,
            max_samples_per_template: 1024,
            max_templates: 1024,
        }
    }
}

impl DetectorConfig for SlowConfig {
    fn validate(&self) -> Result<(), BuildError> {
        fn range(key: &str, value: u64, min: u64, max: u64) -> Result<(), BuildError> {
            if value < min || value > max {
                return Err(BuildError::invalid(
                    key,
                    format!("must be between {min} and {max}, got {value}"),
                ));
            }
            Ok(())
        }
        range("threshold_ms", self.threshold_ms, 1, 86_400_000)?;
        range(
            "min_occurrences",
            u64::from(self.min_occurrences),
            1,
            u64::from(u32::MAX),
        )?;
        let m = self.critical_multiplier;
        if !(1.0..=1000.0).contains(&m) {
            return Err(BuildError::invalid(
                "critical_multiplier",
                format!("must be between 1 and 1000, got {m}"),
            ));
        }
        range(
            "percentile_window_secs",
            self.percentile_window_secs,
            1,
            86_400,
        )?;
        range(
            "cross_trace_min_traces",
            u64::from(self.cross_trace_min_traces),
            1,
            u64::from(u32::MAX),
        )?;
        range(
            "max_samples_per_template",
            u64::from(self.max_samples_per_template),
            1,
            65_536,
        )?;
        range("max_templates", u64::from(self.max_templates), 1, 1_000_000)?;
        Ok(())
    }
}

pub(super) const INHERITED: &[InheritedKey] = &[
    InheritedKey {
        detection_key: "slow_query_threshold_ms",
        key: "threshold_ms",
    },
    InheritedKey {
        detection_key: "slow_query_min_occurrences",
        key: "min_occurrences",
    },
];

/// Thresholds in nanoseconds, computed once.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) threshold_ns: u64,
    pub(super) critical_ns: u64,
    pub(super) min_occurrences: usize,
    pub(super) window_ns: u64,
    pub(super) min_traces: usize,
    pub(super) max_samples: usize,
    pub(super) max_templates: usize,
}

impl Limits {
    pub(super) fn new(c: &SlowConfig) -> Self {
        let threshold_ns = c.threshold_ms.saturating_mul(NS_PER_MS);
        // Float to integer casts saturate; the multiplier is validated finite.
        let critical_ns = (threshold_ns as f64 * c.critical_multiplier) as u64;
        Self {
            threshold_ns,
            critical_ns: critical_ns.max(threshold_ns),
            min_occurrences: c.min_occurrences.max(1) as usize,
            window_ns: c.percentile_window_secs.saturating_mul(NS_PER_SEC),
            min_traces: c.cross_trace_min_traces.max(1) as usize,
            max_samples: c.max_samples_per_template.max(1) as usize,
            max_templates: c.max_templates.max(1) as usize,
        }
    }
}
