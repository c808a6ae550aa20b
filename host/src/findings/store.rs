//! [`FindingsStore`]: the most recent findings, bounded by
//! `max_retained_findings`; the oldest go first.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use detector_api::Severity;

use super::FindingRecord;

/// Filters of `GET /api/findings`.
#[derive(Debug, Default, Clone)]
pub struct FindingFilter {
    pub service: Option<String>,
    pub kind: Option<String>,
    pub severity: Option<Severity>,
    pub trace_id: Option<String>,
    pub limit: usize,
}

/// The retained findings, oldest first.
pub struct FindingsStore {
    capacity: usize,
    inner: Mutex<VecDeque<Arc<FindingRecord>>>,
}

impl FindingsStore {
    /// Keeps at most `capacity` findings.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(VecDeque::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<FindingRecord>>> {
        // A panic while holding the lock cannot leave the deque inconsistent
        // (push/pop only), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds findings; returns how many old ones were evicted.
    pub fn push(&self, records: impl IntoIterator<Item = Arc<FindingRecord>>) -> usize {
        let mut q = self.lock();
        let mut evicted = 0;
        for r in records {
            if q.len() >= self.capacity {
                q.pop_front();
                evicted += 1;
            }
            q.push_back(r);
        }
        evicted
    }

    /// Findings matching `filter`, newest first.
    pub fn query(&self, filter: &FindingFilter) -> Vec<Arc<FindingRecord>> {
        let q = self.lock();
        q.iter()
            .rev()
            .filter(|r| {
                let f = &r.finding;
                filter
                    .service
                    .as_deref()
                    .is_none_or(|s| f.service.as_str() == s)
                    && filter.kind.as_deref().is_none_or(|k| f.kind.as_str() == k)
                    && filter.severity.is_none_or(|s| f.severity == s)
                    && filter
                        .trace_id
                        .as_deref()
                        .is_none_or(|t| f.trace_id.to_string() == t)
            })
            .take(filter.limit)
            .cloned()
            .collect()
    }

    /// Findings held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use detector_api::{Finding, TraceId};

    use super::*;
    use crate::findings::Stamp;

    fn rec(kind: &str, service: &str, severity: Severity) -> Arc<FindingRecord> {
        let f = Finding::new(kind, severity, TraceId([1; 16])).service(service);
        let stamp = Stamp {
            environment: "staging".into(),
            confidence: "daemon_staging",
        };
        Arc::new(FindingRecord::without_trace(f, &"builtin".into(), &stamp))
    }

    #[test]
    fn keeps_the_newest_and_filters() {
        let s = FindingsStore::new(3);
        s.push([
            rec("a", "x", Severity::Warning),
            rec("b", "y", Severity::Critical),
        ]);
        assert_eq!(
            s.push([
                rec("c", "x", Severity::Warning),
                rec("d", "x", Severity::Info)
            ]),
            1
        );
        let all = s.query(&FindingFilter {
            limit: 10,
            ..Default::default()
        });
        let kinds: Vec<_> = all.iter().map(|r| r.finding.kind.as_str()).collect();
        assert_eq!(kinds, ["d", "c", "b"]);
        let x = s.query(&FindingFilter {
            service: Some("x".into()),
            severity: Some(Severity::Warning),
            limit: 10,
            ..Default::default()
        });
        assert_eq!(x.len(), 1);
        assert_eq!(x[0].finding.kind.as_str(), "c");
        let one = s.query(&FindingFilter {
            limit: 1,
            ..Default::default()
        });
        assert_eq!(one[0].finding.kind.as_str(), "d");
    }
}
