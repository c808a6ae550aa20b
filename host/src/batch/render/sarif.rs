//! The report as SARIF 2.1.0, for code scanning: one rule per finding kind,
//! one result per distinct problem, placed at the source line its spans
//! name (`code.filepath`, `code.lineno`, `code.function`). Code scanning
//! refuses a whole file if one result has no file, so a finding without a
//! source location points at the trace file itself. The signature is the
//! result's partial fingerprint, so an alert stays the same alert across
//! runs. Acknowledged findings, when shown, carry an accepted suppression.

use std::collections::BTreeMap;

use detector_api::Severity;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Value, json};

use super::Options;
use crate::batch::gate::waste_ratio;
use crate::batch::report::{Entry, Report};

/// The schema the document declares (OASIS, 2.1.0 with errata 01).
pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// Bytes a URI path cannot hold as they are.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Renders `report` (pretty-printed, newline-terminated).
pub fn render(report: &Report, options: &Options) -> String {
    let mut entries: Vec<&Entry> = report.findings.iter().collect();
    if options.show_acknowledged {
        entries.extend(&report.acknowledged);
    }
    // One rule per kind, in id order; the first entry of a kind (the
    // worst) names the detector that describes it.
    let mut kinds: BTreeMap<&str, &Entry> = BTreeMap::new();
    for e in &entries {
        kinds.entry(e.record().finding.kind.as_str()).or_insert(e);
    }
    let index: BTreeMap<&str, usize> = kinds.keys().enumerate().map(|(i, k)| (*k, i)).collect();
    let rules: Vec<Value> = kinds
        .iter()
        .map(|(kind, e)| rule(report, kind, e))
        .collect();
    let results: Vec<Value> = entries
        .iter()
        .map(|e| result(e, index[e.record().finding.kind.as_str()], options))
        .collect();
    let doc = json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "perf-sentinel",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": rules,
            }},
            "results": results,
            "properties": {
                "environment": report.environment,
                "qualityGate": report.gate,
                "ioWasteRatio": waste_ratio(report.io),
                "traces": report.input.traces,
                "spans": report.input.spans,
            },
        }],
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

fn rule(report: &Report, kind: &str, example: &Entry) -> Value {
    let f = &example.record().finding;
    let description = report
        .detectors
        .iter()
        .find(|d| d.id == f.detector.as_str())
        .map_or_else(|| kind.replace('_', " "), |d| d.description.clone());
    let mut rule = json!({
        "id": kind,
        "name": pascal_case(kind),
        "shortDescription": {"text": description},
        "fullDescription": {"text": description},
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["performance", example.record().origin.as_ref()]},
    });
    if !f.suggestion.is_empty()
        && let Some(obj) = rule.as_object_mut()
    {
        obj.insert("help".into(), json!({"text": f.suggestion.as_str()}));
    }
    rule
}

/// `n_plus_one_sql` as `NPlusOneSql`; a plugin's dots start words too.
fn pascal_case(kind: &str) -> String {
    kind.split(['_', '.', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|first| first.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn result(e: &Entry, rule_index: usize, options: &Options) -> Value {
    let r = e.record();
    let f = &r.finding;
    let text = if f.title.is_empty() {
        format!(
            "{} in {} {}",
            f.kind.as_str(),
            f.service.as_str(),
            f.endpoint.as_str()
        )
    } else {
        f.title.to_string()
    };
    let seen = e.folded.seen_count;
    let message = format!("{text} (seen {})", super::times(seen));
    let mut result = json!({
        "ruleId": f.kind.as_str(),
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": {"text": message},
        "locations": [location(e, options)],
        "partialFingerprints": {"perfSentinelSignature/v1": r.signature},
        "properties": {
            "service": f.service.as_str(),
            "sourceEndpoint": f.endpoint.as_str(),
            "template": f.template.as_str(),
            "occurrences": f.occurrences,
            "seenCount": seen,
            "traceId": f.trace_id.to_string(),
            "detector": f.detector.as_str(),
            "origin": r.origin.as_ref(),
            "severity": f.severity.as_str(),
            "estimatedExtraIoOps": f.avoidable_io,
            "signature": r.signature,
        },
    });
    if let (Some(ack), Some(obj)) = (&e.ack, result.as_object_mut()) {
        let mut justification = format!("acknowledged by {} ({})", ack.by, ack.at);
        if !ack.reason.is_empty() {
            justification.push_str(": ");
            justification.push_str(&ack.reason);
        }
        obj.insert(
            "suppressions".into(),
            json!([{"kind": "external", "status": "accepted", "justification": justification}]),
        );
    }
    result
}

/// The source line of the finding, or the trace file when its spans name
/// no source file.
fn location(e: &Entry, options: &Options) -> Value {
    let code = &e.record().finding.code;
    let mut location = if code.filepath.is_empty() {
        json!({"physicalLocation": {
            "artifactLocation": {"uri": uri(&options.input_uri)},
            "region": {"startLine": 1},
        }})
    } else {
        let mut physical = json!({"artifactLocation": {"uri": uri(code.filepath.as_str())}});
        if code.lineno > 0
            && let Some(obj) = physical.as_object_mut()
        {
            obj.insert("region".into(), json!({"startLine": code.lineno}));
        }
        json!({ "physicalLocation": physical })
    };
    let function = code.function.as_str();
    if !function.is_empty()
        && let Some(obj) = location.as_object_mut()
    {
        let name = if code.namespace.is_empty() || function.starts_with(code.namespace.as_str()) {
            function.to_owned()
        } else {
            format!("{}.{function}", code.namespace.as_str())
        };
        obj.insert(
            "logicalLocations".into(),
            json!([{"fullyQualifiedName": name, "kind": "function"}]),
        );
    }
    location
}

/// A file path as a URI reference: repository-relative paths stay relative
/// (code scanning resolves them against the checkout), absolute ones become
/// `file://` URIs; Windows separators become `/`.
pub fn uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let encoded = utf8_percent_encode(&path, PATH).to_string();
    if path.starts_with('/') {
        format!("file://{encoded}")
    } else if path.len() > 1 && path.as_bytes()[1] == b':' {
        // `C:/src/x.cs`: a drive letter, not a URI scheme.
        format!("file:///{encoded}")
    } else {
        encoded.trim_start_matches("./").to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_become_rule_names() {
        assert_eq!(pascal_case("n_plus_one_sql"), "NPlusOneSql");
        assert_eq!(pascal_case("acme.select_star"), "AcmeSelectStar");
    }

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(uri("src/orders/repo.rs"), "src/orders/repo.rs");
        assert_eq!(uri("./src/a b#c.py"), "src/a%20b%23c.py");
        assert_eq!(uri("/app/src/x.py"), "file:///app/src/x.py");
        assert_eq!(uri("C:\\src\\X.cs"), "file:///C:/src/X.cs");
        assert_eq!(uri("src/\u{1b}[31m.rs"), "src/%1B%5B31m.rs");
        assert_eq!(uri("src/café.rs"), "src/caf%C3%A9.rs");
    }
}
