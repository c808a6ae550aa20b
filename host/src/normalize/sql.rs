//! SQL normalization: literals become `?` so every execution of one statement shape shares a
//! template, and the literals are reported as byte ranges so callers can tell "same query,
//! same arguments" from "same query, different arguments". Single pass, no allocation.

use std::ops::Range;

use super::{Normalized, cap};

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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Gap {
    None,
    Space,
    /// a `--` comment precedes: a space would pull the following SQL into the comment
    /// when the template is normalized again
    Newline,
}

/// How far the innermost `(` is through `?, ?, ...`; holds the template length just after
/// the `(` so the list can be rewound to a single `?`.
#[derive(Clone, Copy)]
enum List {
    Off,
    ExpectItem(usize),
    ExpectSep(usize),
}

/// Builds the template. Most of a statement is copied unchanged, so input is not copied token
/// by token: `src[pend..]` is owed to `out` and is copied in one piece when something that
/// differs from the input (a `?`, a collapsed whitespace run) has to be written.
struct Writer<'a> {
    src: &'a str,
    out: &'a mut String,
    base: usize,
    pend: usize,
    /// separator owed before `src[pend..]`, for a whitespace run that was not a lone space
    gap: Gap,
    list: List,
}

impl Writer<'_> {
    #[inline]
    fn emit_gap(&mut self) {
        // nothing written yet means the run was leading whitespace, which is trimmed
        if self.out.len() > self.base {
            match self.gap {
                Gap::None => {}
                Gap::Space => self.out.push(' '),
                Gap::Newline => self.out.push('\n'),
            }
        }
        self.gap = Gap::None;
    }

    /// Copies the owed input up to `upto`; an empty stretch writes nothing, so a trailing
    /// gap is never written.
    #[inline]
    fn flush(&mut self, upto: usize) {
        if let Some(s) = self.src.get(self.pend..upto)
            && !s.is_empty()
        {
            self.emit_gap();
            self.out.push_str(s);
        }
        self.pend = upto;
    }

    /// A whitespace run `[start, end)` that cannot stay as it is in the template.
    #[inline]
    fn gap(&mut self, start: usize, end: usize, gap: Gap) {
        self.flush(start);
        self.gap = gap;
        self.pend = end;
    }

    /// Writes `?` in place of `src[start..end]` (or of a `?` itself).
    #[inline]
    fn placeholder(&mut self, start: usize, end: usize) {
        self.flush(start);
        self.emit_gap();
        self.out.push('?');
        self.pend = end;
        self.list = match self.list {
            List::ExpectItem(at) => List::ExpectSep(at),
            _ => List::Off,
        };
    }

    /// The `(` at `at` opens a list that may collapse; it is written now so the template
    /// length after it is known.
    #[inline]
    fn open(&mut self, at: usize) {
        self.flush(at + 1);
        self.list = List::ExpectItem(self.out.len());
    }

    #[inline]
    fn comma(&mut self) {
        self.list = match self.list {
            List::ExpectSep(at) => List::ExpectItem(at),
            _ => List::Off,
        };
    }

    /// The `)` at `at` closes the current list; it stays owed like any other byte.
    #[inline]
    fn close(&mut self, at: usize) {
        if let List::ExpectSep(len) = self.list {
            // `len` was the length right after an ASCII `(`, so it is a char boundary
            self.out.truncate(len);
            self.out.push('?');
            self.pend = at;
            self.gap = Gap::None;
        }
        self.list = List::Off;
    }
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

/// The byte at `i`, or NUL past the end, so look-ahead needs no bounds checks of its own.
#[inline]
fn at(b: &[u8], i: usize) -> u8 {
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

// The skimming automaton (see `skim`). Byte classes:
const C_STOP: u8 = 0;
const C_NAME: u8 = 1;
const C_PREFIX: u8 = 2;
const C_DIGIT: u8 = 3;
const C_DOLLAR: u8 = 4;
const C_SPACE: u8 = 5;
const C_WS: u8 = 6;
const C_DOT: u8 = 7;
const C_DASH: u8 = 8;
const C_SLASH: u8 = 9;
const C_STAR: u8 = 10;
const C_BRACKET: u8 = 11;
const C_QUOTE: u8 = 12;
const C_PLAIN: u8 = 13;
/// `,` and `)` only matter while a `(?, ?)` list may be open; so does `?`
const C_LIST: u8 = 14;
const C_SIGIL: u8 = 15;
const C_QMARK: u8 = 16;

// States, named after the last byte skimmed (or the token before the first): `S_START` is
// "nothing written yet", where a space would be leading. The tokenizer's `Prev` maps onto them.
const S_START: u8 = 0;
const S_OTHER: u8 = 1;
const S_SIGIL: u8 = 2;
const S_WORD: u8 = 3;
/// a name that so far is one `E`/`N`/`X`/`B`, which a `'` would make a literal prefix
const S_PREFIX: u8 = 4;
/// a space that is lone only if the next byte is not whitespace
const S_SPACE: u8 = 5;
/// a `.` not after a name, which a digit would make a number
const S_DOT: u8 = 6;
const S_DASH: u8 = 7;
const S_SLASH: u8 = 8;
/// stop before the current byte
const STOP: u8 = 14;
/// stop before the previous byte, which the current one turned into a token start
const STOP_BACK: u8 = 15;

static CLASS: [u8; 256] = {
    let mut t = [C_STOP; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = match b {
            b'E' | b'e' | b'N' | b'n' | b'X' | b'x' | b'B' | b'b' => C_PREFIX,
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | 0x80..=0xff => C_NAME,
            b'0'..=b'9' => C_DIGIT,
            b'$' => C_DOLLAR,
            b' ' => C_SPACE,
            b'\t' | b'\r' | b'\n' => C_WS,
            b'.' => C_DOT,
            b'-' => C_DASH,
            b'/' => C_SLASH,
            b'*' => C_STAR,
            b'[' => C_BRACKET,
            b'\'' => C_QUOTE,
            b'?' => C_QMARK,
            b')' | b',' => C_LIST,
            b':' | b'@' => C_SIGIL,
            b'"' | b'`' | b'(' => C_STOP,
            _ => C_PLAIN,
        };
        c += 1;
    }
    t
};

/// Transitions, indexed `state * 32 + class`. They mirror what the tokenizer in
/// [`normalize_sql`] does with these bytes, so skimming never changes the result; anything
/// that writes output, needs more look-ahead, or opens a list stops the automaton.
static NEXT: [u8; 512] = transitions(false);
/// Like [`NEXT`], for when a `(` may be followed by a collapsible list.
static NEXT_IN_LIST: [u8; 512] = transitions(true);

const fn transitions(in_list: bool) -> [u8; 512] {
    let mut t = [STOP; 512];
    let mut s = 0;
    while s <= S_SLASH {
        let after_name = s == S_WORD || s == S_PREFIX;
        let row = s as usize * 32;
        t[row + C_NAME as usize] = S_WORD;
        t[row + C_PREFIX as usize] = if after_name { S_WORD } else { S_PREFIX };
        t[row + C_DIGIT as usize] = match s {
            S_WORD | S_PREFIX | S_SIGIL => S_WORD,
            S_DOT => STOP_BACK,
            _ => STOP,
        };
        t[row + C_DOLLAR as usize] = if after_name { S_WORD } else { STOP };
        t[row + C_SPACE as usize] = match s {
            S_START => STOP,
            S_SPACE => STOP_BACK,
            _ => S_SPACE,
        };
        t[row + C_WS as usize] = if s == S_SPACE { STOP_BACK } else { STOP };
        t[row + C_DOT as usize] = if after_name { S_OTHER } else { S_DOT };
        t[row + C_DASH as usize] = if s == S_DASH { STOP_BACK } else { S_DASH };
        t[row + C_SLASH as usize] = S_SLASH;
        t[row + C_STAR as usize] = if s == S_SLASH { STOP_BACK } else { S_OTHER };
        t[row + C_BRACKET as usize] = if after_name { S_OTHER } else { STOP };
        t[row + C_QUOTE as usize] = if s == S_PREFIX { STOP_BACK } else { STOP };
        t[row + C_PLAIN as usize] = S_OTHER;
        t[row + C_SIGIL as usize] = S_SIGIL;
        t[row + C_QMARK as usize] = if in_list { STOP } else { S_SIGIL };
        t[row + C_LIST as usize] = if in_list { STOP } else { S_OTHER };
        s += 1;
    }
    t
}

/// Skips, from `i`, bytes the template keeps as they are (names, most punctuation, lone
/// spaces): the bulk of a statement. Branching per token in the tokenizer mispredicts a lot;
/// this loop has one predictable branch per byte, plus a tight scan per name. Returns where
/// the tokenizer must take over and the state after the last skipped byte.
#[inline]
fn skim(b: &[u8], i: usize, start: u8, in_list: bool) -> (usize, u8) {
    let table = if in_list { &NEXT_IN_LIST } else { &NEXT };
    let mut state = start;
    let mut j = i;
    while let Some(&c) = b.get(j) {
        let next = table[usize::from(state & 15) * 32 + usize::from(CLASS[usize::from(c)] & 31)];
        if next >= STOP {
            if next == STOP_BACK {
                // only states entered by skimming a byte stop this way, so `j > i`
                return (j.saturating_sub(1), S_OTHER);
            }
            return (j, state);
        }
        state = next;
        j += 1;
        if state == S_WORD {
            j = scan_word(b, j);
        }
    }
    if state == S_SPACE {
        // a trailing space: the tokenizer drops it
        return (j.saturating_sub(1), S_OTHER);
    }
    (j, state)
}

#[inline]
fn is_word_char(c: u8) -> bool {
    WORD[usize::from(c)]
}

#[inline]
fn is_tag_char(c: u8) -> bool {
    c != b'$' && is_word_char(c)
}

#[inline]
fn scan_word(b: &[u8], i: usize) -> usize {
    b.get(i..)
        .and_then(|r| r.iter().position(|&c| !is_word_char(c)))
        .map_or(b.len(), |p| i + p)
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
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
fn scan_number(b: &[u8], i: usize) -> usize {
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
fn scan_string(b: &[u8], mut i: usize) -> (usize, usize) {
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
fn scan_quoted(b: &[u8], mut i: usize, close: u8) -> usize {
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
fn find_line_end(b: &[u8], i: usize) -> usize {
    b.get(i..)
        .and_then(|rest| rest.iter().position(|&c| c == b'\n' || c == b'\r'))
        .map_or(b.len(), |p| i + p)
}

/// Index after the `*/` closing a block comment whose body starts at `i`; comments do not
/// nest here, and an unterminated one runs to the end.
fn find_comment_end(b: &[u8], mut i: usize) -> usize {
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
fn dollar_quote(b: &[u8], i: usize) -> Option<(usize, usize, usize)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn norm(input: &str) -> (String, Vec<&str>, bool) {
        let mut out = String::new();
        let mut params = Vec::new();
        let n = normalize_sql(input, &mut out, &mut params);
        let params = params.into_iter().map(|r| &input[r]).collect();
        (out, params, n.truncated)
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "SELECT * FROM users WHERE id = 42",
                "SELECT * FROM users WHERE id = ?",
                &["42"],
            ),
            ("WHERE name = 'O''Brien'", "WHERE name = ?", &["O''Brien"]),
            (
                r"WHERE a = 'it\'s' AND b = 'x'",
                "WHERE a = ? AND b = ?",
                &[r"it\'s", "x"],
            ),
            (
                "SELECT E'a\\nb', N'nom', n'x'",
                "SELECT ?, ?, ?",
                &["a\\nb", "nom", "x"],
            ),
            ("WHERE id IN (1, 2, 3)", "WHERE id IN (?)", &["1", "2", "3"]),
            ("WHERE id IN ( ?,\n ?,? )", "WHERE id IN (?)", &[]),
            (
                "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
                "INSERT INTO t VALUES (?), (?)",
                &["1", "a", "2", "b"],
            ),
            (
                "WHERE a IN (1, x) AND b IN ((1, 2))",
                "WHERE a IN (?, x) AND b IN ((?))",
                &["1", "1", "2"],
            ),
            (
                "WHERE a IN () OR b IN (?,) OR c IN (,?)",
                "WHERE a IN () OR b IN (?,) OR c IN (,?)",
                &[],
            ),
            (
                "WHERE id = $1 AND x IN ($1, $2, $3)",
                "WHERE id = $1 AND x IN ($1, $2, $3)",
                &[],
            ),
            ("SELECT $$body$$", "SELECT ?", &["body"]),
            ("DO $fn$ x $fn$;", "DO ?;", &[" x "]),
            (
                "SELECT $a$ $$ $b$ $a$, 1",
                "SELECT ?, ?",
                &[" $$ $b$ ", "1"],
            ),
            (
                r#"SELECT "weird""col", "7" FROM t"#,
                r#"SELECT "weird""col", "7" FROM t"#,
                &[],
            ),
            (
                "SELECT `a 1`, [b 2] FROM [dbo].[t9]",
                "SELECT `a 1`, [b 2] FROM [dbo].[t9]",
                &[],
            ),
            ("SELECT arr[1] FROM t", "SELECT arr[?] FROM t", &["1"]),
            ("-- id = 5\nSELECT 1", "-- id = 5\nSELECT ?", &["1"]),
            (
                "SELECT 1 -- it's 2\r\n  FROM t",
                "SELECT ? -- it's 2\nFROM t",
                &["1"],
            ),
            ("/* 42 */ SELECT 1", "/* 42 */ SELECT ?", &["1"]),
            (
                "SELECT 0x1F, 0XdeadBEEF, X'ABCD', x'00', B'0101'",
                "SELECT ?, ?, ?, ?, ?",
                &["0x1F", "0XdeadBEEF", "ABCD", "00", "0101"],
            ),
            (
                "WHERE t1.col2 = 3 AND col_2 = a1b",
                "WHERE t1.col2 = ? AND col_2 = a1b",
                &["3"],
            ),
            (
                "SELECT 1.5e-3, .5, 1e10, 1.5E-3, 2.",
                "SELECT ?, ?, ?, ?, ?",
                &["1.5e-3", ".5", "1e10", "1.5E-3", "2."],
            ),
            ("SELECT -5, a-1", "SELECT -?, a-?", &["5", "1"]),
            ("SELECT 1abc, 2e, 0x1g", "SELECT 1abc, 2e, 0x1g", &[]),
            (
                "  SELECT\n\t a,\r\n  b\n\nFROM   t  \n",
                "SELECT a, b FROM t",
                &[],
            ),
            (
                "WHERE a IS NULL AND b = TRUE AND c <> false",
                "WHERE a IS NULL AND b = TRUE AND c <> false",
                &[],
            ),
            (
                "select * from Users where Id = :id AND x = :1 AND y = @p1 AND z = ?2",
                "select * from Users where Id = :id AND x = :1 AND y = @p1 AND z = ?2",
                &[],
            ),
            (
                "SELECT a::int, 'é', naïve FROM t",
                "SELECT a::int, ?, naïve FROM t",
                &["é"],
            ),
            ("'", "?", &[""]),
            ("SELECT 'abc", "SELECT ?", &["abc"]),
            ("SELECT 'a\\", "SELECT ?", &["a\\"]),
            ("$", "$", &[]),
            ("SELECT $$abc", "SELECT ?", &["abc"]),
            ("SELECT $tag$", "SELECT ?", &[""]),
            ("SELECT \"abc", "SELECT \"abc", &[]),
            ("SELECT 1 /* 2", "SELECT ? /* 2", &["1"]),
            ("a$1 $x b$$c", "a$1 $x b$$c", &[]),
            ("", "", &[]),
            ("a  b\tc ,d ", "a b c ,d", &[]),
            (
                "SELECT x.5, a--b\nc, a/*b*/c, a-b/c*d",
                "SELECT x.?, a--b\nc, a/*b*/c, a-b/c*d",
                &["5"],
            ),
            (
                "SELECT f(1, a), g( a ), h(?)",
                "SELECT f(?, a), g( a ), h(?)",
                &["1"],
            ),
            ("VALUES (?), (?) , (?)", "VALUES (?), (?) , (?)", &[]),
            ("x = ?5 AND y = $2", "x = ?5 AND y = $2", &[]),
            ("a = 1 --c", "a = ? --c", &["1"]),
            ("a = 'x'b'y'", "a = ??", &["x", "y"]),
            ("a = 'x' E'y'", "a = ? ?", &["x", "y"]),
            ("BE'x' e", "BE? e", &["x"]),
            (" \n\t ", "", &[]),
        ];
        for &(input, template, params) in cases {
            let (out, got, truncated) = norm(input);
            assert_eq!(out, template, "template of {input:?}");
            assert_eq!(got, params, "params of {input:?}");
            assert!(!truncated);
            let (again, p2, _) = norm(&out);
            assert_eq!(again, out, "idempotence of {input:?}");
            assert!(p2.is_empty(), "params on re-normalizing {input:?}");
        }
    }

    #[test]
    fn appends_without_clearing() {
        let mut out = String::from("prefix|");
        let mut params = Vec::new();
        normalize_sql("  SELECT 7", &mut out, &mut params);
        normalize_sql(" 'a'", &mut out, &mut params);
        assert_eq!(out, "prefix|SELECT ??");
        assert_eq!(params, vec![9..10, 2..3]);
    }

    #[test]
    fn truncates_long_input() {
        let mut input = String::from("SELECT 'é', ");
        while input.len() < 70 * 1024 {
            input.push_str("1, é, ");
        }
        let mut out = String::new();
        let mut params = Vec::new();
        let n = normalize_sql(&input, &mut out, &mut params);
        assert!(n.truncated);
        assert!(out.len() <= MAX_SQL_INPUT);
        assert!(params.iter().all(|r| r.end <= MAX_SQL_INPUT));
        assert!(!normalize_sql("SELECT 1", &mut out, &mut params).truncated);

        // the cap falls inside a two-byte char: the prefix stops before it
        let odd = format!("a{}", "é".repeat(40_000));
        let mut out = String::new();
        assert!(normalize_sql(&odd, &mut out, &mut params).truncated);
        assert_eq!(out.len(), MAX_SQL_INPUT - 1);
    }

    fn check(input: &str) -> Result<(), TestCaseError> {
        let mut out = String::from("x");
        let mut params = Vec::new();
        normalize_sql(input, &mut out, &mut params);
        let out = &out[1..];
        for r in &params {
            prop_assert!(input.get(r.clone()).is_some(), "bad range {r:?}");
        }
        let mut again = String::new();
        let mut p2 = Vec::new();
        normalize_sql(out, &mut again, &mut p2);
        prop_assert_eq!(out, again.as_str());
        prop_assert!(p2.is_empty());
        Ok(())
    }

    fn sqlish() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("SELECT"),
            Just("FROM"),
            Just("WHERE"),
            Just("IN"),
            Just("NULL"),
            Just("e"),
            Just("E"),
            Just("x"),
            Just("b"),
            Just("N"),
            Just("t1"),
            Just("_"),
            Just("é"),
            Just("'"),
            Just("''"),
            Just("\""),
            Just("`"),
            Just("["),
            Just("]"),
            Just("\\"),
            Just("$"),
            Just("$$"),
            Just("$a$"),
            Just("$1"),
            Just("--"),
            Just("-"),
            Just("+"),
            Just("/*"),
            Just("*/"),
            Just("*"),
            Just("/"),
            Just("("),
            Just(")"),
            Just(","),
            Just("?"),
            Just(":"),
            Just("@"),
            Just("."),
            Just("0x"),
            Just("0"),
            Just("1"),
            Just("42"),
            Just("1.5"),
            Just(" "),
            Just("  "),
            Just("\n"),
            Just("\r"),
            Just("\t"),
            Just("="),
            Just(";"),
            Just("#"),
            Just("\u{0}"),
        ];
        prop::collection::vec(token, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_strings(input in ".*") {
            check(&input)?;
        }

        #[test]
        fn sql_like_strings(input in sqlish()) {
            check(&input)?;
        }
    }
}
