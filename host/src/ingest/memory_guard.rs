//! `[daemon] memory_high_water_pct`: refuses ingest (503 / UNAVAILABLE,
//! reason `memory_pressure`) while the container's memory use is too close
//! to its cgroup v2 limit, and accepts again once it has fallen back below
//! a lower mark, so the daemon sheds load instead of being OOM-killed.
//!
//! Use is what the kernel's OOM logic weighs: `memory.current` minus the
//! `inactive_file` page cache of `memory.stat` (reclaimable without
//! stalling), over `memory.max`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::pipeline::queue::Admission;

/// Overrides where the cgroup v2 files are read (unusual mounts, tests).
pub const CGROUP_DIR_ENV: &str = "PERF_SENTINEL_CGROUP_DIR";
/// How often the files are read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Percentage points below the high-water mark at which ingest resumes.
pub const HYSTERESIS_POINTS: u8 = 5;

/// Why the guard cannot watch memory.
#[derive(Debug, thiserror::Error)]
pub enum MemoryGuardError {
    #[error("no cgroup v2 memory controller found (tried {tried}); is this a cgroup v1 host?")]
    NoCgroupV2 { tried: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unexpected content in {path}: {content:?}")]
    Parse { path: PathBuf, content: String },
}

/// One reading of the cgroup's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub current: u64,
    pub inactive_file: u64,
    /// `None` when the cgroup has no limit (`max`).
    pub max: Option<u64>,
}

impl Usage {
    /// Percentage of the limit in use, or `None` without a limit.
    pub fn percent(&self) -> Option<f64> {
        let max = self.max.filter(|&m| m > 0)?;
        let used = self.current.saturating_sub(self.inactive_file);
        Some(used as f64 * 100.0 / max as f64)
    }
}

/// The cgroup v2 directory of this process.
#[derive(Debug, Clone)]
pub struct CgroupMemory {
    dir: PathBuf,
}

impl CgroupMemory {
    /// `$PERF_SENTINEL_CGROUP_DIR`, else this process's cgroup (the `0::`
    /// line of `/proc/self/cgroup`) under `/sys/fs/cgroup`, or under
    /// `/sys/fs/cgroup/unified` on hybrid hosts.
    pub fn locate() -> Result<Self, MemoryGuardError> {
        if let Some(dir) = std::env::var_os(CGROUP_DIR_ENV) {
            return Ok(Self { dir: dir.into() });
        }
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let relative = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap_or("/")
            .trim_start_matches('/');
        let candidates = [
            Path::new("/sys/fs/cgroup").join(relative),
            Path::new("/sys/fs/cgroup/unified").join(relative),
        ];
        candidates
            .iter()
            .find(|d| d.join("memory.current").is_file())
            .map(|d| Self { dir: d.clone() })
            .ok_or_else(|| MemoryGuardError::NoCgroupV2 {
                tried: candidates
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the three files.
    pub fn usage(&self) -> Result<Usage, MemoryGuardError> {
        let current = self.read("memory.current", |t| t.trim().parse().ok())?;
        let max = self.read("memory.max", parse_max)?;
        let inactive_file = self.read("memory.stat", |t| Some(inactive_file(t)))?;
        Ok(Usage {
            current,
            inactive_file,
            max,
        })
    }

    fn read<T>(
        &self,
        file: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, MemoryGuardError> {
        let path = self.dir.join(file);
        // These files are a few hundred bytes; a larger one is not ours.
        let text = read_capped(&path, 64 * 1024).map_err(|source| MemoryGuardError::Read {
            path: path.clone(),
            source,
        })?;
        parse(&text).ok_or_else(|| MemoryGuardError::Parse {
            path,
            content: text.chars().take(80).collect(),
        })
    }
}

fn read_capped(path: &Path, cap: u64) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(cap)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// `memory.max`: a byte count, or `max` for no limit.
fn parse_max(text: &str) -> Option<Option<u64>> {
    match text.trim() {
        "max" => Some(None),
        n => n.parse().ok().map(Some),
    }
}

/// The `inactive_file` line of `memory.stat` (0 when absent).
fn inactive_file(stat: &str) -> u64 {
    stat.lines()
        .find_map(|l| l.strip_prefix("inactive_file "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Engages at the high-water mark, releases only below a lower one, so a
/// daemon hovering at the mark does not flap between accepting and refusing.
#[derive(Debug, Clone, Copy)]
pub struct Hysteresis {
    high: f64,
    low: f64,
    engaged: bool,
}

impl Hysteresis {
    pub fn new(high_pct: u8) -> Self {
        Self {
            high: f64::from(high_pct),
            low: f64::from(high_pct.saturating_sub(HYSTERESIS_POINTS).max(1)),
            engaged: false,
        }
    }

    /// Takes a reading (`None`: no limit, or unreadable); returns the new
    /// state when it changes.
    pub fn observe(&mut self, percent: Option<f64>) -> Option<bool> {
        let next = match percent {
            None => false,
            Some(p) if self.engaged => p >= self.low,
            Some(p) => p >= self.high,
        };
        (next != self.engaged).then(|| {
            self.engaged = next;
            next
        })
    }
}

/// Polls `cgroup` and flips `admission`'s memory refusal until `stop`.
pub fn spawn_memory_guard(
    cgroup: CgroupMemory,
    high_pct: u8,
    admission: Arc<Admission>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut state = Hysteresis::new(high_pct);
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reported_error = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let percent = match cgroup.usage() {
                Ok(u) => {
                    reported_error = false;
                    u.percent()
                }
                Err(e) => {
                    // Fail open: an unreadable file must not stop ingest.
                    if !reported_error {
                        tracing::warn!(error = %e, "memory guard cannot read the cgroup; not refusing ingest");
                        reported_error = true;
                    }
                    None
                }
            };
            if let Some(engaged) = state.observe(percent) {
                admission.set_memory_pressure(engaged);
                let percent = percent.unwrap_or(0.0);
                if engaged {
                    tracing::warn!(
                        percent = format!("{percent:.1}"),
                        high_water_pct = high_pct,
                        "memory above the high-water mark: refusing ingest (503 / UNAVAILABLE) until it falls back"
                    );
                } else {
                    tracing::info!(
                        percent = format!("{percent:.1}"),
                        "memory back below the resume mark: accepting ingest again"
                    );
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_excludes_inactive_file_cache() {
        let u = Usage {
            current: 900,
            inactive_file: 300,
            max: Some(1000),
        };
        assert_eq!(u.percent(), Some(60.0));
        let unlimited = Usage { max: None, ..u };
        assert_eq!(unlimited.percent(), None);
    }

    #[test]
    fn parses_the_cgroup_files() {
        assert_eq!(parse_max("max\n"), Some(None));
        assert_eq!(parse_max("536870912\n"), Some(Some(536_870_912)));
        assert_eq!(parse_max("lots"), None);
        let stat = "anon 100\nfile 5000\nactive_file 1000\ninactive_file 4000\n";
        assert_eq!(inactive_file(stat), 4000);
        assert_eq!(inactive_file("anon 1\n"), 0);
    }

    #[test]
    fn reads_a_cgroup_directory_and_names_a_bad_file() {
        let dir = std::env::temp_dir().join(format!("ps-cgroup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.current"), "800\n").unwrap();
        std::fs::write(dir.join("memory.max"), "1000\n").unwrap();
        std::fs::write(dir.join("memory.stat"), "inactive_file 100\n").unwrap();
        let cg = CgroupMemory { dir: dir.clone() };
        assert_eq!(cg.usage().unwrap().percent(), Some(70.0));
        std::fs::write(dir.join("memory.max"), "a lot\n").unwrap();
        let err = cg.usage().unwrap_err().to_string();
        assert!(err.contains("memory.max") && err.contains("a lot"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn engages_at_the_mark_and_releases_five_points_lower() {
        let mut h = Hysteresis::new(80);
        assert_eq!(h.observe(Some(79.9)), None);
        assert_eq!(h.observe(Some(80.0)), Some(true));
        assert_eq!(h.observe(Some(77.0)), None, "still above the resume mark");
        assert_eq!(h.observe(Some(74.9)), Some(false));
        assert_eq!(h.observe(Some(78.0)), None, "below the high mark again");
        assert_eq!(h.observe(Some(95.0)), Some(true));
        assert_eq!(h.observe(None), Some(false), "no limit, nothing to guard");
    }
}
