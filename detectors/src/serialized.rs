//! Serialized calls: independent I/O calls made one after the other under the
//! same parent, each waiting for the previous to finish, when they could run
//! in parallel. Reports the time spent in sequence against the time the
//! same calls would take side by side.
//!
//! A run is a sequence of outbound SQL, HTTP or RPC sibling calls, in start
//! order, where:
//! - each call starts at or after the end of the previous one (no overlap);
//! - the gap between one call's end and the next call's start is at most
//!   `max_gap_ms` ("back to back": a longer gap means the parent did other
//!   work in between, likely work the next call depends on);
//! - no two calls share a template (repeats of one template are an N+1, the
//!   `n_plus_one_*` detectors' job).
//!
//! The longest run of each parent, when it holds at least `min_sequential`
//! calls, is reported.

use detector_api::{
    BuildError, Detector, DetectorConfig, DetectorError, DetectorFactory, Finding, InheritedKey,
    IoKind, RVec, Severity, SpanView, TraceView, defaults_table, parse_config, register_builtin,
};
use serde::{Deserialize, Serialize};

use crate::common::{
    MAX_EVIDENCE, StrGroups, code_of, endpoint_of, is_outbound, sort_stable_by, template_or_name,
    timing,
};
use crate::fanout::count_u32;

const NS_PER_MS: u64 = 1_000_000;

/// Configuration of `serialized_calls`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SerializedConfig {
    /// The shortest run reported (default 3, inherited from `[detection]
    /// serialized_min_sequential`).
    pub min_sequential: u32,
    /// The longest pause, in milliseconds, between one call's end and the
    /// next call's start for the two to count as back to back (default 50).
    pub max_gap_ms: u64,
    /// A run is a warning (else info) when running its calls in parallel
    /// would save at least this many milliseconds (default 100).
    pub warning_saving_ms: u64,
}

impl Default for SerializedConfig {
    fn default() -> Self {
        Self {
            min_sequential: 3,
            max_gap_ms: 50,
            warning_saving_ms: 100,
        }
    }
}

impl DetectorConfig for SerializedConfig {
    fn validate(&self) -> Result<(), BuildError> {
        if self.min_sequential < 2 {
            return Err(BuildError::invalid(
                "min_sequential",
                format!("must be at least 2, got {}", self.min_sequential),
            ));
        }
        if self.max_gap_ms > 60_000 {
            return Err(BuildError::invalid(
                "max_gap_ms",
                format!("must be between 0 and 60000, got {}", self.max_gap_ms),
            ));
        }
        if self.warning_saving_ms > 3_600_000 {
            return Err(BuildError::invalid(
                "warning_saving_ms",
                format!(
                    "must be between 0 and 3600000, got {}",
                    self.warning_saving_ms
                ),
            ));
        }
        Ok(())
    }
}

const INHERITED: &[InheritedKey] = &[InheritedKey {
    detection_key: "serialized_min_sequential",
    key: "min_sequential",
}];

/// An outbound SQL, HTTP or RPC call.
fn is_candidate(s: &SpanView<'_>) -> bool {
    matches!(s.kind, IoKind::Sql | IoKind::Http | IoKind::Rpc) && is_outbound(s)
}

/// Nanoseconds as milliseconds with three decimals, computed on integers so
/// the text never depends on float rounding.
fn ms_text(ns: u64) -> String {
    let us = ns / 1_000;
    format!("{}.{:03}", us / 1_000, us % 1_000)
}

const NONE: u32 = u32::MAX;

struct Serialized {
    config: SerializedConfig,
    calls: Vec<u32>,
    names: StrGroups,
    /// For each call, the position of the previous call with its template.
    prev: Vec<u32>,
    /// For each template, the position of its latest call.
    last: Vec<u32>,
}

impl Serialized {
    /// The longest run among `calls` (sorted by start), as a range of
    /// positions.
    fn longest_run(&mut self, spans: &[SpanView<'_>], calls: &[u32]) -> (usize, usize) {
        // The previous call of each template.
        self.names.build_spans(spans, calls);
        self.prev.clear();
        self.last.clear();
        self.last.resize(self.names.first.len(), NONE);
        for (pos, &id) in self.names.ids.iter().enumerate() {
            let last = &mut self.last[id as usize];
            self.prev.push(*last);
            *last = pos as u32;
        }
        let max_gap = self.config.max_gap_ms.saturating_mul(NS_PER_MS);
        let (mut left, mut best) = (0usize, (0usize, 0usize));
        for right in 0..calls.len() {
            let s = &spans[calls[right] as usize];
            if right > 0 {
                let prev = &spans[calls[right - 1] as usize];
                let linked = s.start_ns >= prev.end_ns()
                    && s.start_ns.saturating_sub(prev.end_ns()) <= max_gap;
                if !linked {
                    left = right;
                }
            }
            let same = self.prev[right];
            if same != NONE && same as usize >= left {
                left = same as usize + 1;
            }
            if right + 1 - left > best.1 - best.0 {
                best = (left, right + 1);
            }
        }
        best
    }

    fn report(&self, trace: &TraceView<'_>, parent: usize, run: &[u32]) -> Option<Finding> {
        let spans = trace.spans();
        let first_index = *run.first()? as usize;
        let first = trace.span(first_index)?;
        let last = trace.span(*run.last()? as usize)?;
        let longest = run
            .iter()
            .map(|&i| spans[i as usize].duration_ns)
            .max()
            .unwrap_or(0);
        let sequential = last.end_ns().saturating_sub(first.start_ns);
        let saving = sequential.saturating_sub(longest);
        let severity = if saving >= self.config.warning_saving_ms.saturating_mul(NS_PER_MS) {
            Severity::Warning
        } else {
            Severity::Info
        };
        let template = trace.span(parent).map_or("", template_or_name);
        let count = run.len();
        let service = first.service.as_str();
        let endpoint = endpoint_of(trace, first_index);
        let (first_ns, last_ns, total) = timing(spans, run);
        let (seq_ms, par_ms, save_ms) = (ms_text(sequential), ms_text(longest), ms_text(saving));
        let sequence = run
            .iter()
            .map(|&i| template_or_name(&spans[i as usize]))
            .collect::<Vec<_>>()
            .join(" -> ");
        let title = format!(
            "Serialized calls: {count} independent calls under `{template}` run one after another ({seq_ms} ms, {par_ms} ms in parallel)"
        );
        let suggestion = format!(
            "These {count} calls under `{template}` have different targets and wait for each other: {seq_ms} ms in sequence against about {par_ms} ms for the longest alone. If none needs another's result, issue them concurrently (futures joined together, async tasks, a parallel stream) to save about {save_ms} ms."
        );
        Some(
            Finding::new("serialized_calls", severity, trace.trace_id())
                .title(title)
                .template(template)
                .service(service)
                .endpoint(&endpoint)
                .occurrences(count_u32(count), count_u32(count))
                .avoidable_io(0)
                .timing(first_ns, last_ns, total)
                .evidence(
                    run.iter()
                        .take(MAX_EVIDENCE)
                        .map(|&i| spans[i as usize].span_id),
                )
                .suggestion(suggestion)
                .code(code_of(spans, run))
                .extra("sequential_ms", seq_ms)
                .extra("parallel_ms", par_ms)
                .extra("saving_ms", save_ms)
                .extra("calls", sequence),
        )
    }
}

impl Detector for Serialized {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        let spans = trace.spans();
        let min = self.config.min_sequential as usize;
        let mut calls = std::mem::take(&mut self.calls);
        let mut found = Vec::new();
        for parent in 0..trace.len() {
            let children = trace.children_of(parent);
            if children.len() < min {
                continue;
            }
            calls.clear();
            calls.extend(
                children
                    .iter()
                    .copied()
                    .filter(|&i| trace.span(i as usize).is_some_and(is_candidate)),
            );
            if calls.len() < min {
                continue;
            }
            // Start order, with a content tie-break so the arrival order of
            // spans never changes the result.
            sort_stable_by(&mut calls, |&a, &b| {
                let (a, b) = (&spans[a as usize], &spans[b as usize]);
                a.start_ns
                    .cmp(&b.start_ns)
                    .then_with(|| a.end_ns().cmp(&b.end_ns()))
                    .then_with(|| template_or_name(a).cmp(template_or_name(b)))
                    .then_with(|| a.span_id.cmp(&b.span_id))
            });
            let (a, b) = self.longest_run(spans, &calls);
            if b - a >= min
                && let Some(f) = self.report(trace, parent, &calls[a..b])
            {
                found.push(f);
            }
        }
        self.calls = calls;
        found.sort_by(|x, y| {
            (x.service.as_str(), x.first_ns, x.evidence.first()).cmp(&(
                y.service.as_str(),
                y.first_ns,
                y.evidence.first(),
            ))
        });
        out.extend(found);
        Ok(())
    }
}

/// Factory of the `serialized_calls` detector.
pub struct SerializedCalls;

impl DetectorFactory for SerializedCalls {
    fn id(&self) -> &str {
        "serialized_calls"
    }
    fn description(&self) -> &str {
        "At least `min_sequential` back-to-back sibling calls to different targets made one after another when they could run in parallel."
    }
    fn inherited_keys(&self) -> &[InheritedKey] {
        INHERITED
    }
    fn default_config(&self) -> toml::Table {
        defaults_table::<SerializedConfig>()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        Ok(Box::new(Serialized {
            config: parse_config(config)?,
            calls: Vec::new(),
            names: StrGroups::default(),
            prev: Vec::new(),
            last: Vec::new(),
        }))
    }
}

register_builtin!(SerializedCalls);

#[cfg(test)]
mod tests;
