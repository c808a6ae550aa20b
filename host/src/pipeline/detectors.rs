//! The detectors one shard runs: each built from its factory and plan, run
//! under `catch_unwind`, rebuilt after a panic and quarantined when it keeps
//! failing, so one bad detector never takes the daemon down.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use detector_api::{BuildError, Detector, DetectorFactory, Finding, RVec, TraceView};

use crate::metrics::{DetectorLabel, Metrics};

/// Consecutive failures (errors or panics) after which a detector stops.
const QUARANTINE_AFTER: u32 = 10;
/// Panics, in all, after which a detector stops.
const MAX_PANICS: u32 = 3;

/// A factory shared by every shard: a built-in (`&'static`) or, later, a plugin.
pub type SharedFactory = Arc<dyn DetectorFactory>;

/// Wraps a built-in factory so it can be shared like a plugin's.
pub struct Builtin(pub &'static dyn DetectorFactory);

impl DetectorFactory for Builtin {
    fn id(&self) -> &str {
        self.0.id()
    }
    fn description(&self) -> &str {
        self.0.description()
    }
    fn enabled_by_default(&self) -> bool {
        self.0.enabled_by_default()
    }
    fn inherited_keys(&self) -> &[detector_api::InheritedKey] {
        self.0.inherited_keys()
    }
    fn cross_trace(&self) -> bool {
        self.0.cross_trace()
    }
    fn default_config(&self) -> toml::Table {
        self.0.default_config()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        self.0.build(config)
    }
}

/// Everything needed to build one enabled detector, shared by all shards,
/// with its counters.
pub struct DetectorSpec {
    pub id: String,
    /// `builtin`, or the plugin's name.
    pub origin: Arc<str>,
    pub description: String,
    pub factory: SharedFactory,
    pub params: toml::Table,
    pub services: Vec<String>,
    pub exclude_services: Vec<String>,
    /// Runs as one instance seeing every trace (see `DetectorFactory::cross_trace`).
    pub cross_trace: bool,
    pub stats: DetectorStats,
}

/// Counters of one detector across shards.
#[derive(Default)]
pub struct DetectorStats {
    pub runs: AtomicU64,
    pub errors: AtomicU64,
    pub findings: AtomicU64,
    pub quarantined: AtomicBool,
}

impl DetectorSpec {
    /// Whether a finding for `service` is in this detector's scope.
    pub fn in_scope(&self, service: &str) -> bool {
        (self.services.is_empty() || self.services.iter().any(|s| s == service))
            && !self.exclude_services.iter().any(|s| s == service)
    }
}

/// One shard's instance of a detector.
pub struct ActiveDetector {
    pub spec: Arc<DetectorSpec>,
    detector: Option<Box<dyn Detector>>,
    consecutive_failures: u32,
    panics: u32,
}

impl ActiveDetector {
    /// Builds the shard's instance.
    pub fn build(spec: Arc<DetectorSpec>) -> Result<Self, BuildError> {
        let detector = spec.factory.build(&spec.params)?;
        Ok(Self {
            spec,
            detector: Some(detector),
            consecutive_failures: 0,
            panics: 0,
        })
    }

    /// Runs the detector over `trace`, appending its findings (stamped with
    /// its id, scoped to its services) to `out`.
    pub fn detect(&mut self, trace: &TraceView<'_>, out: &mut RVec<Finding>, metrics: &Metrics) {
        let start = out.len();
        let result = match self.detector.as_mut() {
            Some(d) => catch_unwind(AssertUnwindSafe(|| d.detect(trace, out))),
            None => return,
        };
        self.spec.stats.runs.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(Ok(())) => {
                self.consecutive_failures = 0;
                let mut i = start;
                while i < out.len() {
                    if self.spec.in_scope(out[i].service.as_str()) {
                        out[i].detector = self.spec.id.as_str().into();
                        i += 1;
                    } else {
                        out.remove(i);
                    }
                }
                self.spec
                    .stats
                    .findings
                    .fetch_add((out.len() - start) as u64, Ordering::Relaxed);
            }
            Ok(Err(e)) => {
                out.truncate(start);
                self.failed(metrics, &format!("error: {e}"), false);
            }
            Err(panic) => {
                out.truncate(start);
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".into());
                self.failed(metrics, &format!("panic: {what}"), true);
            }
        }
    }

    fn failed(&mut self, metrics: &Metrics, what: &str, panicked: bool) {
        let id = &self.spec.id;
        self.spec.stats.errors.fetch_add(1, Ordering::Relaxed);
        metrics
            .detector_errors
            .get_or_create(&DetectorLabel {
                detector: id.clone(),
            })
            .inc();
        self.consecutive_failures += 1;
        if panicked {
            self.panics += 1;
            // Never call a detector again in the state a panic left it in.
            self.detector = None;
            if self.panics < MAX_PANICS {
                match self.spec.factory.build(&self.spec.params) {
                    Ok(d) => self.detector = Some(d),
                    Err(e) => tracing::warn!(detector = %id, "cannot rebuild after a panic: {e}"),
                }
            }
        }
        tracing::warn!(detector = %id, "detector failed ({what})");
        if self.detector.is_none() || self.consecutive_failures >= QUARANTINE_AFTER {
            self.detector = None;
            if !self.spec.stats.quarantined.swap(true, Ordering::Relaxed) {
                metrics.detectors_quarantined.inc();
                tracing::error!(
                    detector = %id,
                    "detector quarantined after repeated failures; the daemon keeps running without it"
                );
            }
        }
    }

    /// Asks a cross-trace detector for what it accumulated.
    pub fn flush(&mut self, now_ns: u64, out: &mut RVec<Finding>, metrics: &Metrics) {
        let start = out.len();
        let result = match self.detector.as_mut() {
            Some(d) => catch_unwind(AssertUnwindSafe(|| d.flush(now_ns, out))),
            None => return,
        };
        match result {
            Ok(Ok(())) => {
                for f in out.iter_mut().skip(start) {
                    f.detector = self.spec.id.as_str().into();
                }
            }
            Ok(Err(e)) => {
                out.truncate(start);
                self.failed(metrics, &format!("flush error: {e}"), false);
            }
            Err(_) => {
                out.truncate(start);
                self.failed(metrics, "panic in flush", true);
            }
        }
    }
}
