//! Folding for `GET /api/findings`: the same problem (one signature) seen
//! in many traces is one entry, carrying its worst severity, how often it
//! was seen and when, rather than a page of near-identical findings.

use std::collections::HashMap;
use std::sync::Arc;

use super::{FindingRecord, rfc3339};

/// One signature's findings, folded.
#[derive(Debug, Clone)]
pub struct Folded {
    /// The finding shown: the newest among those of the worst severity.
    pub shown: Arc<FindingRecord>,
    pub seen_count: usize,
    /// Earliest first timestamp and latest last timestamp, ns.
    pub first_ns: u64,
    pub last_ns: u64,
}

/// Folds `newest_first` by signature; entries keep that order, by their
/// most recent sighting (the daemon's arrival order, not trace time, which
/// clock skew between services can scramble).
pub fn fold<'a>(newest_first: impl IntoIterator<Item = &'a Arc<FindingRecord>>) -> Vec<Folded> {
    let mut index: HashMap<&'a str, usize> = HashMap::new();
    let mut out: Vec<Folded> = Vec::new();
    for r in newest_first {
        let f = &r.finding;
        match index.get(r.signature.as_str()) {
            Some(&i) => {
                let e = &mut out[i];
                e.seen_count += 1;
                e.first_ns = e.first_ns.min(f.first_ns);
                e.last_ns = e.last_ns.max(f.last_ns);
                // Strictly worse only: among equals the newer one stays.
                if f.severity > e.shown.finding.severity {
                    e.shown = r.clone();
                }
            }
            None => {
                index.insert(r.signature.as_str(), out.len());
                out.push(Folded {
                    shown: r.clone(),
                    seen_count: 1,
                    first_ns: f.first_ns,
                    last_ns: f.last_ns,
                });
            }
        }
    }
    out
}

/// Appends `folded` as JSON to `body`: the shown finding's own line with
/// `seen_count`, `first_seen`, `last_seen` and, when given,
/// `acknowledged_by` added. The line is an object already rendered once, so
/// it is extended, not re-encoded.
pub fn push_folded(body: &mut String, folded: &Folded, ack: Option<serde_json::Value>) {
    let line = folded.shown.json.as_str();
    let open = line.strip_suffix('}').unwrap_or(line);
    body.push_str(open);
    let extra = serde_json::json!({
        "seen_count": folded.seen_count,
        "first_seen": rfc3339(folded.first_ns),
        "last_seen": rfc3339(folded.last_ns),
    });
    let mut fields = extra.to_string();
    if let Some(ack) = ack {
        fields.pop();
        fields.push_str(",\"acknowledged_by\":");
        fields.push_str(&ack.to_string());
        fields.push('}');
    }
    // `{...}` minus its braces, after the line's own last field.
    body.push(',');
    body.push_str(&fields[1..]);
}

#[cfg(test)]
mod tests {
    use detector_api::{Finding, Severity, TraceId};

    use super::*;
    use crate::findings::Stamp;

    fn rec(service: &str, severity: Severity, trace: u8, at: u64) -> Arc<FindingRecord> {
        let f = Finding::new("n_plus_one_sql", severity, TraceId([trace; 16]))
            .service(service)
            .template("SELECT ?")
            .timing(at, at + 10, 0);
        let stamp = Stamp {
            environment: "staging".into(),
            confidence: "daemon_staging",
        };
        Arc::new(FindingRecord::without_trace(f, &"builtin".into(), &stamp))
    }

    #[test]
    fn one_entry_per_signature_with_the_worst_severity_and_the_span_of_sightings() {
        // Newest first, as the store hands them out.
        let records = [
            rec("api", Severity::Warning, 4, 400),
            rec("web", Severity::Info, 3, 300),
            rec("api", Severity::Critical, 2, 200),
            rec("api", Severity::Critical, 1, 100),
        ];
        let folded = fold(records.iter());
        assert_eq!(folded.len(), 2);
        let api = &folded[0];
        assert_eq!(api.shown.finding.service.as_str(), "api");
        assert_eq!(api.seen_count, 3);
        assert_eq!(api.shown.finding.severity, Severity::Critical);
        assert_eq!(
            api.shown.finding.trace_id,
            TraceId([2; 16]),
            "the newest critical one"
        );
        assert_eq!((api.first_ns, api.last_ns), (100, 410));
        assert_eq!(folded[1].shown.finding.service.as_str(), "web");
        assert_eq!(folded[1].seen_count, 1);
    }
}
