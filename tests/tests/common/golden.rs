//! The golden fixtures (`tests/fixtures/golden/NAME.otlp.json` and the
//! findings expected of them, `NAME.expected.json`) and the reduction of a
//! finding to the fields a golden file states, shared by the daemon's golden
//! tests and `analyze`'s.

use std::path::PathBuf;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::{Map, Value};

/// The phrase that identifies each N+1 SQL suggestion: one per framework
/// the fixtures cover, then the generic one. The first phrase found in a
/// suggestion is its key.
pub const SUGGESTION_KEYS: &[&str] = &[
    "JOIN FETCH",
    ".Include()",
    "select_related()",
    "includes",
    "with('relation')",
    "WHERE ... IN (...)",
];

pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden")
}

pub fn bless() -> bool {
    std::env::var("PERF_SENTINEL_BLESS").is_ok_and(|v| v == "1")
}

pub struct Fixture {
    pub name: String,
    pub body: String,
    pub trace_ids: Vec<String>,
}

impl Fixture {
    pub fn load(name: &str) -> Self {
        let path = golden_dir().join(format!("{name}.otlp.json"));
        let body = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let json: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        Self {
            name: name.to_owned(),
            trace_ids: trace_ids(&json),
            body,
        }
    }

    pub fn expected_path(&self) -> PathBuf {
        golden_dir().join(format!("{}.expected.json", self.name))
    }

    pub fn expected(&self) -> Value {
        let path = self.expected_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
    }

    /// The request as the `opentelemetry-proto` types (its serde support
    /// reads OTLP/JSON: hex ids, string-encoded 64-bit integers).
    pub fn request(&self) -> ExportTraceServiceRequest {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{}: not an OTLP/JSON request: {e}", self.name))
    }
}

/// The distinct trace ids of an OTLP/JSON request, in order of appearance.
pub fn trace_ids(request: &Value) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let spans = request["resourceSpans"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rs| rs["scopeSpans"].as_array().into_iter().flatten())
        .flat_map(|ss| ss["spans"].as_array().into_iter().flatten());
    for span in spans {
        let id = span["traceId"]
            .as_str()
            .expect("traceId")
            .to_ascii_lowercase();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// A finding reduced to what does not depend on ids, timestamps or the
/// wording of titles: the fields a golden file states.
pub fn reduce(f: &Value) -> Value {
    let mut o = Map::new();
    for key in ["type", "severity", "service", "source_endpoint"] {
        o.insert(key.into(), f[key].clone());
    }
    o.insert("template".into(), f["pattern"]["template"].clone());
    o.insert("occurrences".into(), f["pattern"]["occurrences"].clone());
    o.insert(
        "distinct_params".into(),
        f["pattern"]["distinct_params"].clone(),
    );
    o.insert(
        "avoidable_io".into(),
        f["green_impact"]["estimated_extra_io_ops"].clone(),
    );
    for key in ["framework", "classified_by", "scope"] {
        if let Some(v) = f["extra"].get(key) {
            o.insert(key.into(), v.clone());
        }
    }
    if f["type"] == "n_plus_one_sql" {
        let suggestion = f["suggestion"].as_str().unwrap_or("");
        let key = SUGGESTION_KEYS
            .iter()
            .find(|k| suggestion.contains(**k))
            .map_or(Value::Null, |k| Value::from(*k));
        o.insert("suggestion_key".into(), key);
    }
    Value::Object(o)
}

pub fn sort_key(v: &Value) -> (String, String, String, String, String, u64) {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    (
        s("type"),
        s("service"),
        s("source_endpoint"),
        s("template"),
        s("severity"),
        v["occurrences"].as_u64().unwrap_or(0),
    )
}

/// Reduced and sorted on a stable key.
pub fn reduce_all(findings: &[Value]) -> Value {
    let mut reduced: Vec<Value> = findings.iter().map(reduce).collect();
    reduced.sort_by_key(sort_key);
    Value::Array(reduced)
}

pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

/// One line per finding, `type` first, for diffs that show whole findings.
pub fn lines(findings: &Value) -> String {
    const FIRST: &[&str] = &["type", "severity", "service", "source_endpoint", "template"];
    let mut out = String::new();
    for f in findings.as_array().into_iter().flatten() {
        let Some(o) = f.as_object() else {
            out.push_str(&format!("{f}\n"));
            continue;
        };
        let keys = FIRST
            .iter()
            .map(|k| k.to_string())
            .chain(o.keys().filter(|k| !FIRST.contains(&k.as_str())).cloned());
        let fields: Vec<String> = keys
            .filter_map(|k| {
                o.get(&k)
                    .map(|v| format!("{}: {v}", Value::from(k.as_str())))
            })
            .collect();
        out.push_str(&format!("{{{}}}\n", fields.join(", ")));
    }
    out
}

/// A line diff (longest common subsequence), `-` expected, `+` actual.
pub fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        }
    }
    out
}

/// Compares (or, when blessing, records) one fixture's reduced findings.
pub fn check(fixture: &Fixture, transport: &str, findings: &[Value]) -> Result<(), String> {
    let actual = reduce_all(findings);
    if bless() {
        std::fs::write(fixture.expected_path(), pretty(&actual) + "\n").unwrap();
        return Ok(());
    }
    let expected = fixture.expected();
    if expected == actual {
        return Ok(());
    }
    let (e, a) = (lines(&expected), lines(&actual));
    Err(format!(
        "golden mismatch for {} over {transport} (- expected, + reported):\n{}\nevery finding reported for its traces:\n{}\n",
        fixture.name,
        diff(&e, &a),
        findings
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    ))
}
