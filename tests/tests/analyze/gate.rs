//! The quality gate and its exit codes, and the acknowledgment baseline.

use super::*;

#[test]
fn the_gate_sets_the_exit_code_under_ci_only() {
    let dir = TempDir::new("analyze-gate");
    let clean = fixture_path("clean_spring_petclinic");
    let chatty = fixture_path("chatty_service");
    let efcore = fixture_path("efcore_n_plus_one");
    // (input, --ci, the gate passes, exit code)
    for (path, ci, passes, want) in [
        (&clean, true, true, 0),
        (&chatty, true, true, 0),
        (&efcore, true, false, 1),
        (&efcore, false, false, 0),
    ] {
        let mut args = vec!["--input", path.to_str().unwrap(), "--format", "json"];
        if ci {
            args.push("--ci");
        }
        let run = analyze(&dir.0, &args);
        assert_eq!(run.code, Some(want), "{args:?}: {}", run.stderr);
        let gate = &run.json()["quality_gate"];
        assert_eq!(gate["passed"], passes, "{gate}");
    }
    let report = analyze(
        &dir.0,
        &["--input", efcore.to_str().unwrap(), "--format", "json"],
    )
    .json();
    let rule = |name: &str| {
        report["quality_gate"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        rule("n_plus_one_sql_critical_max"),
        json!({"rule": "n_plus_one_sql_critical_max", "limit": 0, "actual": 1, "passed": false})
    );
    assert!(
        report["io_waste"]["ratio"].as_f64().unwrap() > 0.30,
        "{report}"
    );
    // Thresholds from the configuration: the same trace passes.
    let config = write(
        &dir.0,
        "lenient.toml",
        b"[thresholds]\nn_plus_one_sql_critical_max = 1\nio_waste_ratio_max = 1.0\n",
    );
    let run = analyze(
        &dir.0,
        &[
            "--config",
            config.to_str().unwrap(),
            "--input",
            efcore.to_str().unwrap(),
            "--ci",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.text().contains("Quality gate: PASSED"),
        "{}",
        run.text()
    );
}

/// The signature of the first finding of `kind` in a JSON report.
fn signature_of(report: &Value, kind: &str) -> String {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == kind)
        .and_then(|f| f["signature"].as_str())
        .unwrap_or_else(|| panic!("no {kind} finding: {report}"))
        .to_owned()
}

#[test]
fn an_acknowledged_finding_no_longer_fails_the_gate() {
    let dir = TempDir::new("analyze-acks");
    let efcore = fixture_path("efcore_n_plus_one");
    let efcore = efcore.to_str().unwrap();
    let report = analyze(&dir.0, &["--input", efcore, "--format", "json"]).json();
    let signature = signature_of(&report, "n_plus_one_sql");
    std::fs::write(
        dir.0.join(".perf-sentinel-acknowledgments.toml"),
        format!(
            "[[acknowledged]]\nsignature = \"{signature}\"\nacknowledged_by = \"dba-team\"\nacknowledged_at = 2026-01-10\nreason = \"lazy load kept until the v3 API\"\nexpires_at = 2999-12-31\n"
        ),
    )
    .unwrap();
    let run = analyze(&dir.0, &["--input", efcore, "--ci", "--format", "json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["quality_gate"]["passed"], true, "{report}");
    assert_eq!(report["summary"]["acknowledged"], 1);
    assert!(
        report.get("acknowledged").is_none(),
        "listed only when asked"
    );
    assert!(
        !report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["signature"] == signature.as_str())
    );
    assert_eq!(report["io_waste"]["avoidable_io_ops"], 0);
    assert!(
        report["io_waste"]["acknowledged_avoidable_io_ops"]
            .as_u64()
            .unwrap()
            > 0
    );

    // Shown on request, annotated, still not counted.
    let run = analyze(
        &dir.0,
        &[
            "--input",
            efcore,
            "--ci",
            "--format",
            "json",
            "--show-acknowledged",
        ],
    );
    assert_eq!(run.code, Some(0));
    let shown = &run.json()["acknowledged"][0];
    assert_eq!(shown["signature"], signature.as_str());
    assert_eq!(shown["acknowledged_by"]["by"], "dba-team");
    assert_eq!(shown["acknowledged_by"]["source"], "toml");
    let text = analyze(&dir.0, &["--input", efcore, "--show-acknowledged"]).text();
    assert!(text.contains("ACKNOWLEDGED (1)"), "{text}");
    assert!(text.contains("lazy load kept until the v3 API"), "{text}");
    let hidden = analyze(&dir.0, &["--input", efcore]).text();
    assert!(
        hidden.contains("1 acknowledged finding hidden by"),
        "{hidden}"
    );
    // SARIF: a suppressed result, valid against the schema.
    let sarif = analyze(
        &dir.0,
        &[
            "--input",
            efcore,
            "--format",
            "sarif",
            "--show-acknowledged",
        ],
    );
    assert_valid_sarif(&dir.0, &sarif.stdout);
    let results = sarif.json()["runs"][0]["results"].clone();
    let suppressed: Vec<&Value> = results
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("suppressions").is_some())
        .collect();
    assert_eq!(suppressed.len(), 1, "{results}");
    assert_eq!(suppressed[0]["suppressions"][0]["status"], "accepted");

    // Ignoring the baseline brings the failure back.
    let run = analyze(&dir.0, &["--input", efcore, "--ci", "--no-acknowledgments"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);

    // An expired acknowledgment hides nothing.
    std::fs::write(
        dir.0.join(".perf-sentinel-acknowledgments.toml"),
        format!(
            "[[acknowledged]]\nsignature = \"{signature}\"\nacknowledged_by = \"dba-team\"\nacknowledged_at = 2020-01-10\nreason = \"old\"\nexpires_at = 2020-12-31\n"
        ),
    )
    .unwrap();
    assert_eq!(analyze(&dir.0, &["--input", efcore, "--ci"]).code, Some(1));

    // A broken baseline is unusable, not silently ignored.
    std::fs::write(
        dir.0.join(".perf-sentinel-acknowledgments.toml"),
        "[[acknowledged]]\nsignature = 3\n",
    )
    .unwrap();
    let run = analyze(&dir.0, &["--input", efcore, "--ci"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains(".perf-sentinel-acknowledgments.toml"),
        "{}",
        run.stderr
    );
}
