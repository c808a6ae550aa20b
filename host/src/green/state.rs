//! What the scrapers have learned, shared by the pollers (writers) and the
//! scoring stage and API (readers): measured energy per I/O operation by
//! service, real-time grid intensity by region, and each backend's health.
//! A reading stays in use while fresh: for three scrape intervals after it
//! was taken; after that the proxy model (or the embedded table) is back.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Intervals without a successful scrape after which a reading is dropped.
pub const MISSED_INTERVALS: u32 = 3;

/// A backend's identity: its config section name, also its metric prefix.
pub type BackendName = &'static str;

/// Measured energy per operation of one service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    pub kwh_per_op: f64,
    pub backend: BackendName,
    taken: Instant,
    interval: Duration,
}

/// A real-time grid intensity for one region.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridReading {
    pub gco2_per_kwh: f64,
    pub backend: BackendName,
    taken: Instant,
    interval: Duration,
}

fn fresh(taken: Instant, interval: Duration, now: Instant) -> bool {
    now.saturating_duration_since(taken) <= interval * MISSED_INTERVALS
}

/// One backend's scrape history.
#[derive(Debug, Clone, Default)]
pub struct BackendHealth {
    /// scheme://host:port only: paths and queries may carry tokens.
    pub endpoint: String,
    pub interval: Duration,
    pub last_success: Option<Instant>,
    pub last_success_unix_ms: Option<u64>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub ok_total: u64,
    /// By reason (`timeout`, `connect`, `http_status`, `too_large`, `parse`...).
    pub failed_total: BTreeMap<&'static str, u64>,
    /// Services (or regions) the last good scrape gave a reading for.
    pub covered: Vec<String>,
}

#[derive(Debug, Default)]
struct Inner {
    measured: HashMap<String, Measured>,
    grid: HashMap<String, GridReading>,
    backends: BTreeMap<BackendName, BackendHealth>,
}

/// Shared energy knowledge.
#[derive(Debug, Default)]
pub struct EnergyState {
    /// False until a measurement arrives: scoring skips the lock until then.
    any_reading: AtomicBool,
    inner: RwLock<Inner>,
}

impl EnergyState {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Declares a configured backend, before its first scrape.
    pub fn configure(&self, backend: BackendName, endpoint: String, interval: Duration) {
        self.write().backends.insert(
            backend,
            BackendHealth {
                endpoint,
                interval,
                ..BackendHealth::default()
            },
        );
    }

    /// Records measured energy per op for services, from one good scrape.
    pub fn set_measured(
        &self,
        backend: BackendName,
        readings: impl IntoIterator<Item = (String, f64)>,
        now: Instant,
    ) {
        self.record(
            backend,
            readings,
            |inner| &mut inner.measured,
            |kwh_per_op, interval| Measured {
                kwh_per_op,
                backend,
                taken: now,
                interval,
            },
        );
    }

    /// Records real-time grid intensities by region.
    pub fn set_grid(
        &self,
        backend: BackendName,
        readings: impl IntoIterator<Item = (String, f64)>,
        now: Instant,
    ) {
        self.record(
            backend,
            readings,
            |inner| &mut inner.grid,
            |gco2_per_kwh, interval| GridReading {
                gco2_per_kwh,
                backend,
                taken: now,
                interval,
            },
        );
    }

    /// Stores `readings` of `backend` (finite and non-negative ones only)
    /// in the map `map` picks, each made by `make` with the backend's
    /// scrape interval.
    fn record<T>(
        &self,
        backend: BackendName,
        readings: impl IntoIterator<Item = (String, f64)>,
        map: impl FnOnce(&mut Inner) -> &mut HashMap<String, T>,
        make: impl Fn(f64, Duration) -> T,
    ) {
        let mut inner = self.write();
        let interval = inner
            .backends
            .get(backend)
            .map_or(Duration::ZERO, |b| b.interval);
        let map = map(&mut inner);
        for (key, value) in readings {
            if value.is_finite() && value >= 0.0 {
                map.insert(key, make(value, interval));
            }
        }
        self.any_reading.store(true, Ordering::Release);
    }

    /// A successful scrape, covering `covered`.
    pub fn scrape_ok(&self, backend: BackendName, covered: Vec<String>, now: Instant) {
        let mut inner = self.write();
        let b = inner.backends.entry(backend).or_default();
        b.last_success = Some(now);
        b.last_success_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64);
        b.consecutive_failures = 0;
        b.last_error = None;
        b.ok_total += 1;
        b.covered = covered;
    }

    /// A failed scrape; `message` must already be free of secrets.
    pub fn scrape_failed(&self, backend: BackendName, reason: &'static str, message: String) {
        let mut inner = self.write();
        let b = inner.backends.entry(backend).or_default();
        b.consecutive_failures = b.consecutive_failures.saturating_add(1);
        b.last_error = Some(message);
        *b.failed_total.entry(reason).or_insert(0) += 1;
    }

    /// The fresh measured energy per op of `service`, if any.
    pub fn measured(&self, service: &str, now: Instant) -> Option<Measured> {
        if !self.any_reading.load(Ordering::Acquire) {
            return None;
        }
        self.read()
            .measured
            .get(service)
            .filter(|m| fresh(m.taken, m.interval, now))
            .copied()
    }

    /// The fresh real-time intensity of `region`, if any.
    pub fn grid(&self, region: &str, now: Instant) -> Option<GridReading> {
        if !self.any_reading.load(Ordering::Acquire) {
            return None;
        }
        self.read()
            .grid
            .get(region)
            .filter(|g| fresh(g.taken, g.interval, now))
            .copied()
    }

    /// Every configured backend's health.
    pub fn backends(&self) -> BTreeMap<BackendName, BackendHealth> {
        self.read().backends.clone()
    }

    /// Every service with a measured reading, fresh or not, and whether it
    /// is fresh.
    pub fn measured_services(&self, now: Instant) -> BTreeMap<String, (Measured, bool)> {
        self.read()
            .measured
            .iter()
            .map(|(s, m)| (s.clone(), (*m, fresh(m.taken, m.interval, now))))
            .collect()
    }

    /// Every region with a real-time reading, and whether it is fresh.
    pub fn grid_regions(&self, now: Instant) -> BTreeMap<String, (GridReading, bool)> {
        self.read()
            .grid
            .iter()
            .map(|(r, g)| (r.clone(), (*g, fresh(g.taken, g.interval, now))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_is_used_for_three_intervals_then_dropped() {
        let state = EnergyState::new();
        let interval = Duration::from_secs(5);
        state.configure("kepler", "http://k:9102".into(), interval);
        let t0 = Instant::now();
        assert!(state.measured("api", t0).is_none());
        state.set_measured("kepler", [("api".to_owned(), 2e-7)], t0);
        assert_eq!(state.measured("api", t0).unwrap().kwh_per_op, 2e-7);
        // Two and then three scrapes missed: still in use.
        assert!(state.measured("api", t0 + interval * 2).is_some());
        assert!(state.measured("api", t0 + interval * 3).is_some());
        // Past the third missed interval: back to the proxy.
        let later = t0 + interval * 3 + Duration::from_millis(1);
        assert!(state.measured("api", later).is_none());
        assert!(state.measured("other", t0).is_none());
        // A new reading makes it fresh again.
        state.set_measured("kepler", [("api".to_owned(), 3e-7)], later);
        assert_eq!(state.measured("api", later).unwrap().kwh_per_op, 3e-7);
    }

    #[test]
    fn nonsense_readings_are_ignored_and_health_is_counted() {
        let state = EnergyState::new();
        state.configure("scaphandre", "http://s:8080".into(), Duration::from_secs(5));
        let now = Instant::now();
        state.set_measured(
            "scaphandre",
            [("a".to_owned(), f64::NAN), ("b".to_owned(), -1.0)],
            now,
        );
        assert!(state.measured("a", now).is_none() && state.measured("b", now).is_none());
        state.scrape_failed("scaphandre", "timeout", "timed out".into());
        state.scrape_failed("scaphandre", "timeout", "timed out".into());
        let h = &state.backends()["scaphandre"];
        assert_eq!(h.consecutive_failures, 2);
        assert_eq!(h.failed_total["timeout"], 2);
        state.scrape_ok("scaphandre", vec!["a".into()], now);
        let h = &state.backends()["scaphandre"];
        assert_eq!((h.consecutive_failures, h.ok_total), (0, 1));
        assert!(h.last_error.is_none() && h.last_success.is_some());
    }
}
