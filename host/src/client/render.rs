//! Text output of `perf-sentinel ack` and `query`. Everything shown comes
//! from traces other people's services sent, so every string is made safe
//! for a terminal first: no escape sequences, no BiDi reordering.

use std::fmt::Write as _;

use serde_json::Value;

/// `text` with control, BiDi and other invisible format characters shown
/// as `\u{..}` escapes, so a span name cannot move the cursor, recolour
/// the terminal or reorder what is printed after it.
pub fn terminal_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if crate::acks::is_dropped(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// [`terminal_safe`], cut to `max` characters with an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    let safe = terminal_safe(text);
    if safe.chars().count() <= max {
        safe
    } else {
        let mut cut: String = safe.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

/// `GET /api/findings`: one block per folded finding.
pub fn findings(list: &Value) -> String {
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    if items.is_empty() {
        return "no findings\n".to_owned();
    }
    let mut out = String::new();
    for f in items {
        let pattern = f.get("pattern").unwrap_or(&Value::Null);
        let _ = writeln!(
            out,
            "{:<8} {}  {}  {}  seen {}x, last {}",
            s(f, "severity").to_uppercase(),
            terminal_safe(s(f, "type")),
            terminal_safe(s(f, "service")),
            terminal_safe(s(f, "source_endpoint")),
            f.get("seen_count").and_then(Value::as_u64).unwrap_or(1),
            terminal_safe(s(f, "last_seen")),
        );
        let _ = writeln!(
            out,
            "         {} ({} occurrences in trace {})",
            shorten(s(pattern, "template"), 160),
            pattern
                .get("occurrences")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            terminal_safe(s(f, "trace_id")),
        );
        if let Some(code) = f.get("code_location") {
            let _ = writeln!(
                out,
                "         at {}:{} {}",
                terminal_safe(s(code, "filepath")),
                code.get("lineno").and_then(Value::as_u64).unwrap_or(0),
                terminal_safe(s(code, "function")),
            );
        }
        let suggestion = s(f, "suggestion");
        if !suggestion.is_empty() {
            let _ = writeln!(out, "         fix: {}", shorten(suggestion, 200));
        }
        if let Some(ack) = f.get("acknowledged_by").filter(|a| a.is_object()) {
            let _ = writeln!(
                out,
                "         acknowledged ({}) by {}: {}",
                terminal_safe(s(ack, "source")),
                terminal_safe(s(ack, "by")),
                shorten(s(ack, "reason"), 120),
            );
        }
        let _ = writeln!(
            out,
            "         signature {}",
            terminal_safe(s(f, "signature"))
        );
    }
    out
}

/// `GET /api/acks`.
pub fn acks(list: &Value) -> String {
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    if items.is_empty() {
        return "no active acknowledgments\n".to_owned();
    }
    let mut out = String::new();
    for a in items {
        let expires = match s(a, "expires_at") {
            "" => "never".to_owned(),
            t => terminal_safe(t),
        };
        let _ = writeln!(out, "{}", terminal_safe(s(a, "signature")));
        let _ = writeln!(
            out,
            "    by {} at {}, expires {}: {}",
            terminal_safe(s(a, "by")),
            terminal_safe(s(a, "at")),
            expires,
            shorten(s(a, "reason"), 200),
        );
    }
    out
}

/// One created acknowledgment.
pub fn ack_created(a: &Value) -> String {
    format!(
        "acknowledged {} (by {})\n",
        terminal_safe(s(a, "signature")),
        terminal_safe(s(a, "by"))
    )
}

/// `GET /api/status`: its scalar fields, then each detector.
pub fn status(v: &Value) -> String {
    let mut out = String::new();
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            if val.is_array() || val.is_object() {
                continue;
            }
            let shown = match val {
                Value::String(t) => terminal_safe(t),
                other => other.to_string(),
            };
            let _ = writeln!(out, "{k:<26} {shown}");
        }
    }
    if let Some(detectors) = v.get("detectors").and_then(Value::as_array) {
        let _ = writeln!(out, "detectors:");
        for d in detectors {
            let quarantined = d
                .get("quarantined")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let _ = writeln!(
                out,
                "  {:<28} runs {:<10} findings {:<8} errors {}{}",
                terminal_safe(s(d, "id")),
                d.get("runs").and_then(Value::as_u64).unwrap_or(0),
                d.get("findings").and_then(Value::as_u64).unwrap_or(0),
                d.get("errors").and_then(Value::as_u64).unwrap_or(0),
                if quarantined { "  QUARANTINED" } else { "" },
            );
        }
    }
    out
}

/// `GET /api/explain/{trace_id}`: the span tree, indented by depth, each
/// span followed by the kinds of the findings citing it.
pub fn explain(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trace {} ({}, {} spans, {:.1} ms)",
        terminal_safe(s(v, "trace_id")),
        terminal_safe(s(v, "source")),
        v.get("span_count").and_then(Value::as_u64).unwrap_or(0),
        v.get("duration_ms").and_then(Value::as_f64).unwrap_or(0.0),
    );
    let findings = v
        .get("findings")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let kind_of = |signature: &str| {
        findings
            .iter()
            .find(|f| s(f, "signature") == signature)
            .map_or("finding", |f| s(f, "type"))
    };
    for span in v
        .get("spans")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        // Deep traces are capped in indentation, not in content.
        let depth = span
            .get("depth")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(40) as usize;
        let cited: Vec<&str> = span
            .get("findings")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_str)
            .map(kind_of)
            .collect();
        let _ = write!(
            out,
            "{}{} [{}] {:.2} ms",
            "  ".repeat(depth),
            shorten(s(span, "name"), 120),
            terminal_safe(s(span, "service")),
            span.get("duration_ms")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
        );
        if !cited.is_empty() {
            let _ = write!(out, "  <- {}", terminal_safe(&cited.join(", ")));
        }
        out.push('\n');
        let target = s(span, "target");
        if !target.is_empty() {
            let _ = writeln!(out, "{}  {}", "  ".repeat(depth), shorten(target, 160));
        }
    }
    out
}

/// `GET /api/correlations`.
pub fn correlations(v: &Value) -> String {
    let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if items.is_empty() {
        return "no correlations\n".to_owned();
    }
    let mut out = String::new();
    let side = |x: &Value| {
        format!(
            "{}/{}",
            terminal_safe(s(x, "service")),
            terminal_safe(s(x, "kind"))
        )
    };
    for c in items {
        let leader = c.get("leader").unwrap_or(&Value::Null);
        let follower = c.get("follower").unwrap_or(&Value::Null);
        let _ = writeln!(
            out,
            "{} -> {}: {} times, confidence {}, median lag {} ms",
            side(leader),
            side(follower),
            c.get("co_occurrences").and_then(Value::as_u64).unwrap_or(0),
            c.get("confidence")
                .map(Value::to_string)
                .unwrap_or_default(),
            c.get("median_lag_ms")
                .map(Value::to_string)
                .unwrap_or_default(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn escapes_and_bidi_are_neutralised() {
        assert_eq!(terminal_safe("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(
            terminal_safe("x\u{202e}y\u{200b}z"),
            "x\\u{202e}y\\u{200b}z"
        );
        assert_eq!(terminal_safe("tab\tnl\n"), "tab\\u{9}nl\\u{a}");
        assert_eq!(terminal_safe("café 注文"), "café 注文");
    }

    #[test]
    fn findings_render_without_raw_control_characters() {
        let v = json!([{
            "severity": "critical", "type": "n_plus_one_sql", "service": "evil\u{1b}]0;pwned\u{7}",
            "source_endpoint": "GET /a", "seen_count": 3, "last_seen": "2026-01-01T00:00:00Z",
            "pattern": {"template": "SELECT \u{202e}1", "occurrences": 12},
            "trace_id": "ab", "signature": "n_plus_one_sql:evil:GET__a:00",
            "acknowledged_by": {"source": "toml", "by": "ops", "reason": "ok"}
        }]);
        let text = findings(&v);
        assert!(
            !text
                .chars()
                .any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\u{202e}'),
            "{text}"
        );
        assert!(text.starts_with("CRITICAL n_plus_one_sql"));
        assert!(text.contains("seen 3x"));
        assert!(text.contains("acknowledged (toml) by ops"));
    }

    #[test]
    fn explain_indents_by_depth_and_names_citing_findings() {
        let v = json!({
            "trace_id": "ab", "source": "retained", "span_count": 2, "duration_ms": 5.0,
            "findings": [{"signature": "sig1", "type": "n_plus_one_sql"}],
            "spans": [
                {"name": "GET /a", "service": "api", "depth": 0, "duration_ms": 5.0, "findings": []},
                {"name": "SELECT", "service": "api", "depth": 1, "duration_ms": 1.0,
                 "findings": ["sig1"], "target": "SELECT 1"}
            ]
        });
        let text = explain(&v);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "GET /a [api] 5.00 ms");
        assert_eq!(lines[2], "  SELECT [api] 1.00 ms  <- n_plus_one_sql");
        assert_eq!(lines[3], "    SELECT 1");
    }
}
