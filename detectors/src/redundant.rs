//! Redundant calls: the same SQL statement or outbound HTTP call, with the
//! same parameters, made more than once by one service in one trace. The
//! second and later calls return what the first one did, so their result
//! could have been reused.
//!
//! What counts as "the same call": same service, same template, same
//! parameter count and parameter hash. Left out, because identity cannot be
//! told or the repeat is not waste:
//! - calls whose parameters are unknown (a sanitized statement: no
//!   parameter extracted yet a placeholder in the template), since every
//!   sanitized call hashes alike;
//! - failed calls, since a call repeated after a failure is a retry;
//! - HTTP calls other than GET, HEAD, OPTIONS and DELETE, since the body
//!   of a POST, PUT or PATCH carries parameters the span does not show.
//!
//! A template that is already an N+1 in the trace (by the N+1 rules, with
//! the N+1 settings inherited from `[detection]`) is reported as that N+1
//! only.

use std::ops::Range;

use detector_api::{
    BuildError, Detector, DetectorConfig, DetectorError, DetectorFactory, Finding, InheritedKey,
    IoKind, RVec, Severity, SpanView, TraceView, defaults_table, parse_config, register_builtin,
};
use serde::{Deserialize, Serialize};

use crate::common::{Buckets, MAX_EVIDENCE, code_of, endpoint_of, is_outbound, push_runs, timing};
use crate::n_plus_one::{
    Match, NPlusOneConfig, Scanner, check_min_occurrences, check_window, params_unknown,
};

/// Configuration of `redundant_sql` and `redundant_http`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RedundantConfig {
    /// Identical calls needed for a finding (default 2).
    pub min_occurrences: u32,
    /// Identical calls from which the finding is a warning (default 5).
    pub warning_occurrences: u32,
    /// N+1 setting used to leave out templates that are an N+1 (default 5,
    /// from `[detection] n_plus_one_min_occurrences`).
    pub n_plus_one_min_occurrences: u32,
    /// N+1 window in milliseconds (default 500, from `[detection]`).
    pub window_duration_ms: u64,
}

impl Default for RedundantConfig {
    fn default() -> Self {
        Self {
            min_occurrences: 2,
            warning_occurrences: 5,
            n_plus_one_min_occurrences: 5,
            window_duration_ms: 500,
        }
    }
}

impl DetectorConfig for RedundantConfig {
    fn validate(&self) -> Result<(), BuildError> {
        check_min_occurrences("min_occurrences", self.min_occurrences)?;
        if self.warning_occurrences < self.min_occurrences {
            return Err(BuildError::invalid(
                "warning_occurrences",
                format!(
                    "must be at least min_occurrences ({}), got {}",
                    self.min_occurrences, self.warning_occurrences
                ),
            ));
        }
        check_min_occurrences(
            "n_plus_one_min_occurrences",
            self.n_plus_one_min_occurrences,
        )?;
        check_window(self.window_duration_ms)
    }
}

impl RedundantConfig {
    fn n_plus_one(&self) -> NPlusOneConfig {
        NPlusOneConfig {
            min_occurrences: self.n_plus_one_min_occurrences,
            window_duration_ms: self.window_duration_ms,
            ..NPlusOneConfig::default()
        }
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
];

/// True for a call that may count as a repeat of an identical one, but for
/// [`params_unknown`], which identical calls share (it depends on the
/// template and the parameter count only), so it is asked per group.
fn eligible(s: &SpanView<'_>) -> bool {
    if s.template.is_empty() || !is_outbound(s) || s.is_error {
        return false;
    }
    if s.kind != IoKind::Http {
        return true;
    }
    let method = match s.http_method.as_str() {
        "" => s.template.as_str().split(' ').next().unwrap_or(""),
        m => m,
    };
    ["GET", "HEAD", "OPTIONS", "DELETE"]
        .iter()
        .any(|m| m.eq_ignore_ascii_case(method))
}

/// Groups of identical calls of one kind in a trace, reusable across traces.
#[derive(Default)]
pub(crate) struct Repeats {
    calls: Vec<u32>,
    buckets: Buckets,
    copy: Vec<u32>,
    groups: Vec<Range<usize>>,
}

/// What makes two calls identical, compared in this order.
fn identity<'a>(s: &SpanView<'a>) -> (&'a str, &'a str, u32, u64) {
    (
        s.service.as_str(),
        s.template.as_str(),
        s.param_count,
        s.params_hash,
    )
}

/// One integer standing for [`identity`] but the service: equal
/// identities, equal keys.
fn identity_hash(s: &SpanView<'_>) -> u64 {
    let k = s.template_hash.rotate_left(29) ^ s.params_hash;
    (k ^ u64::from(s.param_count))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(31)
        ^ k
}

impl Repeats {
    /// Finds the groups of at least `min` identical calls of `kind`.
    pub(crate) fn scan(&mut self, trace: &TraceView<'_>, kind: IoKind, min: u32) {
        let spans = trace.spans();
        let min = (min as usize).max(1);
        self.calls.clear();
        self.groups.clear();
        self.calls.extend(
            trace
                .of_kind(kind)
                .iter()
                .copied()
                .filter(|&i| eligible(&spans[i as usize])),
        );
        let n = self.calls.len();
        if n < min {
            return;
        }
        // Bucket by an integer key (start order kept within a bucket), then
        // confirm each bucket on the identity itself.
        let calls = &self.calls;
        let largest = self
            .buckets
            .assign(n, |pos| identity_hash(&spans[calls[pos] as usize]));
        if largest < min {
            return;
        }
        self.buckets.arrange();
        self.copy.clear();
        self.copy.extend_from_slice(&self.calls);
        for (slot, &pos) in self.calls.iter_mut().zip(&self.buckets.order) {
            *slot = self.copy[pos as usize];
        }
        for r in &self.buckets.runs {
            let (a, b) = (r.start, r.end);
            if b - a < min {
                continue;
            }
            let run = &mut self.calls[a..b];
            let head = identity(&spans[run[0] as usize]);
            if run[1..]
                .iter()
                .all(|&i| identity(&spans[i as usize]) == head)
            {
                self.groups.push(a..b);
            } else {
                // Stable: start order survives inside a group.
                run.sort_by(|x, y| {
                    identity(&spans[*x as usize]).cmp(&identity(&spans[*y as usize]))
                });
                push_runs(&mut self.groups, a, run, min, |x, y| {
                    identity(&spans[x as usize]) == identity(&spans[y as usize])
                });
            }
        }
        let calls = &self.calls;
        // Calls whose parameters are unknown never repeat one another.
        self.groups
            .retain(|r| !params_unknown(&spans[calls[r.start] as usize]));
        self.groups.sort_unstable_by(|x, y| {
            identity(&spans[calls[x.start] as usize])
                .cmp(&identity(&spans[calls[y.start] as usize]))
        });
    }

    /// Forgets the last scan.
    pub(crate) fn clear(&mut self) {
        self.calls.clear();
        self.groups.clear();
    }

    /// True when the last scan found no group.
    pub(crate) fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Each group's calls, in start order.
    pub(crate) fn groups(&self) -> impl Iterator<Item = &[u32]> + '_ {
        self.groups.iter().map(|r| &self.calls[r.clone()])
    }
}

struct Flavour {
    kind: IoKind,
    finding_kind: &'static str,
    noun: &'static str,
    verb: &'static str,
    suggestion: &'static str,
}

const SQL: Flavour = Flavour {
    kind: IoKind::Sql,
    finding_kind: "redundant_sql",
    noun: "query",
    verb: "run",
    suggestion: "Run this query once and reuse its result (pass it along, or keep it in a request-scoped cache), or cache it across requests if it rarely changes; do not query the same rows twice.",
};

const HTTP: Flavour = Flavour {
    kind: IoKind::Http,
    finding_kind: "redundant_http",
    noun: "call",
    verb: "made",
    suggestion: "Make this request once and reuse the response (pass it along, or keep it in a request-scoped cache), dedupe identical in-flight requests, or cache it with its HTTP caching headers.",
};

struct Redundant {
    flavour: &'static Flavour,
    config: RedundantConfig,
    repeats: Repeats,
    n_plus_one: Scanner,
    matches: Vec<Match>,
}

impl Redundant {
    fn new(flavour: &'static Flavour, config: RedundantConfig) -> Option<Self> {
        Some(Self {
            flavour,
            n_plus_one: Scanner::for_kind(flavour.kind, config.n_plus_one())?,
            config,
            repeats: Repeats::default(),
            matches: Vec::new(),
        })
    }

    fn report(&self, trace: &TraceView<'_>, group: &[u32]) -> Finding {
        let spans = trace.spans();
        let first = &spans[group[0] as usize];
        let occurrences = group.len() as u32;
        let severity = if occurrences >= self.config.warning_occurrences {
            Severity::Warning
        } else {
            Severity::Info
        };
        let endpoint = endpoint_of(trace, group[0] as usize);
        let template = first.template.as_str();
        let mut title = format!(
            "Redundant {}: `{template}` {} {occurrences} times with the same parameters",
            self.flavour.noun, self.flavour.verb
        );
        if !endpoint.is_empty() {
            title.push_str(" in ");
            title.push_str(&endpoint);
        }
        let (first_ns, last_ns, total) = timing(spans, group);
        Finding::new(self.flavour.finding_kind, severity, trace.trace_id())
            .title(title)
            .template(template)
            .service(first.service.as_str())
            .endpoint(&endpoint)
            .occurrences(occurrences, 1)
            .avoidable_io(occurrences.saturating_sub(1))
            .timing(first_ns, last_ns, total)
            .evidence(
                group
                    .iter()
                    .take(MAX_EVIDENCE)
                    .map(|&i| spans[i as usize].span_id),
            )
            .suggestion(self.flavour.suggestion)
            .code(code_of(spans, group))
    }
}

impl Detector for Redundant {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        self.repeats
            .scan(trace, self.flavour.kind, self.config.min_occurrences);
        if self.repeats.is_empty() {
            return Ok(());
        }
        let spans = trace.spans();
        let mut matches = std::mem::take(&mut self.matches);
        matches.clear();
        self.n_plus_one.scan(trace, &mut matches);
        let is_n_plus_one = |s: &SpanView<'_>| {
            matches.iter().any(|m| {
                let n = &spans[m.indices[0] as usize];
                n.service == s.service && n.template == s.template
            })
        };
        let from = out.len();
        for group in self.repeats.groups() {
            if !is_n_plus_one(&spans[group[0] as usize]) {
                out.push(self.report(trace, group));
            }
        }
        out[from..].sort_by(|a, b| {
            (&a.service, &a.template, a.first_ns, &a.evidence.first()).cmp(&(
                &b.service,
                &b.template,
                b.first_ns,
                &b.evidence.first(),
            ))
        });
        self.matches = matches;
        Ok(())
    }
}

fn build(flavour: &'static Flavour, table: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
    let config: RedundantConfig = parse_config(table)?;
    let detector = Redundant::new(flavour, config)
        .ok_or_else(|| BuildError::Config("no N+1 scanner for this kind".into()))?;
    Ok(Box::new(detector))
}

/// Factory of the `redundant_sql` detector.
pub struct RedundantSql;

/// Factory of the `redundant_http` detector.
pub struct RedundantHttp;

impl DetectorFactory for RedundantSql {
    fn id(&self) -> &str {
        "redundant_sql"
    }
    fn description(&self) -> &str {
        "The same SQL statement with the same parameters run more than once in one trace (a result that could be reused)."
    }
    fn inherited_keys(&self) -> &[InheritedKey] {
        INHERITED
    }
    fn default_config(&self) -> toml::Table {
        defaults_table::<RedundantConfig>()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        build(&SQL, config)
    }
}

impl DetectorFactory for RedundantHttp {
    fn id(&self) -> &str {
        "redundant_http"
    }
    fn description(&self) -> &str {
        "The same outbound HTTP request with the same parameters made more than once in one trace (a response that could be reused)."
    }
    fn inherited_keys(&self) -> &[InheritedKey] {
        INHERITED
    }
    fn default_config(&self) -> toml::Table {
        defaults_table::<RedundantConfig>()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        build(&HTTP, config)
    }
}

register_builtin!(RedundantSql);
register_builtin!(RedundantHttp);

#[cfg(test)]
mod tests;
