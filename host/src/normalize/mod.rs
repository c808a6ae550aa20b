//! Normalization turns a span's raw operation (SQL text, HTTP method + URL) into a template
//! shared by every call of one code path, plus byte ranges of its parameters, so detectors
//! can group repeated calls and compare their arguments without copying anything per span.

pub mod http;
pub mod sql;

pub use http::normalize_http;
pub use sql::{MAX_SQL_INPUT, normalize_sql};

/// What a normalizer reports besides the template it appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Normalized {
    /// the input was longer than the cap and only its prefix was normalized
    pub truncated: bool,
}

/// Longest prefix of `s` that fits in `max` bytes without splitting a char, and whether
/// anything was cut off.
fn cap(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    // `str::floor_char_boundary` is newer than the workspace MSRV; a char is at most 4 bytes,
    // so this steps back at most 3 times, and index 0 is always a boundary
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (s.get(..end).unwrap_or_default(), true)
}
