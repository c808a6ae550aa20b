//! Input formats, format detection, and byte-identical reports.

use super::*;

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
