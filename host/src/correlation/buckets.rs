//! [`Buckets`]: event counts per fixed time slice, the newest few slices
//! only. A signature's occurrences and a pair's co-occurrences are both kept
//! this way, so the memory of either is bounded however often it fires,
//! and both leave the rolling window by the same rule.

use std::collections::VecDeque;

/// The events of one time slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Bucket {
    /// `at_ns / bucket_ns`.
    pub index: u64,
    pub count: u32,
    pub first_ns: u64,
    pub last_ns: u64,
}

/// Slices in index order, spanning at most `keep` slices, none below
/// `floor`.
#[derive(Debug, Default)]
pub(super) struct Buckets {
    slices: VecDeque<Bucket>,
    /// Every slice below this was dropped; counts from `floor` up are
    /// complete. A pair counts only from its leader's floor, so it never
    /// claims a leader occurrence its leader no longer counts.
    pub floor: u64,
}

impl Buckets {
    /// Adds an event at `at_ns`, keeping only the `keep` slices up to the
    /// newest. False when the event is older than that: the caller must then
    /// ignore it altogether.
    pub fn add(&mut self, at_ns: u64, slice_ns: u64, keep: u64) -> bool {
        let index = at_ns / slice_ns;
        let newest = self.slices.back().map_or(index, |b| b.index.max(index));
        self.floor = self.floor.max(newest.saturating_sub(keep.max(1) - 1));
        if index < self.floor {
            return false;
        }
        while self.slices.front().is_some_and(|b| b.index < self.floor) {
            self.slices.pop_front();
        }
        // Events arrive nearly in time order: the slice is almost always the
        // last one, or a new one after it.
        let pos = self.slices.partition_point(|b| b.index < index);
        match self.slices.get_mut(pos) {
            Some(b) if b.index == index => {
                b.count = b.count.saturating_add(1);
                b.first_ns = b.first_ns.min(at_ns);
                b.last_ns = b.last_ns.max(at_ns);
            }
            _ => self.slices.insert(
                pos,
                Bucket {
                    index,
                    count: 1,
                    first_ns: at_ns,
                    last_ns: at_ns,
                },
            ),
        }
        true
    }

    /// Drops the slices below `index`.
    pub fn expire(&mut self, index: u64) {
        while self.slices.front().is_some_and(|b| b.index < index) {
            self.slices.pop_front();
        }
        self.floor = self.floor.max(index);
    }

    pub fn is_empty(&self) -> bool {
        self.slices.is_empty()
    }

    fn since(&self, index: u64) -> impl Iterator<Item = &Bucket> {
        let start = self.slices.partition_point(|b| b.index < index);
        self.slices.range(start..)
    }

    /// Events in the slices from `index` on.
    pub fn count_since(&self, index: u64) -> u64 {
        self.since(index).map(|b| u64::from(b.count)).sum()
    }

    /// The earliest and latest event in the slices from `index` on.
    pub fn span_since(&self, index: u64) -> Option<(u64, u64)> {
        self.since(index).fold(None, |acc, b| {
            Some(match acc {
                None => (b.first_ns, b.last_ns),
                Some((first, last)) => (first.min(b.first_ns), last.max(b.last_ns)),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_a_slice_share_one_bucket() {
        let mut b = Buckets::default();
        assert!(b.add(105, 10, 3));
        assert!(b.add(101, 10, 3));
        assert!(b.add(109, 10, 3));
        assert_eq!(b.count_since(0), 3);
        assert_eq!(b.span_since(0), Some((101, 109)));
    }

    #[test]
    fn only_the_newest_slices_are_kept_and_older_events_are_refused() {
        let mut b = Buckets::default();
        for at in [10, 20, 30, 40] {
            assert!(b.add(at, 10, 3));
        }
        // Slice 1 was dropped: its counts are gone, and so is a late event.
        assert_eq!(b.floor, 2);
        assert_eq!(b.count_since(0), 3);
        assert!(!b.add(15, 10, 3));
        assert_eq!(b.count_since(0), 3);
        // A late event into a kept slice is counted, in order.
        assert!(b.add(25, 10, 3));
        assert_eq!(b.count_since(2), 4);
        assert_eq!(b.span_since(3), Some((30, 40)));
    }

    #[test]
    fn an_out_of_order_slice_that_falls_off_at_once_is_refused() {
        let mut b = Buckets::default();
        for at in [30, 40, 50] {
            b.add(at, 10, 3);
        }
        assert!(!b.add(20, 10, 3));
        assert_eq!(b.count_since(0), 3);
    }

    #[test]
    fn a_far_newer_event_drops_every_older_slice() {
        let mut b = Buckets::default();
        for at in [10, 20, 30] {
            b.add(at, 10, 3);
        }
        assert!(b.add(1_000, 10, 3));
        assert_eq!((b.count_since(0), b.floor), (1, 98));
    }

    #[test]
    fn expiry_drops_old_slices_and_raises_the_floor() {
        let mut b = Buckets::default();
        for at in [10, 20, 30] {
            b.add(at, 10, 5);
        }
        b.expire(3);
        assert_eq!(b.count_since(0), 1);
        assert_eq!(b.floor, 3);
        b.expire(9);
        assert!(b.is_empty());
        assert_eq!(b.span_since(0), None);
    }
}
