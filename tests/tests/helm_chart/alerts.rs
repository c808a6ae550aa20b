//! The rendered PrometheusRule: `promtool check rules`, and `promtool test
//! rules` firing each alert from synthetic series
//! (tests/fixtures/helm/prometheus-rules.test.yml).

use std::path::Path;
use std::process::Command;

use serde_yaml_ng::Value;

use super::common::TempDir;
use super::render::{Values, at, render, seq_at, str_at};
use super::tools::{output, repo, text, tool};

const ALL_BACKENDS: &str = "prometheusRule:\n  enabled: true\n  energyScrapers: [scaphandre, kepler, redfish, cloud, electricity_maps]\n";

/// The PrometheusRule's `spec` (a Prometheus rule file) written to
/// `dir/rules.yml`, beside a copy of the promtool test file.
fn write_rules(values: &Values, dir: &Path) -> Value {
    let r = render(values);
    let spec = at(r.one("PrometheusRule"), &["spec"]).clone();
    std::fs::write(
        dir.join("rules.yml"),
        serde_yaml_ng::to_string(&spec).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        repo().join("tests/fixtures/helm/prometheus-rules.test.yml"),
        dir.join("rules.test.yml"),
    )
    .unwrap();
    spec
}

fn promtool() -> Command {
    Command::new(tool("PERF_SENTINEL_PROMTOOL"))
}

fn alert_names(spec: &Value) -> Vec<String> {
    let groups = seq_at(spec, &["groups"]);
    assert_eq!(groups.len(), 1);
    assert_eq!(str_at(&groups[0], &["name"]), "perf-sentinel.rules");
    seq_at(&groups[0], &["rules"])
        .iter()
        .map(|r| {
            let name = str_at(r, &["alert"]);
            match at(r, &["labels", "backend"]).as_str() {
                Some(b) => format!("{name}/{b}"),
                None => name.to_owned(),
            }
        })
        .collect()
}

#[test]
fn the_rule_group_has_one_alert_per_condition() {
    let dir = TempDir::new("helm-rules-names");
    let spec = write_rules(&Values::new().set("prometheusRule.enabled=true"), &dir.0);
    let base = [
        "PerfSentinelAbsent",
        "PerfSentinelIngestRejecting",
        "PerfSentinelMemoryPressureRejecting",
        "PerfSentinelAnalysisShedding",
        "PerfSentinelAnalysisQueueSaturated",
        "PerfSentinelCorrelatorEvicting",
        "PerfSentinelServiceCardinalityOverflow",
        "PerfSentinelDetectorQuarantined",
    ];
    assert_eq!(alert_names(&spec), base);
    let spec = write_rules(
        &Values::new().yaml(ALL_BACKENDS).yaml(
            "prometheusRule:\n  additionalRules:\n    - alert: MyTeamAlert\n      expr: vector(1)\n",
        ),
        &dir.0,
    );
    let mut want: Vec<String> = base.iter().map(|s| (*s).to_owned()).collect();
    for b in [
        "scaphandre",
        "kepler",
        "redfish",
        "cloud",
        "electricity_maps",
    ] {
        want.push(format!("PerfSentinelEnergyScraperStale/{b}"));
    }
    want.push("MyTeamAlert".to_owned());
    assert_eq!(alert_names(&spec), want);
}

#[test]
fn the_rendered_rules_pass_promtool_check() {
    let dir = TempDir::new("helm-rules-check");
    write_rules(
        &Values::new().file("charts/perf-sentinel/ci/all-features-values.yaml"),
        &dir.0,
    );
    let out = output(
        promtool()
            .arg("check")
            .arg("rules")
            .arg(dir.0.join("rules.yml")),
    );
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{report}");
    // 8 alerts, 5 energy backends, 1 additional rule.
    assert!(report.contains("SUCCESS: 14 rules found"), "{report}");
}

#[test]
fn every_alert_fires_from_synthetic_series_and_none_when_healthy() {
    let dir = TempDir::new("helm-rules-test");
    write_rules(&Values::new().yaml(ALL_BACKENDS), &dir.0);
    let out = output(
        promtool()
            .args(["test", "rules", "rules.test.yml"])
            .current_dir(&dir.0),
    );
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{report}");
    assert!(report.contains("SUCCESS"), "{report}");
}

#[test]
fn rules_that_select_another_job_fail_the_alert_tests() {
    // The unit tests are not satisfied by any rule file: with a selector
    // that matches none of the synthetic series, the alerts do not fire and
    // promtool says which.
    let dir = TempDir::new("helm-rules-neg");
    write_rules(
        &Values::new()
            .yaml(ALL_BACKENDS)
            .set("prometheusRule.selector=job=\"elsewhere\""),
        &dir.0,
    );
    let out = output(
        promtool()
            .args(["test", "rules", "rules.test.yml"])
            .current_dir(&dir.0),
    );
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("PerfSentinelMemoryPressureRejecting"),
        "{report}"
    );
}
