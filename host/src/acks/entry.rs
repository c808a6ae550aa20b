//! One acknowledgment ([`Ack`]) and the JSONL line format of the runtime
//! store: what is written per ack or unack and how a line read back is
//! checked, kept apart from the file handling so the format is one place.

use serde::{Deserialize, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::AckError;
use super::signature::validate_signature;
use super::text::{clean_by, clean_reason};

/// One runtime acknowledgment. Serializes as
/// `{"signature","by","reason","at","expires_at"}` with RFC 3339 times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub signature: String,
    pub by: String,
    pub reason: String,
    pub at: OffsetDateTime,
    /// The ack stops applying at this instant.
    pub expires_at: Option<OffsetDateTime>,
}

impl Ack {
    /// Not expired at `now`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }
}

impl Serialize for Ack {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        #[derive(Serialize)]
        struct AckJson<'a> {
            signature: &'a str,
            by: &'a str,
            reason: &'a str,
            at: String,
            expires_at: Option<String>,
        }
        AckJson {
            signature: &self.signature,
            by: &self.by,
            reason: &self.reason,
            at: rfc3339(self.at).map_err(S::Error::custom)?,
            expires_at: self
                .expires_at
                .map(rfc3339)
                .transpose()
                .map_err(S::Error::custom)?,
        }
        .serialize(serializer)
    }
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> Result<String, time::error::Format> {
    t.to_offset(UtcOffset::UTC).format(&Rfc3339)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    Ack,
    Unack,
}

#[derive(Serialize)]
struct AckLine<'a> {
    action: Action,
    signature: &'a str,
    by: &'a str,
    reason: &'a str,
    at: String,
    expires_at: Option<String>,
}

#[derive(Serialize)]
struct UnackLine<'a> {
    action: Action,
    signature: &'a str,
    by: &'a str,
    at: String,
}

/// A line as read; unknown fields are ignored so a newer version's file
/// still replays.
#[derive(Deserialize)]
struct LineIn {
    action: Action,
    signature: String,
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    at: String,
    #[serde(default)]
    expires_at: Option<String>,
}

pub(crate) fn invalid(field: &'static str, e: &dyn std::fmt::Display) -> AckError {
    AckError::InvalidInput {
        field,
        message: e.to_string(),
    }
}

pub(crate) fn ack_line(ack: &Ack) -> Result<String, AckError> {
    let line = AckLine {
        action: Action::Ack,
        signature: &ack.signature,
        by: &ack.by,
        reason: &ack.reason,
        at: rfc3339(ack.at).map_err(|e| invalid("at", &e))?,
        expires_at: ack
            .expires_at
            .map(rfc3339)
            .transpose()
            .map_err(|e| invalid("expires_at", &e))?,
    };
    serde_json::to_string(&line).map_err(|e| invalid("signature", &e))
}

pub(crate) fn unack_line(
    signature: &str,
    by: &str,
    at: OffsetDateTime,
) -> Result<String, AckError> {
    let line = UnackLine {
        action: Action::Unack,
        signature,
        by,
        at: rfc3339(at).map_err(|e| invalid("at", &e))?,
    };
    serde_json::to_string(&line).map_err(|e| invalid("signature", &e))
}

/// A line's action and ack (for an unack only the signature matters).
/// Text is cleaned again: the file may have been edited by hand.
pub(crate) fn parse_line(bytes: &[u8]) -> Result<(Action, Ack), String> {
    let line: LineIn = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    validate_signature(&line.signature).map_err(|e| e.to_string())?;
    let time = |field: &str, value: &str| {
        OffsetDateTime::parse(value, &Rfc3339)
            .map(|t| t.to_offset(UtcOffset::UTC))
            .map_err(|e| format!("`{field}` is not an RFC 3339 time: {e}"))
    };
    let ack = Ack {
        at: time("at", &line.at)?,
        expires_at: line
            .expires_at
            .as_deref()
            .map(|t| time("expires_at", t))
            .transpose()?,
        by: clean_by(line.by.as_deref().unwrap_or_default()),
        reason: clean_reason(line.reason.as_deref().unwrap_or_default()),
        signature: line.signature,
    };
    Ok((line.action, ack))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::acks::testutil::sig;

    #[test]
    fn an_ack_serializes_for_the_api_with_utc_times() {
        let ack = Ack {
            signature: sig(1),
            by: "bob".into(),
            reason: "r".into(),
            at: datetime!(2026-03-01 14:00 +2),
            expires_at: None,
        };
        assert_eq!(
            serde_json::to_value(&ack).unwrap(),
            serde_json::json!({
                "signature": sig(1),
                "by": "bob",
                "reason": "r",
                "at": "2026-03-01T12:00:00Z",
                "expires_at": null,
            })
        );
    }

    #[test]
    fn unack_lines_may_omit_or_null_reason_and_expiry() {
        let at = datetime!(2026-03-01 12:00 UTC);
        let written = unack_line(&sig(1), "bob", at).unwrap();
        let s = sig(1);
        assert_eq!(
            written,
            format!(
                r#"{{"action":"unack","signature":"{s}","by":"bob","at":"2026-03-01T12:00:00Z"}}"#
            )
        );
        let with_nulls = format!(
            r#"{{"action":"unack","signature":"{s}","by":"bob","reason":null,"at":"2026-03-01T12:00:00Z","expires_at":null}}"#
        );
        for line in [written, with_nulls] {
            let (action, ack) = parse_line(line.as_bytes()).unwrap();
            assert_eq!(
                (action, ack.signature.as_str(), ack.at),
                (Action::Unack, s.as_str(), at)
            );
        }
    }

    #[test]
    fn bad_lines_say_why() {
        let s = sig(1);
        let bad_time = format!(
            r#"{{"action":"ack","signature":"{s}","by":"b","reason":"","at":"yesterday"}}"#
        );
        assert!(
            parse_line(bad_time.as_bytes())
                .unwrap_err()
                .contains("`at` is not an RFC 3339 time")
        );
        let bad_action =
            format!(r#"{{"action":"snooze","signature":"{s}","at":"2026-03-01T12:00:00Z"}}"#);
        assert!(
            parse_line(bad_action.as_bytes())
                .unwrap_err()
                .contains("invalid JSON")
        );
    }
}
