//! Power figures of common cloud instance types, SPECpower-style: watts
//! at idle and at full load, for the `[green.cloud]` scraper's
//! `idle + (max - idle) x CPU` estimate. Sources in docs/ENERGY.md.

/// (CPU family, idle watts per vCPU, full-load watts per vCPU): the
/// SPECpower-derived figures Cloud Carbon Footprint publishes per
/// microarchitecture.
const FAMILIES: &[(&str, f64, f64)] = &[
    ("skylake", 0.65, 4.26),
    ("cascade_lake", 0.64, 3.97),
    ("epyc_2nd_gen", 0.47, 1.64),
    ("graviton2", 0.47, 1.69),
];

/// (instance type, vCPUs, CPU family).
const INSTANCES: &[(&str, u32, &str)] = &[
    // AWS
    ("t3.medium", 2, "skylake"),
    ("t3.large", 2, "skylake"),
    ("m5.large", 2, "skylake"),
    ("m5.xlarge", 4, "skylake"),
    ("m5.2xlarge", 8, "skylake"),
    ("c5.large", 2, "skylake"),
    ("c5.xlarge", 4, "skylake"),
    ("r5.large", 2, "skylake"),
    ("m6g.large", 2, "graviton2"),
    ("m6g.xlarge", 4, "graviton2"),
    ("c6g.large", 2, "graviton2"),
    // GCP
    ("n2-standard-2", 2, "cascade_lake"),
    ("n2-standard-4", 4, "cascade_lake"),
    ("n2d-standard-2", 2, "epyc_2nd_gen"),
    // Azure
    ("Standard_D2s_v4", 2, "cascade_lake"),
    ("Standard_D4s_v4", 4, "cascade_lake"),
    ("Standard_D2as_v4", 2, "epyc_2nd_gen"),
];

/// Idle and full-load watts of `instance_type`.
pub fn power(instance_type: &str) -> Option<(f64, f64)> {
    let &(_, vcpus, family) = INSTANCES
        .iter()
        .find(|(name, _, _)| *name == instance_type)?;
    let &(_, idle, max) = FAMILIES.iter().find(|(f, _, _)| *f == family)?;
    let n = f64::from(vcpus);
    Some((idle * n, max * n))
}

/// True when the table knows `instance_type`.
pub fn known(instance_type: &str) -> bool {
    power(instance_type).is_some()
}

/// Every known instance type, in table order.
pub fn names() -> Vec<&'static str> {
    INSTANCES.iter().map(|(n, _, _)| *n).collect()
}

/// Watts at `cpu` utilisation (0..=1, clamped).
pub fn watts(instance_type: &str, cpu: f64) -> Option<f64> {
    let (idle, max) = power(instance_type)?;
    let cpu = if cpu.is_finite() {
        cpu.clamp(0.0, 1.0)
    } else {
        0.0
    };
    Some(idle + (max - idle) * cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watts_interpolate_between_idle_and_max() {
        // m5.large: 2 Skylake vCPUs, 0.65 W idle and 4.26 W busy each.
        assert_eq!(watts("m5.large", 0.0), Some(1.3));
        assert_eq!(watts("m5.large", 1.0), Some(8.52));
        let half = watts("m5.large", 0.5).unwrap();
        assert!((half - 4.91).abs() < 1e-9, "{half}");
        assert_eq!(watts("m5.large", 7.0), Some(8.52));
        assert_eq!(watts("m5.large", f64::NAN), Some(1.3));
        assert_eq!(watts("z9.huge", 0.5), None);
    }

    #[test]
    fn every_entry_is_sane() {
        for (name, _, _) in INSTANCES {
            let (idle, max) = power(name).expect(name);
            assert!(idle > 0.0 && max > idle, "{name}");
        }
    }
}
