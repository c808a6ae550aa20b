//! Text output and writing the report to a file.

use super::*;

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
