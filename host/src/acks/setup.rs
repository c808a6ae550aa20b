//! Turning `[daemon.ack]` into a running [`AckService`] at startup, with the
//! failure policy operators rely on: what they configured explicitly must
//! work or the daemon refuses to start; what is only a default degrades to
//! a warning and 503s on the ack routes, never to a crash loop.

use std::path::Path;

use super::{AckError, AckService, AckStore, Baseline, default_storage_path};
use crate::config::AckConfig;

/// The CI baseline read when `toml_path` is unset, relative to the working
/// directory (the repository root in CI).
pub const DEFAULT_BASELINE: &str = ".perf-sentinel-acknowledgments.toml";

/// Builds the service; `Ok(None)` when acks are disabled.
pub fn start_service(config: &AckConfig, cwd: &Path) -> Result<Option<AckService>, AckError> {
    if config.enabled == Some(false) {
        return Ok(None);
    }
    let baseline = match &config.toml_path {
        Some(path) => Baseline::load(&cwd.join(path))?,
        None => match Baseline::load(&cwd.join(DEFAULT_BASELINE)) {
            Ok(b) => b,
            Err(AckError::BaselineMissing { .. }) => Baseline::empty(),
            Err(e) => return Err(e),
        },
    };
    let store = match &config.storage_path {
        Some(path) => match AckStore::open(&cwd.join(path), true) {
            Ok(store) => Ok(store),
            // A file others can read is refused, but the daemon keeps
            // ingesting: the operator fixes the mode without an outage.
            Err(e @ AckError::InsecurePermissions { .. }) => Err(e),
            Err(e) => return Err(e),
        },
        None => match default_storage_path() {
            Some(path) => AckStore::open(&path, false),
            None => Err(AckError::Unavailable(
                "no data directory: set XDG_DATA_HOME or HOME, or [daemon.ack] storage_path".into(),
            )),
        },
    };
    match &store {
        Ok(s) => report_replay(s),
        Err(e) => tracing::warn!(
            error = %e,
            "acknowledgment store unavailable: the ack routes answer 503; findings are still served"
        ),
    }
    Ok(Some(AckService::new(baseline, store)))
}

fn report_replay(store: &AckStore) {
    let report = store.replay_report();
    if report.skipped_total > 0 {
        tracing::warn!(
            path = %store.path().display(),
            skipped = report.skipped_total,
            lines = ?report.skipped.iter().map(|s| format!("{}: {}", s.line, s.reason)).collect::<Vec<_>>(),
            "skipped unreadable lines of the ack store (a torn write after a crash is the usual cause)"
        );
    }
    tracing::info!(
        path = %store.path().display(),
        active = report.active,
        expired = report.expired,
        "acknowledgment store ready"
    );
}
