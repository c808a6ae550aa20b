//! [`AckError`]: every way acknowledging a finding can fail, each naming the
//! file, signature or value involved, and the HTTP status the API answers it
//! with.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why an acknowledgment operation, or opening the ack store or baseline,
/// failed.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// Not `<kind>:<service>:<endpoint>:<32 lowercase hex>`.
    #[error("malformed finding signature {signature}: {reason}")]
    MalformedSignature {
        /// The signature as received, escaped and shortened for display.
        signature: String,
        reason: &'static str,
    },
    /// A request field other than the signature is unacceptable.
    #[error("invalid `{field}`: {message}")]
    InvalidInput {
        field: &'static str,
        message: String,
    },
    #[error("{signature} is not acknowledged at runtime")]
    NotFound { signature: String },
    /// `place` says where: in the CI baseline (with its file) or at runtime.
    #[error("{signature} is already acknowledged {place}")]
    Conflict { signature: String, place: String },
    #[error("ack store {path} already holds {limit} active acknowledgments")]
    LimitReached { path: PathBuf, limit: usize },
    #[error("acknowledgment is {size} bytes once serialized, more than the {limit} allowed")]
    EntryTooLarge { size: usize, limit: usize },
    #[error("ack store {path} would grow past {limit} bytes even after compaction")]
    StoreFull { path: PathBuf, limit: u64 },
    /// The runtime store could not be opened at startup; the reason is kept
    /// so every later write explains itself.
    #[error("the runtime ack store is unavailable: {0}")]
    Unavailable(String),
    #[error("ack store {path} is a symbolic link; refusing to follow it")]
    Symlink { path: PathBuf },
    #[error("ack store {path} is not a regular file")]
    NotRegularFile { path: PathBuf },
    #[error(
        "ack store {path} has mode {mode:04o}, readable or writable by group or others; \
         run `chmod 600 {path}`"
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    /// `action` says what was being done, e.g. "create directory".
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The baseline file does not exist; at the default path the caller
    /// treats that as an empty baseline.
    #[error("ack baseline {path} does not exist")]
    BaselineMissing { path: PathBuf },
    /// Unreadable TOML; `message` has line and column.
    #[error("ack baseline {path}: invalid TOML: {message}")]
    BaselineParse { path: PathBuf, message: String },
    /// Every bad `[[acknowledged]]` entry or key, one per line.
    #[error("{}", list_problems(.path, .problems))]
    BaselineInvalid {
        path: PathBuf,
        problems: Vec<BaselineProblem>,
    },
}

/// One refused key of the baseline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineProblem {
    /// The `[[acknowledged]]` entry, counting from 0 as in
    /// `acknowledged[0]`; `None` for a top-level key.
    pub index: Option<usize>,
    /// The key within the entry (or top level); empty for the entry itself.
    pub key: String,
    pub message: String,
}

impl fmt::Display for BaselineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.index, self.key.as_str()) {
            (Some(i), "") => write!(f, "`acknowledged[{i}]`: {}", self.message),
            (Some(i), key) => write!(f, "`acknowledged[{i}].{key}`: {}", self.message),
            (None, key) => write!(f, "`{key}`: {}", self.message),
        }
    }
}

fn list_problems(path: &Path, problems: &[BaselineProblem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("ack baseline {}: {p}", path.display()))
        .collect();
    lines.join("\n")
}

impl AckError {
    /// The status the HTTP API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::MalformedSignature { .. } | Self::InvalidInput { .. } => 400,
            Self::NotFound { .. } => 404,
            Self::Conflict { .. } => 409,
            // "Insufficient Storage": the request was fine, the store is full.
            Self::LimitReached { .. } | Self::EntryTooLarge { .. } | Self::StoreFull { .. } => 507,
            // The disk (or quota, or file-size limit) is full: the same
            // answer, the client may retry once space is freed.
            Self::Io { source, .. } if is_out_of_space(source) => 507,
            // The store cannot be used until an operator fixes it.
            Self::Unavailable(_)
            | Self::Symlink { .. }
            | Self::NotRegularFile { .. }
            | Self::InsecurePermissions { .. } => 503,
            Self::Io { .. }
            | Self::BaselineMissing { .. }
            | Self::BaselineParse { .. }
            | Self::BaselineInvalid { .. } => 500,
        }
    }

    /// Whether this is a write that failed for want of disk space, so
    /// metrics can tell it from the store's own limits.
    pub fn is_out_of_space(&self) -> bool {
        matches!(self, Self::Io { source, .. } if is_out_of_space(source))
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// ENOSPC, EDQUOT, EFBIG (a file-size limit such as RLIMIT_FSIZE).
fn is_out_of_space(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_api_contract() {
        let sig = || "k:s:e:0".to_owned();
        let cases = [
            (
                AckError::MalformedSignature {
                    signature: sig(),
                    reason: "x",
                },
                400,
            ),
            (AckError::NotFound { signature: sig() }, 404),
            (
                AckError::Conflict {
                    signature: sig(),
                    place: "at runtime".into(),
                },
                409,
            ),
            (AckError::EntryTooLarge { size: 5, limit: 4 }, 507),
            (AckError::Unavailable("x".into()), 503),
            (
                AckError::io("read", "/x", std::io::Error::other("boom")),
                500,
            ),
            (
                AckError::io(
                    "append to",
                    "/x",
                    std::io::Error::from_raw_os_error(libc::ENOSPC),
                ),
                507,
            ),
            (
                AckError::io(
                    "append to",
                    "/x",
                    std::io::Error::from_raw_os_error(libc::EDQUOT),
                ),
                507,
            ),
            (
                AckError::io(
                    "append to",
                    "/x",
                    std::io::Error::from_raw_os_error(libc::EROFS),
                ),
                500,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.http_status(), status, "{error}");
        }
    }

    #[test]
    fn baseline_problems_name_file_index_and_key_one_per_line() {
        let problem = |index, key: &str| BaselineProblem {
            index,
            key: key.to_owned(),
            message: "bad".to_owned(),
        };
        let e = AckError::BaselineInvalid {
            path: "ci/acks.toml".into(),
            problems: vec![
                problem(Some(2), "expires_at"),
                problem(Some(0), ""),
                problem(None, "extra"),
            ],
        };
        assert_eq!(
            e.to_string(),
            "ack baseline ci/acks.toml: `acknowledged[2].expires_at`: bad\n\
             ack baseline ci/acks.toml: `acknowledged[0]`: bad\n\
             ack baseline ci/acks.toml: `extra`: bad"
        );
    }
}
