//! The report of one `analyze` run, independent of how it is printed:
//! findings folded by signature (one entry per distinct problem, with how
//! many traces showed it), acknowledged ones apart, the I/O waste totals,
//! the quality gate and what each detector did. Everything is in a fixed
//! order, so the same input gives the same report byte for byte.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use detector_api::Severity;

use crate::acks::AckInfo;
use crate::config::ThresholdsConfig;
use crate::findings::{FindingRecord, Folded};
use crate::pipeline::detectors::DetectorSpec;

use super::analysis::{Analysis, IoTotals};
use super::gate::{Gate, evaluate};

/// What was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputSummary {
    /// `otlp_json`, `otlp_ndjson`, `zipkin_v2_json` or `jaeger_json`.
    pub format: &'static str,
    pub gzip: bool,
    /// Bytes read (after decompression).
    pub bytes: u64,
    pub traces: usize,
    /// Spans analyzed.
    pub spans: usize,
    /// Spans refused for an invalid trace or span id.
    pub spans_rejected_invalid_id: usize,
    /// Spans over `max_events_per_trace` in their trace.
    pub spans_over_trace_cap: usize,
    pub strings_truncated: usize,
    pub attributes_dropped: usize,
}

/// One distinct problem.
#[derive(Debug, Clone)]
pub struct Entry {
    pub folded: Folded,
    /// Set when the CI baseline acknowledges it.
    pub ack: Option<AckInfo>,
}

impl Entry {
    pub fn record(&self) -> &FindingRecord {
        &self.folded.shown
    }
}

/// One enabled detector and how its runs went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorSummary {
    pub id: String,
    /// `builtin` or the plugin's name.
    pub origin: String,
    pub description: String,
    pub runs: u64,
    pub errors: u64,
    pub quarantined: bool,
}

/// Everything a renderer prints.
#[derive(Debug, Clone)]
pub struct Report {
    pub environment: String,
    pub input: InputSummary,
    /// Unacknowledged, worst first.
    pub findings: Vec<Entry>,
    /// Hidden by the CI baseline, worst first.
    pub acknowledged: Vec<Entry>,
    pub io: IoTotals,
    pub gate: Gate,
    pub detectors: Vec<DetectorSummary>,
}

impl Report {
    /// Builds the report from the analysis; `ack` looks a signature up in
    /// the CI baseline.
    pub fn build(
        analysis: Analysis,
        input: InputSummary,
        environment: &str,
        specs: &[Arc<DetectorSpec>],
        thresholds: &ThresholdsConfig,
        ack: &dyn Fn(&str) -> Option<AckInfo>,
    ) -> Report {
        let (mut acknowledged, mut findings): (Vec<Entry>, Vec<Entry>) = analysis
            .findings
            .into_folded()
            .into_iter()
            .map(|folded| Entry {
                ack: ack(&folded.shown.signature),
                folded,
            })
            .partition(|e| e.ack.is_some());
        for list in [&mut findings, &mut acknowledged] {
            list.sort_by(|a, b| {
                let (fa, fb) = (&a.record().finding, &b.record().finding);
                fb.severity
                    .cmp(&fa.severity)
                    .then(fa.kind.as_str().cmp(fb.kind.as_str()))
                    .then(fa.service.as_str().cmp(fb.service.as_str()))
                    .then(fa.endpoint.as_str().cmp(fb.endpoint.as_str()))
                    .then(a.record().signature.cmp(&b.record().signature))
            });
        }
        let gate = evaluate(
            thresholds,
            findings.iter().map(|e| {
                (
                    e.record().finding.kind.as_str(),
                    e.record().finding.severity,
                )
            }),
            analysis.io,
        );
        let detectors = specs
            .iter()
            .map(|s| DetectorSummary {
                id: s.id.clone(),
                origin: s.origin.to_string(),
                description: s.description.clone(),
                runs: s.stats.runs.load(Ordering::Relaxed),
                errors: s.stats.errors.load(Ordering::Relaxed),
                quarantined: s.stats.quarantined.load(Ordering::Relaxed),
            })
            .collect();
        Report {
            environment: environment.to_owned(),
            input,
            findings,
            acknowledged,
            io: analysis.io,
            gate,
            detectors,
        }
    }

    /// Unacknowledged entries of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|e| e.record().finding.severity == severity)
            .count()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use detector_api::{Finding, TraceId};

    use super::*;
    use crate::acks::AckSource;
    use crate::findings::Stamp;

    /// A batch finding of `kind` for `service`, endpoint `GET /a`, seen at `at` ns.
    pub(crate) fn record(
        kind: &str,
        service: &str,
        severity: Severity,
        trace: u8,
        at: u64,
    ) -> FindingRecord {
        let f = Finding::new(kind, severity, TraceId([trace; 16]))
            .service(service)
            .endpoint("GET /a")
            .template("SELECT ?")
            .timing(at, at + 5, 0);
        let stamp = Stamp {
            environment: "ci".into(),
            confidence: "ci_batch",
        };
        FindingRecord::without_trace(f, &"builtin".into(), &stamp)
    }

    fn build(records: Vec<FindingRecord>, acked: &str) -> Report {
        let acked = acked.to_owned();
        let mut findings = crate::batch::fold::Folder::default();
        for r in records {
            findings.add(r);
        }
        Report::build(
            Analysis {
                findings,
                io: IoTotals::default(),
            },
            InputSummary::default(),
            "ci",
            &[],
            &ThresholdsConfig::default(),
            &move |sig: &str| {
                sig.starts_with(&acked).then(|| AckInfo {
                    source: AckSource::Toml,
                    by: "me".into(),
                    at: "2026-01-01".into(),
                    reason: "known".into(),
                    expires_at: None,
                })
            },
        )
    }

    #[test]
    fn findings_fold_by_signature_worst_first_and_acks_move_aside() {
        let records = vec![
            record("redundant_sql", "b", Severity::Info, 1, 10),
            record("n_plus_one_sql", "a", Severity::Warning, 2, 30),
            record("n_plus_one_sql", "a", Severity::Critical, 3, 20),
            record("n_plus_one_sql", "a", Severity::Critical, 4, 5),
            record("n_plus_one_http", "a", Severity::Warning, 5, 1),
        ];
        let report = build(records, "n_plus_one_http:");
        let shown: Vec<(&str, Severity, usize, TraceId)> = report
            .findings
            .iter()
            .map(|e| {
                let f = &e.record().finding;
                (f.kind.as_str(), f.severity, e.folded.seen_count, f.trace_id)
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("n_plus_one_sql", Severity::Critical, 3, TraceId([4; 16])),
                ("redundant_sql", Severity::Info, 1, TraceId([1; 16])),
            ]
        );
        assert_eq!(report.acknowledged.len(), 1);
        assert_eq!(report.acknowledged[0].ack.as_ref().unwrap().reason, "known");
        assert!(!report.gate.passed, "one critical N+1 SQL");
        assert_eq!(report.count(Severity::Critical), 1);
    }

    #[test]
    fn the_order_of_the_records_does_not_matter() {
        let records = || {
            vec![
                record("n_plus_one_sql", "a", Severity::Critical, 3, 20),
                record("n_plus_one_sql", "a", Severity::Critical, 4, 20),
                record("slow_sql", "c", Severity::Warning, 1, 7),
            ]
        };
        let a = build(records(), "-");
        let mut reversed = records();
        reversed.reverse();
        let b = build(reversed, "-");
        let lines = |r: &Report| -> Vec<String> {
            r.findings.iter().map(|e| e.record().json.clone()).collect()
        };
        assert_eq!(lines(&a), lines(&b));
    }
}
