//! Kepler's Prometheus exporter: cumulative CPU energy in joules per
//! container (`kepler_container_cpu_joules_total{container_name, zone}`)
//! or per process (`kepler_process_cpu_joules_total{comm, exe, zone}`).
//! Energy in a window is the counters' delta; a counter that went down
//! was reset (exporter restart) and counts from zero.

use std::collections::{BTreeMap, HashMap};

use super::ParseError;
use super::prom_text::samples;
use crate::config::KeplerKind;

pub const CONTAINER_METRIC: &str = "kepler_container_cpu_joules_total";
pub const PROCESS_METRIC: &str = "kepler_process_cpu_joules_total";

/// RAPL zones summed: `package` already holds `core` and `uncore`.
fn counted_zone(zone: Option<&str>) -> bool {
    matches!(zone, None | Some("package") | Some("dram"))
}

/// One counter of a mapped service: (service, series identity, joules).
pub type Counter = (String, String, f64);

/// The counters of mapped services in one scrape.
pub fn parse(
    body: &str,
    kind: KeplerKind,
    mappings: &BTreeMap<String, String>,
) -> Result<Vec<Counter>, ParseError> {
    let metric = match kind {
        KeplerKind::Container => CONTAINER_METRIC,
        KeplerKind::Process => PROCESS_METRIC,
    };
    let mut out = Vec::new();
    let mut seen = 0usize;
    samples(
        body,
        |n| n == metric,
        |s| {
            seen += 1;
            if !(s.value.is_finite() && s.value >= 0.0 && counted_zone(s.label("zone"))) {
                return;
            }
            let matches = |target: &str| match kind {
                KeplerKind::Container => s.label("container_name") == Some(target),
                KeplerKind::Process => {
                    s.label("comm") == Some(target)
                        || s.label("exe").is_some_and(|e| e.contains(target))
                }
            };
            if let Some((service, _)) = mappings.iter().find(|(_, t)| matches(t)) {
                let mut id = String::new();
                for (k, v) in &s.labels {
                    id.push_str(k);
                    id.push('=');
                    id.push_str(v);
                    id.push('\u{1f}');
                }
                out.push((service.clone(), id, s.value));
            }
        },
    )?;
    if seen == 0 {
        return Err(ParseError::Missing(metric));
    }
    Ok(out)
}

/// The previous scrape's counters, to turn totals into window deltas.
#[derive(Debug, Default)]
pub struct Deltas {
    last: HashMap<String, f64>,
}

impl Deltas {
    /// Joules per service since the previous scrape. A series seen for the
    /// first time sets its baseline and counts nothing; series gone from
    /// the scrape are forgotten.
    pub fn update(&mut self, counters: Vec<Counter>) -> BTreeMap<String, f64> {
        let mut joules: BTreeMap<String, f64> = BTreeMap::new();
        let mut next = HashMap::with_capacity(counters.len());
        for (service, id, value) in counters {
            if let Some(&prev) = self.last.get(&id) {
                let delta = if value >= prev { value - prev } else { value };
                *joules.entry(service).or_insert(0.0) += delta;
            }
            next.insert(id, value);
        }
        self.last = next;
        joules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(orders_pkg: f64, orders_dram: f64) -> String {
        format!(
            r#"# HELP kepler_container_cpu_joules_total Energy consumption of cpu at container level in joules
# TYPE kepler_container_cpu_joules_total counter
kepler_container_cpu_joules_total{{container_id="4f1c",container_name="orders",runtime="containerd",state="running",zone="package"}} {orders_pkg}
kepler_container_cpu_joules_total{{container_id="4f1c",container_name="orders",runtime="containerd",state="running",zone="core"}} 999999
kepler_container_cpu_joules_total{{container_id="4f1c",container_name="orders",runtime="containerd",state="running",zone="dram"}} {orders_dram}
kepler_container_cpu_joules_total{{container_id="77aa",container_name="redis",runtime="containerd",state="running",zone="package"}} 50
# HELP kepler_process_cpu_joules_total Energy consumption of cpu at process level in joules
# TYPE kepler_process_cpu_joules_total counter
kepler_process_cpu_joules_total{{comm="orders-api",exe="/app/orders-api",pid="4211",state="running",type="container",zone="package"}} 70
"#
        )
    }

    fn map() -> BTreeMap<String, String> {
        [("orders".to_owned(), "orders".to_owned())].into()
    }

    #[test]
    fn window_energy_is_the_delta_of_package_and_dram() {
        let mut d = Deltas::default();
        let first = parse(&body(100.0, 10.0), KeplerKind::Container, &map()).unwrap();
        assert_eq!(first.len(), 2, "core is inside package, redis is unmapped");
        assert!(d.update(first).is_empty(), "the first scrape is a baseline");
        let second = parse(&body(130.0, 12.5), KeplerKind::Container, &map()).unwrap();
        let j = d.update(second);
        assert!((j["orders"] - 32.5).abs() < 1e-9, "{j:?}");
    }

    #[test]
    fn a_counter_reset_counts_from_zero() {
        let mut d = Deltas::default();
        d.update(parse(&body(5000.0, 100.0), KeplerKind::Container, &map()).unwrap());
        // Kepler restarted: counters start again near zero.
        let j = d.update(parse(&body(20.0, 2.0), KeplerKind::Container, &map()).unwrap());
        assert!((j["orders"] - 22.0).abs() < 1e-9, "{j:?}");
        let j = d.update(parse(&body(30.0, 3.0), KeplerKind::Container, &map()).unwrap());
        assert!((j["orders"] - 11.0).abs() < 1e-9, "{j:?}");
    }

    #[test]
    fn process_mode_matches_comm_or_exe() {
        let map = [("orders".to_owned(), "orders-api".to_owned())].into();
        let c = parse(&body(1.0, 1.0), KeplerKind::Process, &map).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].2, 70.0);
    }

    #[test]
    fn missing_metric_and_garbage_are_errors() {
        assert!(matches!(
            parse("up 1\n", KeplerKind::Container, &map()),
            Err(ParseError::Missing(CONTAINER_METRIC))
        ));
        assert!(
            parse(
                "kepler_container_cpu_joules_total{container_name=orders} 1\n",
                KeplerKind::Container,
                &map()
            )
            .is_err()
        );
    }
}
