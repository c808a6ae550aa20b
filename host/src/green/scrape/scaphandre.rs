//! Scaphandre's Prometheus exporter: per-process power in microwatts
//! (`scaph_process_power_consumption_microwatts{pid, exe, cmdline}`),
//! summed per service over the processes its `process_map` matcher finds
//! in `exe` or `cmdline`.

use std::collections::BTreeMap;

use super::ParseError;
use super::prom_text::samples;

pub const METRIC: &str = "scaph_process_power_consumption_microwatts";

/// Watts per service now. A service whose matcher finds no process is
/// absent.
pub fn parse(
    body: &str,
    process_map: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, f64>, ParseError> {
    let mut watts: BTreeMap<String, f64> = BTreeMap::new();
    let mut seen = 0usize;
    samples(
        body,
        |n| n == METRIC,
        |s| {
            seen += 1;
            if !(s.value.is_finite() && s.value >= 0.0) {
                return;
            }
            let exe = s.label("exe").unwrap_or("");
            let cmdline = s.label("cmdline").unwrap_or("");
            for (service, matcher) in process_map {
                if exe.contains(matcher.as_str()) || cmdline.contains(matcher.as_str()) {
                    *watts.entry(service.clone()).or_insert(0.0) += s.value / 1e6;
                }
            }
        },
    )?;
    if seen == 0 {
        return Err(ParseError::Missing(METRIC));
    }
    Ok(watts)
}

#[cfg(test)]
mod tests {
    use super::*;

    // As Scaphandre's exporter serves it (HELP/TYPE, then one gauge per
    // process; labels exe, pid, cmdline).
    const BODY: &str = r#"# HELP scaph_host_power_microwatts Power measurement on the whole host, in microwatts
# TYPE scaph_host_power_microwatts gauge
scaph_host_power_microwatts 24567000
# HELP scaph_process_power_consumption_microwatts Power consumption due to the process, measured on at the topology level, in microwatts
# TYPE scaph_process_power_consumption_microwatts gauge
scaph_process_power_consumption_microwatts{exe="java",pid="4211",cmdline="java -jar /app/orders-api.jar"} 3250000
scaph_process_power_consumption_microwatts{exe="java",pid="4388",cmdline="java -jar /app/orders-api.jar --worker"} 750000
scaph_process_power_consumption_microwatts{exe="billing",pid="5120",cmdline="/usr/bin/billing --port 8080"} 1200000
scaph_process_power_consumption_microwatts{exe="postgres",pid="901",cmdline="postgres: checkpointer"} 400000
"#;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect()
    }

    #[test]
    fn sums_the_matching_processes_of_each_service() {
        let w = parse(
            BODY,
            &map(&[
                ("orders", "orders-api"),
                ("billing", "billing"),
                ("cart", "cart"),
            ]),
        )
        .unwrap();
        assert_eq!(w.len(), 2);
        assert!((w["orders"] - 4.0).abs() < 1e-12);
        assert!((w["billing"] - 1.2).abs() < 1e-12);
    }

    #[test]
    fn a_body_without_process_power_is_an_error() {
        let e = parse("scaph_host_power_microwatts 1\n", &map(&[("a", "a")])).unwrap_err();
        assert!(e.to_string().contains(METRIC), "{e}");
        let e = parse(
            "scaph_process_power_consumption_microwatts{exe=\"a\" 1\n",
            &map(&[("a", "a")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }
}
