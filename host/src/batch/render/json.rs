//! The report for scripts: one JSON document. Findings are the daemon's
//! finding objects (the API's folded shape: the finding plus `seen_count`,
//! `first_seen`, `last_seen`, and `acknowledged_by` when acknowledged), so a
//! script reads batch and daemon output alike. Keys are sorted and numbers
//! printed the same way every time: the same report, the same bytes.

use serde_json::{Value, json};

use super::Options;
use crate::batch::gate::waste_ratio;
use crate::batch::report::{Entry, Report};
use crate::findings::push_folded;

/// Renders `report` (pretty-printed, newline-terminated).
pub fn render(report: &Report, options: &Options) -> String {
    let input = &report.input;
    let io = report.io;
    let mut doc = json!({
        "tool": {"name": "perf-sentinel", "version": env!("CARGO_PKG_VERSION")},
        "environment": report.environment,
        "input": {
            "format": input.format,
            "gzip": input.gzip,
            "bytes": input.bytes,
            "traces": input.traces,
            "spans": input.spans,
            "spans_rejected_invalid_id": input.spans_rejected_invalid_id,
            "spans_over_trace_cap": input.spans_over_trace_cap,
            "strings_truncated": input.strings_truncated,
            "attributes_dropped": input.attributes_dropped,
        },
        "summary": {
            "findings": report.findings.len(),
            "critical": report.count(detector_api::Severity::Critical),
            "warning": report.count(detector_api::Severity::Warning),
            "info": report.count(detector_api::Severity::Info),
            "acknowledged": report.acknowledged.len(),
        },
        "findings": entries(&report.findings),
        "io_waste": {
            "total_io_ops": io.total,
            "avoidable_io_ops": io.avoidable_unacked,
            "acknowledged_avoidable_io_ops": io.avoidable - io.avoidable_unacked,
            "ratio": waste_ratio(io),
        },
        "quality_gate": report.gate,
        "detectors": report.detectors.iter().map(|d| json!({
            "id": d.id,
            "origin": d.origin,
            "runs": d.runs,
            "errors": d.errors,
            "quarantined": d.quarantined,
        })).collect::<Vec<_>>(),
    });
    if options.show_acknowledged
        && let Some(obj) = doc.as_object_mut()
    {
        obj.insert("acknowledged".into(), entries(&report.acknowledged));
    }
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

fn entries(list: &[Entry]) -> Value {
    Value::Array(
        list.iter()
            .map(|e| {
                let mut line = String::new();
                let ack = e.ack.as_ref().and_then(|a| serde_json::to_value(a).ok());
                push_folded(&mut line, &e.folded, ack);
                // The line was serialized a moment ago: it parses.
                serde_json::from_str(&line).unwrap_or(Value::Null)
            })
            .collect(),
    )
}
