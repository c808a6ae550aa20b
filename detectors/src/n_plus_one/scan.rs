//! Finding the N+1 groups of one I/O kind in a trace: grouping, the
//! sliding windows, and the classification of sanitized statements (see the
//! parent module's documentation). Shared with `redundant_*` and `io_waste`
//! through [`Scanner`], so that every detector agrees on what an N+1 is.

use std::collections::HashMap;

use detector_api::{IoKind, SpanKind, SpanView, TraceView};

use super::{Flavour, HTTP, MESSAGING, NPlusOneConfig, SQL, SanitizerMode};
use crate::common::{group_by_service_template, is_outbound};
use crate::frameworks::{Framework, framework_of};

impl Flavour {
    fn eligible(&self, s: &SpanView<'_>) -> bool {
        !s.template.is_empty()
            && if self.kind == IoKind::Messaging {
                s.span_kind == SpanKind::Producer
            } else {
                is_outbound(s)
            }
    }
}

/// True when the span's parameters are unknown: normalization extracted
/// none, yet the template holds a placeholder (`?`, `$1`, `:name`, `@p1`
/// for SQL, `{..}` for HTTP), so the agent removed the values before the
/// span left the process. A template with no placeholder and no parameter
/// is a call that takes no parameters.
pub(crate) fn params_unknown(s: &SpanView<'_>) -> bool {
    s.param_count == 0
        && match s.kind {
            IoKind::Sql => has_sql_placeholder(s.template.as_str()),
            _ => s.template.as_str().contains('{'),
        }
}

fn has_sql_placeholder(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    (0..b.len()).any(|i| {
        let next = b.get(i + 1).copied().unwrap_or(0);
        let prev = if i == 0 { 0 } else { b[i - 1] };
        match b[i] {
            b'?' => true,
            b'$' => next.is_ascii_digit(),
            // `:name`, `:1`, but not `::int` casts nor `a:b`.
            b':' => word(next) && prev != b':' && !word(prev),
            // `@p1`, `@name`, but not `@@ROWCOUNT`.
            b'@' => word(next) && prev != b'@',
            _ => false,
        }
    })
}

/// Why a group of calls was recognized as an N+1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    /// Enough distinct parameter sets.
    DistinctParams,
    /// Enough sends (messaging).
    SendCount,
    /// Sanitized, made by an ORM.
    OrmScope,
    /// Sanitized, with the timing of a loop.
    TimingSpread,
    /// Sanitized, counted because the mode is `always`.
    Always,
}

/// One N+1: the calls of the reported window, in start order.
#[derive(Debug, Clone)]
pub(crate) struct Match {
    pub(crate) indices: Vec<u32>,
    pub(crate) distinct: u32,
    pub(crate) basis: Basis,
    pub(crate) framework: Option<Framework>,
}

impl Match {
    pub(crate) fn sanitized(&self) -> bool {
        matches!(
            self.basis,
            Basis::OrmScope | Basis::TimingSpread | Basis::Always
        )
    }
}

/// Finds the N+1 groups of one I/O kind in a trace. Used by the N+1
/// detectors themselves and by the detectors that must agree with them
/// (`redundant_*`, `io_waste`).
pub(crate) struct Scanner {
    flavour: &'static Flavour,
    config: NPlusOneConfig,
    // Scratch buffers reused across traces.
    candidates: Vec<u32>,
    params: HashMap<u64, u32>,
}

/// Calls and ancestors inspected when looking for an ORM scope.
const FRAMEWORK_SAMPLE: usize = 16;
const FRAMEWORK_DEPTH: usize = 32;

impl Scanner {
    /// A scanner for `kind` (SQL, HTTP or messaging; other kinds find
    /// nothing).
    pub(crate) fn for_kind(kind: IoKind, config: NPlusOneConfig) -> Option<Self> {
        let flavour = match kind {
            IoKind::Sql => &SQL,
            IoKind::Http => &HTTP,
            IoKind::Messaging => &MESSAGING,
            IoKind::Rpc | IoKind::Other => return None,
        };
        Some(Self::new(flavour, config))
    }

    pub(super) fn new(flavour: &'static Flavour, config: NPlusOneConfig) -> Self {
        Self {
            flavour,
            config,
            candidates: Vec::new(),
            params: HashMap::new(),
        }
    }

    /// Appends every N+1 of the trace to `out`, one per (service, template),
    /// ordered by service then template.
    pub(crate) fn scan(&mut self, trace: &TraceView<'_>, out: &mut Vec<Match>) {
        let spans = trace.spans();
        let min = self.config.min_occurrences as usize;
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        candidates.extend(
            trace
                .of_kind(self.flavour.kind)
                .iter()
                .copied()
                .filter(|&i| self.flavour.eligible(&spans[i as usize])),
        );
        if candidates.len() >= min {
            for range in group_by_service_template(spans, &mut candidates) {
                let group = &candidates[range];
                if group.len() >= min
                    && let Some(m) = self.classify(trace, group)
                {
                    out.push(m);
                }
            }
        }
        self.candidates = candidates;
    }

    fn classify(&mut self, trace: &TraceView<'_>, group: &[u32]) -> Option<Match> {
        let spans = trace.spans();
        let min = self.config.min_occurrences as usize;
        let window_ns = self.config.window_duration_ms.saturating_mul(1_000_000);
        let found = |(a, b): (usize, usize), distinct, basis, framework| {
            (b + 1 - a >= min).then(|| Match {
                indices: group[a..=b].to_vec(),
                distinct,
                basis,
                framework,
            })
        };
        if self.flavour.count_only {
            let (a, b) = count_window(spans, group, window_ns);
            let distinct = self.distinct_in(spans, &group[a..=b]);
            return found((a, b), distinct, Basis::SendCount, None);
        }
        let sanitized = self.flavour.sanitizer_aware
            && group.iter().all(|&i| params_unknown(&spans[i as usize]));
        if !sanitized {
            let (a, b, distinct) = self.distinct_window(spans, group, window_ns);
            if (distinct as usize) < min {
                return None;
            }
            let framework = if self.flavour.kind == IoKind::Sql {
                group_framework(trace, &group[a..=b])
            } else {
                None
            };
            return found((a, b), distinct, Basis::DistinctParams, framework);
        }
        let mode = self.config.sanitizer_mode();
        if mode == SanitizerMode::Never {
            return None;
        }
        let framework = group_framework(trace, group);
        let (window, basis) = match (mode, framework) {
            (SanitizerMode::Always, None) => (count_window(spans, group, window_ns), Basis::Always),
            (_, Some(_)) => (count_window(spans, group, window_ns), Basis::OrmScope),
            (SanitizerMode::Auto, None) => {
                (loop_window(spans, group, window_ns), Basis::TimingSpread)
            }
            (SanitizerMode::Strict | SanitizerMode::Never, None) => return None,
        };
        found(window, 0, basis, framework)
    }

    fn distinct_in(&mut self, spans: &[SpanView<'_>], calls: &[u32]) -> u32 {
        self.params.clear();
        for &i in calls {
            self.params.insert(spans[i as usize].params_hash, 1);
        }
        self.params.len() as u32
    }

    /// Within one group of same-service, same-template calls ordered by start
    /// time, finds the window of at most `window_ns` holding the most
    /// distinct parameter sets. Returns `(first, last, distinct)` positions.
    fn distinct_window(
        &mut self,
        spans: &[SpanView<'_>],
        group: &[u32],
        window_ns: u64,
    ) -> (usize, usize, u32) {
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
}

/// The window of at most `window_ns` (start to start) holding the most calls
/// of `group` (start order); the earliest on a tie. `(first, last)` positions.
fn count_window(spans: &[SpanView<'_>], group: &[u32], window_ns: u64) -> (usize, usize) {
    let mut left = 0usize;
    let mut best = (0usize, 0usize);
    for right in 0..group.len() {
        let start = spans[group[right] as usize].start_ns;
        while start - spans[group[left] as usize].start_ns > window_ns {
            left += 1;
        }
        if right - left > best.1 - best.0 {
            best = (left, right);
        }
    }
    best
}

/// Like [`count_window`], but the window must lie within one loop run (see
/// the module documentation).
fn loop_window(spans: &[SpanView<'_>], group: &[u32], window_ns: u64) -> (usize, usize) {
    let mut best = (0usize, 0usize);
    let mut run_start = 0usize;
    for i in 1..=group.len() {
        let continues = group.get(i).is_some_and(|&next| {
            let (prev, next) = (&spans[group[i - 1] as usize], &spans[next as usize]);
            next.start_ns > prev.end_ns() && !prev.is_error
        });
        if !continues {
            let (a, b) = count_window(spans, &group[run_start..i], window_ns);
            if b - a > best.1 - best.0 {
                best = (run_start + a, run_start + b);
            }
            run_start = i;
        }
    }
    best
}

/// The framework that made a group's calls: named by the calls themselves,
/// else by an ancestor up to (and including) the inbound span, e.g. a
/// Hibernate session span above JDBC calls or the Django request span.
fn group_framework(trace: &TraceView<'_>, group: &[u32]) -> Option<Framework> {
    let spans = trace.spans();
    let sample = &group[..group.len().min(FRAMEWORK_SAMPLE)];
    sample
        .iter()
        .find_map(|&i| framework_of(&spans[i as usize]))
        .or_else(|| {
            sample
                .iter()
                .find_map(|&i| ancestor_framework(trace, i as usize))
        })
}

fn ancestor_framework(trace: &TraceView<'_>, index: usize) -> Option<Framework> {
    for (_, s) in trace.ancestors(index).take(FRAMEWORK_DEPTH) {
        if let Some(fw) = framework_of(s) {
            return Some(fw);
        }
        if s.span_kind.is_inbound() {
            break;
        }
    }
    None
}
