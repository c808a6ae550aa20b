//! values.schema.json: a valid JSON Schema, strict (it refuses wrong
//! enums, wrong types and unknown keys, checked both by check-jsonschema
//! and by Helm itself, which applies it on every render), and it accepts
//! the defaults, the CI values and the example values.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::render::{Values, try_render};
use super::tools::{chart_dir, output, repo, text, tool};

fn schema() -> PathBuf {
    chart_dir().join("values.schema.json")
}

fn check_jsonschema() -> Command {
    Command::new(tool("PERF_SENTINEL_CHECK_JSONSCHEMA"))
}

#[test]
fn the_values_schema_is_a_valid_json_schema() {
    let out = output(check_jsonschema().arg("--check-metaschema").arg(schema()));
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn invalid_files() -> Vec<PathBuf> {
    let dir = repo().join("tests/fixtures/helm/invalid-values");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "too few invalid values files in {}",
        dir.display()
    );
    files
}

/// The `# expect: ...` first line of an invalid values file: what Helm's
/// error must name.
fn expectation(file: &Path) -> String {
    let content = std::fs::read_to_string(file).unwrap();
    content
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{} lacks its `# expect: ` line", file.display()))
        .to_owned()
}

#[test]
fn the_values_schema_rejects_invalid_values_in_check_jsonschema_and_in_helm() {
    for file in invalid_files() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let out = output(
            check_jsonschema()
                .arg("--schemafile")
                .arg(schema())
                .arg(&file),
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "check-jsonschema accepted {name}:\n{}",
            text(&out.stdout)
        );
        assert!(
            text(&out.stdout).contains("Schema validation errors"),
            "{name}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let err = match try_render(&Values::new().file(&file)) {
            Ok(_) => panic!("helm rendered {name}"),
            Err(e) => e,
        };
        assert!(
            err.contains("values don't meet the specifications of the schema"),
            "{name}: {err}"
        );
        let want = expectation(&file);
        assert!(err.contains(&want), "{name}: expected `{want}` in:\n{err}");
    }
}

fn valid_files() -> Vec<PathBuf> {
    let mut files = vec![
        chart_dir().join("values.yaml"),
        repo().join("examples/helm/values-perf-sentinel.yaml"),
    ];
    let mut ci: Vec<PathBuf> = std::fs::read_dir(chart_dir().join("ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    ci.sort();
    files.extend(ci);
    files
}

#[test]
fn the_values_schema_accepts_the_defaults_ci_and_example_values() {
    for file in valid_files() {
        let out = output(
            check_jsonschema()
                .arg("--schemafile")
                .arg(schema())
                .arg(&file),
        );
        assert!(
            out.status.success(),
            "{}: {}{}",
            file.display(),
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}
