//! Small pure helpers shared by the per-trace and cross-trace halves:
//! percentiles, millisecond formatting, key capping and counts.

use detector_api::{CodeLocation, OwnedCodeLocation};

pub(super) const NS_PER_MS: u64 = 1_000_000;
pub(super) const NS_PER_SEC: u64 = 1_000_000_000;

/// The nearest-rank `p`-th percentile (0..=100) of `sorted` (ascending): the
/// value at 1-based rank `ceil(p / 100 * n)`, clamped to `1..=n`. `None` for
/// an empty slice. Integer arithmetic, so `p = 99` of 100 values is exactly
/// the 99th.
pub(super) fn nearest_rank(sorted: &[u64], p: u32) -> Option<u64> {
    let n = sorted.len() as u64;
    let p = u64::from(p.min(100));
    let rank = (p * n).div_ceil(100).clamp(1, n.max(1));
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

/// Milliseconds as text: whole milliseconds plus up to three decimals
/// (microseconds), trailing zeros dropped: `512`, `500.001`.
pub(super) fn ms(ns: u64) -> String {
    let whole = ns / NS_PER_MS;
    let us = (ns % NS_PER_MS) / 1000;
    if us == 0 {
        return whole.to_string();
    }
    let frac = format!("{us:03}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// `code` and `owned` name the same location.
pub(super) fn same_code(code: &CodeLocation<'_>, owned: &OwnedCodeLocation) -> bool {
    code.lineno == owned.lineno
        && code.function.as_str() == owned.function.as_str()
        && code.filepath.as_str() == owned.filepath.as_str()
        && code.namespace.as_str() == owned.namespace.as_str()
}

/// Longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub(super) fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// Finding counts are `u32`; a larger count saturates rather than wraps.
pub(super) fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
