//! The detectors one shard runs: each built from its factory and plan, run
//! under `catch_unwind`, rebuilt after a panic and quarantined when it keeps
//! failing, so one bad detector never takes the daemon down.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use detector_api::{BuildError, Detector, DetectorFactory, Finding, RVec, TraceView};

use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;

use crate::metrics::{DetectorErrorLabels, DetectorLabel, Metrics};

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
    /// The plugin it comes from, if any.
    pub plugin: Option<Arc<crate::plugins::LoadedPlugin>>,
    pub description: String,
    pub factory: SharedFactory,
    pub params: toml::Table,
    pub services: Vec<String>,
    pub exclude_services: Vec<String>,
    /// Runs as one instance seeing every trace (see `DetectorFactory::cross_trace`).
    pub cross_trace: bool,
    /// Consecutive failures before quarantine (`[daemon] quarantine_after`).
    pub quarantine_after: u32,
    pub stats: DetectorStats,
}

/// Counters of one detector across shards.
#[derive(Default)]
pub struct DetectorStats {
    pub runs: AtomicU64,
    /// Failures in a row, across every shard's instance.
    pub consecutive_failures: AtomicU32,
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
    seconds: Histogram,
    quarantine_after: u32,
}

/// How a call went wrong.
enum Failure {
    Error(String),
    Panic(String),
}

impl ActiveDetector {
    /// Builds the shard's instance.
    pub fn build(spec: Arc<DetectorSpec>, metrics: &Metrics) -> Result<Self, BuildError> {
        let detector = spec.factory.build(&spec.params)?;
        let seconds = metrics
            .detector_seconds
            .get_or_create(&DetectorLabel {
                detector: spec.id.clone(),
            })
            .clone();
        Ok(Self {
            quarantine_after: spec.quarantine_after.max(1),
            spec,
            detector: Some(detector),
            seconds,
        })
    }

    /// True once the detector has been stopped (by any shard).
    pub fn is_quarantined(&self) -> bool {
        self.detector.is_none() || self.spec.stats.quarantined.load(Ordering::Relaxed)
    }

    fn succeeded(&self) {
        let failures = &self.spec.stats.consecutive_failures;
        // Read first: a store on every trace would bounce the cache line
        // between shards.
        if failures.load(Ordering::Relaxed) != 0 {
            failures.store(0, Ordering::Relaxed);
        }
    }

    /// Runs the detector over `trace`, appending its findings (stamped with
    /// its id, scoped to its services) to `out`.
    pub fn detect(&mut self, trace: &TraceView<'_>, out: &mut RVec<Finding>, metrics: &Metrics) {
        let start = out.len();
        if self.spec.stats.quarantined.load(Ordering::Relaxed) {
            self.detector = None;
        }
        let Some(d) = self.detector.as_mut() else {
            return;
        };
        let began = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| d.detect(trace, out)));
        self.seconds.observe(began.elapsed().as_secs_f64());
        self.spec.stats.runs.fetch_add(1, Ordering::Relaxed);
        match classify(result) {
            None => {
                self.succeeded();
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
            Some(failure) => {
                out.truncate(start);
                self.failed(metrics, failure, "detect");
            }
        }
    }

    /// Asks a cross-trace detector for what it accumulated.
    pub fn flush(&mut self, now_ns: u64, out: &mut RVec<Finding>, metrics: &Metrics) {
        let start = out.len();
        let Some(d) = self.detector.as_mut() else {
            return;
        };
        let result = catch_unwind(AssertUnwindSafe(|| d.flush(now_ns, out)));
        match classify(result) {
            None => {
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
            Some(failure) => {
                out.truncate(start);
                self.failed(metrics, failure, "flush");
            }
        }
    }

    fn failed(&mut self, metrics: &Metrics, failure: Failure, during: &str) {
        let id = &self.spec.id;
        let (reason, message) = match &failure {
            Failure::Error(m) => ("error", m),
            Failure::Panic(m) => ("panic", m),
        };
        self.spec.stats.errors.fetch_add(1, Ordering::Relaxed);
        metrics
            .detector_errors
            .get_or_create(&DetectorErrorLabels {
                detector: id.clone(),
                reason,
            })
            .inc();
        let failures = self
            .spec
            .stats
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        tracing::warn!(detector = %id, "detector failed in {during} ({reason}: {message})");
        if failures >= self.quarantine_after {
            self.quarantine(metrics);
            return;
        }
        if let Failure::Panic(_) = failure {
            // Never call an instance again in the state a panic left it in.
            self.detector = match self.spec.factory.build(&self.spec.params) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(detector = %id, "cannot rebuild after a panic: {e}");
                    None
                }
            };
            if self.detector.is_none() {
                self.quarantine(metrics);
            }
        }
    }

    fn quarantine(&mut self, metrics: &Metrics) {
        self.detector = None;
        if !self.spec.stats.quarantined.swap(true, Ordering::Relaxed) {
            metrics.detectors_quarantined.inc();
            tracing::error!(
                detector = %self.spec.id,
                failures = self.spec.stats.consecutive_failures.load(Ordering::Relaxed),
                "detector quarantined after repeated failures; the daemon keeps running without it"
            );
        }
    }
}

fn classify(
    result: std::thread::Result<Result<(), detector_api::DetectorError>>,
) -> Option<Failure> {
    match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) if e.panicked => Some(Failure::Panic(e.message.into_string())),
        Ok(Err(e)) => Some(Failure::Error(e.message.into_string())),
        Err(payload) => Some(Failure::Panic(detector_api::abi::panic_message(
            payload.as_ref(),
        ))),
    }
}
