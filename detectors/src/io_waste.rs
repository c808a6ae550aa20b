//! I/O waste per trace: how much of a trace's I/O could have been avoided.
//!
//! - Total I/O operations: the outbound SQL, HTTP, messaging and RPC spans.
//! - Avoidable operations: for every N+1 (SQL, HTTP, messaging; the N+1
//!   rules with the settings inherited from `[detection]`), its
//!   occurrences - 1; for every group of identical calls (the
//!   `redundant_*` rules, any repeat counted), occurrences - 1. One
//!   template of one service counts once: the larger of its N+1 and its
//!   redundant count, attributed to the endpoint of its N+1 (else of its
//!   first repeated call). So the avoidable count never exceeds the total.
//! - Ratio bands: healthy below 0.10, moderate below 0.30, high below 0.50,
//!   critical from 0.50. A trace is reported from `waste_ratio_min`
//!   (default 0.10, moderate) with severity info (moderate), warning (high)
//!   or critical (critical).
//!
//! The finding names the endpoint carrying the most avoidable operations
//! (its `template` too; the root span's name when no inbound span is
//! above the waste), its `occurrences` and `avoidable_io` are the
//! avoidable operations, its `distinct_params` the number of wasteful
//! templates, and its evidence the wasteful calls. `extra` holds
//! `total_io_ops`, `avoidable_io_ops`, `io_waste_ratio` (3 decimals),
//! `io_waste_band`, and the endpoint's I/O intensity: I/O operations under
//! it per invocation of it in the trace (`io_intensity_score`, 2 decimals;
//! `io_intensity_band`: healthy below 2, moderate below 5, high below 10,
//! critical from 10). The host keeps the cumulative figures; this detector
//! holds no state across traces.

use std::collections::BTreeMap;

use detector_api::{
    BuildError, Detector, DetectorConfig, DetectorError, DetectorFactory, Finding, InheritedKey,
    IoKind, RVec, Severity, TraceView, defaults_table, parse_config, register_builtin,
};
use serde::{Deserialize, Serialize};

use crate::common::{MAX_EVIDENCE, code_of, endpoint_is, endpoint_of, is_outbound, timing};
use crate::n_plus_one::{
    Match, NPlusOneConfig, SanitizerMode, Scanner, check_min_occurrences, check_window,
};
use crate::redundant::Repeats;

/// Configuration of `io_waste`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IoWasteConfig {
    /// Waste ratio from which a trace is reported (default 0.10).
    pub waste_ratio_min: f64,
    /// N+1 minimum (default 5, from `[detection]`).
    pub n_plus_one_min_occurrences: u32,
    /// N+1 window in milliseconds (default 500, from `[detection]`).
    pub window_duration_ms: u64,
    /// N+1 treatment of sanitized SQL (default `auto`, from `[detection]`).
    pub sanitizer_aware_classification: SanitizerMode,
}

impl Default for IoWasteConfig {
    fn default() -> Self {
        Self {
            waste_ratio_min: 0.10,
            n_plus_one_min_occurrences: 5,
            window_duration_ms: 500,
            sanitizer_aware_classification: SanitizerMode::Auto,
        }
    }
}

impl DetectorConfig for IoWasteConfig {
    fn validate(&self) -> Result<(), BuildError> {
        let r = self.waste_ratio_min;
        if !(r > 0.0 && r <= 1.0) {
            return Err(BuildError::invalid(
                "waste_ratio_min",
                format!("must be above 0 and at most 1, got {r}"),
            ));
        }
        check_min_occurrences(
            "n_plus_one_min_occurrences",
            self.n_plus_one_min_occurrences,
        )?;
        check_window(self.window_duration_ms)
    }
}

const INHERITED: &[InheritedKey] = &[
    InheritedKey {
        detection_key: "n_plus_one_min_occurrences",
        key: "n_plus_one_min_occurrences",
    },
    InheritedKey {
        detection_key: "window_duration_ms",
        key: "window_duration_ms",
    },
    InheritedKey {
        detection_key: "sanitizer_aware_classification",
        key: "sanitizer_aware_classification",
    },
];

const IO_KINDS: [IoKind; 4] = [IoKind::Sql, IoKind::Http, IoKind::Messaging, IoKind::Rpc];

/// A band of a ratio or score: healthy, moderate, high, critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Band {
    Healthy,
    Moderate,
    High,
    Critical,
}

impl Band {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Band::Healthy => "healthy",
            Band::Moderate => "moderate",
            Band::High => "high",
            Band::Critical => "critical",
        }
    }

    /// The band of `num / den` against thresholds `t[i] = n[i] / d` (exact,
    /// integer arithmetic: 3 / 10 is "high", never just below it).
    fn of(num: u64, den: u64, thresholds: [(u64, u64); 3]) -> Band {
        let at_least =
            |(n, d): (u64, u64)| u128::from(num) * u128::from(d) >= u128::from(n) * u128::from(den);
        match thresholds {
            [_, _, c] if at_least(c) => Band::Critical,
            [_, h, _] if at_least(h) => Band::High,
            [m, _, _] if at_least(m) => Band::Moderate,
            _ => Band::Healthy,
        }
    }

    /// Band of the waste ratio `avoidable / total`: 0.10, 0.30, 0.50.
    pub(crate) fn waste(avoidable: u64, total: u64) -> Band {
        Band::of(avoidable, total, [(1, 10), (3, 10), (5, 10)])
    }

    /// Band of the I/O intensity `ops / invocations`: 2, 5, 10.
    pub(crate) fn intensity(ops: u64, invocations: u64) -> Band {
        Band::of(ops, invocations, [(2, 1), (5, 1), (10, 1)])
    }
}

/// The avoidable operations of one template of one service.
#[derive(Default)]
struct Waste {
    endpoint: Option<String>,
    n_plus_one: u32,
    redundant: u32,
    calls: Vec<u32>,
}

impl Waste {
    fn avoidable(&self) -> u32 {
        self.n_plus_one.max(self.redundant)
    }
}

struct IoWaste {
    config: IoWasteConfig,
    scanners: Vec<Scanner>,
    repeats: [Repeats; 2],
    matches: Vec<Match>,
}

impl IoWaste {
    fn new(config: IoWasteConfig) -> Self {
        let n1 = NPlusOneConfig {
            min_occurrences: config.n_plus_one_min_occurrences,
            window_duration_ms: config.window_duration_ms,
            critical_occurrences: None,
            sanitizer_aware_classification: Some(config.sanitizer_aware_classification),
        };
        let scanners = [IoKind::Sql, IoKind::Http, IoKind::Messaging]
            .into_iter()
            .filter_map(|k| Scanner::for_kind(k, n1.clone()))
            .collect();
        Self {
            config,
            scanners,
            repeats: Default::default(),
            matches: Vec::new(),
        }
    }

    /// Runs the N+1 scans and the repeat scans of the trace; false when
    /// they found nothing (no waste).
    fn scan(&mut self, trace: &TraceView<'_>) -> bool {
        self.matches.clear();
        let mut found = false;
        for scanner in &mut self.scanners {
            scanner.scan(trace, &mut self.matches);
        }
        found |= !self.matches.is_empty();
        for (kind, repeats) in [IoKind::Sql, IoKind::Http]
            .into_iter()
            .zip(&mut self.repeats)
        {
            // Repeats are among the N+1 candidates of their kind: when those
            // hold no (service, template) twice, there is none.
            let possible = self
                .scanners
                .iter()
                .find(|sc| sc.kind() == kind)
                .is_none_or(Scanner::saw_repeats);
            if possible {
                repeats.scan(trace, kind, 2);
            } else {
                repeats.clear();
            }
            found |= !repeats.is_empty();
        }
        found
    }

    /// Avoidable operations by (service, kind, template), from the last
    /// [`IoWaste::scan`].
    fn wastes<'t>(&self, trace: &TraceView<'t>) -> BTreeMap<(&'t str, IoKind, &'t str), Waste> {
        let spans = trace.spans();
        let mut wastes: BTreeMap<(&str, IoKind, &str), Waste> = BTreeMap::new();
        let key = |i: u32| {
            let s = &spans[i as usize];
            (s.service.as_str(), s.kind, s.template.as_str())
        };
        for m in &self.matches {
            let w = wastes.entry(key(m.indices[0])).or_default();
            w.n_plus_one += (m.indices.len() as u32).saturating_sub(1);
            w.endpoint = Some(endpoint_of(trace, m.indices[0] as usize));
            w.calls.extend_from_slice(&m.indices);
        }
        for repeats in &self.repeats {
            for group in repeats.groups() {
                let w = wastes.entry(key(group[0])).or_default();
                w.redundant += (group.len() as u32).saturating_sub(1);
                if w.endpoint.is_none() {
                    w.endpoint = Some(endpoint_of(trace, group[0] as usize));
                }
                w.calls.extend_from_slice(group);
            }
        }
        wastes
    }

    /// Outbound I/O operations under `endpoint`, and inbound spans serving
    /// it (at least 1: a trace with no inbound span is one invocation).
    fn intensity(trace: &TraceView<'_>, endpoint: &str) -> (u64, u64) {
        let spans = trace.spans();
        let invocations = spans.iter().filter(|s| endpoint_is(s, endpoint)).count() as u64;
        // The endpoint of an outbound call is that of the nearest inbound
        // span above it, so calls under one parent share it: remember the
        // answer for the last parent.
        let mut last: Option<(u32, bool)> = None;
        let mut under = |i: usize| {
            let parent = spans[i].parent;
            if let Some((p, yes)) = last
                && p == parent
            {
                return yes;
            }
            let yes = match trace.source_endpoint(i) {
                Some((_, s)) => endpoint_is(s, endpoint),
                None => endpoint.is_empty(),
            };
            last = Some((parent, yes));
            yes
        };
        let ops = IO_KINDS
            .iter()
            .flat_map(|&k| trace.of_kind(k))
            .filter(|&&i| is_outbound(&spans[i as usize]) && under(i as usize))
            .count() as u64;
        (ops, invocations.max(1))
    }
}

fn format_ratio(num: u64, den: u64, decimals: usize) -> String {
    format!("{:.*}", decimals, num as f64 / den.max(1) as f64)
}

impl Detector for IoWaste {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        let spans = trace.spans();
        // Waste is among outbound I/O calls: none found means no finding,
        // whatever the total.
        if !self.scan(trace) {
            return Ok(());
        }
        let total = IO_KINDS
            .iter()
            .flat_map(|&k| trace.of_kind(k))
            .filter(|&&i| is_outbound(&spans[i as usize]))
            .count() as u64;
        if total == 0 {
            return Ok(());
        }
        let wastes = self.wastes(trace);
        let avoidable = wastes
            .values()
            .map(|w| u64::from(w.avoidable()))
            .sum::<u64>()
            .min(total);
        if avoidable == 0 || (avoidable as f64 / total as f64) < self.config.waste_ratio_min {
            return Ok(());
        }

        // The endpoint with the most avoidable operations, then its worst template.
        let mut by_endpoint: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for ((service, _, _), w) in &wastes {
            let endpoint = w.endpoint.as_deref().unwrap_or("");
            *by_endpoint.entry((service, endpoint)).or_default() += u64::from(w.avoidable());
        }
        let Some(((service, endpoint), _)) = by_endpoint
            .iter()
            .rev()
            .max_by_key(|(_, n)| **n)
            .map(|(k, n)| (*k, *n))
        else {
            return Ok(());
        };
        let top = wastes
            .iter()
            .filter(|((s, _, _), w)| {
                *s == service && w.endpoint.as_deref().unwrap_or("") == endpoint
            })
            .rev()
            .max_by_key(|(_, w)| w.avoidable());
        let top_template = top.map_or("", |((_, _, t), _)| *t);
        let top_avoidable = top.map_or(0, |(_, w)| w.avoidable());

        let mut calls: Vec<u32> = wastes
            .values()
            .filter(|w| w.avoidable() > 0)
            .flat_map(|w| w.calls.iter().copied())
            .collect();
        // Never arrival order: same trace, same evidence, whatever the order.
        calls.sort_unstable_by_key(|&i| {
            let s = &spans[i as usize];
            (s.start_ns, s.end_ns(), s.span_id, i)
        });
        calls.dedup();
        let wasteful = wastes.values().filter(|w| w.avoidable() > 0).count() as u32;

        let band = Band::waste(avoidable, total);
        let severity = match band {
            Band::Critical => Severity::Critical,
            Band::High => Severity::Warning,
            Band::Moderate | Band::Healthy => Severity::Info,
        };
        let (ops, invocations) = Self::intensity(trace, endpoint);
        let template = if endpoint.is_empty() {
            trace
                .roots()
                .first()
                .and_then(|&r| trace.span(r as usize))
                .map_or("trace", |s| s.name.as_str())
        } else {
            endpoint
        };
        let ratio = format_ratio(avoidable, total, 3);
        let avoidable32 = u32::try_from(avoidable).unwrap_or(u32::MAX);
        let (first_ns, last_ns, duration) = timing(spans, &calls);
        let finding = Finding::new("io_waste", severity, trace.trace_id())
            .title(format!(
                "I/O waste: {avoidable} of {total} I/O operations avoidable (ratio {ratio}, {}) in {template}",
                band.as_str()
            ))
            .template(template)
            .service(service)
            .endpoint(endpoint)
            .occurrences(avoidable32, wasteful)
            .avoidable_io(avoidable32)
            .timing(first_ns, last_ns, duration)
            .evidence(calls.iter().take(MAX_EVIDENCE).map(|&i| spans[i as usize].span_id))
            .suggestion(format!(
                "{avoidable} of this trace's {total} I/O operations repeat work; the largest share is `{top_template}` ({top_avoidable} avoidable). Batch the N+1 loops and reuse the results of identical calls (see this trace's n_plus_one_* and redundant_* findings)."
            ))
            .code(code_of(spans, &calls))
            .extra("total_io_ops", total.to_string())
            .extra("avoidable_io_ops", avoidable.to_string())
            .extra("io_waste_ratio", ratio)
            .extra("io_waste_band", band.as_str())
            .extra("io_intensity_score", format_ratio(ops, invocations, 2))
            .extra("io_intensity_band", Band::intensity(ops, invocations).as_str());
        out.push(finding);
        Ok(())
    }
}

/// Factory of the `io_waste` detector.
pub struct IoWasteFactory;

impl DetectorFactory for IoWasteFactory {
    fn id(&self) -> &str {
        "io_waste"
    }
    fn description(&self) -> &str {
        "The share of a trace's I/O operations that N+1 loops and repeated identical calls make avoidable, with the endpoint's I/O intensity."
    }
    fn inherited_keys(&self) -> &[InheritedKey] {
        INHERITED
    }
    fn default_config(&self) -> toml::Table {
        defaults_table::<IoWasteConfig>()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        Ok(Box::new(IoWaste::new(parse_config(config)?)))
    }
}

register_builtin!(IoWasteFactory);

#[cfg(test)]
mod tests;
