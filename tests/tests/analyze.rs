//! `perf-sentinel analyze` end to end: the real binary over captured trace
//! files. The golden fixtures go through every input format (OTLP JSON,
//! the Collector's NDJSON, gzip, Zipkin v2, Jaeger) and must report what
//! the daemon reports for them; the reports are byte-identical across runs;
//! SARIF validates against the official 2.1.0 schema (check-jsonschema); the
//! gate's exit codes, the acknowledgment baseline, environments and plugins
//! behave as documented.

mod common;

#[path = "analyze/config.rs"]
mod config;
#[path = "analyze/gate.rs"]
mod gate;
#[path = "analyze/input_formats.rs"]
mod input_formats;
#[path = "analyze/sarif.rs"]
mod sarif;
#[path = "analyze/text_output.rs"]
mod text_output;

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
