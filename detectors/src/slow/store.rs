//! Every (service, template) tracked across traces, keyed by text and bounded
//! by `max_templates` through least-recently-seen eviction.

use std::collections::HashMap;

use super::helpers::cap;
use super::recency::Recency;
use super::window::Series;
use crate::common::SeededState;

/// Longest service name or template, in bytes, kept as a cross-trace key;
/// longer ones are cut at a character boundary (and share a series when they
/// only differ after the cut).
pub(super) const MAX_KEY_BYTES: usize = 4096;

/// A map keyed by text that lives across traces (fast, randomly seeded hash).
type TextMap<V> = HashMap<String, V, SeededState>;

/// Every tracked (service, template), with least-recently-seen eviction.
#[derive(Debug, Default)]
pub(super) struct Store {
    pub(super) by_service: TextMap<TextMap<Series>>,
    pub(super) recency: Recency,
    pub(super) len: usize,
}

impl Store {
    /// Calls `f` with the series of (`service`, `template`), created (after
    /// evicting the least recently seen ones down to `max_templates - 1`)
    /// when new, and marked as the most recently seen.
    pub(super) fn with_series(
        &mut self,
        service: &str,
        template: &str,
        max_templates: usize,
        f: impl FnOnce(&mut Series),
    ) {
        let service = cap(service, MAX_KEY_BYTES);
        let template = cap(template, MAX_KEY_BYTES);
        if let Some(series) = self
            .by_service
            .get_mut(service)
            .and_then(|m| m.get_mut(template))
        {
            self.recency.touch(series.node);
            f(series);
            return;
        }
        while self.len >= max_templates.max(1) && self.evict_oldest() {}
        let node = self.recency.push(service, template);
        let templates = match self.by_service.get_mut(service) {
            Some(m) => m,
            None => self.by_service.entry(service.to_owned()).or_default(),
        };
        let series = templates
            .entry(template.to_owned())
            .or_insert_with(|| Series::new(node));
        self.len += 1;
        f(series);
    }

    /// Forgets the least recently seen series; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        let Some(oldest) = self.recency.oldest() else {
            return false;
        };
        let (service, template) = self.recency.remove(oldest);
        self.remove(&service, &template);
        true
    }

    pub(super) fn remove(&mut self, service: &str, template: &str) {
        if let Some(m) = self.by_service.get_mut(service) {
            if m.remove(template).is_some() {
                self.len = self.len.saturating_sub(1);
            }
            if m.is_empty() {
                self.by_service.remove(service);
            }
        }
    }
}
