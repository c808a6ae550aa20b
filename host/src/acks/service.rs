//! [`AckService`]: what the ack API calls. It combines the read-only CI
//! baseline with the runtime store, checks and cleans input, and keeps the
//! daemon serving (reads, baseline lookups) when the store could not be
//! opened, answering writes with the reason instead.

use serde::Serialize;
use time::{OffsetDateTime, UtcOffset};

use super::entry::rfc3339;
use super::signature::validate_signature;
use super::text::{clean_by, clean_reason};
use super::{Ack, AckError, AckStore, Baseline, BaselineAck};

/// Where an acknowledgment comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AckSource {
    /// The CI baseline file.
    Toml,
    /// The runtime store, through the API.
    Daemon,
}

/// An acknowledgment as the API shows it next to a finding:
/// `{"source","by","at","reason","expires_at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AckInfo {
    pub source: AckSource,
    pub by: String,
    /// RFC 3339 for the daemon; as written in the file for the baseline.
    pub at: String,
    pub reason: String,
    /// RFC 3339 for the daemon; `YYYY-MM-DD` (last day, UTC) for the
    /// baseline.
    pub expires_at: Option<String>,
}

impl AckInfo {
    /// How a CI baseline entry is shown.
    pub fn from_baseline(ack: &BaselineAck) -> Self {
        AckInfo {
            source: AckSource::Toml,
            by: ack.by.clone(),
            at: ack.at.clone(),
            reason: ack.reason.clone(),
            expires_at: ack.expires_at(),
        }
    }
}

/// The baseline plus the runtime store, or why the store is unavailable.
#[derive(Debug)]
pub struct AckService {
    baseline: Baseline,
    store: Result<AckStore, String>,
}

impl AckService {
    /// `store` is the outcome of opening it; an error is kept as text and
    /// every store operation then fails with [`AckError::Unavailable`].
    pub fn new(baseline: Baseline, store: Result<AckStore, AckError>) -> Self {
        Self {
            baseline,
            store: store.map_err(|e| e.to_string()),
        }
    }

    pub fn baseline(&self) -> &Baseline {
        &self.baseline
    }

    pub fn store(&self) -> Option<&AckStore> {
        self.store.as_ref().ok()
    }

    /// Why the runtime store is unavailable, if it is.
    pub fn unavailable_reason(&self) -> Option<&str> {
        self.store.as_ref().err().map(String::as_str)
    }

    /// Acknowledges `signature` at runtime. `by` and `reason` are cleaned
    /// (an empty `by` becomes `anonymous`); `expires_at` must be in the
    /// future. A signature already acknowledged, in the baseline or at
    /// runtime, is a conflict: unack first to change a runtime ack.
    pub fn ack(
        &mut self,
        signature: &str,
        by: &str,
        reason: &str,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<Ack, AckError> {
        validate_signature(signature)?;
        if let Some(end) = expires_at {
            check_expiry(end, now)?;
        }
        if let Some(ack) = self.baseline.get(signature, now) {
            let file = self
                .baseline
                .path()
                .map_or_else(|| "<baseline>".into(), |p| p.display().to_string());
            return Err(AckError::Conflict {
                signature: signature.to_owned(),
                place: format!("in the CI baseline {file} (by {})", ack.by),
            });
        }
        let store = self.store_mut()?;
        if let Some(ack) = store.get(signature, now) {
            return Err(AckError::Conflict {
                signature: signature.to_owned(),
                place: format!("at runtime by {}", ack.by),
            });
        }
        store.ack(Ack {
            signature: signature.to_owned(),
            by: clean_by(by),
            reason: clean_reason(reason),
            at: now,
            expires_at,
        })
    }

    /// Removes the runtime ack of `signature`, recording `by` (cleaned).
    /// [`AckError::NotFound`] when it has no active runtime ack; baseline
    /// acks are changed in the file, not here.
    pub fn unack(
        &mut self,
        signature: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<(), AckError> {
        validate_signature(signature)?;
        self.store_mut()?.unack(signature, &clean_by(by), now)
    }

    /// The runtime acks active at `now`, by signature; none when the store
    /// is unavailable.
    pub fn list(&self, now: OffsetDateTime) -> Vec<Ack> {
        self.store().map(|s| s.active(now)).unwrap_or_default()
    }

    /// Whether `signature` is acknowledged at `now`, from either source,
    /// without building an [`AckInfo`].
    pub fn is_acked(&self, signature: &str, now: OffsetDateTime) -> bool {
        self.baseline.get(signature, now).is_some()
            || self
                .store()
                .is_some_and(|s| s.get(signature, now).is_some())
    }

    /// The acknowledgment of `signature` at `now`; the baseline wins over
    /// the runtime store.
    pub fn lookup(&self, signature: &str, now: OffsetDateTime) -> Option<AckInfo> {
        if let Some(ack) = self.baseline.get(signature, now) {
            return Some(AckInfo::from_baseline(ack));
        }
        let ack = self.store()?.get(signature, now)?;
        // These times were formatted when the ack was written, so they
        // format again.
        Some(AckInfo {
            source: AckSource::Daemon,
            by: ack.by.clone(),
            at: rfc3339(ack.at).unwrap_or_default(),
            reason: ack.reason.clone(),
            expires_at: ack.expires_at.and_then(|t| rfc3339(t).ok()),
        })
    }

    fn store_mut(&mut self) -> Result<&mut AckStore, AckError> {
        self.store
            .as_mut()
            .map_err(|reason| AckError::Unavailable(reason.clone()))
    }
}

fn check_expiry(end: OffsetDateTime, now: OffsetDateTime) -> Result<(), AckError> {
    let invalid = |message: String| AckError::InvalidInput {
        field: "expires_at",
        message,
    };
    if end <= now {
        let shown = rfc3339(end).unwrap_or_else(|_| end.to_string());
        return Err(invalid(format!("{shown} is not in the future")));
    }
    // RFC 3339 has four-digit years.
    if end.to_offset(UtcOffset::UTC).year() > 9999 {
        return Err(invalid("must be before the year 10000".to_owned()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
