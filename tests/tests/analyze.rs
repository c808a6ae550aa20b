//! `perf-sentinel analyze` end to end: the real binary over captured trace
//! files. The golden fixtures go through every input format (OTLP JSON,
//! the Collector's NDJSON, gzip, Zipkin v2, Jaeger) and must report what
//! the daemon reports for them; the reports are byte-identical across runs;
//! SARIF validates against the official 2.1.0 schema (check-jsonschema); the
//! gate's exit codes, the acknowledgment baseline, environments and plugins
//! behave as documented.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::golden::{Fixture, diff, golden_dir, lines, reduce_all};
use common::{TempDir, binary, formats, plugin_library};
use serde_json::{Value, json};

/// What one run printed and how it exited.
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}); exit {:?}, stderr:\n{}\nstdout:\n{}",
                self.code,
                self.stderr,
                self.text()
            )
        })
    }
}

/// Runs `perf-sentinel analyze ARGS` in `dir`, with `stdin` as its input.
fn analyze_with(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(binary())
        .arg("analyze")
        .args(args)
        .current_dir(dir)
        .env_remove("PERF_SENTINEL_CONFIG")
        .env_remove("PERF_SENTINEL_ENVIRONMENT")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run perf-sentinel");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn analyze(dir: &Path, args: &[&str]) -> Run {
    analyze_with(dir, args, None)
}

/// Every golden fixture, by name.
fn fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(golden_dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".otlp.json").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

fn fixture_path(name: &str) -> PathBuf {
    golden_dir().join(format!("{name}.otlp.json"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The reduced findings of a JSON report.
fn reduced(report: &Value) -> Value {
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    reduce_all(&findings)
}

#[test]
fn golden_fixtures_report_the_same_findings_in_every_input_format() {
    let dir = TempDir::new("analyze-formats");
    let mut failures = Vec::new();
    let names = fixtures();
    assert!(names.len() >= 17, "{names:?}");
    for name in &names {
        let fixture = Fixture::load(name);
        let request: Value = serde_json::from_str(&fixture.body).unwrap();
        let inputs = [
            ("OTLP JSON", fixture_path(name)),
            (
                "OTLP NDJSON",
                write(
                    &dir.0,
                    &format!("{name}.ndjson"),
                    formats::ndjson(&request).as_bytes(),
                ),
            ),
            (
                "gzip OTLP NDJSON",
                write(
                    &dir.0,
                    &format!("{name}.ndjson.gz"),
                    &gzip(formats::ndjson(&request).as_bytes()),
                ),
            ),
            (
                "Zipkin v2 JSON",
                write(
                    &dir.0,
                    &format!("{name}.zipkin.json"),
                    formats::zipkin(&request).to_string().as_bytes(),
                ),
            ),
            (
                "Jaeger JSON",
                write(
                    &dir.0,
                    &format!("{name}.jaeger.json"),
                    serde_json::to_string_pretty(&formats::jaeger(&request))
                        .unwrap()
                        .as_bytes(),
                ),
            ),
        ];
        let expected = fixture.expected();
        for (format, path) in inputs {
            let run = analyze(
                &dir.0,
                &["--input", path.to_str().unwrap(), "--format", "json"],
            );
            assert_eq!(run.code, Some(0), "{name} as {format}: {}", run.stderr);
            let report = run.json();
            assert_eq!(
                report["input"]["traces"].as_u64(),
                Some(fixture.trace_ids.len() as u64),
                "{name} as {format}"
            );
            let actual = reduced(&report);
            if actual != expected {
                failures.push(format!(
                    "{name} as {format} (- expected, + reported):\n{}",
                    diff(&lines(&expected), &lines(&actual))
                ));
            }
            for f in report["findings"].as_array().unwrap() {
                assert_eq!(f["confidence"], "ci_batch", "{f}");
                assert_eq!(f["environment"], "staging", "{f}");
                assert_eq!(f["seen_count"], 1, "{f}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} runs differ from the golden files:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn formats_are_recognised_and_named_in_the_report() {
    let dir = TempDir::new("analyze-named");
    let request: Value = serde_json::from_str(&Fixture::load("redundant_calls").body).unwrap();
    let cases = [
        (
            "a.json",
            Fixture::load("redundant_calls").body.into_bytes(),
            "otlp_json",
            false,
        ),
        (
            "b.ndjson",
            formats::ndjson(&request).into_bytes(),
            "otlp_ndjson",
            false,
        ),
        (
            "c.gz",
            gzip(formats::ndjson(&request).as_bytes()),
            "otlp_ndjson",
            true,
        ),
        (
            "d.json",
            formats::zipkin(&request).to_string().into_bytes(),
            "zipkin_v2_json",
            false,
        ),
        (
            "e.json",
            formats::jaeger(&request).to_string().into_bytes(),
            "jaeger_json",
            false,
        ),
    ];
    for (file, bytes, format, gz) in cases {
        let path = write(&dir.0, file, &bytes);
        let report = analyze(&dir.0, &["-i", path.to_str().unwrap(), "--format", "json"]).json();
        assert_eq!(report["input"]["format"], format, "{file}");
        assert_eq!(report["input"]["gzip"], gz, "{file}");
        assert_eq!(report["input"]["spans"], 11, "{file}");
    }
    // Standard input too.
    let body = Fixture::load("redundant_calls").body;
    let run = analyze_with(
        &dir.0,
        &["--input", "-", "--format", "json"],
        Some(body.as_bytes()),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.json()["input"]["spans"], 11);
}

/// Every fixture in one NDJSON file, one request per line.
fn all_fixtures_ndjson(dir: &Path) -> PathBuf {
    let mut body = String::new();
    for name in fixtures() {
        let v: Value = serde_json::from_str(&Fixture::load(&name).body).unwrap();
        body.push_str(&v.to_string());
        body.push('\n');
    }
    write(dir, "all.ndjson", body.as_bytes())
}

#[test]
fn json_and_sarif_reports_are_byte_identical_across_runs() {
    let dir = TempDir::new("analyze-determinism");
    let input = all_fixtures_ndjson(&dir.0);
    let input = input.to_str().unwrap();
    for format in ["json", "sarif", "text"] {
        let first = analyze(&dir.0, &["--input", input, "--format", format]);
        assert_eq!(first.code, Some(0), "{}", first.stderr);
        for _ in 0..2 {
            let again = analyze(&dir.0, &["--input", input, "--format", format]);
            assert!(
                again.stdout == first.stdout,
                "{format} output changed between runs:\n{}",
                diff(&first.text(), &again.text())
            );
        }
    }
    let report = analyze(&dir.0, &["--input", input, "--format", "json"]).json();
    assert!(
        report["findings"].as_array().unwrap().len() >= 20,
        "{report}"
    );
}

fn check_jsonschema() -> PathBuf {
    let python = std::env::var("PERF_SENTINEL_PYTHON").expect(
        "PERF_SENTINEL_PYTHON is not set: run the suite with ./scripts/test.sh, which prepares the Python tools",
    );
    let tool = Path::new(&python).with_file_name("check-jsonschema");
    assert!(
        tool.exists(),
        "{} missing: rerun ./scripts/test.sh",
        tool.display()
    );
    tool
}

fn sarif_schema() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sarif/sarif-schema-2.1.0.json")
}

/// Validates `sarif` with check-jsonschema against the shipped schema.
fn assert_valid_sarif(dir: &Path, sarif: &[u8]) {
    let path = write(dir, "report.sarif", sarif);
    let out = Command::new(check_jsonschema())
        .arg("--schemafile")
        .arg(sarif_schema())
        .arg(&path)
        .output()
        .expect("cannot run check-jsonschema");
    assert!(
        out.status.success(),
        "SARIF refused by the 2.1.0 schema:\n{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(sarif)
    );
}

#[test]
fn sarif_validates_against_the_official_schema_and_points_at_source_lines() {
    let dir = TempDir::new("analyze-sarif");
    let input = all_fixtures_ndjson(&dir.0);
    let run = analyze(&dir.0, &["--input", "all.ndjson", "--format", "sarif"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_valid_sarif(&dir.0, &run.stdout);
    let sarif = run.json();
    assert_eq!(sarif["version"], "2.1.0");
    let run0 = &sarif["runs"][0];
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "one rule per kind, in order");
    for kind in ["n_plus_one_sql", "io_waste", "slow_http", "chatty_service"] {
        assert!(ids.contains(&kind), "{ids:?}");
    }
    let results = run0["results"].as_array().unwrap();
    let json = analyze(
        &dir.0,
        &["--input", input.to_str().unwrap(), "--format", "json"],
    )
    .json();
    assert_eq!(results.len(), json["findings"].as_array().unwrap().len());
    for r in results {
        let rule = &rules[r["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(rule["id"], r["ruleId"]);
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap_or_else(|| panic!("every result has a file: {r}"));
        assert!(!uri.is_empty());
        assert!(r["partialFingerprints"]["perfSentinelSignature/v1"].is_string());
    }
    // None of the fixtures' findings has a source location: each points at
    // the trace file, as given on the command line.
    for r in results {
        assert_eq!(
            r["locations"][0]["physicalLocation"],
            json!({"artifactLocation": {"uri": "all.ndjson"}, "region": {"startLine": 1}}),
            "{r}"
        );
    }
    let efcore = results
        .iter()
        .find(|r| r["ruleId"] == "n_plus_one_sql" && r["level"] == "error")
        .expect("EF Core's critical N+1 is an error");
    assert!(
        efcore["message"]["text"]
            .as_str()
            .unwrap()
            .ends_with("(seen once)")
    );

    // Spans that name their source: the N+1 points at the file and line.
    let input = write(
        &dir.0,
        "n1.json",
        n_plus_one(
            "orders",
            "/orders/{id}",
            "SELECT * FROM items WHERE id = ",
            true,
        )
        .to_string()
        .as_bytes(),
    );
    let run = analyze(
        &dir.0,
        &["--input", input.to_str().unwrap(), "--format", "sarif"],
    );
    assert_valid_sarif(&dir.0, &run.stdout);
    let sarif = run.json();
    let result = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "n_plus_one_sql")
        .cloned()
        .unwrap();
    assert_eq!(
        result["locations"][0],
        json!({
            "physicalLocation": {
                "artifactLocation": {"uri": "src/orders/item%20repo.py"},
                "region": {"startLine": 57}
            },
            "logicalLocations": [{"fullyQualifiedName": "orders.repo.ItemRepo.load", "kind": "function"}]
        })
    );
}

/// One trace: an inbound `GET route` whose handler runs eight SELECTs
/// `statement<n>` (an N+1), from `code.*` attributes when `code`.
fn n_plus_one(service: &str, route: &str, statement: &str, code: bool) -> Value {
    let mut spans = vec![json!({
        "traceId": "0badc0de0badc0de0badc0de0badc0de", "spanId": "00000000000000f1",
        "name": format!("GET {route}"), "kind": 2,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000",
        "attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}},
                       {"key": "http.route", "value": {"stringValue": route}}]
    })];
    for i in 0..8u64 {
        let mut attributes = vec![
            json!({"key": "db.system", "value": {"stringValue": "postgresql"}}),
            json!({"key": "db.statement", "value": {"stringValue": format!("{statement}{i}")}}),
        ];
        if code {
            attributes.extend([
                json!({"key": "code.filepath", "value": {"stringValue": "src/orders/item repo.py"}}),
                json!({"key": "code.lineno", "value": {"intValue": "57"}}),
                json!({"key": "code.function", "value": {"stringValue": "load"}}),
                json!({"key": "code.namespace", "value": {"stringValue": "orders.repo.ItemRepo"}}),
            ]);
        }
        spans.push(json!({
            "traceId": "0badc0de0badc0de0badc0de0badc0de",
            "spanId": format!("{:016x}", 0x100 + i), "parentSpanId": "00000000000000f1",
            "name": "SELECT", "kind": 3,
            "startTimeUnixNano": (1_700_000_000_001_000_000u64 + i * 1_000_000).to_string(),
            "endTimeUnixNano": (1_700_000_000_001_500_000u64 + i * 1_000_000).to_string(),
            "attributes": attributes
        }));
    }
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}]
    }]})
}

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

#[test]
fn text_output_is_grouped_by_severity_and_neutralises_hostile_strings() {
    let dir = TempDir::new("analyze-text");
    // An N+1 whose service, route and statement carry terminal escapes and
    // BiDi controls.
    let trace = n_plus_one(
        "evil\u{1b}[2J\u{1b}[31msvc",
        "/x\u{1b}]0;owned\u{7}",
        "SELECT * FROM t\u{202e} WHERE id = ",
        false,
    );
    let input = write(&dir.0, "hostile.json", trace.to_string().as_bytes());
    let run = analyze(&dir.0, &["--input", input.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let text = run.text();
    for raw in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(!text.contains(raw), "raw {raw:?} in:\n{text}");
    }
    assert!(text.contains("evil\\u{1b}[2J\\u{1b}[31msvc"), "{text}");
    assert!(text.contains("\\u{202e}"), "{text}");
    // Severities in order, the gate at the end.
    let critical = text.find("CRITICAL (").unwrap_or(usize::MAX);
    let warning = text.find("WARNING (").unwrap();
    assert!(critical == usize::MAX || critical < warning, "{text}");
    assert!(text.find("Quality gate:").unwrap() > warning, "{text}");
    assert!(
        text.starts_with("perf-sentinel analyze: 1 traces, 9 spans (otlp_json)"),
        "{text}"
    );
    // The same from a clean fixture: no findings is said.
    let clean = analyze(
        &dir.0,
        &[
            "--input",
            fixture_path("clean_spring_petclinic").to_str().unwrap(),
        ],
    );
    assert!(clean.text().contains("No findings."), "{}", clean.text());
    assert!(clean.text().contains("Quality gate: PASSED"));
}

#[test]
fn the_report_can_go_to_a_file() {
    let dir = TempDir::new("analyze-output");
    let out = dir.0.join("report.sarif");
    let run = analyze(
        &dir.0,
        &[
            "--input",
            fixture_path("efcore_n_plus_one").to_str().unwrap(),
            "--format",
            "sarif",
            "--output",
            out.to_str().unwrap(),
            "--ci",
        ],
    );
    assert_eq!(run.code, Some(1), "the gate still decides: {}", run.stderr);
    assert!(run.stdout.is_empty());
    let sarif: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
}
