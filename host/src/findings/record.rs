//! [`FindingRecord`]: a detector's [`Finding`] stamped by the host (origin,
//! environment, confidence, signature, I/O intensity) with its JSON line
//! rendered once.

use std::sync::Arc;

use detector_api::{Finding, IoKind, TraceView};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What the host stamps on every finding.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub environment: Arc<str>,
    pub confidence: &'static str,
}

/// `daemon_production` for the `production` environment, else
/// `daemon_staging`.
pub fn confidence_for(environment: &str) -> &'static str {
    if environment == "production" {
        "daemon_production"
    } else {
        "daemon_staging"
    }
}

/// A finding as published.
#[derive(Debug)]
pub struct FindingRecord {
    pub finding: Finding,
    pub origin: Arc<str>,
    pub signature: String,
    /// The NDJSON line (no trailing newline).
    pub json: String,
}

/// A stable fingerprint of "the same problem", readable and stable across
/// restarts and versions:
/// `<kind>:<service>:<endpoint, `/` and spaces as `_`>:<sha256(template), 32 hex>`.
pub fn signature(f: &Finding) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write as _;
    let digest = Sha256::digest(f.template.as_bytes());
    let endpoint: String = f
        .endpoint
        .chars()
        .map(|c| {
            if c == '/' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut out = format!("{}:{}:{}:", f.kind, f.service, endpoint);
    for b in &digest[..16] {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn rfc3339(ns: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// I/O calls per inbound request in the trace, and its band.
fn io_intensity(view: &TraceView<'_>) -> (f64, &'static str) {
    let spans = view.spans();
    let io = [IoKind::Sql, IoKind::Http, IoKind::Messaging, IoKind::Rpc]
        .iter()
        .flat_map(|k| view.of_kind(*k))
        .filter(|&&i| !spans[i as usize].span_kind.is_inbound())
        .count();
    let inbound = spans.iter().filter(|s| s.span_kind.is_inbound()).count();
    let score = io as f64 / inbound.max(1) as f64;
    // The bands of the io_waste detector: healthy / moderate / high / critical.
    let band = match score {
        s if s < 2.0 => "healthy",
        s if s < 5.0 => "moderate",
        s if s < 10.0 => "high",
        _ => "critical",
    };
    (score, band)
}

#[derive(Serialize)]
struct CodeJson<'a> {
    function: &'a str,
    filepath: &'a str,
    lineno: u32,
    namespace: &'a str,
}

impl FindingRecord {
    /// Stamps a finding from `view`'s trace.
    pub fn new(finding: Finding, origin: &Arc<str>, stamp: &Stamp, view: &TraceView<'_>) -> Self {
        let intensity = io_intensity(view);
        Self::build(finding, origin, stamp, Some(intensity))
    }

    /// Stamps a cross-trace finding (from `flush`).
    pub fn without_trace(finding: Finding, origin: &Arc<str>, stamp: &Stamp) -> Self {
        Self::build(finding, origin, stamp, None)
    }

    fn build(
        finding: Finding,
        origin: &Arc<str>,
        stamp: &Stamp,
        intensity: Option<(f64, &'static str)>,
    ) -> Self {
        let signature = signature(&finding);
        let f = &finding;
        let mut green = serde_json::Map::new();
        green.insert("estimated_extra_io_ops".into(), json!(f.avoidable_io));
        if let Some((score, band)) = intensity {
            green.insert(
                "io_intensity_score".into(),
                json!((score * 100.0).round() / 100.0),
            );
            green.insert("io_intensity_band".into(), json!(band));
        }
        let mut value = json!({
            "type": f.kind.as_str(),
            "severity": f.severity.as_str(),
            "trace_id": f.trace_id.to_string(),
            "service": f.service.as_str(),
            "source_endpoint": f.endpoint.as_str(),
            "title": f.title.as_str(),
            "pattern": {
                "template": f.template.as_str(),
                "occurrences": f.occurrences,
                "window_ms": f.last_ns.saturating_sub(f.first_ns) / 1_000_000,
                "distinct_params": f.distinct_params,
            },
            "suggestion": f.suggestion.as_str(),
            "first_timestamp": rfc3339(f.first_ns),
            "last_timestamp": rfc3339(f.last_ns),
            "total_duration_ms": f.total_duration_ns as f64 / 1e6,
            "green_impact": green,
            "confidence": stamp.confidence,
            "environment": &*stamp.environment,
            "signature": &signature,
            "detector": f.detector.as_str(),
            "origin": &**origin,
            "evidence_span_ids": f.evidence.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        });
        if let Some(obj) = value.as_object_mut() {
            if !f.code.is_empty() {
                obj.insert(
                    "code_location".into(),
                    json!(CodeJson {
                        function: f.code.function.as_str(),
                        filepath: f.code.filepath.as_str(),
                        lineno: f.code.lineno,
                        namespace: f.code.namespace.as_str(),
                    }),
                );
            }
            if !f.extra.is_empty() {
                let extra: serde_json::Map<_, _> = f
                    .extra
                    .iter()
                    .map(|e| (e.key.to_string(), json!(e.value.as_str())))
                    .collect();
                obj.insert("extra".into(), serde_json::Value::Object(extra));
            }
        }
        let json = value.to_string();
        Self {
            finding,
            origin: origin.clone(),
            signature,
            json,
        }
    }

    /// The order findings of one trace are published in.
    pub fn sort_key(&self) -> (&str, &str, &str, u64, &str) {
        let f = &self.finding;
        (
            f.kind.as_str(),
            f.service.as_str(),
            f.template.as_str(),
            f.first_ns,
            self.signature.as_str(),
        )
    }
}

#[cfg(test)]
mod tests {
    use detector_api::testkit::{SpanSpec, TraceBuilder};
    use detector_api::{Severity, TraceId};

    use super::*;

    fn sha256_hex(s: &str) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn signature_matches_a_known_digest() {
        let f = Finding::new("redundant_sql", Severity::Info, TraceId([1; 16]))
            .service("svc")
            .endpoint("POST /a b")
            .template("abc");
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a3...
        assert_eq!(
            signature(&f),
            "redundant_sql:svc:POST__a_b:ba7816bf8f01cfea414140de5dae2223"
        );
    }

    #[test]
    fn json_carries_the_documented_fields() {
        let mut t = TraceBuilder::with_id(TraceId([0xab; 16]));
        let root = t.root(SpanSpec::server("GET", "/a"));
        t.child(root, SpanSpec::sql("SELECT ?", "1"));
        let f = Finding::new("n_plus_one_sql", Severity::Critical, TraceId([0xab; 16]))
            .template("SELECT ?")
            .service("api")
            .endpoint("GET /a")
            .occurrences(12, 12)
            .avoidable_io(11)
            .timing(1_700_000_000_000_000_000, 1_700_000_000_250_000_000, 0);
        let stamp = Stamp {
            environment: "production".into(),
            confidence: confidence_for("production"),
        };
        let rec = t.with_view(|v| FindingRecord::new(f.clone(), &"builtin".into(), &stamp, v));
        let j: serde_json::Value = serde_json::from_str(&rec.json).unwrap();
        assert_eq!(j["type"], "n_plus_one_sql");
        assert_eq!(j["severity"], "critical");
        assert_eq!(j["trace_id"], "abababababababababababababababab");
        assert_eq!(j["pattern"]["occurrences"], 12);
        assert_eq!(j["pattern"]["window_ms"], 250);
        assert_eq!(j["first_timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(j["confidence"], "daemon_production");
        assert_eq!(j["green_impact"]["estimated_extra_io_ops"], 11);
        assert_eq!(j["green_impact"]["io_intensity_score"], 1.0);
        assert_eq!(j["origin"], "builtin");
        assert!(j.get("code_location").is_none());
        // The signature ignores the trace and the timing.
        let other = Finding {
            trace_id: TraceId([1; 16]),
            first_ns: 0,
            ..f.clone()
        };
        assert_eq!(signature(&f), signature(&other));
        assert_eq!(j["signature"], signature(&f));
        assert_ne!(signature(&f), signature(&f.clone().service("web")));
        assert_eq!(
            signature(&f),
            // sha256("SELECT ?") starts with these 16 bytes.
            format!(
                "n_plus_one_sql:api:GET__a:{}",
                &sha256_hex("SELECT ?")[..32]
            )
        );
    }
}
