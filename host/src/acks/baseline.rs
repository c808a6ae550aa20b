//! [`Baseline`]: the acknowledgments a team commits next to its code (a TOML
//! file of `[[acknowledged]]` entries) that CI and the daemon both honour.
//! Read once at startup; the daemon never writes it.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use time::{Date, Month, OffsetDateTime, UtcOffset};
use toml::value::Datetime;
use toml::{Table, Value};

use super::signature::validate_signature;
use super::text::{MAX_BY_CHARS, MAX_REASON_CHARS, clean};
use super::{AckError, BaselineProblem};

/// Largest baseline file read, in bytes.
pub const MAX_BASELINE_BYTES: u64 = 16 * 1024 * 1024;
const MAX_AT_CHARS: usize = 64;
const KEYS: [&str; 5] = [
    "signature",
    "acknowledged_by",
    "acknowledged_at",
    "reason",
    "expires_at",
];

/// One `[[acknowledged]]` entry, its text cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineAck {
    pub signature: String,
    pub by: String,
    /// `acknowledged_at` as written (a date or a free-form string).
    pub at: String,
    pub reason: String,
    /// Applies through the end of this day, UTC.
    pub expires: Option<Date>,
}

impl BaselineAck {
    /// `expires` not yet passed at `now`: the whole expiry day counts.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.expires
            .is_none_or(|last| now.to_offset(UtcOffset::UTC).date() <= last)
    }

    /// `expires` as `YYYY-MM-DD`.
    pub fn expires_at(&self) -> Option<String> {
        self.expires.map(|d| d.to_string())
    }
}

/// The CI baseline's acknowledgments by signature.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    path: Option<PathBuf>,
    // A signature may be listed more than once (an expired entry kept next
    // to its renewal); the first active one applies.
    by_signature: HashMap<String, Vec<BaselineAck>>,
    len: usize,
}

impl Baseline {
    /// No baseline: nothing acknowledged in CI.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Reads and checks `path`. A missing file is
    /// [`AckError::BaselineMissing`], so the caller can treat it as empty
    /// at the default path and as an error when the path was configured.
    pub fn load(path: &Path) -> Result<Self, AckError> {
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AckError::BaselineMissing {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(AckError::io("open", path, e)),
        };
        let mut text = String::new();
        file.take(MAX_BASELINE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| AckError::io("read", path, e))?;
        if text.len() as u64 > MAX_BASELINE_BYTES {
            return Err(AckError::BaselineParse {
                path: path.to_owned(),
                message: format!("larger than {MAX_BASELINE_BYTES} bytes"),
            });
        }
        Self::from_toml_str(&text, path)
    }

    /// Parses `text`; `path` is only for messages. All problems are
    /// reported together.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self, AckError> {
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| AckError::BaselineParse {
                path: path.to_owned(),
                message: crate::config::fold_parse_error(text, &e),
            })?;
        let mut problems = Vec::new();
        let mut entries = Vec::new();
        for (key, value) in &table {
            if key != "acknowledged" {
                problems.push(problem(
                    None,
                    key,
                    "unknown key; expected `[[acknowledged]]` entries",
                ));
                continue;
            }
            let Value::Array(items) = value else {
                problems.push(problem(
                    None,
                    key,
                    "must be an array of tables (`[[acknowledged]]`)",
                ));
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::Table(entry) => {
                        if let Some(ack) = parse_entry(i, entry, &mut problems) {
                            entries.push(ack);
                        }
                    }
                    _ => problems.push(problem(Some(i), "", "must be a table")),
                }
            }
        }
        if !problems.is_empty() {
            return Err(AckError::BaselineInvalid {
                path: path.to_owned(),
                problems,
            });
        }
        let mut baseline = Self {
            path: Some(path.to_owned()),
            len: entries.len(),
            by_signature: HashMap::new(),
        };
        for ack in entries {
            baseline
                .by_signature
                .entry(ack.signature.clone())
                .or_default()
                .push(ack);
        }
        Ok(baseline)
    }

    /// The file it came from; `None` for [`Baseline::empty`].
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Entries in the file, expired ones included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entry acknowledging `signature` at `now`, if any is active.
    pub fn get(&self, signature: &str, now: OffsetDateTime) -> Option<&BaselineAck> {
        self.by_signature
            .get(signature)?
            .iter()
            .find(|ack| ack.is_active(now))
    }
}

fn problem(index: Option<usize>, key: &str, message: impl Into<String>) -> BaselineProblem {
    BaselineProblem {
        index,
        key: key.to_owned(),
        message: message.into(),
    }
}

fn parse_entry(
    i: usize,
    entry: &Table,
    problems: &mut Vec<BaselineProblem>,
) -> Option<BaselineAck> {
    let before = problems.len();
    for key in entry.keys() {
        if !KEYS.contains(&key.as_str()) {
            let expected = KEYS.map(|k| format!("`{k}`")).join(", ");
            problems.push(problem(
                Some(i),
                key,
                format!("unknown key; expected {expected}"),
            ));
        }
    }
    // Checked as written, not cleaned: it must match findings exactly.
    let signature = match entry.get("signature") {
        None => {
            problems.push(problem(Some(i), "signature", "missing"));
            None
        }
        Some(Value::String(s)) => match validate_signature(s) {
            Ok(()) => Some(s.clone()),
            Err(e) => {
                problems.push(problem(Some(i), "signature", e.to_string()));
                None
            }
        },
        Some(other) => {
            let message = format!("must be a string, got {}", other.type_str());
            problems.push(problem(Some(i), "signature", message));
            None
        }
    };
    let mut text = |key: &str, max: usize, allow_empty: bool, allow_date: bool| {
        let value = match entry.get(key) {
            None => {
                problems.push(problem(Some(i), key, "missing"));
                return None;
            }
            Some(Value::String(s)) => clean(s, max),
            Some(Value::Datetime(d)) if allow_date => d.to_string(),
            Some(other) => {
                problems.push(problem(
                    Some(i),
                    key,
                    format!("must be a string, got {}", other.type_str()),
                ));
                return None;
            }
        };
        if value.is_empty() && !allow_empty {
            problems.push(problem(Some(i), key, "must not be empty"));
            return None;
        }
        Some(value)
    };
    let by = text("acknowledged_by", MAX_BY_CHARS, false, false);
    let at = text("acknowledged_at", MAX_AT_CHARS, false, true);
    let reason = text("reason", MAX_REASON_CHARS, true, false);
    let expires = match entry.get("expires_at").map(expiry_date) {
        None => None,
        Some(Ok(date)) => Some(date),
        Some(Err(message)) => {
            problems.push(problem(Some(i), "expires_at", message));
            None
        }
    };
    if problems.len() > before {
        return None;
    }
    Some(BaselineAck {
        signature: signature?,
        by: by?,
        at: at?,
        reason: reason?,
        expires,
    })
}

/// A TOML date (`2026-12-31`) or the same as a string.
fn expiry_date(value: &Value) -> Result<Date, String> {
    const EXPECTED: &str = "must be a date like 2026-12-31";
    let datetime = match value {
        Value::Datetime(d) => *d,
        Value::String(s) => s
            .trim()
            .parse::<Datetime>()
            .map_err(|_| format!("{EXPECTED}, got {s:?}"))?,
        other => return Err(format!("{EXPECTED}, got {}", other.type_str())),
    };
    let (Some(date), None, None) = (datetime.date, datetime.time, datetime.offset) else {
        return Err(format!("{EXPECTED} (a date only, no time), got {datetime}"));
    };
    Month::try_from(date.month)
        .ok()
        .and_then(|month| Date::from_calendar_date(i32::from(date.year), month, date.day).ok())
        .ok_or_else(|| format!("{EXPECTED}, got {datetime}"))
}

#[cfg(test)]
#[path = "baseline_tests.rs"]
mod tests;
