//! Helpers every built-in detector shares: grouping calls by service and
//! template, the endpoint a call served, the code location to cite.

use std::ops::Range;

use detector_api::{CodeLocation, SpanView, TraceView};

/// At most this many span ids are cited as evidence of one finding.
pub(crate) const MAX_EVIDENCE: usize = 50;

/// True for a span that calls out (not one handling an inbound request).
pub(crate) fn is_outbound(s: &SpanView<'_>) -> bool {
    !s.span_kind.is_inbound()
}

/// Sorts `indices` (already in start order) by service then template,
/// keeping start order within each, and returns the range of each group.
pub(crate) fn group_by_service_template(
    spans: &[SpanView<'_>],
    indices: &mut [u32],
) -> Vec<Range<usize>> {
    let key = |i: &u32| {
        let s = &spans[*i as usize];
        (s.service.as_str(), s.template.as_str())
    };
    // Stable: start order survives inside a group.
    indices.sort_by(|a, b| key(a).cmp(&key(b)));
    let mut groups = Vec::new();
    let mut start = 0;
    for i in 1..=indices.len() {
        if i == indices.len() || key(&indices[i]) != key(&indices[start]) {
            groups.push(start..i);
            start = i;
        }
    }
    groups
}

/// The inbound endpoint that led to span `index` (`GET /orders/{id}`), or
/// an empty string when no inbound ancestor is in the trace.
pub(crate) fn endpoint_of(trace: &TraceView<'_>, index: usize) -> String {
    trace
        .source_endpoint(index)
        .and_then(|(_, s)| s.endpoint())
        .unwrap_or_default()
}

/// The first known code location among `indices`, else the first span's.
pub(crate) fn code_of<'t>(spans: &'t [SpanView<'t>], indices: &[u32]) -> &'t CodeLocation<'t> {
    indices
        .iter()
        .map(|&i| &spans[i as usize].code)
        .find(|c| !c.is_empty())
        .unwrap_or_else(|| &spans[indices.first().copied().unwrap_or(0) as usize].code)
}

/// Start of the first, end of the last and summed duration of `indices`.
pub(crate) fn timing(spans: &[SpanView<'_>], indices: &[u32]) -> (u64, u64, u64) {
    let mut first = u64::MAX;
    let (mut last, mut total) = (0u64, 0u64);
    for &i in indices {
        let s = &spans[i as usize];
        first = first.min(s.start_ns);
        last = last.max(s.end_ns());
        total = total.saturating_add(s.duration_ns);
    }
    if first == u64::MAX {
        first = 0;
    }
    (first, last, total)
}

#[cfg(test)]
mod tests {
    use detector_api::IoKind;
    use detector_api::testkit::{SpanSpec, TraceBuilder};

    use super::*;

    #[test]
    fn groups_keep_start_order_and_split_on_service_and_template() {
        let mut t = TraceBuilder::new();
        let root = t.root(SpanSpec::server("GET", "/x").at_us(0, 10_000));
        t.child(root, SpanSpec::sql("B", "1").at_us(10, 1));
        t.child(root, SpanSpec::sql("A", "1").at_us(20, 1));
        t.child(root, SpanSpec::sql("B", "2").at_us(30, 1));
        t.child(root, SpanSpec::sql("B", "3").service("other").at_us(40, 1));
        t.with_view(|v| {
            let mut idx = v.of_kind(IoKind::Sql).to_vec();
            let groups = group_by_service_template(v.spans(), &mut idx);
            let names: Vec<Vec<u32>> = groups.iter().map(|g| idx[g.clone()].to_vec()).collect();
            assert_eq!(names, vec![vec![4], vec![2], vec![1, 3]]);
            assert_eq!(endpoint_of(v, 1), "GET /x");
            assert_eq!(timing(v.spans(), &[1, 3]).2, 2_000);
        });
    }
}
