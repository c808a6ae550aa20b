//! Example perf-sentinel plugin: `SELECT *` without a row limit on a request
//! path. Stateless: it looks at one trace at a time.
//!
//! What a team copies to start its own plugin: a `DetectorFactory` with a
//! typed configuration, a `Detector`, and one `export_detectors!` line.

use detector_api::{
    defaults_table, parse_config, BuildError, Detector, DetectorConfig, DetectorError,
    DetectorFactory, Finding, IoKind, RVec, Severity, TraceView,
};
use serde::{Deserialize, Serialize};

/// Configuration, from `[detectors.select_star_without_limit]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Only statements reading these tables (empty: every table).
    pub tables: Vec<String>,
    /// Report only statements run under an inbound request (a hot path).
    pub request_path_only: bool,
    /// `info`, `warning` or `critical`.
    pub severity: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            tables: Vec::new(),
            request_path_only: true,
            severity: "warning".into(),
        }
    }
}

impl DetectorConfig for Config {
    fn validate(&self) -> Result<(), BuildError> {
        if Severity::parse(&self.severity).is_none() {
            return Err(BuildError::invalid(
                "severity",
                format!("must be info, warning or critical, got {:?}", self.severity),
            ));
        }
        if self.tables.iter().any(|t| t.trim().is_empty()) {
            return Err(BuildError::invalid(
                "tables",
                "table names must not be empty",
            ));
        }
        Ok(())
    }
}

/// True for `SELECT * ...` without `LIMIT`, `TOP` or `FETCH FIRST`.
fn unbounded_select_star(template: &str) -> bool {
    let lower = template.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .collect();
    let star = words.windows(2).any(|w| w[0] == "select" && w[1] == "*");
    let bounded = words
        .iter()
        .any(|w| *w == "limit" || *w == "top" || *w == "fetch");
    star && !bounded
}

/// The table read, from `FROM <table>`.
fn table_of(template: &str) -> Option<String> {
    let lower = template.to_ascii_lowercase();
    let mut words = lower.split_whitespace();
    while let Some(w) = words.next() {
        if w == "from" {
            return words.next().map(|t| {
                t.trim_matches(|c| c == '"' || c == '`' || c == ';')
                    .to_owned()
            });
        }
    }
    None
}

struct SelectStar {
    config: Config,
    severity: Severity,
}

impl Detector for SelectStar {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        let spans = trace.spans();
        // (service, template) -> span indexes, in a stable order.
        let mut groups: std::collections::BTreeMap<(&str, &str), Vec<usize>> = Default::default();
        for &i in trace.of_kind(IoKind::Sql) {
            let s = &spans[i as usize];
            let template = s.template.as_str();
            if !unbounded_select_star(template) {
                continue;
            }
            if !self.config.tables.is_empty() {
                let Some(table) = table_of(template) else {
                    continue;
                };
                if !self
                    .config
                    .tables
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(&table))
                {
                    continue;
                }
            }
            if self.config.request_path_only && trace.source_endpoint(i as usize).is_none() {
                continue;
            }
            groups
                .entry((s.service.as_str(), template))
                .or_default()
                .push(i as usize);
        }
        for ((service, template), idx) in groups {
            let first = &spans[idx[0]];
            let endpoint = trace
                .source_endpoint(idx[0])
                .and_then(|(_, s)| s.endpoint())
                .unwrap_or_default();
            let last = idx.iter().map(|&i| spans[i].end_ns()).max().unwrap_or(0);
            let total = idx.iter().map(|&i| spans[i].duration_ns).sum();
            out.push(
                Finding::new("example.select_star_without_limit", self.severity, trace.trace_id())
                    .title(format!("SELECT * without LIMIT: `{template}`"))
                    .template(template)
                    .service(service)
                    .endpoint(&endpoint)
                    .occurrences(idx.len() as u32, 0)
                    .timing(first.start_ns, last, total)
                    .evidence(idx.iter().take(50).map(|&i| spans[i].span_id))
                    .code(&first.code)
                    .suggestion(
                        "Select only the columns the code reads and bound the rows (LIMIT / pagination).",
                    ),
            );
        }
        Ok(())
    }
}

/// Factory of `select_star_without_limit`.
pub struct SelectStarFactory;

impl DetectorFactory for SelectStarFactory {
    fn id(&self) -> &str {
        "select_star_without_limit"
    }
    fn description(&self) -> &str {
        "SELECT * without LIMIT run while serving a request (example plugin)."
    }
    fn default_config(&self) -> toml::Table {
        defaults_table::<Config>()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        let config: Config = parse_config(config)?;
        let severity = Severity::parse(&config.severity).unwrap_or(Severity::Warning);
        Ok(Box::new(SelectStar { config, severity }))
    }
}

detector_api::export_detectors![SelectStarFactory];

#[cfg(test)]
mod tests {
    use detector_api::testkit::{check_conformance, SpanSpec, TraceBuilder};

    use super::*;

    fn run(config: &str, trace: &TraceBuilder) -> Vec<Finding> {
        let table: toml::Table = config.parse().unwrap();
        let mut d = SelectStarFactory.build(&table).unwrap();
        trace.run(d.as_mut()).unwrap()
    }

    fn trace(statements: &[&str]) -> TraceBuilder {
        let mut t = TraceBuilder::new();
        let root = t.root(SpanSpec::server("GET", "/orders"));
        for (i, s) in statements.iter().enumerate() {
            t.child(
                root,
                SpanSpec::sql(s, &i.to_string()).at_us(i as u64 * 10, 5),
            );
        }
        t
    }

    #[test]
    fn conformance() {
        check_conformance(&SelectStarFactory).unwrap();
    }

    #[test]
    fn unbounded_select_star_is_reported_once_per_template() {
        let t = trace(&[
            "SELECT * FROM orders WHERE id = ?",
            "SELECT * FROM orders WHERE id = ?",
            "SELECT * FROM users LIMIT ?",
            "SELECT id FROM users",
        ]);
        let f = run("", &t);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind.as_str(), "example.select_star_without_limit");
        assert_eq!(f[0].occurrences, 2);
        assert_eq!(f[0].endpoint.as_str(), "GET /orders");
        assert_eq!(f[0].severity, Severity::Warning);
    }

    #[test]
    fn tables_and_severity_are_configurable() {
        let t = trace(&["SELECT * FROM orders", "SELECT * FROM audit_log"]);
        let f = run("tables = [\"audit_log\"]\nseverity = \"critical\"", &t);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].template.as_str(), "SELECT * FROM audit_log");
        assert_eq!(f[0].severity, Severity::Critical);
        assert!(SelectStarFactory
            .build(&"severity = \"loud\"".parse().unwrap())
            .is_err());
    }

    #[test]
    fn off_request_path_is_ignored_by_default() {
        let mut t = TraceBuilder::new();
        t.root(SpanSpec::sql("SELECT * FROM jobs", "1"));
        assert!(run("", &t).is_empty());
        assert_eq!(run("request_path_only = false", &t).len(), 1);
    }
}
