//! N+1 detection: the same SQL statement or outbound HTTP call template run
//! again and again with different parameters in a short window (the typical
//! loop that should have been one batched call), and the same message sent
//! to one destination again and again (one send per item instead of a
//! batch).
//!
//! SQL statements the agent already sanitized (literals replaced by `?`,
//! `$1`, `:name`, `@p1` before the span left the process) carry no
//! parameters, so every call looks alike. They are classified by
//! `sanitizer_aware_classification`:
//!
//! - `never`: never an N+1 (the parameters are unknown);
//! - `strict`: an N+1 only when an ORM made the calls (its instrumentation
//!   scope, or `code.namespace` / `code.filepath`, on the call or on an
//!   ancestor up to the inbound span: see [`crate::frameworks`]);
//! - `always`: any repeated sanitized template is counted, like messaging;
//! - `auto` (default): an ORM made the calls, or the calls show the timing
//!   of a loop. A *loop run* is a maximal sequence of calls (in start order)
//!   where each call starts strictly after the previous one ended and the
//!   previous one did not fail. Why: a loop awaits each query and runs its
//!   body (hydrating a row, building the next query) before the next one,
//!   so its calls never overlap and there is idle time between them; a
//!   burst of concurrent identical calls overlaps or starts back to back,
//!   and a retry follows a failed call. Within loop runs, `min_occurrences`
//!   calls must fit in the window, as for any N+1.
//!
//! Findings from sanitized statements carry `distinct_params = 0` and the
//! extras `sanitized = "true"` and `classified_by` (`orm_scope`,
//! `timing_spread` or `always`).

use detector_api::{
    BuildError, Detector, DetectorConfig, DetectorError, DetectorFactory, Finding, InheritedKey,
    IoKind, RVec, Severity, TraceView, defaults_table, parse_config, register_builtin,
};
use serde::{Deserialize, Serialize};

use crate::common::{MAX_EVIDENCE, code_of, endpoint_of, timing};
use crate::frameworks::n_plus_one_suggestion;

mod scan;

use scan::Basis;
pub(crate) use scan::{Match, Scanner, params_unknown};

/// How N+1 SQL detection treats statements the agent already sanitized.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SanitizerMode {
    /// An ORM scope, or the timing of a loop.
    #[default]
    Auto,
    /// Only when an ORM scope made the calls.
    Strict,
    /// Any repeated sanitized template.
    Always,
    /// Never.
    Never,
}

const SANITIZER_KEY: &str = "sanitizer_aware_classification";

/// Configuration of `n_plus_one_sql`, `n_plus_one_http` and
/// `n_plus_one_messaging`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct NPlusOneConfig {
    /// Distinct parameter sets (messaging and sanitized SQL: calls) needed
    /// within the window (default 5).
    pub min_occurrences: u32,
    /// The window the calls must fit in, in milliseconds (default 500).
    pub window_duration_ms: u64,
    /// Occurrences from which the finding is critical (default: 10, or
    /// `min_occurrences` when that is higher).
    pub critical_occurrences: Option<u32>,
    /// `n_plus_one_sql` only: `auto` (default), `strict`, `always`, `never`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sanitizer_aware_classification: Option<SanitizerMode>,
}

impl NPlusOneConfig {
    /// The critical threshold in force.
    pub fn critical(&self) -> u32 {
        self.critical_occurrences
            .unwrap_or(self.min_occurrences.max(10))
    }

    /// The sanitizer mode in force.
    pub fn sanitizer_mode(&self) -> SanitizerMode {
        self.sanitizer_aware_classification.unwrap_or_default()
    }
}

impl Default for NPlusOneConfig {
    fn default() -> Self {
        Self {
            min_occurrences: 5,
            window_duration_ms: 500,
            critical_occurrences: None,
            sanitizer_aware_classification: None,
        }
    }
}

impl DetectorConfig for NPlusOneConfig {
    fn validate(&self) -> Result<(), BuildError> {
        check_min_occurrences("min_occurrences", self.min_occurrences)?;
        check_window(self.window_duration_ms)?;
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

/// Range check of an N+1 minimum, shared with the detectors that embed
/// N+1 settings.
pub(crate) fn check_min_occurrences(key: &str, value: u32) -> Result<(), BuildError> {
    if value < 2 {
        return Err(BuildError::invalid(
            key,
            format!("must be at least 2, got {value}"),
        ));
    }
    Ok(())
}

/// Range check of `window_duration_ms`.
pub(crate) fn check_window(value: u64) -> Result<(), BuildError> {
    if value == 0 || value > 3_600_000 {
        return Err(BuildError::invalid(
            "window_duration_ms",
            format!("must be between 1 and 3600000, got {value}"),
        ));
    }
    Ok(())
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

const INHERITED_SQL: &[InheritedKey] = &[
    INHERITED[0],
    INHERITED[1],
    InheritedKey {
        detection_key: SANITIZER_KEY,
        key: SANITIZER_KEY,
    },
];

/// What distinguishes the SQL, HTTP and messaging flavours.
pub(crate) struct Flavour {
    kind: IoKind,
    finding_kind: &'static str,
    noun: &'static str,
    /// Messaging: the number of sends alone makes the pattern.
    count_only: bool,
    /// SQL: sanitized statements are classified by `SanitizerMode`.
    sanitizer_aware: bool,
}

const SQL: Flavour = Flavour {
    kind: IoKind::Sql,
    finding_kind: "n_plus_one_sql",
    noun: "queries",
    count_only: false,
    sanitizer_aware: true,
};

const HTTP: Flavour = Flavour {
    kind: IoKind::Http,
    finding_kind: "n_plus_one_http",
    noun: "calls",
    count_only: false,
    sanitizer_aware: false,
};

const MESSAGING: Flavour = Flavour {
    kind: IoKind::Messaging,
    finding_kind: "n_plus_one_messaging",
    noun: "sends",
    count_only: true,
    sanitizer_aware: false,
};

struct NPlusOne {
    flavour: &'static Flavour,
    critical: u32,
    scanner: Scanner,
    matches: Vec<Match>,
}

impl NPlusOne {
    fn new(flavour: &'static Flavour, config: NPlusOneConfig) -> Self {
        Self {
            flavour,
            critical: config.critical(),
            scanner: Scanner::new(flavour, config),
            matches: Vec::new(),
        }
    }

    fn report(&self, trace: &TraceView<'_>, m: &Match) -> Finding {
        let spans = trace.spans();
        let group = m.indices.as_slice();
        let first = &spans[group[0] as usize];
        let occurrences = group.len() as u32;
        let severity = if occurrences >= self.critical {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let endpoint = endpoint_of(trace, group[0] as usize);
        let (first_ns, last_ns, total) = timing(spans, group);
        let template = first.template.as_str();
        let mut title = format!("N+1: {occurrences} {} of `{template}`", self.flavour.noun);
        if !endpoint.is_empty() {
            title.push_str(" in ");
            title.push_str(&endpoint);
        }
        if m.sanitized() {
            title.push_str(" (sanitized statement)");
        }
        let mut f = Finding::new(self.flavour.finding_kind, severity, trace.trace_id())
            .title(title)
            .template(template)
            .service(first.service.as_str())
            .endpoint(&endpoint)
            .occurrences(occurrences, m.distinct)
            .avoidable_io(occurrences.saturating_sub(1))
            .timing(first_ns, last_ns, total)
            .evidence(
                group
                    .iter()
                    .take(MAX_EVIDENCE)
                    .map(|&i| spans[i as usize].span_id),
            )
            .suggestion(n_plus_one_suggestion(m.framework, self.flavour.kind))
            .code(code_of(spans, group));
        if let Some(fw) = m.framework {
            f = f.extra("framework", fw.name());
        }
        if m.sanitized() {
            let by = match m.basis {
                Basis::OrmScope => "orm_scope",
                Basis::TimingSpread => "timing_spread",
                _ => "always",
            };
            f = f.extra("sanitized", "true").extra("classified_by", by);
        }
        f
    }
}

impl Detector for NPlusOne {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        let mut matches = std::mem::take(&mut self.matches);
        matches.clear();
        // One match per (service, template), already in that order.
        self.scanner.scan(trace, &mut matches);
        for m in &matches {
            out.push(self.report(trace, m));
        }
        self.matches = matches;
        Ok(())
    }
}

/// Builds an HTTP or messaging detector, refusing the SQL-only key.
fn build_plain(
    flavour: &'static Flavour,
    table: &toml::Table,
) -> Result<Box<dyn Detector>, BuildError> {
    let config: NPlusOneConfig = parse_config(table)?;
    if config.sanitizer_aware_classification.is_some() {
        return Err(BuildError::invalid(
            SANITIZER_KEY,
            "applies to n_plus_one_sql only",
        ));
    }
    Ok(Box::new(NPlusOne::new(flavour, config)))
}

/// Factory of the `n_plus_one_sql` detector.
pub struct NPlusOneSql;

/// Factory of the `n_plus_one_http` detector.
pub struct NPlusOneHttp;

/// Factory of the `n_plus_one_messaging` detector.
pub struct NPlusOneMessaging;

impl DetectorFactory for NPlusOneSql {
    fn id(&self) -> &str {
        "n_plus_one_sql"
    }
    fn description(&self) -> &str {
        "The same SQL statement run with different parameters many times in a short window (a query in a loop), sanitized statements included."
    }
    fn inherited_keys(&self) -> &[InheritedKey] {
        INHERITED_SQL
    }
    fn default_config(&self) -> toml::Table {
        let mut t = defaults_table::<NPlusOneConfig>();
        t.insert(SANITIZER_KEY.into(), "auto".into());
        t
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
        build_plain(&HTTP, config)
    }
}

impl DetectorFactory for NPlusOneMessaging {
    fn id(&self) -> &str {
        "n_plus_one_messaging"
    }
    fn description(&self) -> &str {
        "Many messages sent to the same destination in a short window (one send per item instead of a batch)."
    }
    fn inherited_keys(&self) -> &[InheritedKey] {
        INHERITED
    }
    fn default_config(&self) -> toml::Table {
        defaults_table::<NPlusOneConfig>()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        build_plain(&MESSAGING, config)
    }
}

register_builtin!(NPlusOneSql);
register_builtin!(NPlusOneHttp);
register_builtin!(NPlusOneMessaging);

#[cfg(test)]
mod tests;
