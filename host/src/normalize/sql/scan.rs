//! Lexical scanners: where a name, number, string, quoted name, comment or dollar-quoted body
//! that starts at a given byte ends. Pure functions of the bytes, shared by the tokenizer and
//! the skimming automaton.

/// The byte at `i`, or NUL past the end, so look-ahead needs no bounds checks of its own.
#[inline]
pub(super) fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// Name characters; non-ASCII bytes count so multi-byte chars are never split.
static WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
        c += 1;
    }
    t
};

#[inline]
pub(super) fn is_word_char(c: u8) -> bool {
    WORD[usize::from(c)]
}

#[inline]
fn is_tag_char(c: u8) -> bool {
    c != b'$' && is_word_char(c)
}

#[inline]
pub(super) fn scan_word(b: &[u8], i: usize) -> usize {
    b.get(i..)
        .and_then(|r| r.iter().position(|&c| !is_word_char(c)))
        .map_or(b.len(), |p| i + p)
}

#[inline]
pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(at(b, i), b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

#[inline]
fn skip_digits(b: &[u8], mut i: usize) -> usize {
    while at(b, i).is_ascii_digit() {
        i += 1;
    }
    i
}

/// End of a numeric literal starting at `i` (a digit, or `.` followed by a digit).
pub(super) fn scan_number(b: &[u8], i: usize) -> usize {
    if at(b, i) == b'0' && matches!(at(b, i + 1), b'x' | b'X') && at(b, i + 2).is_ascii_hexdigit() {
        let mut j = i + 2;
        while at(b, j).is_ascii_hexdigit() {
            j += 1;
        }
        return j;
    }
    let mut j = skip_digits(b, i);
    if at(b, j) == b'.' {
        j = skip_digits(b, j + 1);
    }
    if matches!(at(b, j), b'e' | b'E') {
        let mut k = j + 1;
        if matches!(at(b, k), b'+' | b'-') {
            k += 1;
        }
        if at(b, k).is_ascii_digit() {
            j = skip_digits(b, k);
        }
    }
    j
}

/// Scans a `'...'` body starting at `i`; returns (end of contents, index after the closing
/// quote). `''` and backslash escapes are both honoured because MySQL accepts either; an
/// unterminated literal runs to the end.
pub(super) fn scan_string(b: &[u8], mut i: usize) -> (usize, usize) {
    while let Some(&c) = b.get(i) {
        match c {
            // the escaped byte is skipped whole; if it leads a multi-byte char, the
            // continuation bytes that follow can never be mistaken for `'` or `\`
            b'\\' => i += 2,
            b'\'' if at(b, i + 1) == b'\'' => i += 2,
            b'\'' => return (i, i + 1),
            _ => i += 1,
        }
    }
    (b.len(), b.len())
}

/// Index after the `close` that ends a quoted name whose body starts at `i` (a doubled
/// `close` is an escape); the end of input if unterminated.
pub(super) fn scan_quoted(b: &[u8], mut i: usize, close: u8) -> usize {
    while let Some(&c) = b.get(i) {
        if c == close {
            if at(b, i + 1) != close {
                return i + 1;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    b.len()
}

/// A `--` comment stops before CR or LF (as in PostgreSQL), so the line break itself is
/// whitespace and can be turned into the `\n` that keeps the comment closed.
pub(super) fn find_line_end(b: &[u8], i: usize) -> usize {
    b.get(i..)
        .and_then(|rest| rest.iter().position(|&c| c == b'\n' || c == b'\r'))
        .map_or(b.len(), |p| i + p)
}

/// Index after the `*/` closing a block comment whose body starts at `i`; comments do not
/// nest here, and an unterminated one runs to the end.
pub(super) fn find_comment_end(b: &[u8], mut i: usize) -> usize {
    while let Some(p) = b.get(i..).and_then(|r| r.iter().position(|&c| c == b'*')) {
        let star = i + p;
        if at(b, star + 1) == b'/' {
            return star + 2;
        }
        i = star + 1;
    }
    b.len()
}

/// Recognizes `$$...$$` / `$tag$...$tag$` at `i` and returns (body start, body end, index
/// after the closing delimiter); unterminated bodies run to the end. `$1` is not a quote
/// because a tag cannot start with a digit. Only `$` positions are compared, and the
/// delimiter holds no inner `$`, so the search stays linear.
pub(super) fn dollar_quote(b: &[u8], i: usize) -> Option<(usize, usize, usize)> {
    let mut j = i + 1;
    if at(b, j) != b'$' {
        let first = at(b, j);
        if !(first.is_ascii_alphabetic() || first == b'_' || first >= 0x80) {
            return None;
        }
        while is_tag_char(at(b, j)) {
            j += 1;
        }
        if at(b, j) != b'$' {
            return None;
        }
    }
    let delim = b.get(i..=j)?;
    let body = j + 1;
    let mut k = body;
    while let Some(p) = b.get(k..).and_then(|r| r.iter().position(|&c| c == b'$')) {
        let s = k + p;
        if b.get(s..s + delim.len()) == Some(delim) {
            return Some((body, s, s + delim.len()));
        }
        k = s + 1;
    }
    Some((body, b.len(), b.len()))
}
