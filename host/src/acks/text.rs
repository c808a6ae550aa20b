//! Cleans the free text of an acknowledgment (`by`, `reason`) before it is
//! stored and echoed by the API and logs: no control characters, no BiDi
//! overrides that make text read differently than it is, no invisible
//! characters that make two names look the same, and a bounded length.

/// Longest `by`, in characters.
pub const MAX_BY_CHARS: usize = 128;
/// Longest `reason`, in characters.
pub const MAX_REASON_CHARS: usize = 1024;
/// Who an acknowledgment is recorded as made by when `by` is absent or has
/// nothing left after cleaning. An anonymous ack is still useful, and the
/// API key (when set) is what actually guards writes.
pub const ANONYMOUS: &str = "anonymous";

/// `by` cleaned, or [`ANONYMOUS`] when nothing is left.
pub fn clean_by(by: &str) -> String {
    let cleaned = clean(by, MAX_BY_CHARS);
    if cleaned.is_empty() {
        ANONYMOUS.to_owned()
    } else {
        cleaned
    }
}

/// `reason` cleaned; it may end up empty.
pub fn clean_reason(reason: &str) -> String {
    clean(reason, MAX_REASON_CHARS)
}

/// Drops control, format (BiDi, zero-width) and line/paragraph separator
/// characters, trims, and keeps at most `max_chars` characters. Control
/// whitespace (newline, tab) becomes a space rather than vanishing, so
/// "line one\nline two" does not become "line oneline two".
pub fn clean(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut kept = 0;
    for c in text
        .trim_start_matches(|c: char| c.is_whitespace() || is_dropped(c))
        .chars()
    {
        if kept == max_chars {
            break;
        }
        let c = if c.is_control() && c.is_whitespace() {
            ' '
        } else if is_dropped(c) {
            continue;
        } else {
            c
        };
        out.push(c);
        kept += 1;
    }
    out.truncate(out.trim_end().len());
    out
}

/// Characters removed outright: controls, format characters (BiDi,
/// zero-width) and line/paragraph separators. Also what the CLI escapes
/// before printing trace strings.
pub(crate) fn is_dropped(c: char) -> bool {
    c.is_control() || is_format(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Unicode general category Cf (format): BiDi embeddings, overrides,
/// isolates and marks (U+061C, U+200E, U+200F, U+202A..U+202E,
/// U+2066..U+2069), zero-width characters (U+200B..U+200D, U+2060..U+2064,
/// U+FEFF), soft hyphen, tag characters, and the rest of the category as of
/// Unicode 16.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_bidi_controls() {
        // "Trojan Source": an override makes the reason read backwards.
        let reason = "ok \u{202E}gnp.exe\u{202C} \u{2066}x\u{2069}\u{200E}\u{200F}\u{061C}";
        assert_eq!(clean_reason(reason), "ok gnp.exe x");
        for c in ['\u{202A}', '\u{202B}', '\u{202D}', '\u{2067}', '\u{2068}'] {
            assert_eq!(
                clean_reason(&format!("a{c}b")),
                "ab",
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn strips_zero_width_and_other_invisible_characters() {
        let by = "ad\u{200B}m\u{200C}i\u{200D}n\u{2060}\u{FEFF}\u{00AD}\u{E0041}";
        assert_eq!(clean_by(by), "admin");
        assert_eq!(clean_by("\u{2062}\u{2063}\u{2064}x"), "x");
    }

    #[test]
    fn control_characters_are_dropped_and_control_whitespace_becomes_space() {
        assert_eq!(
            clean_reason("red\u{1b}[31m alert\u{7}\u{0}"),
            "red[31m alert"
        );
        assert_eq!(
            clean_reason("line one\nline two\r\n\tend"),
            "line one line two   end"
        );
        assert_eq!(clean_reason("x\u{2028}y\u{85}z"), "xy z");
    }

    #[test]
    fn trims_and_defaults_an_empty_by() {
        assert_eq!(clean_by("  alice \n"), "alice");
        assert_eq!(clean_by(""), ANONYMOUS);
        assert_eq!(clean_by(" \u{202E}\u{200B}\t"), ANONYMOUS);
        assert_eq!(clean_reason("  "), "");
    }

    #[test]
    fn caps_length_in_characters_not_bytes() {
        let by = "é".repeat(MAX_BY_CHARS + 10);
        let cleaned = clean_by(&by);
        assert_eq!(cleaned.chars().count(), MAX_BY_CHARS);
        assert_eq!(cleaned.len(), MAX_BY_CHARS * 2);
        let reason = "🦀".repeat(MAX_REASON_CHARS * 2);
        assert_eq!(clean_reason(&reason).chars().count(), MAX_REASON_CHARS);
        // Dropped characters do not count toward the cap.
        let padded = format!("{}{}", "\u{200B}".repeat(MAX_BY_CHARS), "bob");
        assert_eq!(clean_by(&padded), "bob");
    }

    #[test]
    fn a_cut_does_not_leave_trailing_space() {
        let by = format!("{} tail", "a".repeat(MAX_BY_CHARS - 1));
        assert_eq!(clean_by(&by), "a".repeat(MAX_BY_CHARS - 1));
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for s in [
            "Zoë Ñúñez",
            "李小龙",
            "known issue, see JIRA-123 (fix in Q3)",
            "مرحبا",
        ] {
            assert_eq!(clean_reason(s), s);
        }
    }
}
