//! [`FindingRecord`]: a detector's [`Finding`] stamped by the host (origin,
//! environment, confidence, signature, I/O intensity) with its JSON line
//! rendered once.

use std::collections::BTreeMap;
use std::sync::Arc;

use detector_api::{Finding, IoKind, SpanId, TraceId, TraceView};
use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::green::{GreenImpact, HIGH_FACTOR, LOW_FACTOR};

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
    /// The NDJSON line (no trailing newline); empty while rendering is
    /// deferred (see [`FindingRecord::render`]).
    pub json: String,
    /// What the line is rendered from, while it is not rendered yet.
    deferred: Option<Box<LineInputs>>,
}

/// The host's part of a line, kept for a record rendered later.
#[derive(Debug)]
struct LineInputs {
    stamp: Stamp,
    intensity: Option<(f64, &'static str)>,
    green: Option<GreenImpact>,
}

/// A stable fingerprint of "the same problem", readable and stable across
/// restarts and versions:
/// `<kind>:<service>:<endpoint, `/` and spaces as `_`>:<sha256(template), 32 hex>`.
pub fn signature(f: &Finding) -> String {
    use sha2::{Digest, Sha256};
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(f.template.as_bytes());
    let mut out = String::with_capacity(f.kind.len() + f.service.len() + f.endpoint.len() + 3 + 32);
    out.push_str(&f.kind);
    out.push(':');
    // Control characters (from hostile or broken instrumentation) would
    // make the signature unusable in a URL path or a terminal.
    out.extend(
        f.service
            .chars()
            .map(|c| if c.is_control() { '_' } else { c }),
    );
    out.push(':');
    out.extend(f.endpoint.chars().map(|c| {
        if c == '/' || c.is_whitespace() || c.is_control() {
            '_'
        } else {
            c
        }
    }));
    out.push(':');
    for b in &digest[..16] {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// I/O calls per inbound request in the trace, and its band.
pub fn io_intensity(view: &TraceView<'_>) -> (f64, &'static str) {
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

// The published line is serialized straight from these borrowed views of
// the finding: no intermediate `serde_json::Value`, no per-id `String`.
// Fields are declared in alphabetical order, the order the line has always
// had, so consumers diffing NDJSON see no change.

#[derive(Serialize)]
struct RecordJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    code_location: Option<CodeJson<'a>>,
    confidence: &'a str,
    detector: &'a str,
    environment: &'a str,
    evidence_span_ids: DisplaySeq<'a, SpanId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra: Option<BTreeMap<&'a str, &'a str>>,
    first_timestamp: Rfc3339Ns,
    green_impact: GreenJson<'a>,
    last_timestamp: Rfc3339Ns,
    origin: &'a str,
    pattern: PatternJson<'a>,
    service: &'a str,
    severity: &'a str,
    signature: &'a str,
    source_endpoint: &'a str,
    suggestion: &'a str,
    title: &'a str,
    total_duration_ms: f64,
    #[serde(serialize_with = "as_display")]
    trace_id: TraceId,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct CodeJson<'a> {
    filepath: &'a str,
    function: &'a str,
    lineno: u32,
    namespace: &'a str,
}

// Energy and CO2 appear only when green scoring is on; the mid estimate
// is `estimated_co2_gco2`, its band `_low` (x0.5) and `_high` (x2).
#[derive(Serialize)]
struct GreenJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    energy_source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_co2_gco2: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_co2_gco2_high: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_co2_gco2_low: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    estimated_energy_kwh: Option<f64>,
    estimated_extra_io_ops: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    grid_intensity_gco2_kwh: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grid_region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    io_intensity_band: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    io_intensity_score: Option<f64>,
}

#[derive(Serialize)]
struct PatternJson<'a> {
    distinct_params: u32,
    occurrences: u32,
    template: &'a str,
    window_ms: u64,
}

fn as_display<T: std::fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// A slice serialized as an array of the items' `Display` strings.
struct DisplaySeq<'a, T>(&'a [T]);

impl<T: std::fmt::Display> Serialize for DisplaySeq<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&DisplayStr(item))?;
        }
        seq.end()
    }
}

struct DisplayStr<'a, T>(&'a T);

impl<T: std::fmt::Display> Serialize for DisplayStr<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

/// Nanoseconds since the Unix epoch as RFC 3339 UTC, fraction trimmed of
/// trailing zeros (as the `time` crate prints it), written without the
/// formatting machinery: two of these go into every finding.
struct Rfc3339Ns(u64);

impl Rfc3339Ns {
    /// The text, in `buf`; empty when the instant cannot be represented.
    fn write<'b>(&self, buf: &'b mut [u8; 32]) -> &'b str {
        let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0)) else {
            return "";
        };
        let Ok(year) = u32::try_from(t.year()) else {
            return "";
        };
        let mut w = AsciiBuf { buf, len: 0 };
        w.number(year, 4);
        w.byte(b'-');
        w.number(u32::from(u8::from(t.month())), 2);
        w.byte(b'-');
        w.number(u32::from(t.day()), 2);
        w.byte(b'T');
        w.number(u32::from(t.hour()), 2);
        w.byte(b':');
        w.number(u32::from(t.minute()), 2);
        w.byte(b':');
        w.number(u32::from(t.second()), 2);
        let mut nanos = t.nanosecond();
        if nanos != 0 {
            let mut width = 9;
            while nanos % 10 == 0 {
                nanos /= 10;
                width -= 1;
            }
            w.byte(b'.');
            w.number(nanos, width);
        }
        w.byte(b'Z');
        let len = w.len;
        std::str::from_utf8(&buf[..len]).unwrap_or_default()
    }
}

/// Nanoseconds since the Unix epoch as RFC 3339 UTC, as findings print it.
pub fn rfc3339(ns: u64) -> String {
    let mut buf = [0u8; 32];
    Rfc3339Ns(ns).write(&mut buf).to_owned()
}

impl Serialize for Rfc3339Ns {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 32];
        s.serialize_str(self.write(&mut buf))
    }
}

/// A fixed buffer filled with ASCII; a u64 timestamp needs at most 30 bytes
/// (year 2554), so the 32-byte buffer never overflows.
struct AsciiBuf<'b> {
    buf: &'b mut [u8; 32],
    len: usize,
}

impl AsciiBuf<'_> {
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `value` zero-padded to `width` digits.
    fn number(&mut self, mut value: u32, width: usize) {
        for i in (0..width).rev() {
            self.buf[self.len + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += width;
    }
}

impl FindingRecord {
    /// Stamps a finding from `view`'s trace.
    pub fn new(finding: Finding, origin: &Arc<str>, stamp: &Stamp, view: &TraceView<'_>) -> Self {
        Self::scored(finding, origin, stamp, Some(io_intensity(view)), None)
    }

    /// Stamps a finding of a trace whose [`io_intensity`] is already known
    /// (it is the same for every finding of the trace).
    pub fn with_intensity(
        finding: Finding,
        origin: &Arc<str>,
        stamp: &Stamp,
        intensity: (f64, &'static str),
    ) -> Self {
        Self::scored(finding, origin, stamp, Some(intensity), None)
    }

    /// Stamps a cross-trace finding (from `flush`).
    pub fn without_trace(finding: Finding, origin: &Arc<str>, stamp: &Stamp) -> Self {
        Self::scored(finding, origin, stamp, None, None)
    }

    /// Stamps a finding with its trace's I/O intensity (none for a
    /// cross-trace finding) and its green score (none when scoring is off).
    pub fn scored(
        finding: Finding,
        origin: &Arc<str>,
        stamp: &Stamp,
        intensity: Option<(f64, &'static str)>,
        green: Option<&GreenImpact>,
    ) -> Self {
        let signature = signature(&finding);
        let json = line(&finding, origin, &signature, stamp, intensity, green);
        Self {
            finding,
            origin: origin.clone(),
            signature,
            json,
            deferred: None,
        }
    }

    /// As [`FindingRecord::scored`], but the line is rendered only when
    /// [`FindingRecord::render`] is called: batch mode folds a hundred
    /// thousand findings into a few dozen and prints only those.
    pub fn scored_deferred(
        finding: Finding,
        origin: &Arc<str>,
        stamp: &Stamp,
        intensity: Option<(f64, &'static str)>,
        green: Option<GreenImpact>,
    ) -> Self {
        Self {
            signature: signature(&finding),
            finding,
            origin: origin.clone(),
            json: String::new(),
            deferred: Some(Box::new(LineInputs {
                stamp: stamp.clone(),
                intensity,
                green,
            })),
        }
    }

    /// Renders the line of a deferred record; nothing for one already
    /// rendered.
    pub fn render(&mut self) {
        if let Some(inputs) = self.deferred.take() {
            self.json = line(
                &self.finding,
                &self.origin,
                &self.signature,
                &inputs.stamp,
                inputs.intensity,
                inputs.green.as_ref(),
            );
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

/// The NDJSON line of `f`.
fn line(
    f: &Finding,
    origin: &Arc<str>,
    signature: &str,
    stamp: &Stamp,
    intensity: Option<(f64, &'static str)>,
    green: Option<&GreenImpact>,
) -> String {
    let record = RecordJson {
        code_location: (!f.code.is_empty()).then(|| CodeJson {
            filepath: f.code.filepath.as_str(),
            function: f.code.function.as_str(),
            lineno: f.code.lineno,
            namespace: f.code.namespace.as_str(),
        }),
        confidence: stamp.confidence,
        detector: f.detector.as_str(),
        environment: &stamp.environment,
        evidence_span_ids: DisplaySeq(&f.evidence),
        // Later duplicates of a key win, as they always have.
        extra: (!f.extra.is_empty()).then(|| {
            f.extra
                .iter()
                .map(|e| (e.key.as_str(), e.value.as_str()))
                .collect()
        }),
        first_timestamp: Rfc3339Ns(f.first_ns),
        green_impact: GreenJson {
            energy_source: green.map(|g| g.energy_source.as_str()),
            estimated_co2_gco2: green.map(|g| g.co2_gco2),
            estimated_co2_gco2_high: green.map(|g| g.co2_gco2 * HIGH_FACTOR),
            estimated_co2_gco2_low: green.map(|g| g.co2_gco2 * LOW_FACTOR),
            estimated_energy_kwh: green.map(|g| g.energy_kwh),
            estimated_extra_io_ops: f.avoidable_io,
            grid_intensity_gco2_kwh: green.map(|g| g.gco2_per_kwh),
            grid_region: green.map(|g| g.region.as_str()),
            io_intensity_band: intensity.map(|(_, band)| band),
            io_intensity_score: intensity.map(|(score, _)| (score * 100.0).round() / 100.0),
        },
        last_timestamp: Rfc3339Ns(f.last_ns),
        origin,
        pattern: PatternJson {
            distinct_params: f.distinct_params,
            occurrences: f.occurrences,
            template: f.template.as_str(),
            window_ms: f.last_ns.saturating_sub(f.first_ns) / 1_000_000,
        },
        service: f.service.as_str(),
        severity: f.severity.as_str(),
        signature,
        source_endpoint: f.endpoint.as_str(),
        suggestion: f.suggestion.as_str(),
        title: f.title.as_str(),
        total_duration_ms: f.total_duration_ns as f64 / 1e6,
        trace_id: f.trace_id,
        kind: f.kind.as_str(),
    };
    // Serializing borrowed strings and numbers into a String cannot fail.
    let mut json = serde_json::to_string(&record).unwrap_or_default();
    // The writer grows by doubling; up to 10,000 of these are retained.
    json.shrink_to_fit();
    json
}

#[cfg(test)]
mod tests {
    use detector_api::Severity;
    use detector_api::testkit::{SpanSpec, TraceBuilder};

    use super::*;

    fn sha256_hex(s: &str) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn time_crate_rfc3339(ns: u64) -> String {
        use time::format_description::well_known::Rfc3339;
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
            .unwrap()
            .format(&Rfc3339)
            .unwrap()
    }

    proptest::proptest! {
        #[test]
        fn timestamps_print_as_the_time_crate_prints_them(ns in proptest::prelude::any::<u64>()) {
            let mut buf = [0u8; 32];
            proptest::prop_assert_eq!(Rfc3339Ns(ns).write(&mut buf), time_crate_rfc3339(ns));
        }
    }

    #[test]
    fn timestamps_trim_the_fraction_like_the_time_crate() {
        for ns in [
            0,
            1,
            10,
            999_999_999,
            1_000_000_000,
            1_700_000_000_120_000_000,
            1_700_000_000_000_000_500,
            u64::MAX,
        ] {
            let mut buf = [0u8; 32];
            assert_eq!(
                Rfc3339Ns(ns).write(&mut buf),
                time_crate_rfc3339(ns),
                "{ns}"
            );
        }
    }

    #[test]
    fn optional_parts_and_hostile_strings_serialize_as_valid_json() {
        let mut f = Finding::new("slow_sql", Severity::Warning, TraceId([0x0f; 16]))
            .template("SELECT \"x\"\n\u{1b}[31m")
            .service("svc")
            .endpoint("GET /a")
            .evidence([SpanId([0xa0; 8]), SpanId([1; 8])])
            .extra("p99_ms", "900")
            .extra("p99_ms", "950")
            .extra("a", "1");
        f.code.function = "load".into();
        f.code.lineno = 42;
        let stamp = Stamp {
            environment: "staging".into(),
            confidence: confidence_for("staging"),
        };
        let rec = FindingRecord::without_trace(f.clone(), &"plugin:x".into(), &stamp);
        let j: serde_json::Value = serde_json::from_str(&rec.json).unwrap();
        assert_eq!(j["pattern"]["template"], f.template.as_str());
        assert_eq!(
            j["evidence_span_ids"],
            serde_json::json!(["a0a0a0a0a0a0a0a0", "0101010101010101"])
        );
        assert_eq!(j["extra"], serde_json::json!({"a": "1", "p99_ms": "950"}));
        assert_eq!(j["code_location"]["function"], "load");
        assert_eq!(j["code_location"]["lineno"], 42);
        assert!(j["green_impact"].get("io_intensity_score").is_none());
        assert_eq!(j["confidence"], "daemon_staging");
        // Keys come out sorted, as a `serde_json::Value` would print them.
        let resorted = serde_json::to_string(&j).unwrap();
        assert_eq!(rec.json, resorted);
    }

    #[test]
    fn green_scores_appear_sorted_beside_the_io_figures() {
        let f = Finding::new("n_plus_one_sql", Severity::Critical, TraceId([2; 16]))
            .template("SELECT ?")
            .service("orders")
            .avoidable_io(11);
        let stamp = Stamp {
            environment: "staging".into(),
            confidence: confidence_for("staging"),
        };
        let impact = GreenImpact {
            energy_kwh: 6.2425e-7,
            co2_gco2: 3.2e-5,
            region: "eu-west-3".into(),
            gco2_per_kwh: 51.0,
            energy_source: "proxy".into(),
        };
        let rec = FindingRecord::scored(
            f.clone(),
            &"builtin".into(),
            &stamp,
            Some((1.0, "healthy")),
            Some(&impact),
        );
        let j: serde_json::Value = serde_json::from_str(&rec.json).unwrap();
        let g = &j["green_impact"];
        assert_eq!(g["estimated_extra_io_ops"], 11);
        assert_eq!(g["estimated_energy_kwh"], 6.2425e-7);
        assert_eq!(g["estimated_co2_gco2"], 3.2e-5);
        assert_eq!(g["estimated_co2_gco2_low"], 1.6e-5);
        assert_eq!(g["estimated_co2_gco2_high"], 6.4e-5);
        assert_eq!(g["grid_region"], "eu-west-3");
        assert_eq!(g["grid_intensity_gco2_kwh"], 51.0);
        assert_eq!(g["energy_source"], "proxy");
        assert_eq!(rec.json, serde_json::to_string(&j).unwrap());
        // Unscored: the line is what it always was.
        let plain =
            FindingRecord::with_intensity(f.clone(), &"builtin".into(), &stamp, (1.0, "healthy"));
        let unscored =
            FindingRecord::scored(f, &"builtin".into(), &stamp, Some((1.0, "healthy")), None);
        assert_eq!(plain.json, unscored.json);
        assert!(!plain.json.contains("estimated_energy_kwh"));
    }

    #[test]
    fn a_deferred_line_renders_once_and_as_the_eager_one() {
        let f = Finding::new("n_plus_one_sql", Severity::Critical, TraceId([3; 16]))
            .template("SELECT ?")
            .service("orders")
            .avoidable_io(4);
        let stamp = Stamp {
            environment: "ci".into(),
            confidence: "ci_batch",
        };
        let impact = GreenImpact {
            energy_kwh: 1e-6,
            co2_gco2: 2e-5,
            region: "eu-west-3".into(),
            gco2_per_kwh: 51.0,
            energy_source: "proxy".into(),
        };
        let origin: Arc<str> = "builtin".into();
        let band = Some((0.5, "healthy"));
        let eager = FindingRecord::scored(f.clone(), &origin, &stamp, band, Some(&impact));
        let mut late = FindingRecord::scored_deferred(f, &origin, &stamp, band, Some(impact));
        assert_eq!(late.signature, eager.signature);
        assert!(late.json.is_empty(), "rendered before it was asked");
        late.render();
        assert_eq!(late.json, eager.json);
        late.json.push('!');
        late.render();
        assert!(late.json.ends_with('!'), "rendered twice");
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
        let hostile = f.clone().service("a\u{1b}[2Jb").endpoint("GET /x\u{7}");
        assert_eq!(
            signature(&hostile),
            "redundant_sql:a_[2Jb:GET__x_:ba7816bf8f01cfea414140de5dae2223"
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
