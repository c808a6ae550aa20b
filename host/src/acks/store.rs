//! [`AckStore`]: acknowledgments made at runtime through the API, kept in an
//! append-only JSONL file (one fsynced line per ack or unack) that is
//! replayed and compacted at open, so acks survive restarts and crashes
//! without a database.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use time::{OffsetDateTime, UtcOffset};

use super::entry::{Action, ack_line, parse_line, unack_line};
use super::{Ack, AckError, file};

/// Bounds on the store; [`Limits::default`] is what the daemon uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Active acknowledgments at once.
    pub max_active: usize,
    /// Bytes of one serialized line, newline excluded.
    pub max_line_bytes: usize,
    /// Bytes of the file; a write past it first compacts, then is refused.
    pub max_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_active: 10_000,
            max_line_bytes: 4 * 1024,
            max_file_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What replaying the file at open found, for the caller to log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Lines read, blank ones included.
    pub lines: usize,
    /// The first [`ReplayReport::MAX_LISTED`] skipped lines.
    pub skipped: Vec<SkippedLine>,
    /// All skipped lines, listed or not.
    pub skipped_total: usize,
    /// Ack lines already expired, dropped by compaction.
    pub expired: usize,
    /// Active acks after replay.
    pub active: usize,
}

impl ReplayReport {
    /// How many skipped lines are listed; a corrupt file has no more worth
    /// reading in a log.
    pub const MAX_LISTED: usize = 100;

    fn skip(&mut self, line: usize, reason: impl Into<String>) {
        self.skipped_total += 1;
        if self.skipped.len() < Self::MAX_LISTED {
            self.skipped.push(SkippedLine {
                line,
                reason: reason.into(),
            });
        }
    }
}

/// A line replay could not use; compaction drops it from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

/// The runtime ack store. Not internally synchronized: the daemon keeps it
/// behind a `Mutex`.
#[derive(Debug)]
pub struct AckStore {
    path: PathBuf,
    explicit: bool,
    limits: Limits,
    file: File,
    size: u64,
    // A failed append could not be cut back off the file: the next line
    // starts with a newline so the fragment stays a line of its own, which
    // the next replay skips.
    torn: bool,
    // Sorted, so listings and compacted files are deterministic.
    acks: BTreeMap<String, Ack>,
    report: ReplayReport,
}

impl AckStore {
    /// Opens (creating if needed) the store at `path` with the default
    /// limits, replaying and compacting it.
    ///
    /// `explicit` says the path was configured (`[daemon.ack]
    /// storage_path`) rather than the default: then only its own directory
    /// is created when missing, not the ones above it, so a typo or an
    /// unmounted volume fails loudly instead of storing acks somewhere they
    /// will be lost.
    pub fn open(path: &Path, explicit: bool) -> Result<Self, AckError> {
        Self::open_with_limits(path, explicit, Limits::default(), OffsetDateTime::now_utc())
    }

    /// [`AckStore::open`] with chosen limits, dropping acks expired at
    /// `now`.
    pub fn open_with_limits(
        path: &Path,
        explicit: bool,
        limits: Limits,
        now: OffsetDateTime,
    ) -> Result<Self, AckError> {
        file::ensure_dir(&file::parent_dir(path), !explicit)?;
        let mut acks = BTreeMap::new();
        let mut report = ReplayReport::default();
        if let Some(existing) = file::open_existing(path)? {
            replay(existing, path, &limits, now, &mut acks, &mut report)?;
        }
        report.active = acks.len();
        let (file, size) = file::replace(path, &render(&acks)?)?;
        Ok(Self {
            path: path.to_owned(),
            explicit,
            limits,
            file,
            size,
            torn: false,
            acks,
            report,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the path was configured rather than the default.
    pub fn is_explicit(&self) -> bool {
        self.explicit
    }

    /// What replay found at open.
    pub fn replay_report(&self) -> &ReplayReport {
        &self.report
    }

    /// Records `entry` (its `at` is the current time); replaces an active
    /// ack of the same signature. The caller validates and cleans the
    /// fields. On error nothing changed.
    pub fn ack(&mut self, mut entry: Ack) -> Result<Ack, AckError> {
        entry.at = entry.at.to_offset(UtcOffset::UTC);
        entry.expires_at = entry.expires_at.map(|t| t.to_offset(UtcOffset::UTC));
        let now = entry.at;
        if !entry.is_active(now) {
            return Err(AckError::InvalidInput {
                field: "expires_at",
                message: "must be later than now".to_owned(),
            });
        }
        // Expired acks only take room; the file drops them at compaction.
        self.acks.retain(|_, ack| ack.is_active(now));
        if !self.acks.contains_key(&entry.signature) && self.acks.len() >= self.limits.max_active {
            return Err(AckError::LimitReached {
                path: self.path.clone(),
                limit: self.limits.max_active,
            });
        }
        let line = ack_line(&entry)?;
        self.append(&line)?;
        self.acks.insert(entry.signature.clone(), entry.clone());
        Ok(entry)
    }

    /// Removes the active ack of `signature`, recording who did it and when.
    pub fn unack(&mut self, signature: &str, by: &str, at: OffsetDateTime) -> Result<(), AckError> {
        if self.get(signature, at).is_none() {
            return Err(AckError::NotFound {
                signature: signature.to_owned(),
            });
        }
        self.acks.retain(|_, ack| ack.is_active(at));
        let line = unack_line(signature, by, at)?;
        self.append(&line)?;
        self.acks.remove(signature);
        Ok(())
    }

    /// The acks active at `now`, by signature.
    pub fn active(&self, now: OffsetDateTime) -> Vec<Ack> {
        self.acks
            .values()
            .filter(|a| a.is_active(now))
            .cloned()
            .collect()
    }

    /// The ack of `signature` if active at `now`.
    pub fn get(&self, signature: &str, now: OffsetDateTime) -> Option<&Ack> {
        self.acks.get(signature).filter(|a| a.is_active(now))
    }

    /// Appends `line` and syncs it; on failure, cuts the file back so
    /// memory and disk still agree.
    fn append(&mut self, line: &str) -> Result<(), AckError> {
        if line.len() > self.limits.max_line_bytes {
            return Err(AckError::EntryTooLarge {
                size: line.len(),
                limit: self.limits.max_line_bytes,
            });
        }
        let needed = |store: &Self| store.size + line.len() as u64 + 1 + u64::from(store.torn);
        if needed(self) > self.limits.max_file_bytes {
            // Churn, not active acks, fills the file: rewrite it first.
            let (file, size) = file::replace(&self.path, &render(&self.acks)?)?;
            (self.file, self.size, self.torn) = (file, size, false);
            if needed(self) > self.limits.max_file_bytes {
                return Err(AckError::StoreFull {
                    path: self.path.clone(),
                    limit: self.limits.max_file_bytes,
                });
            }
        }
        let mut bytes = Vec::with_capacity(line.len() + 2);
        if self.torn {
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        match self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
        {
            Ok(()) => {
                self.size += bytes.len() as u64;
                self.torn = false;
                Ok(())
            }
            Err(e) => {
                self.torn = self.file.set_len(self.size).is_err();
                Err(AckError::io("append to", &self.path, e))
            }
        }
    }
}

/// The compacted file: one ack line per active ack.
fn render(acks: &BTreeMap<String, Ack>) -> Result<Vec<u8>, AckError> {
    let mut out = Vec::new();
    for ack in acks.values() {
        out.extend_from_slice(ack_line(ack)?.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

/// What [`replay_jsonl`] read: the acks open would keep, its report, and
/// the compacted text open would write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Active acks, by signature.
    pub acks: Vec<Ack>,
    pub report: ReplayReport,
    pub compacted: Vec<u8>,
}

/// Replays store text as [`AckStore::open_with_limits`] does, without a
/// file: for tools and fuzzing, which must see exactly what a restart sees.
pub fn replay_jsonl(
    text: &[u8],
    limits: &Limits,
    now: OffsetDateTime,
) -> Result<Replayed, AckError> {
    let mut acks = BTreeMap::new();
    let mut report = ReplayReport::default();
    replay(
        text,
        Path::new("<memory>"),
        limits,
        now,
        &mut acks,
        &mut report,
    )?;
    report.active = acks.len();
    let compacted = render(&acks)?;
    Ok(Replayed {
        acks: acks.into_values().collect(),
        report,
        compacted,
    })
}

fn replay(
    existing: impl std::io::Read,
    path: &Path,
    limits: &Limits,
    now: OffsetDateTime,
    acks: &mut BTreeMap<String, Ack>,
    report: &mut ReplayReport,
) -> Result<(), AckError> {
    let mut reader = BufReader::new(existing);
    let mut buf = Vec::new();
    while let Some(raw) = file::read_line(&mut reader, &mut buf, limits.max_line_bytes)
        .map_err(|e| AckError::io("read", path, e))?
    {
        report.lines += 1;
        let n = report.lines;
        if raw.too_long {
            report.skip(n, format!("longer than {} bytes", limits.max_line_bytes));
        } else if !raw.terminated {
            report.skip(n, "last line has no newline (write interrupted)");
        } else if buf.iter().all(u8::is_ascii_whitespace) {
            // A blank line, e.g. left by a rolled-back write.
        } else {
            match parse_line(&buf) {
                Err(reason) => report.skip(n, reason),
                Ok((Action::Unack, ack)) => {
                    acks.remove(&ack.signature);
                }
                Ok((Action::Ack, ack)) if !ack.is_active(now) => {
                    report.expired += 1;
                    acks.remove(&ack.signature);
                }
                Ok((Action::Ack, _)) if acks.len() >= limits.max_active => {
                    report.skip(
                        n,
                        format!("over the limit of {} active acks", limits.max_active),
                    );
                }
                Ok((Action::Ack, ack)) => {
                    acks.insert(ack.signature.clone(), ack);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
