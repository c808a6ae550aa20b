//! Finding the N+1 groups of one I/O kind in a trace: grouping, the
//! sliding windows, and the classification of sanitized statements (see the
//! parent module's documentation). Shared with `redundant_*` and `io_waste`
//! through [`Scanner`], so that every detector agrees on what an N+1 is.

use detector_api::{IoKind, SpanKind, SpanView, TraceView};

use super::{Flavour, HTTP, MESSAGING, NPlusOneConfig, SQL, SanitizerMode};
use crate::common::{Grouper, IdTable, is_outbound};
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
    match s.kind {
        IoKind::Sql => {
            let (agent, question_marks) = sql_placeholders(s.template.as_str());
            // Our normalizer only ever writes `?`, one per literal (or per
            // collapsed IN list): more `?` than extracted parameters, or any
            // other placeholder style, means the agent hid some of them.
            agent || question_marks > s.param_count as usize
        }
        _ => s.param_count == 0 && s.template.as_str().contains('{'),
    }
}

/// [`params_unknown`] for a run of calls, remembering the last SQL
/// template's answer: the calls of a loop share theirs, and comparing the
/// template is cheaper than scanning it again.
#[derive(Default)]
struct UnknownMemo<'a> {
    last: Option<(u64, &'a str, u32, bool)>,
}

impl<'a> UnknownMemo<'a> {
    /// [`params_unknown`] of `s`.
    fn get(&mut self, s: &SpanView<'a>) -> bool {
        if s.kind != IoKind::Sql {
            return params_unknown(s);
        }
        let template = s.template.as_str();
        if let Some((hash, t, count, unknown)) = self.last
            && hash == s.template_hash
            && count == s.param_count
            && t == template
        {
            return unknown;
        }
        let unknown = params_unknown(s);
        self.last = Some((s.template_hash, template, s.param_count, unknown));
        unknown
    }
}

/// The bytes [`sql_placeholders`] looks at; every other byte is skipped.
const SQL_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    let special = *b"'?$:@%";
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether `t` holds placeholders only an agent writes (`$1`, `:name`,
/// `@p1`, `%s`, `%(name)s`), and how many `?` it holds, outside quoted
/// strings.
fn sql_placeholders(t: &str) -> (bool, usize) {
    let b = t.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let (mut agent, mut questions, mut quoted) = (false, 0usize, false);
    let mut i = 0;
    // Only quotes and the placeholder characters matter: jump from one to
    // the next (inside a quoted string, to the closing quote).
    while let Some(off) = b.get(i..).and_then(|rest| {
        if quoted {
            rest.iter().position(|&c| c == b'\'')
        } else {
            rest.iter().position(|&c| SQL_SPECIAL[c as usize])
        }
    }) {
        i += off;
        let next = b.get(i + 1).copied().unwrap_or(0);
        let prev = if i == 0 { 0 } else { b[i - 1] };
        match b[i] {
            b'\'' => quoted = !quoted,
            b'?' => questions += 1,
            b'$' => agent |= next.is_ascii_digit(),
            // `:name`, `:1`, but not `::int` casts nor `a:b`.
            b':' => agent |= word(next) && prev != b':' && !word(prev),
            // `@p1`, `@name`, but not `@@ROWCOUNT`.
            b'@' => agent |= word(next) && prev != b'@',
            // psycopg and mysqlclient: `%s`, `%(name)s`; not `%%`.
            b'%' => agent |= (next == b's' || next == b'(') && prev != b'%',
            _ => {}
        }
        i += 1;
    }
    (agent, questions)
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
    grouper: Grouper,
    table: IdTable,
    ids: Vec<u32>,
    counts: Vec<u32>,
    /// Whether the last scan saw a (service, template) twice or more.
    repeats: bool,
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
            grouper: Grouper::default(),
            table: IdTable::default(),
            ids: Vec::new(),
            counts: Vec::new(),
            repeats: false,
        }
    }

    /// The I/O kind it scans.
    pub(crate) fn kind(&self) -> IoKind {
        self.flavour.kind
    }

    /// False when the last [`Scanner::scan`] saw every (service, template)
    /// of its eligible calls at most once (then no two of them are alike).
    pub(crate) fn saw_repeats(&self) -> bool {
        self.repeats
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
        self.repeats = candidates.len() > 1;
        if candidates.len() >= min {
            let mut grouper = std::mem::take(&mut self.grouper);
            grouper.group(spans, &mut candidates, min);
            self.repeats = grouper.repeats;
            for range in &grouper.groups {
                let group = &candidates[range.clone()];
                if let Some(m) = self.classify(trace, group) {
                    out.push(m);
                }
            }
            self.grouper = grouper;
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
        let sanitized = self.flavour.sanitizer_aware && {
            let mut memo = UnknownMemo::default();
            group.iter().all(|&i| memo.get(&spans[i as usize]))
        };
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

    /// Gives each call of `calls` the dense id of its parameter hash (equal
    /// hashes, equal ids) in `self.ids`; returns how many distinct hashes.
    fn param_ids(&mut self, spans: &[SpanView<'_>], calls: &[u32]) -> u32 {
        self.table.reset(calls.len());
        self.ids.clear();
        for &i in calls {
            let id = self.table.id(spans[i as usize].params_hash);
            self.ids.push(id);
        }
        self.table.len() as u32
    }

    fn distinct_in(&mut self, spans: &[SpanView<'_>], calls: &[u32]) -> u32 {
        self.param_ids(spans, calls)
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
        let distinct_all = self.param_ids(spans, group);
        let start_of = |pos: usize| spans[group[pos] as usize].start_ns;
        let last = group.len().saturating_sub(1);
        // The whole group fits in the window: the window never slides, so
        // the best one is the whole group.
        if start_of(last) - start_of(0) <= window_ns {
            return (0, last, distinct_all);
        }
        self.counts.clear();
        self.counts.resize(distinct_all as usize, 0);
        let (mut left, mut distinct) = (0usize, 0u32);
        let mut best = (0usize, 0usize, 0u32);
        for right in 0..group.len() {
            let start = start_of(right);
            let count = &mut self.counts[self.ids[right] as usize];
            *count += 1;
            if *count == 1 {
                distinct += 1;
            }
            while start - start_of(left) > window_ns {
                let c = &mut self.counts[self.ids[left] as usize];
                *c -= 1;
                if *c == 0 {
                    distinct -= 1;
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
    // The calls of a loop mostly carry the same scope and code location:
    // each distinct one is read once.
    let mut last: Option<[&str; 3]> = None;
    if let Some(fw) = sample.iter().find_map(|&i| {
        let s = &spans[i as usize];
        let texts = [
            s.scope.as_str(),
            s.code.namespace.as_str(),
            s.code.filepath.as_str(),
        ];
        if last == Some(texts) {
            return None;
        }
        last = Some(texts);
        framework_of(s)
    }) {
        return Some(fw);
    }
    // The calls of a loop mostly share their parent: a walk that reaches
    // an ancestor an earlier walk already read (and found nothing above)
    // stops there.
    let mut seen: Vec<usize> = Vec::new();
    sample
        .iter()
        .find_map(|&i| ancestor_framework(trace, i as usize, &mut seen))
}

fn ancestor_framework(
    trace: &TraceView<'_>,
    index: usize,
    seen: &mut Vec<usize>,
) -> Option<Framework> {
    for (i, s) in trace.ancestors(index).take(FRAMEWORK_DEPTH) {
        if seen.contains(&i) {
            break;
        }
        seen.push(i);
        if let Some(fw) = framework_of(s) {
            return Some(fw);
        }
        if s.span_kind.is_inbound() {
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::sql_placeholders;

    /// The byte-by-byte definition the fast scan must agree with.
    fn reference(t: &str) -> (bool, usize) {
        let b = t.as_bytes();
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let (mut agent, mut questions, mut quoted) = (false, 0usize, false);
        for i in 0..b.len() {
            let next = b.get(i + 1).copied().unwrap_or(0);
            let prev = if i == 0 { 0 } else { b[i - 1] };
            if b[i] == b'\'' {
                quoted = !quoted;
                continue;
            }
            if quoted {
                continue;
            }
            match b[i] {
                b'?' => questions += 1,
                b'$' => agent |= next.is_ascii_digit(),
                b':' => agent |= word(next) && prev != b':' && !word(prev),
                b'@' => agent |= word(next) && prev != b'@',
                b'%' => agent |= (next == b's' || next == b'(') && prev != b'%',
                _ => {}
            }
        }
        (agent, questions)
    }

    #[test]
    fn known_statements() {
        for t in [
            "",
            "SELECT * FROM t WHERE id = ?",
            "SELECT * FROM t WHERE id = $1",
            "SELECT '?' FROM t WHERE a = :a AND b::int = 1",
            "SELECT @@ROWCOUNT, @p1",
            "SELECT 'it''s' FROM t WHERE x = %s AND y = %(y)s AND z LIKE '%%'",
            "'",
            "?'?'?",
            "a:b :c ::d",
        ] {
            assert_eq!(sql_placeholders(t), reference(t), "{t:?}");
        }
    }

    proptest! {
        #[test]
        fn the_fast_scan_agrees_with_the_definition(t in "[a-z0-9_ '?$:@%()s]{0,40}") {
            prop_assert_eq!(sql_placeholders(&t), reference(&t));
        }
    }
}
