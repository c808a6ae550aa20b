//! N+1 detection: the same SQL statement or outbound HTTP call template run
//! again and again with different parameters in a short window, the typical
//! loop that should have been one batched call.

use std::collections::HashMap;

use detector_api::{
    BuildError, Detector, DetectorConfig, DetectorError, DetectorFactory, Finding, InheritedKey,
    IoKind, RVec, Severity, SpanView, TraceView, defaults_table, parse_config, register_builtin,
};
use serde::{Deserialize, Serialize};

use crate::common::{
    MAX_EVIDENCE, code_of, endpoint_of, group_by_service_template, is_outbound, timing,
};

/// Configuration of `n_plus_one_sql` and `n_plus_one_http`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct NPlusOneConfig {
    /// Distinct parameter sets needed within the window (default 5).
    pub min_occurrences: u32,
    /// The window the calls must fit in, in milliseconds (default 500).
    pub window_duration_ms: u64,
    /// Occurrences from which the finding is critical (default: 10, or
    /// `min_occurrences` when that is higher).
    pub critical_occurrences: Option<u32>,
}

impl NPlusOneConfig {
    /// The critical threshold in force.
    pub fn critical(&self) -> u32 {
        self.critical_occurrences
            .unwrap_or(self.min_occurrences.max(10))
    }
}

impl Default for NPlusOneConfig {
    fn default() -> Self {
        Self {
            min_occurrences: 5,
            window_duration_ms: 500,
            critical_occurrences: None,
        }
    }
}

impl DetectorConfig for NPlusOneConfig {
    fn validate(&self) -> Result<(), BuildError> {
        if self.min_occurrences < 2 {
            return Err(BuildError::invalid(
                "min_occurrences",
                format!("must be at least 2, got {}", self.min_occurrences),
            ));
        }
        if self.window_duration_ms == 0 || self.window_duration_ms > 3_600_000 {
            return Err(BuildError::invalid(
                "window_duration_ms",
                format!(
                    "must be between 1 and 3600000, got {}",
                    self.window_duration_ms
                ),
            ));
        }
        if self.critical() < self.min_occurrences {
            return Err(BuildError::invalid(
                "critical_occurrences",
                format!(
                    "must be at least min_occurrences ({}), got {}",
                    self.min_occurrences,
                    self.critical()
                ),
            ));
        }
        Ok(())
    }
}

const INHERITED: &[InheritedKey] = &[
    InheritedKey {
        detection_key: "n_plus_one_min_occurrences",
        key: "min_occurrences",
    },
    InheritedKey {
        detection_key: "window_duration_ms",
        key: "window_duration_ms",
    },
];

/// What distinguishes the SQL and HTTP flavours.
struct Flavour {
    kind: IoKind,
    finding_kind: &'static str,
    noun: &'static str,
    suggestion: &'static str,
}

const SQL: Flavour = Flavour {
    kind: IoKind::Sql,
    finding_kind: "n_plus_one_sql",
    noun: "queries",
    suggestion: "Load these rows in one query (WHERE ... IN (...) or a JOIN), or eager-load the association, instead of querying once per item.",
};

const HTTP: Flavour = Flavour {
    kind: IoKind::Http,
    finding_kind: "n_plus_one_http",
    noun: "calls",
    suggestion: "Fetch these resources in one request (a batch or bulk endpoint), or prefetch and cache them, instead of calling once per item.",
};

struct NPlusOne {
    flavour: &'static Flavour,
    config: NPlusOneConfig,
    // Scratch buffers reused across traces.
    candidates: Vec<u32>,
    params: HashMap<u64, u32>,
}

impl NPlusOne {
    fn new(flavour: &'static Flavour, config: NPlusOneConfig) -> Self {
        Self {
            flavour,
            config,
            candidates: Vec::new(),
            params: HashMap::new(),
        }
    }

    fn eligible(&self, s: &SpanView<'_>) -> bool {
        !s.template.is_empty() && is_outbound(s)
    }

    /// Within one group of same-service, same-template calls ordered by start
    /// time, finds the window of at most `window_duration_ms` holding the most
    /// distinct parameter sets. Returns `(first, last, distinct)` positions.
    fn best_window(&mut self, spans: &[SpanView<'_>], group: &[u32]) -> (usize, usize, u32) {
        let window_ns = self.config.window_duration_ms.saturating_mul(1_000_000);
        self.params.clear();
        let (mut left, mut distinct) = (0usize, 0u32);
        let mut best = (0usize, 0usize, 0u32);
        for right in 0..group.len() {
            let start = spans[group[right] as usize].start_ns;
            let count = self
                .params
                .entry(spans[group[right] as usize].params_hash)
                .or_insert(0);
            *count += 1;
            if *count == 1 {
                distinct += 1;
            }
            while start - spans[group[left] as usize].start_ns > window_ns {
                let h = spans[group[left] as usize].params_hash;
                if let Some(c) = self.params.get_mut(&h) {
                    *c -= 1;
                    if *c == 0 {
                        distinct -= 1;
                    }
                }
                left += 1;
            }
            if distinct > best.2 || (distinct == best.2 && right - left > best.1 - best.0) {
                best = (left, right, distinct);
            }
        }
        best
    }

    fn report(&self, trace: &TraceView<'_>, group: &[u32], distinct: u32) -> Finding {
        let spans = trace.spans();
        let first = &spans[group[0] as usize];
        let occurrences = group.len() as u32;
        let severity = if occurrences >= self.config.critical() {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let endpoint = endpoint_of(trace, group[0] as usize);
        let (first_ns, last_ns, total) = timing(spans, group);
        let code = code_of(spans, group);
        let template = first.template.as_str();
        let title = if endpoint.is_empty() {
            format!("N+1: {occurrences} {} of `{template}`", self.flavour.noun)
        } else {
            format!(
                "N+1: {occurrences} {} of `{template}` in {endpoint}",
                self.flavour.noun
            )
        };
        Finding::new(self.flavour.finding_kind, severity, trace.trace_id())
            .title(title)
            .template(template)
            .service(first.service.as_str())
            .endpoint(&endpoint)
            .occurrences(occurrences, distinct)
            .avoidable_io(occurrences.saturating_sub(1))
            .timing(first_ns, last_ns, total)
            .evidence(
                group
                    .iter()
                    .take(MAX_EVIDENCE)
                    .map(|&i| spans[i as usize].span_id),
            )
            .suggestion(self.flavour.suggestion)
            .code(code)
    }
}

impl Detector for NPlusOne {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        let spans = trace.spans();
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        candidates.extend(
            trace
                .of_kind(self.flavour.kind)
                .iter()
                .copied()
                .filter(|&i| self.eligible(&spans[i as usize])),
        );
        if candidates.len() < self.config.min_occurrences as usize {
            self.candidates = candidates;
            return Ok(());
        }
        for range in group_by_service_template(spans, &mut candidates) {
            let group = &candidates[range];
            if group.len() >= self.config.min_occurrences as usize {
                let (a, b, distinct) = self.best_window(spans, group);
                if distinct >= self.config.min_occurrences {
                    out.push(self.report(trace, &group[a..=b], distinct));
                }
            }
        }
        self.candidates = candidates;
        Ok(())
    }
}

/// Factory of the `n_plus_one_sql` detector.
pub struct NPlusOneSql;

/// Factory of the `n_plus_one_http` detector.
pub struct NPlusOneHttp;

impl DetectorFactory for NPlusOneSql {
    fn id(&self) -> &str {
        "n_plus_one_sql"
    }
    fn description(&self) -> &str {
        "The same SQL statement run with different parameters many times in a short window (a query in a loop)."
    }
    fn inherited_keys(&self) -> &[InheritedKey] {
        INHERITED
    }
    fn default_config(&self) -> toml::Table {
        defaults_table::<NPlusOneConfig>()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        Ok(Box::new(NPlusOne::new(&SQL, parse_config(config)?)))
    }
}

impl DetectorFactory for NPlusOneHttp {
    fn id(&self) -> &str {
        "n_plus_one_http"
    }
    fn description(&self) -> &str {
        "The same outbound HTTP call made with different parameters many times in a short window (a call in a loop)."
    }
    fn inherited_keys(&self) -> &[InheritedKey] {
        INHERITED
    }
    fn default_config(&self) -> toml::Table {
        defaults_table::<NPlusOneConfig>()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        Ok(Box::new(NPlusOne::new(&HTTP, parse_config(config)?)))
    }
}

register_builtin!(NPlusOneSql);
register_builtin!(NPlusOneHttp);

#[cfg(test)]
mod tests;
