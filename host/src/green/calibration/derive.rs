//! Deriving calibration factors: the proxy energy the model gives each
//! service's outbound operations in a trace file, against the energy
//! measured over the same time window. A service's factor is measured over
//! proxy: like the scrapers' measured energy per operation, it charges the
//! service's whole measured energy to its I/O.

use std::collections::BTreeMap;
use std::path::Path;

use detector_api::IoKind;
use thiserror::Error;

use super::measured::{Measured, MeasuredError};
use super::{Calibration, FACTOR_RANGE};
use crate::batch::{InputError, MAX_ELEMENT, input, read};
use crate::green::model::proxy_op_kwh;

/// What the trace file's outbound operations cost under the proxy model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub services: BTreeMap<String, ServiceUsage>,
    /// The first span start and the last span end, Unix seconds.
    pub from_s: f64,
    pub to_s: f64,
    pub spans: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServiceUsage {
    pub ops: u64,
    /// Proxy IT energy of those operations, kWh (no PUE: measurements are
    /// of the machines, not the facility).
    pub proxy_kwh: f64,
}

/// One service's line of the derivation, for the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub service: String,
    pub ops: u64,
    pub proxy_kwh: f64,
    pub measured_kwh: f64,
    /// `None` when no factor was written; the reason is in [`Derived::notes`].
    pub factor: Option<f64>,
}

/// The factors, and what was left out and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub calibration: Calibration,
    pub lines: Vec<Line>,
    pub notes: Vec<String>,
}

#[derive(Debug, Error)]
pub enum CalibrateError {
    #[error("traces {name} {source}")]
    Traces { name: String, source: InputError },
    #[error("measured energy {0}")]
    Measured(#[from] MeasuredError),
    #[error("{0}")]
    Unusable(String),
}

/// Reads the trace file (any format `analyze` reads) and sums the proxy
/// energy of every outbound operation, per service.
pub fn usage(path: &Path, max_input: u64, threads: usize) -> Result<Usage, CalibrateError> {
    let opened = input::open(path, max_input)
        .map_err(|(name, source)| CalibrateError::Traces { name, source })?;
    let name = opened.name;
    let outcome = read::read(
        opened.reader,
        read::ReadSettings {
            max_element: MAX_ELEMENT,
            max_spans_per_trace: usize::MAX,
            workers: threads,
        },
    )
    .map_err(|source| CalibrateError::Traces {
        name: name.clone(),
        source,
    })?;
    let traces = outcome.traces;
    if traces.is_empty() {
        return Err(CalibrateError::Traces {
            name,
            source: InputError::NoSpans,
        });
    }
    let mut u = Usage {
        from_s: f64::INFINITY,
        to_s: 0.0,
        ..Usage::default()
    };
    for n in 0..traces.len() {
        let Some(frag) = traces.fragment(n) else {
            break;
        };
        for s in &frag.spans {
            u.spans += 1;
            u.from_s = u.from_s.min(s.start_ns as f64 / 1e9);
            u.to_s = u
                .to_s
                .max(s.start_ns.saturating_add(s.duration_ns) as f64 / 1e9);
            let kind = s.kind.0;
            if !matches!(
                kind,
                IoKind::Sql | IoKind::Http | IoKind::Messaging | IoKind::Rpc
            ) || s.span_kind.0.is_inbound()
            {
                continue;
            }
            let service = frag.arena.get(s.service);
            let entry = match u.services.get_mut(service) {
                Some(e) => e,
                None => u.services.entry(service.to_owned()).or_default(),
            };
            entry.ops += 1;
            entry.proxy_kwh += proxy_op_kwh(kind, frag.arena.get(s.target), s.response_bytes);
        }
    }
    Ok(u)
}

/// Each service's factor: the energy measured over the traces' window,
/// over its proxy energy. Rows without a service measure the whole system:
/// one factor, shared by every service.
pub fn derive(usage: &Usage, measured: &Measured) -> Result<Derived, CalibrateError> {
    let (from, to) = (usage.from_s, usage.to_s);
    if to <= from {
        return Err(CalibrateError::Unusable(
            "the traces span no time: their spans all start and end at the same instant".into(),
        ));
    }
    let system = measured.series.get(&None);
    if system.is_some() && measured.series.len() > 1 {
        return Err(CalibrateError::Unusable(
            "the measurements mix rows with a service and rows without one; \
             give every row a service, or none"
                .into(),
        ));
    }
    let mut out = Derived {
        calibration: Calibration::default(),
        lines: Vec::new(),
        notes: Vec::new(),
    };
    let window = format!("{} to {}", rfc3339(from), rfc3339(to));
    if let Some(samples) = system {
        let measured_kwh = measured.energy_kwh(samples, from, to);
        let proxy: f64 = usage.services.values().map(|s| s.proxy_kwh).sum();
        if measured_kwh <= 0.0 {
            return Err(CalibrateError::Unusable(format!(
                "the measurements hold no energy inside the traces' window ({window})"
            )));
        }
        if proxy <= 0.0 {
            return Err(CalibrateError::Unusable(
                "the traces have no outbound I/O operation to calibrate".into(),
            ));
        }
        let factor = round(measured_kwh / proxy);
        let ok = checked(factor, "the system", &mut out.notes);
        for (service, s) in &usage.services {
            out.lines.push(Line {
                service: service.clone(),
                ops: s.ops,
                proxy_kwh: s.proxy_kwh,
                measured_kwh: measured_kwh * s.proxy_kwh / proxy,
                factor: ok.then_some(factor),
            });
            if ok {
                out.calibration.factors.insert(service.clone(), factor);
            }
        }
        return Ok(out);
    }
    for (service, s) in &usage.services {
        let Some(samples) = measured.series.get(&Some(service.clone())) else {
            out.notes.push(format!(
                "{service}: no measurement; it keeps the proxy model"
            ));
            out.lines.push(line(service, s, 0.0, None));
            continue;
        };
        let measured_kwh = measured.energy_kwh(samples, from, to);
        if measured_kwh <= 0.0 {
            out.notes.push(format!(
                "{service}: no measured energy inside the traces' window ({window})"
            ));
            out.lines.push(line(service, s, 0.0, None));
            continue;
        }
        let factor = round(measured_kwh / s.proxy_kwh);
        let ok = checked(factor, service, &mut out.notes);
        if ok {
            out.calibration.factors.insert(service.clone(), factor);
        }
        out.lines
            .push(line(service, s, measured_kwh, ok.then_some(factor)));
    }
    for name in measured.series.keys().flatten() {
        if !usage.services.contains_key(name) {
            out.notes.push(format!(
                "{name}: measured, but it has no outbound I/O in the traces"
            ));
        }
    }
    if out.calibration.factors.is_empty() {
        return Err(CalibrateError::Unusable(format!(
            "no service could be calibrated: {}",
            out.notes.join("; ")
        )));
    }
    Ok(out)
}

fn line(service: &str, s: &ServiceUsage, measured_kwh: f64, factor: Option<f64>) -> Line {
    Line {
        service: service.to_owned(),
        ops: s.ops,
        proxy_kwh: s.proxy_kwh,
        measured_kwh,
        factor,
    }
}

fn checked(factor: f64, who: &str, notes: &mut Vec<String>) -> bool {
    let ok = FACTOR_RANGE.contains(&factor);
    if !ok {
        notes.push(format!(
            "{who}: factor {factor} is outside {}..={}: the measurement and the traces do not \
             describe the same work (wrong window, or a sampled trace file?)",
            FACTOR_RANGE.start(),
            FACTOR_RANGE.end()
        ));
    }
    ok
}

/// Four significant digits: the model is not more precise than that.
fn round(f: f64) -> f64 {
    if f == 0.0 || !f.is_finite() {
        return f;
    }
    let scale = 10f64.powi(3 - f.abs().log10().floor() as i32);
    (f * scale).round() / scale
}

fn rfc3339(s: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos((s * 1e9) as i128)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{s} s"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::green::calibration::measured::Measured;

    fn usage(services: &[(&str, u64, f64)]) -> Usage {
        Usage {
            services: services
                .iter()
                .map(|&(n, ops, kwh)| {
                    (
                        n.to_owned(),
                        ServiceUsage {
                            ops,
                            proxy_kwh: kwh,
                        },
                    )
                })
                .collect(),
            from_s: 100.0,
            to_s: 200.0,
            spans: 10,
        }
    }

    #[test]
    fn per_service_factors_are_measured_over_proxy() {
        // api: 36,000 W·s over the window = 0.01 kWh, against 0.004 proxy.
        let m =
            Measured::parse(b"timestamp,watts,service\n100,360,api\n200,360,api\n150,1,ghost\n")
                .unwrap();
        let d = derive(&usage(&[("api", 40, 0.004), ("db", 3, 0.001)]), &m).unwrap();
        assert_eq!(d.calibration.factors, BTreeMap::from([("api".into(), 2.5)]));
        assert_eq!(d.lines[0].measured_kwh, 0.01);
        assert_eq!(d.lines[1].factor, None);
        assert!(
            d.notes[0].starts_with("db: no measurement"),
            "{:?}",
            d.notes
        );
        assert!(
            d.notes[1].starts_with("ghost: measured, but"),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn system_rows_give_every_service_one_factor() {
        let m = Measured::parse(b"timestamp,kwh\n150,0.03\n250,9\n").unwrap();
        let d = derive(&usage(&[("api", 1, 0.002), ("db", 1, 0.001)]), &m).unwrap();
        assert_eq!(
            d.calibration.factors,
            BTreeMap::from([("api".into(), 10.0), ("db".into(), 10.0)])
        );
        assert!((d.lines[0].measured_kwh - 0.02).abs() < 1e-12);
    }

    #[test]
    fn unusable_pairs_say_why() {
        let mixed = Measured::parse(b"timestamp,kwh,service\n150,1,\n150,1,api\n").unwrap();
        let e = derive(&usage(&[("api", 1, 0.1)]), &mixed).unwrap_err();
        assert!(e.to_string().contains("mix rows"), "{e}");
        let outside = Measured::parse(b"timestamp,kwh\n500,1\n").unwrap();
        let e = derive(&usage(&[("api", 1, 0.1)]), &outside).unwrap_err();
        assert!(
            e.to_string()
                .contains("no energy inside the traces' window (1970-01-01T00:01:40Z"),
            "{e}"
        );
        let absurd = Measured::parse(b"timestamp,kwh,service\n150,1e6,api\n").unwrap();
        let e = derive(&usage(&[("api", 1, 1e-7)]), &absurd).unwrap_err();
        assert!(e.to_string().contains("outside 0.001..=1000"), "{e}");
        let mut instant = usage(&[("api", 1, 0.1)]);
        instant.to_s = instant.from_s;
        assert!(derive(&instant, &outside).is_err());
    }

    #[test]
    fn factors_keep_four_significant_digits() {
        assert_eq!(round(2.345_678), 2.346);
        assert_eq!(round(0.001_234_56), 0.001_235);
        assert_eq!(round(123_456.0), 123_500.0);
    }
}
