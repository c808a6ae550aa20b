//! Helpers every built-in detector shares: grouping calls by service and
//! template, the endpoint a call served, the code location to cite, and the
//! integer-keyed grouping and hashing that keep those cheap.
//!
//! Grouping buckets `u32` span indexes by integer keys (the host's
//! `template_hash`, or [`hash_str`] of a text) in a reused hash table, and
//! compares text only to confirm that equal keys are equal strings, so a
//! hash collision never merges two groups: it only costs a string sort of
//! the colliding bucket. Nothing a detector reports depends on the hash
//! values or seeds, only on the texts.

use std::cmp::Ordering;
use std::hash::{BuildHasher, Hasher};
use std::ops::Range;

use detector_api::{CodeLocation, SpanView, TraceView};

/// At most this many span ids are cited as evidence of one finding.
pub(crate) const MAX_EVIDENCE: usize = 50;

/// True for a span that calls out (not one handling an inbound request).
pub(crate) fn is_outbound(s: &SpanView<'_>) -> bool {
    !s.span_kind.is_inbound()
}

/// Same service and same template (the hash first, the text to confirm).
fn same_call(a: &SpanView<'_>, b: &SpanView<'_>) -> bool {
    a.template_hash == b.template_hash
        && a.template.as_str() == b.template.as_str()
        && a.service.as_str() == b.service.as_str()
}

fn call_key<'a>(s: &SpanView<'a>) -> (&'a str, &'a str) {
    (s.service.as_str(), s.template.as_str())
}

/// Sorts `indices` (already in start order) by service then template,
/// keeping start order within each, and returns the range of each group.
#[cfg(test)]
pub(crate) fn group_by_service_template(
    spans: &[SpanView<'_>],
    indices: &mut [u32],
) -> Vec<Range<usize>> {
    let mut g = Grouper::default();
    g.group(spans, indices, 1);
    g.groups
}

/// Scratch for grouping calls by (service, template), reused across traces.
#[derive(Debug, Default)]
pub(crate) struct Grouper {
    buckets: Buckets,
    copy: Vec<u32>,
    /// The groups of the last [`Grouper::group`] call, as ranges of the
    /// indices it rearranged, ordered by service then template.
    pub(crate) groups: Vec<Range<usize>>,
    /// True when the last call saw two calls with one template hash: false
    /// means every (service, template) occurs at most once.
    pub(crate) repeats: bool,
}

impl Grouper {
    /// Rearranges `indices` (in start order) so that the calls of one
    /// (service, template) are contiguous and still in start order, and sets
    /// [`Grouper::groups`] to the groups of at least `min` calls, ordered by
    /// service then template.
    pub(crate) fn group(&mut self, spans: &[SpanView<'_>], indices: &mut [u32], min: usize) {
        self.group_unordered(spans, indices, min);
        self.order_groups(spans, indices);
    }

    /// Orders [`Grouper::groups`] by service then template.
    pub(crate) fn order_groups(&mut self, spans: &[SpanView<'_>], indices: &[u32]) {
        if self.groups.len() > 1 {
            self.groups.sort_unstable_by(|x, y| {
                call_key(&spans[indices[x.start] as usize])
                    .cmp(&call_key(&spans[indices[y.start] as usize]))
            });
        }
    }

    /// [`Grouper::group`], leaving the groups in no particular order.
    pub(crate) fn group_unordered(
        &mut self,
        spans: &[SpanView<'_>],
        indices: &mut [u32],
        min: usize,
    ) {
        self.groups.clear();
        self.repeats = false;
        let n = indices.len();
        let min = min.max(1);
        if n == 0 {
            return;
        }
        self.repeats = n > 1;
        // One (service, template) for all: nothing to move.
        let first = &spans[indices[0] as usize];
        if indices[1..]
            .iter()
            .all(|&i| same_call(&spans[i as usize], first))
        {
            if n >= min {
                self.groups.push(0..n);
            }
            return;
        }
        if n < min {
            return;
        }
        let largest = self
            .buckets
            .assign(n, |pos| spans[indices[pos] as usize].template_hash);
        self.repeats = largest > 1;
        if largest < min {
            return;
        }
        self.buckets.arrange();
        self.copy.clear();
        self.copy.extend_from_slice(indices);
        for (slot, &pos) in indices.iter_mut().zip(&self.buckets.order) {
            *slot = self.copy[pos as usize];
        }
        for r in &self.buckets.runs {
            let (a, b) = (r.start, r.end);
            if b - a < min {
                continue;
            }
            let run = &mut indices[a..b];
            let head = &spans[run[0] as usize];
            if run[1..]
                .iter()
                .all(|&i| same_call(&spans[i as usize], head))
            {
                self.groups.push(a..b);
            } else {
                // A hash collision (or one template in several services):
                // split by text, start order kept.
                run.sort_by(|x, y| {
                    call_key(&spans[*x as usize]).cmp(&call_key(&spans[*y as usize]))
                });
                push_runs(&mut self.groups, a, run, min, |x, y| {
                    call_key(&spans[x as usize]) == call_key(&spans[y as usize])
                });
            }
        }
    }
}

/// Dense ids for 64-bit keys (equal keys, equal ids; ids in order of first
/// appearance): an open-addressing table with a random seed, reused across
/// traces without clearing.
#[derive(Debug, Default)]
pub(crate) struct IdTable {
    slots: Vec<IdSlot>,
    stamp: u32,
    seed: u64,
    next: u32,
}

#[derive(Debug, Default, Clone, Copy)]
struct IdSlot {
    key: u64,
    id: u32,
    stamp: u32,
}

impl IdTable {
    /// Forgets every key, making room for `n` of them.
    pub(crate) fn reset(&mut self, n: usize) {
        let want = n.saturating_mul(2).max(16).next_power_of_two();
        if self.slots.len() < want {
            self.slots.clear();
            self.slots.resize(want, IdSlot::default());
            self.stamp = 0;
        }
        if self.seed == 0 {
            self.seed = SeededState::default().0 | 1;
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.slots.fill(IdSlot::default());
            self.stamp = 1;
        }
        self.next = 0;
    }

    /// The id of `key`, a new one when it is new. At most the `n` of the
    /// last [`IdTable::reset`] distinct keys.
    pub(crate) fn id(&mut self, key: u64) -> u32 {
        let mask = self.slots.len() - 1;
        let shift = 64 - self.slots.len().trailing_zeros();
        let mut i = (fold_mul(key ^ self.seed, K0) >> shift) as usize & mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.stamp != self.stamp {
                *slot = IdSlot {
                    key,
                    id: self.next,
                    stamp: self.stamp,
                };
                self.next += 1;
                return slot.id;
            }
            if slot.key == key {
                return slot.id;
            }
            i = (i + 1) & mask;
        }
    }

    /// How many distinct keys since the last reset.
    pub(crate) fn len(&self) -> usize {
        self.next as usize
    }
}

/// Positions `0..n` bucketed by a 64-bit key, reused across traces.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    table: IdTable,
    ids: Vec<u32>,
    starts: Vec<u32>,
    /// Positions, those of one key contiguous and ascending, keys in order
    /// of first appearance (after [`Buckets::arrange`]).
    pub(crate) order: Vec<u32>,
    /// One range of `order` per key (after [`Buckets::arrange`]).
    pub(crate) runs: Vec<Range<usize>>,
}

impl Buckets {
    /// Gives positions `0..n` the ids of their keys; returns the size of the
    /// largest bucket.
    pub(crate) fn assign(&mut self, n: usize, key: impl Fn(usize) -> u64) -> usize {
        self.table.reset(n);
        self.ids.clear();
        self.starts.clear();
        for pos in 0..n {
            let id = self.table.id(key(pos));
            self.ids.push(id);
            if id as usize == self.starts.len() {
                self.starts.push(0);
            }
            self.starts[id as usize] += 1;
        }
        self.starts.iter().copied().max().unwrap_or(0) as usize
    }

    /// Fills `order` and `runs` from the last [`Buckets::assign`].
    pub(crate) fn arrange(&mut self) {
        self.runs.clear();
        let mut at = 0u32;
        for count in &mut self.starts {
            let c = *count;
            self.runs.push(at as usize..(at + c) as usize);
            *count = at;
            at += c;
        }
        self.order.clear();
        self.order.resize(self.ids.len(), 0);
        for (pos, &id) in self.ids.iter().enumerate() {
            let slot = &mut self.starts[id as usize];
            self.order[*slot as usize] = pos as u32;
            *slot += 1;
        }
    }
}

/// Pushes the runs of `eq`-equal neighbours of `run` (which starts at
/// `offset`) holding at least `min` items.
pub(crate) fn push_runs(
    out: &mut Vec<Range<usize>>,
    offset: usize,
    run: &[u32],
    min: usize,
    eq: impl Fn(u32, u32) -> bool,
) {
    let mut start = 0;
    for i in 1..=run.len() {
        if i == run.len() || !eq(run[i], run[start]) {
            if i - start >= min {
                out.push(offset + start..offset + i);
            }
            start = i;
        }
    }
}

/// Dense ids for the equal strings among `n` items (equal strings, equal
/// ids), reused across traces.
#[derive(Debug, Default)]
pub(crate) struct StrGroups {
    table: IdTable,
    sorted: Vec<u32>,
    /// The id of each item.
    pub(crate) ids: Vec<u32>,
    /// The first item of each id.
    pub(crate) first: Vec<u32>,
    /// How many items have each id.
    pub(crate) counts: Vec<u32>,
}

impl StrGroups {
    /// Groups items `0..n` by `text(item)`, `hash(item)` being equal for
    /// equal texts.
    pub(crate) fn build<'a>(
        &mut self,
        n: usize,
        hash: impl Fn(usize) -> u64,
        text: impl Fn(usize) -> &'a str,
    ) {
        self.table.reset(n);
        self.ids.clear();
        self.first.clear();
        self.counts.clear();
        let mut exact = true;
        for pos in 0..n {
            let id = self.table.id(hash(pos));
            if id as usize == self.first.len() {
                self.first.push(pos as u32);
                self.counts.push(1);
            } else {
                self.counts[id as usize] += 1;
                exact = exact && text(self.first[id as usize] as usize) == text(pos);
            }
            self.ids.push(id);
        }
        if exact {
            return;
        }
        // Two texts share a hash: number the texts in sorted order instead.
        self.sorted.clear();
        self.sorted.extend(0..n as u32);
        self.sorted
            .sort_unstable_by(|&x, &y| text(x as usize).cmp(text(y as usize)).then(x.cmp(&y)));
        self.first.clear();
        self.counts.clear();
        for (k, &pos) in self.sorted.iter().enumerate() {
            let new = k == 0 || text(self.sorted[k - 1] as usize) != text(pos as usize);
            if new {
                self.first.push(pos);
                self.counts.push(0);
            }
            let id = self.first.len() - 1;
            self.counts[id] += 1;
            self.ids[pos as usize] = id as u32;
        }
    }

    /// Groups `items` (span indexes) by [`template_or_name`].
    pub(crate) fn build_spans(&mut self, spans: &[SpanView<'_>], items: &[u32]) {
        let text = |pos: usize| template_or_name(&spans[items[pos] as usize]);
        // The host's hash when every text is a template, else one hash of
        // the text for all (a name may equal another span's template).
        if items
            .iter()
            .all(|&i| !spans[i as usize].template.is_empty())
        {
            self.build(
                items.len(),
                |pos| spans[items[pos] as usize].template_hash,
                text,
            );
        } else {
            self.build(items.len(), |pos| hash_str(text(pos)), text);
        }
    }

    /// Counts the equal [`template_or_name`] of `items` and returns the
    /// number of distinct texts and the `k` most frequent (most frequent
    /// first, ties by text): what sorting every text would tell, without
    /// sorting them.
    pub(crate) fn top<'a>(
        &mut self,
        spans: &[SpanView<'a>],
        items: &[u32],
        k: usize,
    ) -> (usize, Vec<(&'a str, u32)>) {
        self.build_spans(spans, items);
        let mut best: Vec<(&'a str, u32)> = Vec::with_capacity(k + 1);
        let before = |a: &(&str, u32), b: &(&str, u32)| a.1 > b.1 || (a.1 == b.1 && a.0 < b.0);
        for (&first, &count) in self.first.iter().zip(&self.counts) {
            let item = (
                template_or_name(&spans[items[first as usize] as usize]),
                count,
            );
            if best.len() >= k && best.last().is_none_or(|last| !before(&item, last)) {
                continue;
            }
            let at = best
                .iter()
                .position(|b| before(&item, b))
                .unwrap_or(best.len());
            best.insert(at, item);
            best.truncate(k);
        }
        (self.first.len(), best)
    }
}

/// Sorts `v` stably by `cmp`; an already sorted `v` (the usual case: spans
/// come indexed in start order) costs one pass and no buffer.
pub(crate) fn sort_stable_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if !v.is_sorted_by(|a, b| cmp(a, b) != Ordering::Greater) {
        v.sort_by(cmp);
    }
}

/// The template of a span, or its name when it has none.
pub(crate) fn template_or_name<'a>(s: &SpanView<'a>) -> &'a str {
    if s.template.is_empty() {
        s.name.as_str()
    } else {
        s.template.as_str()
    }
}

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xc2b2_ae3d_27d4_eb4f;
const K2: u64 = 0x1656_67b1_9e37_79f9;

fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

fn r8(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

fn r4(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// A fast hash of `bytes` from `seed` (folded multiplications, 16 bytes a
/// step, the tail read as overlapping words). Not for anything that must
/// resist crafted collisions unless the seed is secret.
pub(crate) fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let len = bytes.len();
    let mut h = seed ^ fold_mul(len as u64 ^ K2, K0);
    let (a, b) = if len <= 16 {
        if len >= 8 {
            (r8(bytes, 0), r8(bytes, len - 8))
        } else if len >= 4 {
            (r4(bytes, 0), r4(bytes, len - 4))
        } else if len > 0 {
            let x = u64::from(bytes[0]) << 16
                | u64::from(bytes[len / 2]) << 8
                | u64::from(bytes[len - 1]);
            (x, 0)
        } else {
            (0, 0)
        }
    } else {
        let mut at = 0;
        while len - at > 16 {
            h = fold_mul(r8(bytes, at) ^ h, r8(bytes, at + 8) ^ K1);
            at += 16;
        }
        (r8(bytes, len - 16), r8(bytes, len - 8))
    };
    fold_mul(fold_mul(a ^ h, b ^ K1) ^ K2, K0)
}

/// A hash of a text for grouping within one trace (a fixed seed: results
/// never depend on it, only the cost of collisions does).
pub(crate) fn hash_str(s: &str) -> u64 {
    hash_bytes(K1, s.as_bytes())
}

/// A `BuildHasher` for maps keyed by text that live across traces: the fast
/// hash above with a per-map random seed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeededState(u64);

impl Default for SeededState {
    fn default() -> Self {
        Self(std::collections::hash_map::RandomState::new().hash_one(K0))
    }
}

impl BuildHasher for SeededState {
    type Hasher = SeededHasher;
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher(self.0)
    }
}

/// The hasher of [`SeededState`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeededHasher(u64);

impl Hasher for SeededHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash_bytes(self.0, bytes);
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = fold_mul(self.0 ^ u64::from(i), K0);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// True when `s` is inbound and its endpoint ([`SpanView::endpoint`]) is
/// `endpoint`, without building the text.
pub(crate) fn endpoint_is(s: &SpanView<'_>, endpoint: &str) -> bool {
    if !s.span_kind.is_inbound() {
        return false;
    }
    let route = s.http_route.as_str();
    if route.is_empty() {
        return s.name.as_str() == endpoint;
    }
    let method = s.http_method.as_str();
    if method.is_empty() {
        return route == endpoint;
    }
    endpoint.len() == method.len() + 1 + route.len()
        && endpoint.starts_with(method)
        && endpoint.as_bytes()[method.len()] == b' '
        && endpoint.ends_with(route)
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

/// Orders `calls` by service, then by `time` (stable), comparing services
/// only when they differ: most traces hold one service.
pub(crate) fn sort_by_service_then(
    spans: &[SpanView<'_>],
    calls: &mut [u32],
    time: impl Fn(&SpanView<'_>, &SpanView<'_>) -> Ordering,
) {
    let service = |i: &u32| spans[*i as usize].service.as_str();
    let one_service = calls.first().is_none_or(|f| {
        let f = service(f);
        calls.iter().all(|i| service(i) == f)
    });
    if one_service {
        sort_stable_by(calls, |&a, &b| time(&spans[a as usize], &spans[b as usize]));
    } else {
        sort_stable_by(calls, |&a, &b| {
            let (x, y) = (&spans[a as usize], &spans[b as usize]);
            x.service
                .as_str()
                .cmp(y.service.as_str())
                .then_with(|| time(x, y))
        });
    }
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
