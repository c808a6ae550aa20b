//! The skimming automaton: a table-driven fast path over the bytes the template keeps
//! unchanged, the bulk of a statement. Its tables encode the tokenizer's decisions for those
//! bytes, so a change to how the tokenizer reads a byte needs the same change here.

use super::scan::scan_word;

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
pub(super) const S_START: u8 = 0;
pub(super) const S_OTHER: u8 = 1;
pub(super) const S_SIGIL: u8 = 2;
pub(super) const S_WORD: u8 = 3;
/// a name that so far is one `E`/`N`/`X`/`B`, which a `'` would make a literal prefix
pub(super) const S_PREFIX: u8 = 4;
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
/// [`normalize_sql`](super::normalize_sql) does with these bytes, so skimming never changes the result; anything
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
pub(super) fn skim(b: &[u8], i: usize, start: u8, in_list: bool) -> (usize, u8) {
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
