//! The scrapers' health on `/metrics`, computed when scraped: per backend
//! `perf_sentinel_<backend>_last_scrape_age_seconds`,
//! `_scrape_total{status}` and `_scrape_failed_total{reason}`, and
//! `perf_sentinel_energy_backend_configured{backend}`.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::BACKENDS;
use crate::green::state::EnergyState;

#[derive(Debug)]
pub struct HealthCollector {
    state: Arc<EnergyState>,
    started: Instant,
}

impl HealthCollector {
    pub fn new(state: Arc<EnergyState>) -> Self {
        Self {
            state,
            started: Instant::now(),
        }
    }
}

impl Collector for HealthCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let backends = self.state.backends();
        let now = Instant::now();
        let configured = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "energy_backend_configured",
            "1 for each energy scraper configured in [green.<backend>], else 0",
            None,
            configured.metric_type(),
        )?;
        for name in BACKENDS {
            let g = ConstGauge::new(i64::from(backends.contains_key(name)));
            g.encode(family.encode_family(&[("backend", *name)])?)?;
        }
        for (name, h) in &backends {
            // Never scraped: the age runs from startup, so a backend that
            // never answers still trips the staleness alert.
            let since = h.last_success.unwrap_or(self.started);
            let age = ConstGauge::new(now.saturating_duration_since(since).as_secs_f64());
            let age_name = format!("{name}_last_scrape_age_seconds");
            let total_name = format!("{name}_scrape");
            let failed_name = format!("{name}_scrape_failed");
            let e = encoder.encode_descriptor(
                &age_name,
                "Seconds since the last successful scrape (since startup before the first)",
                None,
                age.metric_type(),
            )?;
            age.encode(e)?;
            let failed: u64 = h.failed_total.values().sum();
            let c = ConstCounter::new(0u64);
            let mut total = encoder.encode_descriptor(
                &total_name,
                "Scrapes, by status (ok or error)",
                None,
                c.metric_type(),
            )?;
            for (status, n) in [("ok", h.ok_total), ("error", failed)] {
                ConstCounter::new(n).encode(total.encode_family(&[("status", status)])?)?;
            }
            let mut by_reason = encoder.encode_descriptor(
                &failed_name,
                "Failed scrapes, by reason",
                None,
                c.metric_type(),
            )?;
            for (reason, n) in &h.failed_total {
                ConstCounter::new(*n).encode(by_reason.encode_family(&[("reason", *reason)])?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn every_backend_exports_the_names_the_chart_alerts_on() {
        let state = Arc::new(EnergyState::new());
        let mut metrics = Metrics::new();
        metrics.register_collector(Box::new(HealthCollector::new(state.clone())));
        for b in BACKENDS {
            state.configure(b, "http://x:1".into(), Duration::from_secs(5));
        }
        state.scrape_ok("kepler", vec![], Instant::now());
        state.scrape_failed("kepler", "timeout", "timed out".into());
        let text = metrics.encode_prometheus();
        for b in BACKENDS {
            // The Helm chart's PerfSentinelEnergyScraperStale rule.
            assert!(
                text.contains(&format!("\nperf_sentinel_{b}_last_scrape_age_seconds ")),
                "{b}: {text}"
            );
            assert!(
                text.contains(&format!(
                    "perf_sentinel_energy_backend_configured{{backend=\"{b}\"}} 1"
                )),
                "{text}"
            );
        }
        assert!(
            text.contains("perf_sentinel_kepler_scrape_total{status=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("perf_sentinel_kepler_scrape_total{status=\"error\"} 1"));
        assert!(text.contains("perf_sentinel_kepler_scrape_failed_total{reason=\"timeout\"} 1"));
        let chart = include_str!("../../../../charts/perf-sentinel/templates/prometheusrule.yaml");
        assert!(chart.contains("perf_sentinel_{{ . }}_last_scrape_age_seconds"));
    }
}
