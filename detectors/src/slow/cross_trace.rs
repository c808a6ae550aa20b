//! The cross-trace half: recording each call as a sample of its template's
//! window, and the finding of a template whose p99 stays above the threshold
//! in several traces.

use detector_api::{Finding, TraceView};

use super::detector::Slow;
use super::helpers::{count_u32, ms, nearest_rank, same_code};
use super::window::{NO_ENDPOINT, Sample, Series};
use crate::common::code_of;

impl Slow {
    /// Records every call of one group as cross-trace samples; `slow` are the
    /// group's slow calls, `endpoint` theirs.
    pub(super) fn record(
        &mut self,
        trace: &TraceView<'_>,
        group: &[u32],
        slow: &[u32],
        endpoint: &str,
    ) {
        let spans = trace.spans();
        let Some(first) = group.first().and_then(|&i| spans.get(i as usize)) else {
            return;
        };
        let limits = self.limits;
        let trace_id = trace.trace_id();
        let record = |series: &mut Series| {
            let slow_slot = if slow.is_empty() {
                NO_ENDPOINT
            } else {
                let code = code_of(spans, slow);
                if !code.is_empty() && !same_code(code, &series.code) {
                    series.code = code.into();
                }
                series.endpoint_slot(endpoint)
            };
            // Only the newest `max_samples` calls of the group can stay.
            let skip = group.len().saturating_sub(limits.max_samples);
            for &i in group.iter().skip(skip) {
                let Some(s) = spans.get(i as usize) else {
                    continue;
                };
                let is_slow = s.duration_ns > limits.threshold_ns;
                series.push(
                    Sample {
                        end_ns: s.end_ns(),
                        duration_ns: s.duration_ns,
                        trace_id,
                        span_id: s.span_id,
                        endpoint: if is_slow { slow_slot } else { NO_ENDPOINT },
                    },
                    limits.max_samples,
                );
            }
        };
        self.store.with_series(
            first.service.as_str(),
            first.template.as_str(),
            limits.max_templates,
            record,
        );
    }

    /// The cross-trace finding of one series, when its p99 is above the
    /// threshold with slow calls in enough traces.
    pub(super) fn evaluate(
        &mut self,
        service: &str,
        template: &str,
        series: &Series,
    ) -> Option<Finding> {
        let limits = self.limits;
        self.durations.clear();
        self.durations
            .extend(series.samples.iter().map(|s| s.duration_ns));
        self.durations.sort_unstable();
        let p50 = nearest_rank(&self.durations, 50)?;
        let p95 = nearest_rank(&self.durations, 95)?;
        let p99 = nearest_rank(&self.durations, 99)?;
        if p99 <= limits.threshold_ns {
            return None;
        }
        let is_slow = |s: &&Sample| s.duration_ns > limits.threshold_ns;

        self.traces.clear();
        self.traces
            .extend(series.samples.iter().filter(is_slow).map(|s| s.trace_id));
        self.traces.sort_unstable();
        self.traces.dedup();
        let slow_traces = self.traces.len();
        if slow_traces < limits.min_traces {
            return None;
        }
        self.traces.clear();
        self.traces
            .extend(series.samples.iter().map(|s| s.trace_id));
        self.traces.sort_unstable();
        self.traces.dedup();
        let traces = self.traces.len();

        // The slowest sample; ties go to the latest, then the smallest ids.
        let slowest = series.samples.iter().max_by(|a, b| {
            a.duration_ns
                .cmp(&b.duration_ns)
                .then(a.end_ns.cmp(&b.end_ns))
                .then(b.trace_id.cmp(&a.trace_id))
                .then(b.span_id.cmp(&a.span_id))
        })?;
        let (mut first_ns, mut last_ns, mut total, mut slow_calls) = (u64::MAX, 0u64, 0u64, 0usize);
        for s in series.samples.iter().filter(is_slow) {
            first_ns = first_ns.min(s.end_ns.saturating_sub(s.duration_ns));
            last_ns = last_ns.max(s.end_ns);
            total = total.saturating_add(s.duration_ns);
            slow_calls += 1;
        }
        let endpoint = series
            .endpoints
            .get(usize::from(slowest.endpoint))
            .map_or("", String::as_str);
        let samples = series.samples.len();
        let mut title = format!(
            "p99 of `{template}` is {} ms over {samples} {} in {traces} traces (threshold {} ms)",
            ms(p99),
            self.flavour.noun,
            self.config.threshold_ms
        );
        if !endpoint.is_empty() {
            title.push_str("; slowest in ");
            title.push_str(endpoint);
        }
        let mut finding = Finding::new(
            self.flavour.finding_kind,
            self.severity(p99),
            slowest.trace_id,
        )
        .title(title)
        .template(template)
        .service(service)
        .endpoint(endpoint)
        .occurrences(count_u32(slow_calls), 0)
        .avoidable_io(0)
        .timing(first_ns.min(last_ns), last_ns, total)
        .evidence([slowest.span_id])
        .suggestion(self.flavour.suggestion)
        .extra("scope", "cross_trace")
        .extra("p50_ms", ms(p50))
        .extra("p95_ms", ms(p95))
        .extra("p99_ms", ms(p99))
        .extra("max_ms", ms(slowest.duration_ns))
        .extra("threshold_ms", self.config.threshold_ms.to_string())
        .extra("samples", samples.to_string())
        .extra("traces", traces.to_string())
        .extra("slow_traces", slow_traces.to_string())
        .extra(
            "window_secs",
            self.config.percentile_window_secs.to_string(),
        );
        finding.code = series.code.clone();
        Some(finding)
    }
}
