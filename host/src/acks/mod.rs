//! Acknowledged findings: problems a team has looked at and accepted, hidden
//! from the findings API. Two sources: a CI baseline TOML committed with the
//! code (read-only here) and a runtime store written through the API.
//!
//! Pure logic; the HTTP handlers map [`AckError::http_status`] to responses.

mod baseline;
mod entry;
mod error;
mod file;
mod service;
mod setup;
mod signature;
mod store;
mod text;

#[cfg(test)]
pub(crate) mod testutil;

use std::ffi::OsString;
use std::path::PathBuf;

pub use baseline::{Baseline, BaselineAck, MAX_BASELINE_BYTES};
pub use entry::Ack;
pub use error::{AckError, BaselineProblem};
pub use service::{AckInfo, AckService, AckSource};
pub use setup::{DEFAULT_BASELINE, start_service};
pub use signature::{MAX_SIGNATURE_BYTES, validate_signature};
pub use store::{AckStore, Limits, ReplayReport, Replayed, SkippedLine, replay_jsonl};
pub(crate) use text::is_dropped;
pub use text::{ANONYMOUS, MAX_BY_CHARS, MAX_REASON_CHARS, clean_by, clean_reason};

/// Where the runtime store lives when `[daemon.ack] storage_path` is unset:
/// `$XDG_DATA_HOME/perf-sentinel/acks.jsonl`, else
/// `$HOME/.local/share/perf-sentinel/acks.jsonl`; `None` when neither is
/// usable.
pub fn default_storage_path() -> Option<PathBuf> {
    storage_path_from(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
}

fn storage_path_from(xdg_data_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    // The XDG spec says to ignore a relative XDG_DATA_HOME; a relative HOME
    // would put the store wherever the daemon happens to start.
    let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    let data =
        absolute(xdg_data_home).or_else(|| absolute(home).map(|h| h.join(".local/share")))?;
    Some(data.join("perf-sentinel").join("acks.jsonl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(xdg: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
        storage_path_from(xdg.map(Into::into), home.map(Into::into))
    }

    #[test]
    fn default_path_prefers_xdg_data_home_then_home() {
        let xdg = PathBuf::from("/xdg/perf-sentinel/acks.jsonl");
        let home = PathBuf::from("/home/u/.local/share/perf-sentinel/acks.jsonl");
        assert_eq!(path(Some("/xdg"), Some("/home/u")), Some(xdg));
        assert_eq!(path(None, Some("/home/u")), Some(home.clone()));
        assert_eq!(path(Some(""), Some("/home/u")), Some(home.clone()));
        assert_eq!(path(Some("relative"), Some("/home/u")), Some(home));
        assert_eq!(path(None, Some("")), None);
        assert_eq!(path(None, None), None);
    }
}
