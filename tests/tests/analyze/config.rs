//! Configuration: environments, overlays, the detector set, plugins.

use super::*;

#[test]
fn environments_overlays_and_the_detector_set_come_from_the_configuration() {
    let dir = TempDir::new("analyze-env");
    let config = write(
        &dir.0,
        "ps.toml",
        b"[environments.production.detectors.n_plus_one_sql]\nmin_occurrences = 50\n\n[detectors.io_waste]\nenabled = false\n",
    );
    let hibernate = fixture_path("hibernate_jpa_n_plus_one");
    let args = |env: &'static str| {
        vec![
            "--config".to_owned(),
            config.to_str().unwrap().to_owned(),
            "--environment".to_owned(),
            env.to_owned(),
            "--input".to_owned(),
            hibernate.to_str().unwrap().to_owned(),
            "--format".to_owned(),
            "json".to_owned(),
        ]
    };
    let staging: Vec<String> = args("staging");
    let staging = analyze(
        &dir.0,
        &staging.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .json();
    let kinds: Vec<&str> = staging["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["n_plus_one_sql"], "io_waste is off everywhere");
    assert_eq!(staging["environment"], "staging");
    let production: Vec<String> = args("production");
    let production = analyze(
        &dir.0,
        &production.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .json();
    assert_eq!(production["environment"], "production");
    assert_eq!(
        production["findings"],
        json!([]),
        "the production overlay raises the N+1 threshold above 8"
    );
    assert!(
        !production["detectors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == "io_waste")
    );
    // A bad configuration is unusable input for the gate: exit 2, every problem named.
    let bad = write(
        &dir.0,
        "bad.toml",
        b"[thresholds]\nio_waste_ratio_max = 2.0\n[detection]\nnope = 1\n",
    );
    let run = analyze(
        &dir.0,
        &[
            "--config",
            bad.to_str().unwrap(),
            "--input",
            hibernate.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("thresholds.io_waste_ratio_max"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("detection.nope"), "{}", run.stderr);
}

#[test]
fn a_plugin_detector_reports_in_batch_output_too() {
    let dir = TempDir::new("analyze-plugin");
    let lib = plugin_library("perf-sentinel-plugin-select-star");
    let config = write(
        &dir.0,
        "ps.toml",
        format!("[plugins]\npaths = [{:?}]\n", lib.display().to_string()).as_bytes(),
    );
    let trace = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": "7a1b2c3d4e5f60718293a4b5c6d7e8f9", "spanId": "00000000000000a1",
             "name": "GET /orders", "kind": 2,
             "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000050000000",
             "attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}},
                            {"key": "http.route", "value": {"stringValue": "/orders"}}]},
            {"traceId": "7a1b2c3d4e5f60718293a4b5c6d7e8f9", "spanId": "00000000000000a2",
             "parentSpanId": "00000000000000a1", "name": "SELECT orders", "kind": 3,
             "startTimeUnixNano": "1700000000001000000", "endTimeUnixNano": "1700000000002000000",
             "attributes": [{"key": "db.system", "value": {"stringValue": "postgresql"}},
                            {"key": "db.statement", "value": {"stringValue": "SELECT * FROM orders WHERE customer_id = 7"}},
                            {"key": "code.filepath", "value": {"stringValue": "src/orders/repo.py"}},
                            {"key": "code.lineno", "value": {"intValue": "31"}}]}
        ]}]
    }]});
    let input = write(&dir.0, "trace.json", trace.to_string().as_bytes());
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ];
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let report = analyze(&dir.0, &json_args).json();
    let found = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == "example.select_star_without_limit")
        .unwrap_or_else(|| panic!("no plugin finding: {report}"));
    assert_eq!(found["origin"], "perf-sentinel-plugin-select-star");
    assert_eq!(found["detector"], "select_star_without_limit");
    assert_eq!(found["confidence"], "ci_batch");
    let mut sarif_args = args.to_vec();
    sarif_args.extend(["--format", "sarif"]);
    let sarif = analyze(&dir.0, &sarif_args);
    assert_valid_sarif(&dir.0, &sarif.stdout);
    let sarif = sarif.json();
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "example.select_star_without_limit");
    assert_eq!(
        result["locations"][0]["physicalLocation"],
        json!({"artifactLocation": {"uri": "src/orders/repo.py"}, "region": {"startLine": 31}})
    );
    let text = analyze(&dir.0, &args).text();
    assert!(text.contains("WARNING (1)"), "{text}");
    assert!(text.contains("example.select_star_without_limit"), "{text}");
}
