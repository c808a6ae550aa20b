//! Findings folded by signature as they are found: a million spans can
//! yield a hundred thousand findings of a few dozen distinct problems, and
//! only those are kept. Which finding an entry shows does not depend on the
//! order the findings came in (the worst severity, then the earliest, then
//! the smallest line), so folding on several threads and merging gives the
//! same report as folding on one.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use crate::findings::{FindingRecord, Folded};

struct Slot {
    shown: FindingRecord,
    seen: usize,
    first_ns: u64,
    last_ns: u64,
}

/// Findings by signature.
#[derive(Default)]
pub struct Folder {
    slots: HashMap<String, Slot>,
}

/// True when `a` is the one to show rather than `b`. Lines are rendered
/// only to break a tie.
fn shown_before(a: &mut FindingRecord, b: &mut FindingRecord) -> bool {
    let (fa, fb) = (&a.finding, &b.finding);
    match fb
        .severity
        .cmp(&fa.severity)
        .then(fa.first_ns.cmp(&fb.first_ns))
    {
        Ordering::Equal => {
            a.render();
            b.render();
            a.json < b.json
        }
        order => order == Ordering::Less,
    }
}

impl Folder {
    /// Adds one finding.
    pub fn add(&mut self, mut r: FindingRecord) {
        let (first, last) = (r.finding.first_ns, r.finding.last_ns);
        match self.slots.get_mut(&r.signature) {
            Some(slot) => {
                slot.seen += 1;
                slot.first_ns = slot.first_ns.min(first);
                slot.last_ns = slot.last_ns.max(last);
                if shown_before(&mut r, &mut slot.shown) {
                    slot.shown = r;
                }
            }
            None => {
                self.slots.insert(
                    r.signature.clone(),
                    Slot {
                        shown: r,
                        seen: 1,
                        first_ns: first,
                        last_ns: last,
                    },
                );
            }
        }
    }

    /// Adds everything `other` folded.
    pub fn merge(&mut self, other: Folder) {
        for (signature, mut theirs) in other.slots {
            match self.slots.get_mut(&signature) {
                Some(slot) => {
                    slot.seen += theirs.seen;
                    slot.first_ns = slot.first_ns.min(theirs.first_ns);
                    slot.last_ns = slot.last_ns.max(theirs.last_ns);
                    if shown_before(&mut theirs.shown, &mut slot.shown) {
                        slot.shown = theirs.shown;
                    }
                }
                None => {
                    self.slots.insert(signature, theirs);
                }
            }
        }
    }

    /// Distinct signatures folded.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The entries, in no particular order, their lines rendered.
    pub fn into_folded(self) -> Vec<Folded> {
        self.slots
            .into_values()
            .map(|mut s| Folded {
                shown: {
                    s.shown.render();
                    Arc::new(s.shown)
                },
                seen_count: s.seen,
                first_ns: s.first_ns,
                last_ns: s.last_ns,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use detector_api::{Severity, TraceId};

    use super::*;

    fn record(severity: Severity, trace: u8, at: u64) -> FindingRecord {
        crate::batch::report::tests::record("n_plus_one_sql", "api", severity, trace, at)
    }

    fn fold(records: Vec<FindingRecord>, split: usize) -> (TraceId, usize, u64, u64) {
        let mut a = Folder::default();
        let mut b = Folder::default();
        for (i, r) in records.into_iter().enumerate() {
            if i < split {
                a.add(r);
            } else {
                b.add(r);
            }
        }
        a.merge(b);
        let folded = a.into_folded();
        assert_eq!(folded.len(), 1);
        let f = &folded[0];
        (
            f.shown.finding.trace_id,
            f.seen_count,
            f.first_ns,
            f.last_ns,
        )
    }

    #[test]
    fn the_worst_then_earliest_is_shown_whatever_the_order_and_split() {
        let records = || {
            vec![
                record(Severity::Warning, 1, 10),
                record(Severity::Critical, 2, 40),
                record(Severity::Critical, 3, 30),
                record(Severity::Info, 4, 5),
            ]
        };
        let want = (TraceId([3; 16]), 4, 5, 45);
        for split in 0..=4 {
            assert_eq!(fold(records(), split), want, "split {split}");
            let mut reversed = records();
            reversed.reverse();
            assert_eq!(fold(reversed, split), want, "reversed, split {split}");
        }
    }
}
