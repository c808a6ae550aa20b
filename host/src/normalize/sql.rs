//! SQL normalization: literals become `?` so every execution of one statement shape shares a
//! template, and the literals are reported as byte ranges so callers can tell "same query,
//! same arguments" from "same query, different arguments". Single pass, no allocation.
//!
//! The tokenizer below drives the pass; `writer` builds the template, `skim` skips the bytes
//! that stay as they are, and `scan` finds where each kind of token ends.

mod scan;
mod skim;
mod writer;

use std::ops::Range;

use super::{Normalized, cap};
use scan::{
    at, dollar_quote, find_comment_end, find_line_end, is_word_char, scan_number, scan_quoted,
    scan_string, scan_word, skip_ws,
};
use skim::{S_OTHER, S_PREFIX, S_SIGIL, S_START, S_WORD, skim};
use writer::{Gap, List, Writer};

/// Longest statement normalized; a longer one is cut here (at a char boundary) so a single
/// huge span cannot stall the pipeline, and the head of a statement decides its shape anyway.
pub const MAX_SQL_INPUT: usize = 64 * 1024;

/// The kind of the previous token. A digit, `.` or `[` is read differently depending on what
/// precedes it; keeping this per token rather than per byte means a literal and the `?` that
/// replaces it leave the same state, which is what makes the output a fixed point.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// start, whitespace, punctuation, comments, quoted identifiers
    Other,
    /// identifier or keyword characters: a digit here continues the name (`t1`, `col_2`)
    Word,
    /// `?`, `$`, `:`, `@` (and literals, which become `?`): a digit here numbers a
    /// placeholder (`$1`, `:1`, `?1`) rather than being a value
    Sigil,
}

/// Normalizes `input` (capped at [`MAX_SQL_INPUT`]): appends the template to `out` and pushes
/// the byte range of every literal (string contents without quotes, whole numbers, dollar-quote
/// bodies) to `params`. Neither buffer is cleared. Normalizing a template again yields it
/// unchanged and pushes nothing.
pub fn normalize_sql(input: &str, out: &mut String, params: &mut Vec<Range<usize>>) -> Normalized {
    let (sql, truncated) = cap(input, MAX_SQL_INPUT);
    let b = sql.as_bytes();
    let n = b.len();
    out.reserve(n);
    let base = out.len();
    let mut w = Writer {
        src: sql,
        out,
        base,
        pend: 0,
        gap: Gap::None,
        list: List::Off,
    };
    let mut prev = Prev::Other;
    let mut i = 0;
    // Every token starts and ends on an ASCII byte or at `n`, so all ranges below are on
    // char boundaries; `get` keeps slicing non-panicking regardless.
    while i < n {
        let start = match prev {
            Prev::Word => S_WORD,
            Prev::Sigil => S_SIGIL,
            Prev::Other if i == w.pend && w.out.len() == w.base => S_START,
            Prev::Other => S_OTHER,
        };
        let in_list = !matches!(w.list, List::Off);
        let (end, state) = skim(b, i, start, in_list);
        if end > i {
            // a lone space leaves a `(?, ?)` list open; anything else closes it
            if end - i > 1 || at(b, i) != b' ' {
                w.list = List::Off;
            }
            i = end;
            prev = match state {
                S_WORD | S_PREFIX => Prev::Word,
                S_SIGIL => Prev::Sigil,
                _ => Prev::Other,
            };
        }
        let Some(&c) = b.get(i) else { break };
        let next = at(b, i + 1);
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                let end = skip_ws(b, i);
                // a lone space between tokens is already what the template wants
                let lone_space = c == b' ' && end == i + 1 && end < n;
                if !lone_space || (i == w.pend && w.out.len() == w.base) {
                    w.gap(i, end, Gap::Space);
                }
                i = end;
                prev = Prev::Other;
            }
            b'\'' => {
                let (end, after) = scan_string(b, i + 1);
                w.placeholder(i, after);
                params.push(i + 1..end);
                i = after;
                prev = Prev::Sigil;
            }
            b'"' | b'`' => {
                i = scan_quoted(b, i + 1, c);
                w.list = List::Off;
                prev = Prev::Other;
            }
            // after a name `[` subscripts an array (`arr[1]`); elsewhere it quotes a name
            b'[' if prev != Prev::Word => {
                i = scan_quoted(b, i + 1, b']');
                w.list = List::Off;
                prev = Prev::Other;
            }
            b'-' if next == b'-' => {
                let end = find_line_end(b, i);
                w.list = List::Off;
                if end < n {
                    let ws_end = skip_ws(b, end);
                    let lone_newline = at(b, end) == b'\n' && ws_end == end + 1 && ws_end < n;
                    if !lone_newline {
                        w.gap(end, ws_end, Gap::Newline);
                    }
                    i = ws_end;
                } else {
                    i = end;
                }
                prev = Prev::Other;
            }
            b'/' if next == b'*' => {
                i = find_comment_end(b, i + 2);
                w.list = List::Off;
                prev = Prev::Other;
            }
            b'$' if prev != Prev::Word => {
                if let Some((body, end, after)) = dollar_quote(b, i) {
                    w.placeholder(i, after);
                    params.push(body..end);
                    i = after;
                } else {
                    w.list = List::Off;
                    i += 1;
                }
                prev = Prev::Sigil;
            }
            b'?' => {
                w.placeholder(i, i + 1);
                i += 1;
                prev = Prev::Sigil;
            }
            b'(' => {
                w.open(i);
                i += 1;
                prev = Prev::Other;
            }
            b')' => {
                w.close(i);
                i += 1;
                prev = Prev::Other;
            }
            b',' => {
                w.comma();
                i += 1;
                prev = Prev::Other;
            }
            b'0'..=b'9' | b'.' if prev != Prev::Word && (c != b'.' || next.is_ascii_digit()) => {
                if c != b'.' && prev == Prev::Sigil {
                    // placeholder number: `$1`, `:1`, `@1`, `?1`
                    i = scan_word(b, i);
                    w.list = List::Off;
                    prev = Prev::Word;
                } else {
                    let end = scan_number(b, i);
                    if is_word_char(at(b, end)) {
                        // `1abc`, `0x1g`: a name that starts with digits, not a value
                        i = scan_word(b, end);
                        w.list = List::Off;
                        prev = Prev::Word;
                    } else {
                        w.placeholder(i, end);
                        params.push(i..end);
                        i = end;
                        prev = Prev::Sigil;
                    }
                }
            }
            b'E' | b'e' | b'N' | b'n' | b'X' | b'x' | b'B' | b'b'
                if next == b'\'' && prev != Prev::Word =>
            {
                let (end, after) = scan_string(b, i + 2);
                w.placeholder(i, after);
                params.push(i + 2..end);
                i = after;
                prev = Prev::Sigil;
            }
            _ if is_word_char(c) => {
                i = scan_word(b, i + 1);
                w.list = List::Off;
                prev = Prev::Word;
            }
            _ => {
                w.list = List::Off;
                i += 1;
                prev = if matches!(c, b':' | b'@') {
                    Prev::Sigil
                } else {
                    Prev::Other
                };
            }
        }
    }
    w.flush(n);
    Normalized { truncated }
}

#[cfg(test)]
mod tests;
