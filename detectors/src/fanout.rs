//! Excessive fan-out: one span that starts far more direct children than a
//! request should need (a loop of calls, a scatter over every shard), which
//! multiplies round trips and load on the callee.

use detector_api::{
    BuildError, Detector, DetectorConfig, DetectorError, DetectorFactory, Finding, InheritedKey,
    RVec, Severity, TraceView, defaults_table, parse_config, register_builtin,
};
use serde::{Deserialize, Serialize};

use crate::common::{
    MAX_EVIDENCE, StrGroups, code_of, endpoint_of, sort_stable_by, template_or_name, timing,
};

/// Configuration of `excessive_fanout`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FanoutConfig {
    /// A parent with more direct children than this is reported (default
    /// 20, inherited from `[detection] max_fanout`).
    pub max_fanout: u32,
    /// The finding is critical above `max_fanout * critical_multiplier`
    /// children (default 3.0).
    pub critical_multiplier: f64,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            max_fanout: 20,
            critical_multiplier: 3.0,
        }
    }
}

impl DetectorConfig for FanoutConfig {
    fn validate(&self) -> Result<(), BuildError> {
        if self.max_fanout == 0 {
            return Err(BuildError::invalid(
                "max_fanout",
                "must be at least 1, got 0",
            ));
        }
        check_multiplier(self.critical_multiplier)
    }
}

/// Shared range check of the `critical_multiplier` keys: a finite number
/// between 1 and 1000.
pub(crate) fn check_multiplier(value: f64) -> Result<(), BuildError> {
    if !(1.0..=1000.0).contains(&value) {
        return Err(BuildError::invalid(
            "critical_multiplier",
            format!("must be between 1 and 1000, got {value}"),
        ));
    }
    Ok(())
}

/// True when `count` is above `threshold * multiplier`.
pub(crate) fn above(count: usize, threshold: u32, multiplier: f64) -> bool {
    count as f64 > f64::from(threshold) * multiplier
}

/// A count as `u32`, saturating.
pub(crate) fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

const INHERITED: &[InheritedKey] = &[InheritedKey {
    detection_key: "max_fanout",
    key: "max_fanout",
}];

struct Fanout {
    config: FanoutConfig,
    kids: Vec<u32>,
    names: StrGroups,
}

impl Fanout {
    fn report(
        &mut self,
        trace: &TraceView<'_>,
        parent: usize,
        children: &[u32],
    ) -> Option<Finding> {
        let spans = trace.spans();
        let p = trace.span(parent)?;
        // Children in a stable order: start, end, then span id.
        let kids = &mut self.kids;
        kids.clear();
        kids.extend(
            children
                .iter()
                .copied()
                .filter(|&c| trace.span(c as usize).is_some()),
        );
        sort_stable_by(kids, |&a, &b| {
            let (a, b) = (&spans[a as usize], &spans[b as usize]);
            a.start_ns
                .cmp(&b.start_ns)
                .then_with(|| a.end_ns().cmp(&b.end_ns()))
                .then_with(|| a.span_id.cmp(&b.span_id))
        });
        let kids = &self.kids;
        let count = kids.len();
        let (distinct, top) = self.names.top(spans, kids, 1);
        let (top, top_count) = top.first().copied().unwrap_or(("", 0));
        let distinct = count_u32(distinct);

        let severity = if above(
            count,
            self.config.max_fanout,
            self.config.critical_multiplier,
        ) {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let template = template_or_name(p);
        let endpoint = endpoint_of(trace, parent);
        let (first_ns, last_ns, total) = timing(spans, kids);
        let mut cited = Vec::with_capacity(count.min(MAX_EVIDENCE));
        cited.push(parent as u32);
        cited.extend(kids.iter().copied().take(MAX_EVIDENCE - 1));
        let code = code_of(spans, &cited);
        let title = format!(
            "Fan-out: `{template}` starts {count} direct children (limit {})",
            self.config.max_fanout
        );
        let suggestion = format!(
            "`{template}` starts {count} calls (most often `{top}`, {top_count} times). Batch them into fewer requests, bound the concurrency of the fan-out, or serve the data from one aggregate endpoint."
        );
        Some(
            Finding::new("excessive_fanout", severity, trace.trace_id())
                .title(title)
                .template(template)
                .service(p.service.as_str())
                .endpoint(&endpoint)
                .occurrences(count_u32(count), distinct)
                .avoidable_io(0)
                .timing(first_ns, last_ns, total)
                .evidence(cited.iter().map(|&i| spans[i as usize].span_id))
                .suggestion(suggestion)
                .code(code)
                .extra("children", count.to_string())
                .extra("distinct_child_templates", distinct.to_string())
                .extra("top_child_template", top)
                .extra("top_child_count", top_count.to_string()),
        )
    }
}

impl Detector for Fanout {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        let limit = self.config.max_fanout as usize;
        let mut found = Vec::new();
        for parent in 0..trace.len() {
            let children = trace.children_of(parent);
            if children.len() > limit
                && let Some(f) = self.report(trace, parent, children)
            {
                found.push(f);
            }
        }
        found.sort_by(|a, b| {
            (
                a.service.as_str(),
                a.template.as_str(),
                a.first_ns,
                a.evidence.first(),
            )
                .cmp(&(
                    b.service.as_str(),
                    b.template.as_str(),
                    b.first_ns,
                    b.evidence.first(),
                ))
        });
        out.extend(found);
        Ok(())
    }
}

/// Factory of the `excessive_fanout` detector.
pub struct ExcessiveFanout;

impl DetectorFactory for ExcessiveFanout {
    fn id(&self) -> &str {
        "excessive_fanout"
    }
    fn description(&self) -> &str {
        "A span with more direct children than `max_fanout` (a loop of calls or a scatter that should be batched or bounded)."
    }
    fn inherited_keys(&self) -> &[InheritedKey] {
        INHERITED
    }
    fn default_config(&self) -> toml::Table {
        defaults_table::<FanoutConfig>()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        Ok(Box::new(Fanout {
            config: parse_config(config)?,
            kids: Vec::new(),
            names: StrGroups::default(),
        }))
    }
}

register_builtin!(ExcessiveFanout);

#[cfg(test)]
pub(crate) mod tests;
