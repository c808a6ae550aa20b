//! Pool saturation: a service holding many SQL calls open at the same time,
//! which exhausts its connection pool (callers queue for a connection) and
//! loads the database. The peak is found with a sweep line over start and
//! end events.

use detector_api::{
    BuildError, Detector, DetectorConfig, DetectorError, DetectorFactory, Finding, InheritedKey,
    IoKind, RVec, Severity, SpanView, TraceView, defaults_table, parse_config, register_builtin,
};
use serde::{Deserialize, Serialize};

use crate::common::{
    MAX_EVIDENCE, StrGroups, code_of, endpoint_of, is_outbound, sort_by_service_then, timing,
};
use crate::fanout::count_u32;

/// Configuration of `pool_saturation`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// A service with at least this many SQL calls open at once is reported
    /// (default 10, inherited from `[detection]
    /// pool_saturation_concurrent_threshold`).
    pub concurrent_threshold: u32,
    /// The finding is critical from `concurrent_threshold *
    /// critical_multiplier` concurrent calls (default 2.0).
    pub critical_multiplier: f64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            concurrent_threshold: 10,
            critical_multiplier: 2.0,
        }
    }
}

impl DetectorConfig for PoolConfig {
    fn validate(&self) -> Result<(), BuildError> {
        if self.concurrent_threshold == 0 {
            return Err(BuildError::invalid(
                "concurrent_threshold",
                "must be at least 1, got 0",
            ));
        }
        crate::fanout::check_multiplier(self.critical_multiplier)
    }
}

const INHERITED: &[InheritedKey] = &[InheritedKey {
    detection_key: "pool_saturation_concurrent_threshold",
    key: "concurrent_threshold",
}];

/// The peak of a sweep over the spans `group` (ordered by start): how many
/// were open at once, and the first instant that many were. A span is open
/// over the half-open interval `[start, end)`: at one instant, ends come
/// before starts, so a call starting exactly when another ends does not
/// overlap it. `ends` is scratch.
fn peak(spans: &[SpanView<'_>], group: &[u32], ends: &mut Vec<u64>) -> (usize, u64) {
    ends.clear();
    ends.extend(group.iter().map(|&i| spans[i as usize].end_ns()));
    ends.sort_unstable();
    let (mut open, mut best, mut at) = (0usize, 0usize, 0u64);
    let mut next_end = 0;
    for &i in group {
        let start = spans[i as usize].start_ns;
        while next_end < ends.len() && ends[next_end] <= start {
            open = open.saturating_sub(1);
            next_end += 1;
        }
        open += 1;
        if open > best {
            best = open;
            at = start;
        }
    }
    (best, at)
}

struct Pool {
    config: PoolConfig,
    calls: Vec<u32>,
    ends: Vec<u64>,
    names: StrGroups,
}

impl Pool {
    fn report(
        &mut self,
        trace: &TraceView<'_>,
        group: &[u32],
        peak_count: usize,
        peak_at: u64,
    ) -> Option<Finding> {
        let spans = trace.spans();
        // The spans open at the peak, in start order.
        let mut open: Vec<u32> = group
            .iter()
            .copied()
            .filter(|&i| {
                let s = &spans[i as usize];
                s.start_ns <= peak_at && peak_at < s.end_ns()
            })
            .collect();
        open.sort_by_key(|&i| {
            let s = &spans[i as usize];
            (s.start_ns, s.end_ns(), s.span_id)
        });
        let first_index = *open.first()? as usize;
        let first = trace.span(first_index)?;
        let service = first.service.as_str();

        let mut systems: Vec<&str> = open
            .iter()
            .map(|&i| spans[i as usize].db_system.as_str())
            .filter(|s| !s.is_empty())
            .collect();
        systems.sort_unstable();
        systems.dedup();
        let template = if systems.is_empty() {
            "sql".to_owned()
        } else {
            systems.join("+")
        };
        let (distinct, top) = self.names.top(spans, &open, 1);
        let (top, top_count) = top.first().copied().unwrap_or(("", 0));

        let critical = peak_count as f64
            >= f64::from(self.config.concurrent_threshold) * self.config.critical_multiplier;
        let severity = if critical {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let endpoint = endpoint_of(trace, first_index);
        let (first_ns, last_ns, total) = timing(spans, &open);
        let title = format!(
            "Pool saturation: {service} holds {peak_count} {template} calls open at once (threshold {})",
            self.config.concurrent_threshold
        );
        let suggestion = format!(
            "{service} had {peak_count} SQL calls in flight at once (most often `{top}`, {top_count} of them), enough to exhaust a connection pool. Check the pool size against this peak, limit the concurrency of the code issuing these queries, or batch them into fewer statements."
        );
        Some(
            Finding::new("pool_saturation", severity, trace.trace_id())
                .title(title)
                .template(&template)
                .service(service)
                .endpoint(&endpoint)
                .occurrences(count_u32(peak_count), count_u32(distinct))
                .avoidable_io(0)
                .timing(first_ns, last_ns, total)
                .evidence(
                    open.iter()
                        .take(MAX_EVIDENCE)
                        .map(|&i| spans[i as usize].span_id),
                )
                .suggestion(suggestion)
                .code(code_of(spans, &open))
                .extra("peak_concurrency", peak_count.to_string())
                .extra("peak_at", peak_at.to_string())
                .extra("sql_calls", group.len().to_string())
                .extra("top_template", top),
        )
    }
}

impl Detector for Pool {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        let spans = trace.spans();
        let threshold = self.config.concurrent_threshold as usize;
        // Outbound SQL calls with a duration: a zero-length call holds no
        // connection over any interval.
        let mut calls = std::mem::take(&mut self.calls);
        calls.clear();
        calls.extend(trace.of_kind(IoKind::Sql).iter().copied().filter(|&i| {
            trace
                .span(i as usize)
                .is_some_and(|s| is_outbound(s) && s.end_ns() > s.start_ns)
        }));
        if calls.len() >= threshold {
            sort_by_service_then(spans, &mut calls, |a, b| {
                (a.start_ns, a.span_id).cmp(&(b.start_ns, b.span_id))
            });
            // Services come out in name order, so the findings are sorted.
            for group in calls.chunk_by(|&a, &b| {
                spans[a as usize].service.as_str() == spans[b as usize].service.as_str()
            }) {
                if group.len() < threshold {
                    continue;
                }
                let (peak_count, peak_at) = peak(spans, group, &mut self.ends);
                if peak_count >= threshold
                    && let Some(f) = self.report(trace, group, peak_count, peak_at)
                {
                    out.push(f);
                }
            }
        }
        self.calls = calls;
        Ok(())
    }
}

/// Factory of the `pool_saturation` detector.
pub struct PoolSaturation;

impl DetectorFactory for PoolSaturation {
    fn id(&self) -> &str {
        "pool_saturation"
    }
    fn description(&self) -> &str {
        "A service with at least `concurrent_threshold` SQL calls open at the same time (enough to exhaust a connection pool)."
    }
    fn inherited_keys(&self) -> &[InheritedKey] {
        INHERITED
    }
    fn default_config(&self) -> toml::Table {
        defaults_table::<PoolConfig>()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        Ok(Box::new(Pool {
            config: parse_config(config)?,
            calls: Vec::new(),
            ends: Vec::new(),
            names: StrGroups::default(),
        }))
    }
}

register_builtin!(PoolSaturation);

#[cfg(test)]
mod tests;
