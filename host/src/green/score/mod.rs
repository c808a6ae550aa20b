//! Green scoring: turns I/O operations into energy (kWh, facility side)
//! and CO2 (grams), for each finding's avoidable operations and for every
//! operation of a trace. Energy per operation comes from a fresh
//! measurement of the service when a scraper has one, else from the proxy
//! model; intensity from a fresh real-time reading of the region when one
//! exists, else from the embedded table.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use detector_api::{Finding, IoKind, SpanView, TraceView};

use super::calibration::Calibration;
use super::model::{BASELINE_KWH_PER_OP, http_weight, proxy_op_kwh, sql_weight};
use super::regions::{self, RegionInfo, WORLD};
use super::state::EnergyState;
use crate::config::GreenConfig;

/// The low and high bands around the mid estimate.
pub const LOW_FACTOR: f64 = 0.5;
pub const HIGH_FACTOR: f64 = 2.0;

/// The span attribute naming the region (OpenTelemetry `cloud.region`).
const CLOUD_REGION: &str = "cloud.region";

/// A finding's energy and carbon.
#[derive(Debug, Clone, PartialEq)]
pub struct GreenImpact {
    pub energy_kwh: f64,
    /// Mid estimate; the band is [`LOW_FACTOR`] and [`HIGH_FACTOR`] times it.
    pub co2_gco2: f64,
    /// The region used, `unknown` when none was resolved.
    pub region: String,
    pub gco2_per_kwh: f64,
    /// `proxy`, `calibrated_proxy`, or `measured:<backend>`.
    pub energy_source: String,
}

/// One trace's energy, for the cumulative metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TraceEnergy {
    pub io_kwh: f64,
    /// Operational carbon of every operation plus the embodied carbon of
    /// the request.
    pub io_gco2: f64,
}

/// The scoring stage, shared by every shard.
#[derive(Debug)]
pub struct GreenScorer {
    default_region: Option<String>,
    service_regions: BTreeMap<String, String>,
    embodied_gco2: f64,
    state: Arc<EnergyState>,
    calibration: Arc<Calibration>,
}

/// Where a region came from and what it is worth.
struct Resolved<'a> {
    name: &'a str,
    info: RegionInfo,
    intensity: f64,
}

impl GreenScorer {
    pub fn new(config: &GreenConfig, state: Arc<EnergyState>) -> Self {
        Self {
            default_region: config.default_region.clone(),
            service_regions: config.service_regions.clone(),
            embodied_gco2: config.embodied_carbon_per_request_gco2,
            state,
            calibration: Arc::default(),
        }
    }

    /// Multiplies each calibrated service's proxy energy by its factor.
    pub fn with_calibration(mut self, calibration: Arc<Calibration>) -> Self {
        self.calibration = calibration;
        self
    }

    pub fn calibration(&self) -> &Arc<Calibration> {
        &self.calibration
    }

    pub fn state(&self) -> &Arc<EnergyState> {
        &self.state
    }

    /// The region of a span's service: the span's own `cloud.region`, then
    /// `[green.service_regions]`, then `default_region`.
    fn region<'a>(
        &'a self,
        service: &str,
        span: Option<&'a SpanView<'a>>,
        now: Instant,
    ) -> Resolved<'a> {
        let name = span
            .and_then(span_region)
            .or_else(|| self.service_regions.get(service).map(String::as_str))
            .or(self.default_region.as_deref());
        let info = name.and_then(regions::lookup).unwrap_or(WORLD);
        let name = name.unwrap_or("unknown");
        let intensity = self
            .state
            .grid(name, now)
            .map_or(info.gco2_per_kwh, |g| g.gco2_per_kwh);
        Resolved {
            name,
            info,
            intensity,
        }
    }

    /// IT energy of `ops` operations of `service` of weight `weight`, and
    /// where the figure came from.
    fn it_energy(&self, service: &str, ops: f64, weight: f64, now: Instant) -> (f64, Source) {
        match self.state.measured(service, now) {
            Some(m) => (m.kwh_per_op * ops, Source::Measured(m.backend)),
            None => match self.calibration.factors.get(service) {
                Some(f) => (BASELINE_KWH_PER_OP * weight * ops * f, Source::Calibrated),
                None => (BASELINE_KWH_PER_OP * weight * ops, Source::Proxy),
            },
        }
    }

    /// The energy and carbon of a finding's avoidable operations.
    pub fn score_finding(&self, f: &Finding, view: Option<&TraceView<'_>>) -> GreenImpact {
        self.score_finding_at(f, view, Instant::now())
    }

    pub(crate) fn score_finding_at(
        &self,
        f: &Finding,
        view: Option<&TraceView<'_>>,
        now: Instant,
    ) -> GreenImpact {
        let first = view.and_then(|v| {
            let id = f.evidence.first()?;
            v.spans().iter().find(|s| s.span_id == *id)
        });
        let kind = f.kind.as_str();
        let weight = if kind.contains("sql") {
            sql_weight(f.template.as_str())
        } else if kind.contains("http") {
            http_weight(first.and_then(|s| s.response_bytes.into_option()))
        } else {
            1.0
        };
        let service = f.service.as_str();
        let region = self.region(service, first, now);
        let (it, source) = self.it_energy(service, f64::from(f.avoidable_io), weight, now);
        let energy_kwh = it * region.info.pue;
        GreenImpact {
            energy_kwh,
            co2_gco2: energy_kwh * region.intensity,
            region: region.name.to_owned(),
            gco2_per_kwh: region.intensity,
            energy_source: match source {
                Source::Proxy => "proxy".to_owned(),
                Source::Calibrated => "calibrated_proxy".to_owned(),
                Source::Measured(b) => format!("measured:{b}"),
            },
        }
    }

    /// The energy and carbon of every outbound operation of a trace, plus
    /// the request's embodied carbon.
    pub fn score_trace(&self, view: &TraceView<'_>) -> TraceEnergy {
        let now = Instant::now();
        let spans = view.spans();
        let mut total = TraceEnergy {
            io_kwh: 0.0,
            io_gco2: self.embodied_gco2,
        };
        // A trace has few (service, region) pairs: resolve each once, so
        // the shared state is read per pair, not per span.
        let mut resolved: Vec<(&str, Option<&str>, PerOp)> = Vec::new();
        for k in [IoKind::Sql, IoKind::Http, IoKind::Messaging, IoKind::Rpc] {
            for &i in view.of_kind(k) {
                let s = &spans[i as usize];
                if s.span_kind.is_inbound() {
                    continue;
                }
                let service = s.service.as_str();
                let attr = span_region(s);
                let per_op = match resolved
                    .iter()
                    .find(|(sv, a, _)| *sv == service && *a == attr)
                {
                    Some((_, _, p)) => *p,
                    None => {
                        let region = self.region(service, Some(s), now);
                        let p = PerOp {
                            measured_kwh: self.state.measured(service, now).map(|m| m.kwh_per_op),
                            factor: self.calibration.factor(service),
                            pue: region.info.pue,
                            intensity: region.intensity,
                        };
                        resolved.push((service, attr, p));
                        p
                    }
                };
                let it = per_op.measured_kwh.unwrap_or_else(|| {
                    per_op.factor
                        * proxy_op_kwh(k, s.target.as_str(), s.response_bytes.into_option())
                });
                let kwh = it * per_op.pue;
                total.io_kwh += kwh;
                total.io_gco2 += kwh * per_op.intensity;
            }
        }
        total
    }
}

/// What one operation of a (service, region) pair costs, resolved once
/// per trace.
#[derive(Clone, Copy)]
struct PerOp {
    measured_kwh: Option<f64>,
    /// The calibration factor on the proxy energy.
    factor: f64,
    pue: f64,
    intensity: f64,
}

/// Where an energy figure came from.
enum Source {
    Proxy,
    Calibrated,
    Measured(&'static str),
}

/// A span's own `cloud.region`, when it has a non-empty one.
fn span_region<'a>(span: &'a SpanView<'a>) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|a| a.key.as_str() == CLOUD_REGION)
        .map(|a| a.value.as_str())
        .filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests;
