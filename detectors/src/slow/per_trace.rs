//! The per-trace finding: one trace that repeats slow calls of one template.

use detector_api::{Finding, TraceView};

use super::detector::Slow;
use super::helpers::{count_u32, ms};
use crate::common::{MAX_EVIDENCE, code_of, timing};

impl Slow {
    /// The per-trace finding for the slow calls `slow` (start order) of one
    /// group.
    pub(super) fn report(
        &mut self,
        trace: &TraceView<'_>,
        slow: &[u32],
        endpoint: &str,
    ) -> Option<Finding> {
        let spans = trace.spans();
        let first = spans.get(*slow.first()? as usize)?;
        let max_ns = slow
            .iter()
            .map(|&i| spans[i as usize].duration_ns)
            .max()
            .unwrap_or(0);
        self.hashes.clear();
        self.hashes
            .extend(slow.iter().map(|&i| spans[i as usize].params_hash));
        self.hashes.sort_unstable();
        self.hashes.dedup();
        let distinct = count_u32(self.hashes.len());
        let occurrences = count_u32(slow.len());
        let (first_ns, last_ns, total) = timing(spans, slow);
        let template = first.template.as_str();
        let threshold = self.config.threshold_ms;
        let mut title = format!(
            "{occurrences} slow {} of `{template}` (max {} ms, threshold {threshold} ms)",
            self.flavour.noun,
            ms(max_ns)
        );
        if !endpoint.is_empty() {
            title.push_str(" in ");
            title.push_str(endpoint);
        }
        // Cite the slowest calls when there are too many, in start order.
        let mut cited: Vec<(usize, u32)> = slow.iter().copied().enumerate().collect();
        if cited.len() > MAX_EVIDENCE {
            cited.sort_by_key(|&(pos, i)| (std::cmp::Reverse(spans[i as usize].duration_ns), pos));
            cited.truncate(MAX_EVIDENCE);
            cited.sort_unstable_by_key(|&(pos, _)| pos);
        }
        let finding = Finding::new(
            self.flavour.finding_kind,
            self.severity(max_ns),
            trace.trace_id(),
        )
        .title(title)
        .template(template)
        .service(first.service.as_str())
        .endpoint(endpoint)
        .occurrences(occurrences, distinct)
        .avoidable_io(0)
        .timing(first_ns, last_ns, total)
        .evidence(cited.iter().map(|&(_, i)| spans[i as usize].span_id))
        .suggestion(self.flavour.suggestion)
        .code(code_of(spans, slow))
        .extra("max_ms", ms(max_ns))
        .extra("threshold_ms", threshold.to_string());
        Some(finding)
    }
}
