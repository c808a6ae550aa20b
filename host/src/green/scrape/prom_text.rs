//! A reader for the Prometheus text exposition format (0.0.4), enough for
//! exporters' samples: `name{label="value",...} value [timestamp]`, with
//! label-value escapes. Only the metric names asked for are parsed in
//! full; other lines are skipped unread.

/// One sample of a wanted metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Vec<(&'a str, String)>,
    pub value: f64,
}

impl Sample<'_> {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A malformed sample line of a wanted metric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TextError {
    pub line: usize,
    pub message: String,
}

/// Calls `f` with every sample whose name `wanted` accepts.
pub fn samples<'a>(
    body: &'a str,
    wanted: impl Fn(&str) -> bool,
    mut f: impl FnMut(Sample<'a>),
) -> Result<(), TextError> {
    for (i, line) in body.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(line.len());
        let name = &line[..name_end];
        if !wanted(name) {
            continue;
        }
        let err = |message: &str| TextError {
            line: i + 1,
            message: format!("`{name}`: {message}"),
        };
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(after) = rest.strip_prefix('{') {
            rest = parse_labels(after, &mut labels).map_err(err)?;
        }
        let value_text = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| err("no value"))?;
        let value = parse_value(value_text).ok_or_else(|| err("value is not a number"))?;
        f(Sample {
            name,
            labels,
            value,
        });
    }
    Ok(())
}

/// Reads `k="v",...}` and returns what follows the `}`.
fn parse_labels<'a>(
    mut s: &'a str,
    out: &mut Vec<(&'a str, String)>,
) -> Result<&'a str, &'static str> {
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok(after);
        }
        let eq = s.find('=').ok_or("label without `=`")?;
        let key = s[..eq].trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err("bad label name");
        }
        s = s[eq + 1..].trim_start();
        s = s.strip_prefix('"').ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value"),
                },
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value"),
            }
        };
        out.push((key, value));
        s = s[end + 1..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("expected `,` or `}` after a label");
        }
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(body: &str) -> Result<Vec<Sample<'_>>, TextError> {
        let mut out = Vec::new();
        samples(body, |n| n.starts_with("m"), |s| out.push(s))?;
        Ok(out)
    }

    #[test]
    fn reads_labels_escapes_values_and_timestamps() {
        let body = "# HELP m a metric\n# TYPE m gauge\nm 1\nm{a=\"x\",b=\"q\\\"u\\\\o\\nte\",} 2.5e3 1700000000000\nother{broken 3\nm{} NaN\n";
        let s = all(body).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].value, 1.0);
        assert_eq!(s[1].label("a"), Some("x"));
        assert_eq!(s[1].label("b"), Some("q\"u\\o\nte"));
        assert_eq!(s[1].value, 2500.0);
        assert!(s[2].value.is_nan());
    }

    #[test]
    fn malformed_wanted_lines_name_their_line() {
        assert_eq!(all("m{a=\"x\" 1").unwrap_err().line, 1);
        let e = all("m 1\nm{a=x} 2").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("not quoted"), "{e}");
        assert!(all("m{a=\"x\"}").unwrap_err().message.contains("no value"));
        assert!(all("m{a=\"x\"} abc").is_err());
        assert!(all("m{a=\"unterminated} 1").is_err());
    }
}
