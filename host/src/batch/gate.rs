//! The quality gate: `[thresholds]` against what the analysis found.
//!
//! Findings are counted as distinct problems (one per signature, however
//! many traces show it), so a test suite that hits one endpoint fifty times
//! reports one N+1, not fifty. A count rule takes the findings of its kind
//! at its severity or worse (`n_plus_one_http_warning_max` counts critical
//! ones too). Acknowledged findings are not counted, and their avoidable
//! I/O is left out of the waste ratio.

use detector_api::Severity;
use serde::Serialize;

use crate::config::ThresholdsConfig;

use super::analysis::IoTotals;

/// One rule's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// The `[thresholds]` key.
    pub rule: &'static str,
    pub limit: Measure,
    pub actual: Measure,
    pub passed: bool,
}

/// A count of findings or a ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Measure {
    Count(u64),
    Ratio(f64),
}

/// Every rule, and whether all passed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gate {
    pub passed: bool,
    pub rules: Vec<Rule>,
}

/// What a count rule counts.
struct CountRule {
    rule: &'static str,
    kind: &'static str,
    at_least: Severity,
    limit: u32,
}

/// Evaluates the thresholds; `findings` are the unacknowledged ones, as
/// (kind, worst severity) per signature.
pub fn evaluate<'a>(
    thresholds: &ThresholdsConfig,
    findings: impl Iterator<Item = (&'a str, Severity)> + Clone,
    io: IoTotals,
) -> Gate {
    let counts = [
        CountRule {
            rule: "n_plus_one_sql_critical_max",
            kind: "n_plus_one_sql",
            at_least: Severity::Critical,
            limit: thresholds.n_plus_one_sql_critical_max,
        },
        CountRule {
            rule: "n_plus_one_http_warning_max",
            kind: "n_plus_one_http",
            at_least: Severity::Warning,
            limit: thresholds.n_plus_one_http_warning_max,
        },
        CountRule {
            rule: "n_plus_one_messaging_warning_max",
            kind: "n_plus_one_messaging",
            at_least: Severity::Warning,
            limit: thresholds.n_plus_one_messaging_warning_max,
        },
    ];
    let mut rules: Vec<Rule> = counts
        .iter()
        .map(|c| {
            let actual = findings
                .clone()
                .filter(|(kind, severity)| *kind == c.kind && *severity >= c.at_least)
                .count() as u64;
            Rule {
                rule: c.rule,
                limit: Measure::Count(u64::from(c.limit)),
                actual: Measure::Count(actual),
                passed: actual <= u64::from(c.limit),
            }
        })
        .collect();
    let ratio = waste_ratio(io);
    rules.push(Rule {
        rule: "io_waste_ratio_max",
        limit: Measure::Ratio(thresholds.io_waste_ratio_max),
        actual: Measure::Ratio(ratio),
        passed: ratio <= thresholds.io_waste_ratio_max,
    });
    Gate {
        passed: rules.iter().all(|r| r.passed),
        rules,
    }
}

/// Avoidable (unacknowledged) over all outbound I/O calls; 0 without I/O.
pub fn waste_ratio(io: IoTotals) -> f64 {
    if io.total == 0 {
        0.0
    } else {
        io.avoidable_unacked as f64 / io.total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(total: u64, avoidable: u64) -> IoTotals {
        IoTotals {
            total,
            avoidable: avoidable + 5,
            avoidable_unacked: avoidable,
        }
    }

    fn rule<'a>(gate: &'a Gate, name: &str) -> &'a Rule {
        gate.rules.iter().find(|r| r.rule == name).unwrap()
    }

    #[test]
    fn defaults_pass_on_nothing_and_fail_on_one_critical_n_plus_one_sql() {
        let t = ThresholdsConfig::default();
        let none: [(&str, Severity); 0] = [];
        assert!(evaluate(&t, none.iter().copied(), io(0, 0)).passed);
        let found = [
            ("n_plus_one_sql", Severity::Critical),
            ("n_plus_one_sql", Severity::Warning),
        ];
        let gate = evaluate(&t, found.iter().copied(), io(100, 10));
        assert!(!gate.passed);
        let r = rule(&gate, "n_plus_one_sql_critical_max");
        assert_eq!(
            (r.actual, r.limit, r.passed),
            (Measure::Count(1), Measure::Count(0), false)
        );
        assert!(rule(&gate, "io_waste_ratio_max").passed);
    }

    #[test]
    fn warning_rules_count_worse_findings_too_and_allow_their_limit() {
        let t = ThresholdsConfig::default();
        let mut found = vec![("n_plus_one_http", Severity::Warning); 2];
        found.push(("n_plus_one_http", Severity::Critical));
        found.push(("n_plus_one_http", Severity::Info));
        found.push(("n_plus_one_messaging", Severity::Warning));
        let gate = evaluate(&t, found.iter().copied(), io(10, 0));
        assert_eq!(
            rule(&gate, "n_plus_one_http_warning_max").actual,
            Measure::Count(3)
        );
        assert!(gate.passed, "3 is the limit, not over it");
        found.push(("n_plus_one_http", Severity::Warning));
        assert!(!evaluate(&t, found.iter().copied(), io(10, 0)).passed);
    }

    #[test]
    fn the_waste_ratio_uses_unacknowledged_avoidable_io() {
        let t = ThresholdsConfig::default();
        let none: [(&str, Severity); 0] = [];
        let gate = evaluate(&t, none.iter().copied(), io(100, 31));
        let r = rule(&gate, "io_waste_ratio_max");
        assert_eq!(r.actual, Measure::Ratio(0.31));
        assert!(!gate.passed);
        assert!(evaluate(&t, none.iter().copied(), io(100, 30)).passed);
    }
}
