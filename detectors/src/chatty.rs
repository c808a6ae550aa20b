//! Chatty service: one service making many outbound HTTP or RPC calls while
//! serving a single trace, where a coarser API, a batch call or a cache
//! would do.

use detector_api::{
    BuildError, Detector, DetectorConfig, DetectorError, DetectorFactory, Finding, InheritedKey,
    IoKind, RVec, Severity, SpanKind, SpanView, TraceView, defaults_table, parse_config,
    register_builtin,
};
use serde::{Deserialize, Serialize};

use crate::common::{MAX_EVIDENCE, StrGroups, code_of, endpoint_of, sort_by_service_then, timing};
use crate::fanout::{above, check_multiplier, count_u32};

/// How many call templates the suggestion and `top_templates` name.
const TOP: usize = 3;

/// Configuration of `chatty_service`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChattyConfig {
    /// A service making more outbound HTTP/RPC calls than this in one trace
    /// is reported (default 15, inherited from `[detection]
    /// chatty_service_min_calls`).
    pub min_calls: u32,
    /// The finding is critical above `min_calls * critical_multiplier` calls
    /// (default 3.0).
    pub critical_multiplier: f64,
}

impl Default for ChattyConfig {
    fn default() -> Self {
        Self {
            min_calls: 15,
            critical_multiplier: 3.0,
        }
    }
}

impl DetectorConfig for ChattyConfig {
    fn validate(&self) -> Result<(), BuildError> {
        if self.min_calls == 0 {
            return Err(BuildError::invalid(
                "min_calls",
                "must be at least 1, got 0",
            ));
        }
        check_multiplier(self.critical_multiplier)
    }
}

const INHERITED: &[InheritedKey] = &[InheritedKey {
    detection_key: "chatty_service_min_calls",
    key: "min_calls",
}];

/// An outbound HTTP or RPC call: a client (or internal) span, never the
/// server side of a request.
fn is_outbound_call(s: &SpanView<'_>) -> bool {
    matches!(s.kind, IoKind::Http | IoKind::Rpc)
        && matches!(s.span_kind, SpanKind::Client | SpanKind::Internal)
}

struct Chatty {
    config: ChattyConfig,
    calls: Vec<u32>,
    names: StrGroups,
}

impl Chatty {
    fn report(&mut self, trace: &TraceView<'_>, calls: &[u32]) -> Option<Finding> {
        let spans = trace.spans();
        let first_index = *calls.first()?;
        let first = trace.span(first_index as usize)?;
        let service = first.service.as_str();
        let count = calls.len();
        let (distinct, counts) = self.names.top(spans, calls, TOP);
        let distinct = count_u32(distinct);
        let top = counts
            .iter()
            .map(|(t, n)| format!("`{t}` ({n})"))
            .collect::<Vec<_>>()
            .join(", ");

        let severity = if above(
            count,
            self.config.min_calls,
            self.config.critical_multiplier,
        ) {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let endpoint = endpoint_of(trace, first_index as usize);
        let template = if endpoint.is_empty() {
            service
        } else {
            endpoint.as_str()
        };
        let (first_ns, last_ns, total) = timing(spans, calls);
        let title = format!(
            "Chatty service: {service} makes {count} outbound calls in one trace (limit {})",
            self.config.min_calls
        );
        let suggestion = format!(
            "{service} makes {count} outbound HTTP/RPC calls to serve one request; the most frequent are {top}. Batch them into bulk requests, cache the answers, or move to a coarser API so one call returns what these calls fetch."
        );
        Some(
            Finding::new("chatty_service", severity, trace.trace_id())
                .title(title)
                .template(template)
                .service(service)
                .endpoint(&endpoint)
                .occurrences(count_u32(count), distinct)
                .avoidable_io(0)
                .timing(first_ns, last_ns, total)
                .evidence(
                    calls
                        .iter()
                        .take(MAX_EVIDENCE)
                        .map(|&i| spans[i as usize].span_id),
                )
                .suggestion(suggestion)
                .code(code_of(spans, calls))
                .extra("calls", count.to_string())
                .extra("distinct_templates", distinct.to_string())
                .extra("top_templates", top),
        )
    }
}

impl Detector for Chatty {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        let spans = trace.spans();
        let limit = self.config.min_calls as usize;
        let mut calls = std::mem::take(&mut self.calls);
        calls.clear();
        calls.extend(
            [IoKind::Http, IoKind::Rpc]
                .iter()
                .flat_map(|&k| trace.of_kind(k).iter().copied())
                .filter(|&i| trace.span(i as usize).is_some_and(is_outbound_call)),
        );
        if calls.len() > limit {
            // By service, then in time order; the span id settles ties so the
            // order does not depend on the order spans arrived in.
            sort_by_service_then(spans, &mut calls, |a, b| {
                (a.start_ns, a.end_ns(), a.span_id).cmp(&(b.start_ns, b.end_ns(), b.span_id))
            });
            // Services come out in name order, so the findings are sorted.
            for group in calls.chunk_by(|&a, &b| {
                spans[a as usize].service.as_str() == spans[b as usize].service.as_str()
            }) {
                if group.len() > limit
                    && let Some(f) = self.report(trace, group)
                {
                    out.push(f);
                }
            }
        }
        self.calls = calls;
        Ok(())
    }
}

/// Factory of the `chatty_service` detector.
pub struct ChattyService;

impl DetectorFactory for ChattyService {
    fn id(&self) -> &str {
        "chatty_service"
    }
    fn description(&self) -> &str {
        "A service making more than `min_calls` outbound HTTP/RPC calls in one trace (a chatty API that should be batched, cached or coarsened)."
    }
    fn inherited_keys(&self) -> &[InheritedKey] {
        INHERITED
    }
    fn default_config(&self) -> toml::Table {
        defaults_table::<ChattyConfig>()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        Ok(Box::new(Chatty {
            config: parse_config(config)?,
            calls: Vec::new(),
            names: StrGroups::default(),
        }))
    }
}

register_builtin!(ChattyService);

#[cfg(test)]
mod tests;
