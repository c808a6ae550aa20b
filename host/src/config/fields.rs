//! A small reader for TOML sections that records every problem (unknown key,
//! wrong type, out-of-range value) and falls back to the default, so one run
//! reports all of a file's mistakes instead of stopping at the first.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use toml::{Table, Value};

use super::problems::{Problems, join_key};

/// "a string (\"abc\")": what a value is, for "expected X, found Y".
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => {
            let shown: String = s.chars().take(40).collect();
            let more = if shown.len() < s.len() { "..." } else { "" };
            format!("a string ({shown:?}{more})")
        }
        Value::Integer(i) => format!("an integer ({i})"),
        Value::Float(f) => format!("a float ({f:?})"),
        Value::Boolean(b) => format!("a boolean ({b})"),
        Value::Datetime(d) => format!("a date-time ({d})"),
        Value::Array(_) => "an array".to_owned(),
        Value::Table(_) => "a table".to_owned(),
    }
}

pub(crate) fn expected(what: &str, value: &Value) -> String {
    format!("expected {what}, found {}", describe(value))
}

/// "must be between 1 and 65535, got 0" or "must be at least 2, got 1".
pub(crate) fn range_message<T: Display + PartialEq>(
    range: &RangeInclusive<T>,
    max: T,
    got: impl Display,
) -> String {
    if *range.end() == max {
        format!("must be at least {}, got {got}", range.start())
    } else {
        format!(
            "must be between {} and {}, got {got}",
            range.start(),
            range.end()
        )
    }
}

/// `[a-zA-Z0-9_-]{1,64}`: environment names, which also end up in finding
/// labels and metric values.
pub(crate) fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Optimal string alignment distance (Levenshtein plus transpositions, the
/// most common typo).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for (i, row) in d.chunks_mut(width).enumerate() {
        row[0] = i;
    }
    for (j, cell) in d.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

/// The known key closest to `unknown`, when it is close enough to be a typo.
pub(crate) fn suggest<'k>(
    unknown: &str,
    known: impl IntoIterator<Item = &'k str>,
) -> Option<&'k str> {
    known
        .into_iter()
        .map(|k| (edit_distance(unknown, k), k))
        .filter(|(d, k)| *d <= (k.chars().count() / 4).clamp(1, 3))
        .min()
        .map(|(_, k)| k)
}

/// One TOML table being read: every key asked for is "known"; `finish`
/// reports the rest.
pub(crate) struct Section<'t, 'p, 'o> {
    path: String,
    table: &'t Table,
    known: BTreeSet<&'static str>,
    problems: &'p mut Problems<'o>,
}

impl<'t, 'p, 'o> Section<'t, 'p, 'o> {
    pub(crate) fn new(path: &str, table: &'t Table, problems: &'p mut Problems<'o>) -> Self {
        Self {
            path: path.to_owned(),
            table,
            known: BTreeSet::new(),
            problems,
        }
    }

    pub(crate) fn key(&self, key: &str) -> String {
        join_key(&self.path, key)
    }

    pub(crate) fn problem(&mut self, key: &str, message: impl Into<String>) {
        let key = self.key(key);
        self.problems.push(&key, message);
    }

    pub(crate) fn problems(&mut self) -> &mut Problems<'o> {
        self.problems
    }

    /// The raw value of a known key.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'t Value> {
        self.known.insert(key);
        self.table.get(key)
    }

    /// An integer within `range` (given as i64 so negative input gets the
    /// range message rather than a type error), or `None` if absent or bad.
    pub(crate) fn int_opt(&mut self, key: &'static str, range: RangeInclusive<i64>) -> Option<i64> {
        match self.get(key)? {
            Value::Integer(i) if range.contains(i) => Some(*i),
            Value::Integer(i) => {
                let message = range_message(&range, i64::MAX, i);
                self.problem(key, message);
                None
            }
            other => {
                let message = expected("an integer", other);
                self.problem(key, message);
                None
            }
        }
    }

    pub(crate) fn u64(
        &mut self,
        key: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> u64 {
        let Some(value) = self.get(key) else {
            return default;
        };
        match value {
            Value::Integer(i) => match u64::try_from(*i) {
                Ok(v) if range.contains(&v) => v,
                _ => {
                    let message = range_message(&range, u64::MAX, i);
                    self.problem(key, message);
                    default
                }
            },
            other => {
                let message = expected("an integer", other);
                self.problem(key, message);
                default
            }
        }
    }

    pub(crate) fn usize(
        &mut self,
        key: &'static str,
        default: usize,
        range: RangeInclusive<usize>,
    ) -> usize {
        let to_u64 = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        let wide = to_u64(*range.start())..=to_u64(*range.end());
        let got = self.u64(key, to_u64(default), wide);
        usize::try_from(got).unwrap_or(default)
    }

    pub(crate) fn u32(
        &mut self,
        key: &'static str,
        default: u32,
        range: RangeInclusive<u32>,
    ) -> u32 {
        let wide = u64::from(*range.start())..=u64::from(*range.end());
        let got = self.u64(key, u64::from(default), wide);
        u32::try_from(got).unwrap_or(default)
    }

    pub(crate) fn u16(
        &mut self,
        key: &'static str,
        default: u16,
        range: RangeInclusive<u16>,
    ) -> u16 {
        let wide = u64::from(*range.start())..=u64::from(*range.end());
        let got = self.u64(key, u64::from(default), wide);
        u16::try_from(got).unwrap_or(default)
    }

    /// A float within `range`; an integer is taken as the same number, since
    /// `ratio = 1` plainly means 1.0.
    pub(crate) fn f64(
        &mut self,
        key: &'static str,
        default: f64,
        range: RangeInclusive<f64>,
    ) -> f64 {
        let Some(value) = self.get(key) else {
            return default;
        };
        let got = match value {
            Value::Float(f) => *f,
            // Precision loss only past 2^53, far outside any ratio's range.
            #[allow(clippy::cast_precision_loss)]
            Value::Integer(i) => *i as f64,
            other => {
                let message = expected("a number", other);
                self.problem(key, message);
                return default;
            }
        };
        if range.contains(&got) {
            got
        } else {
            let message = range_message(&range, f64::MAX, got);
            self.problem(key, message);
            default
        }
    }

    pub(crate) fn bool(&mut self, key: &'static str, default: bool) -> bool {
        self.bool_opt(key).unwrap_or(default)
    }

    pub(crate) fn bool_opt(&mut self, key: &'static str) -> Option<bool> {
        match self.get(key)? {
            Value::Boolean(b) => Some(*b),
            other => {
                let message = expected("a boolean (true or false)", other);
                self.problem(key, message);
                None
            }
        }
    }

    pub(crate) fn string_opt(&mut self, key: &'static str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                let message = expected("a string", other);
                self.problem(key, message);
                None
            }
        }
    }

    /// A non-empty string that `check` accepts (it returns why not).
    pub(crate) fn string(
        &mut self,
        key: &'static str,
        default: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> String {
        let Some(s) = self.string_opt(key) else {
            return default.to_owned();
        };
        match check(&s) {
            Ok(()) => s,
            Err(message) => {
                self.problem(key, message);
                default.to_owned()
            }
        }
    }

    pub(crate) fn ip(&mut self, key: &'static str, default: IpAddr) -> IpAddr {
        let Some(s) = self.string_opt(key) else {
            return default;
        };
        match s.parse() {
            Ok(ip) => ip,
            Err(_) => {
                let message =
                    format!("expected an IP address such as \"127.0.0.1\" or \"::\", found {s:?}");
                self.problem(key, message);
                default
            }
        }
    }

    pub(crate) fn string_array(&mut self, key: &'static str) -> Option<Vec<String>> {
        let value = self.get(key)?;
        let path = self.key(key);
        string_array(&path, value, self.problems)
    }

    /// A sub-table; a problem if the key holds anything else.
    pub(crate) fn table(&mut self, key: &'static str) -> Option<&'t Table> {
        match self.get(key)? {
            Value::Table(t) => Some(t),
            other => {
                let message = expected("a table", other);
                self.problem(key, message);
                None
            }
        }
    }

    /// Reports every key nobody asked for.
    pub(crate) fn finish(self) {
        for key in self.table.keys() {
            if self.known.contains(key.as_str()) {
                continue;
            }
            let message = match suggest(key, self.known.iter().copied()) {
                Some(near) => format!("unknown key `{key}` (did you mean `{near}`?)"),
                None if self.known.is_empty() => format!("unknown key `{key}`"),
                None => {
                    let known: Vec<_> = self.known.iter().copied().collect();
                    format!("unknown key `{key}`; known keys: {}", known.join(", "))
                }
            };
            self.problems.push(&join_key(&self.path, key), message);
        }
    }
}

/// An array of non-empty strings at `path`, or `None` after recording why not.
pub(crate) fn string_array(
    path: &str,
    value: &Value,
    problems: &mut Problems<'_>,
) -> Option<Vec<String>> {
    let Value::Array(items) = value else {
        problems.push(path, expected("an array of strings", value));
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) if !s.is_empty() => out.push(s.clone()),
            Value::String(_) => {
                problems.push(path, format!("item {i} is an empty string"));
                ok = false;
            }
            other => {
                problems.push(path, format!("item {i}: {}", expected("a string", other)));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}
