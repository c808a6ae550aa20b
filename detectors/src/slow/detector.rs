//! The detector of one flavour: per trace it reports repeated slow calls and
//! records every call's duration; on flush it reports the templates whose p99
//! over the window is above the threshold.

use detector_api::{Detector, DetectorError, Finding, RVec, Severity, TraceId, TraceView};

use super::config::{Limits, SlowConfig};
use super::flavour::Flavour;
use super::store::{MAX_KEY_BYTES, Store};
use crate::common::{Grouper, endpoint_of};

pub(super) struct Slow {
    pub(super) flavour: &'static Flavour,
    pub(super) config: SlowConfig,
    pub(super) limits: Limits,
    pub(super) store: Store,
    // Scratch buffers reused across traces and flushes.
    candidates: Vec<u32>,
    grouper: Grouper,
    slow: Vec<u32>,
    pub(super) hashes: Vec<u64>,
    pub(super) durations: Vec<u64>,
    pub(super) traces: Vec<TraceId>,
}

impl Slow {
    pub(super) fn new(flavour: &'static Flavour, config: SlowConfig) -> Self {
        Self {
            flavour,
            limits: Limits::new(&config),
            config,
            store: Store::default(),
            candidates: Vec::new(),
            grouper: Grouper::default(),
            slow: Vec::new(),
            hashes: Vec::new(),
            durations: Vec::new(),
            traces: Vec::new(),
        }
    }

    /// How many (service, template) pairs are tracked across traces.
    #[cfg(test)]
    pub(super) fn tracked_templates(&self) -> usize {
        self.store.len
    }

    pub(super) fn severity(&self, slowest_ns: u64) -> Severity {
        if slowest_ns > self.limits.critical_ns {
            Severity::Critical
        } else {
            Severity::Warning
        }
    }
}

impl Detector for Slow {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        let spans = trace.spans();
        let flavour = self.flavour;
        let mut candidates = std::mem::take(&mut self.candidates);
        let mut slow = std::mem::take(&mut self.slow);
        candidates.clear();
        candidates.extend(
            trace
                .of_kind(self.flavour.kind)
                .iter()
                .copied()
                .filter(|&i| spans.get(i as usize).is_some_and(|s| flavour.eligible(s))),
        );
        let threshold_ns = self.limits.threshold_ns;
        let mut grouper = std::mem::take(&mut self.grouper);
        grouper.group_unordered(spans, &mut candidates, 1);
        // The groups are recorded in (service, template) order, which the
        // recency order shows when a template is evicted during this trace
        // and two capped keys may share a series. Otherwise any order does:
        // the recency batch is ordered when eviction reaches it, and the
        // findings are sorted below.
        let may_evict =
            self.store.len.saturating_add(grouper.groups.len()) > self.limits.max_templates;
        let ordered = may_evict
            || candidates.iter().any(|&i| {
                let s = &spans[i as usize];
                s.template.len() > MAX_KEY_BYTES - 4 || s.service.len() > MAX_KEY_BYTES - 4
            });
        if ordered {
            grouper.order_groups(spans, &candidates);
        }
        self.store.recency.next_batch(ordered);
        let from = out.len();
        for range in &grouper.groups {
            let Some(group) = candidates.get(range.clone()) else {
                continue;
            };
            slow.clear();
            slow.extend(
                group
                    .iter()
                    .copied()
                    .filter(|&i| spans[i as usize].duration_ns > threshold_ns),
            );
            let endpoint = match slow.first() {
                Some(&i) => endpoint_of(trace, i as usize),
                None => String::new(),
            };
            if slow.len() >= self.limits.min_occurrences {
                out.extend(self.report(trace, &slow, &endpoint));
            }
            self.record(trace, group, &slow, &endpoint);
        }
        if !ordered && let Some(found) = out.get_mut(from..) {
            found.sort_by(|a, b| {
                (a.service.as_str(), a.template.as_str())
                    .cmp(&(b.service.as_str(), b.template.as_str()))
            });
        }
        self.grouper = grouper;
        self.candidates = candidates;
        self.slow = slow;
        Ok(())
    }

    fn flush(&mut self, now_ns: u64, out: &mut RVec<Finding>) -> Result<(), DetectorError> {
        let cutoff = now_ns.saturating_sub(self.limits.window_ns);
        let start = out.len();
        let mut store = std::mem::take(&mut self.store);
        let mut emptied: Vec<u32> = Vec::new();
        for (service, templates) in &mut store.by_service {
            for (template, series) in templates.iter_mut() {
                series.prune(cutoff);
                if series.samples.is_empty() {
                    emptied.push(series.node);
                    continue;
                }
                if !(series.new_since_report && series.changed_since_eval) {
                    continue;
                }
                series.changed_since_eval = false;
                if let Some(f) = self.evaluate(service, template, series) {
                    out.push(f);
                    series.new_since_report = false;
                }
            }
        }
        for node in emptied {
            let (service, template) = store.recency.remove(node);
            store.remove(&service, &template);
        }
        self.store = store;
        if let Some(new) = out.get_mut(start..) {
            new.sort_by(|a, b| {
                (a.service.as_str(), a.template.as_str())
                    .cmp(&(b.service.as_str(), b.template.as_str()))
            });
        }
        Ok(())
    }
}
