//! The three ways a report is printed: `text` for people, `json` for
//! scripts, `sarif` for code scanning.

pub mod json;
pub mod sarif;
pub mod text;

use super::report::Report;

/// How to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Json,
    Sarif,
}

/// What the renderers need beside the report.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// ANSI colour in text output (only for a terminal).
    pub colour: bool,
    /// List acknowledged findings too (JSON: `acknowledged`; SARIF:
    /// suppressed results).
    pub show_acknowledged: bool,
    /// The CI baseline file, for text output to name.
    pub baseline: Option<String>,
    /// The trace file as SARIF names it, for findings without a source file.
    pub input_uri: String,
}

/// Prints `report` as `kind`.
pub fn render(report: &Report, kind: Kind, options: &Options) -> String {
    match kind {
        Kind::Text => text::render(report, options),
        Kind::Json => json::render(report, options),
        Kind::Sarif => sarif::render(report, options),
    }
}

/// `once`, `2 times`...: how often a problem was seen.
fn times(n: usize) -> String {
    match n {
        1 => "once".to_owned(),
        n => format!("{n} times"),
    }
}
