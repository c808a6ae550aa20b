//! `perf-sentinel analyze` on inputs it cannot use: every one exits 2 with
//! one line that names the file, says what is wrong and where, and never a
//! panic or a report built from half a file.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{TempDir, binary};

/// Runs `analyze --input FILE` on `bytes`; returns the exit code and stderr.
fn refused(dir: &Path, name: &str, bytes: &[u8], extra: &[&str]) -> (Option<i32>, String) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(binary())
        .args(["analyze", "--ci", "--input"])
        .arg(&path)
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.code() == Some(2) {
        assert!(
            out.stdout.is_empty(),
            "no report from unusable input: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_refused(dir: &Path, name: &str, bytes: &[u8], extra: &[&str], wants: &[&str]) {
    let (code, stderr) = refused(dir, name, bytes, extra);
    assert_eq!(code, Some(2), "{name}: {stderr}");
    assert!(stderr.contains(name), "{name}: the file is named: {stderr}");
    for want in wants {
        assert!(
            stderr.contains(want),
            "{name}: {want:?} missing in: {stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

const SPAN: &str = r#"{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"GET /","kind":2,"startTimeUnixNano":"1","endTimeUnixNano":"2"}"#;

fn request() -> String {
    format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{SPAN}]}}]}}]}}"#)
}

#[test]
fn empty_and_blank_files_are_refused() {
    let dir = TempDir::new("bad-empty");
    assert_refused(&dir.0, "empty.json", b"", &[], &["is empty", "OTLP JSON"]);
    assert_refused(&dir.0, "blank.json", b"\n  \n", &[], &["is empty"]);
}

#[test]
fn a_truncated_file_says_where_the_cut_value_started() {
    let dir = TempDir::new("bad-truncated");
    let whole = format!("{}\n{}\n", request(), request());
    let cut = &whole.as_bytes()[..whole.len() - 30];
    assert_refused(
        &dir.0,
        "cut.ndjson",
        cut,
        &[],
        &["truncated", "starts at line 2, column 1"],
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, whole.as_bytes()).unwrap();
    let packed = gz.finish().unwrap();
    assert_refused(
        &dir.0,
        "cut.ndjson.gz",
        &packed[..packed.len() / 2],
        &[],
        &["gzip"],
    );
}

#[test]
fn non_utf8_is_refused_with_its_place() {
    let dir = TempDir::new("bad-utf8");
    let mut bytes = request().into_bytes();
    let at = bytes.windows(6).position(|w| w == b"GET /\"").unwrap() + 4;
    bytes[at] = 0xff;
    assert_refused(
        &dir.0,
        "latin1.json",
        &bytes,
        &[],
        &["not valid UTF-8 at line 1, column", &format!("(byte {at})")],
    );
    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend(request().encode_utf16().flat_map(u16::to_le_bytes));
    assert_refused(&dir.0, "utf16.json", &utf16, &[], &["UTF-16"]);
}

#[test]
fn an_oversize_input_is_refused_before_it_is_read() {
    let dir = TempDir::new("bad-size");
    let body = request();
    let (code, _) = refused(
        &dir.0,
        "ok.json",
        body.as_bytes(),
        &["--max-input-size", "1K"],
    );
    assert_eq!(code, Some(0), "a file under the cap is read");
    let big = format!("{}\n", request()).repeat(20);
    assert_refused(
        &dir.0,
        "big.ndjson",
        big.as_bytes(),
        &["--max-input-size", "1K"],
        &["larger than --max-input-size (1024 bytes)"],
    );
    // A compressed file under the cap that inflates past it.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, big.as_bytes()).unwrap();
    assert_refused(
        &dir.0,
        "big.ndjson.gz",
        &gz.finish().unwrap(),
        &["--max-input-size", "1K"],
        &["larger than --max-input-size"],
    );
}

#[test]
fn other_unusable_inputs_are_named() {
    let dir = TempDir::new("bad-other");
    assert_refused(
        &dir.0,
        "binary.bin",
        &[0x0a, 0x8f, 0x01, 0x12],
        &[],
        &["is not JSON: byte 0x8f"],
    );
    assert_refused(
        &dir.0,
        "config.json",
        br#"{"service": "x"}"#,
        &[],
        &["neither `resourceSpans` (OTLP) nor `data` (Jaeger)"],
    );
    assert_refused(
        &dir.0,
        "bad-span.json",
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"server"}]}]}]}"#,
        &[],
        &[
            "invalid OTLP resourceSpans item at line 1, column",
            "\"server\" is not an integer",
        ],
    );
    assert_refused(
        &dir.0,
        "no-spans.json",
        br#"{"resourceSpans":[]}"#,
        &[],
        &["holds no spans"],
    );
    assert_refused(
        &dir.0,
        "bad-ids.json",
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00","spanId":"01","name":"x"}]}]}]}"#,
        &[],
        &["holds no valid spans (1 refused: invalid trace or span id)"],
    );
    let mixed = format!("{}\n[{{\"traceId\":\"a\"}}]\n", request());
    assert_refused(
        &dir.0,
        "mixed.ndjson",
        mixed.as_bytes(),
        &[],
        &["mixes formats"],
    );
    let out = Command::new(binary())
        .args(["analyze", "--input", "/nonexistent/traces.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/traces.json cannot read"));
    // A usage error is 2 as well (clap).
    let out = Command::new(binary())
        .args(["analyze", "--format", "xml", "--input", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
