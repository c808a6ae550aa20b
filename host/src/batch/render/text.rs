//! The report for people: findings grouped by severity, the I/O waste and
//! the gate. Every string from the traces goes through
//! [`terminal_safe`] (a span name cannot move the cursor or recolour the
//! terminal); colour is ours alone, and only when asked for (a TTY).

use std::fmt::Write as _;

use detector_api::Severity;

use super::Options;
use crate::batch::gate::{Measure, Rule};
use crate::batch::report::{Entry, Report};
use crate::client::render::{shorten, terminal_safe};

const RESET: &str = "\x1b[0m";

fn paint(options: &Options, code: &str, text: &str) -> String {
    if options.colour {
        format!("\x1b[{code}m{text}{RESET}")
    } else {
        text.to_owned()
    }
}

fn severity_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "1;31",
        Severity::Warning => "1;33",
        Severity::Info => "1;36",
    }
}

/// Renders `report`.
pub fn render(report: &Report, options: &Options) -> String {
    let mut out = String::new();
    let input = &report.input;
    let _ = writeln!(
        out,
        "perf-sentinel analyze: {} traces, {} spans ({}{}), environment {}",
        input.traces,
        input.spans,
        input.format,
        if input.gzip { ", gzip" } else { "" },
        terminal_safe(&report.environment),
    );
    if report.findings.is_empty() {
        let _ = writeln!(out, "\nNo findings.");
    }
    for severity in [Severity::Critical, Severity::Warning, Severity::Info] {
        let entries: Vec<&Entry> = report
            .findings
            .iter()
            .filter(|e| e.record().finding.severity == severity)
            .collect();
        if entries.is_empty() {
            continue;
        }
        let title = format!("{} ({})", severity.as_str().to_uppercase(), entries.len());
        let _ = writeln!(
            out,
            "\n{}",
            paint(options, severity_colour(severity), &title)
        );
        for e in entries {
            entry(&mut out, e);
        }
    }
    if !report.acknowledged.is_empty() {
        if options.show_acknowledged {
            let title = format!("ACKNOWLEDGED ({})", report.acknowledged.len());
            let _ = writeln!(out, "\n{}", paint(options, "2", &title));
            for e in &report.acknowledged {
                entry(&mut out, e);
            }
        } else {
            let _ = writeln!(
                out,
                "\n{} acknowledged finding{} hidden by {} (--show-acknowledged lists them)",
                report.acknowledged.len(),
                if report.acknowledged.len() == 1 {
                    ""
                } else {
                    "s"
                },
                terminal_safe(options.baseline.as_deref().unwrap_or("the baseline")),
            );
        }
    }
    let io = report.io;
    let _ = writeln!(
        out,
        "\nI/O: {} outbound calls, {} avoidable ({})",
        io.total,
        io.avoidable_unacked,
        percent(super::super::gate::waste_ratio(io)),
    );
    let gate = &report.gate;
    let verdict = if gate.passed {
        paint(options, "1;32", "PASSED")
    } else {
        paint(options, "1;31", "FAILED")
    };
    let _ = writeln!(out, "\nQuality gate: {verdict}");
    for r in &gate.rules {
        rule(&mut out, options, r);
    }
    notes(&mut out, report);
    out
}

fn entry(out: &mut String, e: &Entry) {
    let r = e.record();
    let f = &r.finding;
    let _ = writeln!(
        out,
        "  {}  {}  {}  (seen {})",
        terminal_safe(f.kind.as_str()),
        terminal_safe(f.service.as_str()),
        terminal_safe(f.endpoint.as_str()),
        super::times(e.folded.seen_count),
    );
    let title = shorten(f.title.as_str(), 200);
    if !title.is_empty() {
        let _ = writeln!(out, "      {title}");
    }
    if !f.template.is_empty() {
        let _ = writeln!(
            out,
            "      {} ({} occurrences)",
            shorten(f.template.as_str(), 200),
            f.occurrences
        );
    }
    let code = &f.code;
    if !code.filepath.is_empty() || !code.function.is_empty() {
        let place = match (code.filepath.is_empty(), code.lineno) {
            (true, _) => String::new(),
            (false, 0) => terminal_safe(code.filepath.as_str()),
            (false, line) => format!("{}:{line}", terminal_safe(code.filepath.as_str())),
        };
        let _ = writeln!(
            out,
            "      at {place} {}",
            terminal_safe(code.function.as_str())
        );
    }
    if !f.suggestion.is_empty() {
        let _ = writeln!(out, "      fix: {}", shorten(f.suggestion.as_str(), 240));
    }
    if let Some(ack) = &e.ack {
        let expires = ack
            .expires_at
            .as_deref()
            .map_or(String::new(), |d| format!(", until {}", terminal_safe(d)));
        let _ = writeln!(
            out,
            "      acknowledged by {} ({}{expires}): {}",
            terminal_safe(&ack.by),
            terminal_safe(&ack.at),
            shorten(&ack.reason, 200),
        );
    }
    let _ = writeln!(out, "      signature {}", terminal_safe(&r.signature));
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

fn rule(out: &mut String, options: &Options, r: &Rule) {
    let shown = |m: Measure| match m {
        Measure::Count(n) => n.to_string(),
        Measure::Ratio(x) => percent(x),
    };
    let mark = if r.passed {
        paint(options, "32", "pass")
    } else {
        paint(options, "1;31", "FAIL")
    };
    let _ = writeln!(
        out,
        "  {mark}  {:<34} {} (limit {})",
        r.rule,
        shown(r.actual),
        shown(r.limit)
    );
}

/// What the reader had to leave out, and detectors that failed.
fn notes(out: &mut String, report: &Report) {
    let input = &report.input;
    let mut lines = Vec::new();
    if input.spans_rejected_invalid_id > 0 {
        lines.push(format!(
            "{} spans refused: invalid trace or span id",
            input.spans_rejected_invalid_id
        ));
    }
    if input.spans_over_trace_cap > 0 {
        lines.push(format!(
            "{} spans left out: over max_events_per_trace in their trace",
            input.spans_over_trace_cap
        ));
    }
    if input.strings_truncated > 0 {
        lines.push(format!(
            "{} strings cut to their cap",
            input.strings_truncated
        ));
    }
    for d in report.detectors.iter().filter(|d| d.errors > 0) {
        lines.push(format!(
            "detector {} ({}) failed {} time{}{}",
            terminal_safe(&d.id),
            terminal_safe(&d.origin),
            d.errors,
            if d.errors == 1 { "" } else { "s" },
            if d.quarantined {
                " and was quarantined: its findings are incomplete"
            } else {
                ""
            },
        ));
    }
    if !lines.is_empty() {
        let _ = writeln!(out, "\nNotes:");
        for l in lines {
            let _ = writeln!(out, "  {l}");
        }
    }
}
