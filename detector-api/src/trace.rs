//! A whole trace as detectors see it: the spans plus the indexes every detector
//! wants (children of a span, spans by I/O kind, roots), built once per trace
//! by the host and shared by every detector.

use abi_stable::StableAbi;
use abi_stable::std_types::RSlice;

use crate::{IoKind, NO_PARENT, SpanView, TraceId};

/// Owned index storage for one trace. Build it once with [`TraceIndex::build`]
/// and borrow it into a [`TraceView`].
#[derive(Debug, Default, Clone)]
pub struct TraceIndex {
    child_offsets: Vec<u32>,
    child_index: Vec<u32>,
    kind_offsets: [u32; IoKind::COUNT + 1],
    kind_index: Vec<u32>,
    roots: Vec<u32>,
}

impl TraceIndex {
    /// Builds the indexes for `spans`. Children and spans of a kind are each
    /// ordered by start time (then end time, then span id; position only for
    /// duplicate ids), so detectors can scan them as a timeline and the
    /// order spans arrived in never shows.
    ///
    /// A span whose `parent` is out of range is treated as a root.
    pub fn build(spans: &[SpanView<'_>]) -> Self {
        let n = spans.len();
        // Ties broken by end time then span id, never by arrival order, so
        // the same trace sent in any order gives the same indexes.
        let by_start = |a: &u32, b: &u32| {
            let (sa, sb) = (&spans[*a as usize], &spans[*b as usize]);
            (sa.start_ns, sa.end_ns(), sa.span_id)
                .cmp(&(sb.start_ns, sb.end_ns(), sb.span_id))
                .then(a.cmp(b))
        };

        // Children, as a compressed sparse row: counts, prefix sums, fill.
        let mut child_offsets = vec![0u32; n + 1];
        let mut roots = Vec::new();
        for (i, s) in spans.iter().enumerate() {
            match valid_parent(s, n) {
                Some(p) => child_offsets[p + 1] += 1,
                None => roots.push(i as u32),
            }
        }
        for i in 0..n {
            child_offsets[i + 1] += child_offsets[i];
        }
        let mut cursor = child_offsets.clone();
        let mut child_index = vec![0u32; child_offsets[n] as usize];
        for (i, s) in spans.iter().enumerate() {
            if let Some(p) = valid_parent(s, n) {
                child_index[cursor[p] as usize] = i as u32;
                cursor[p] += 1;
            }
        }
        for p in 0..n {
            let (a, b) = (child_offsets[p] as usize, child_offsets[p + 1] as usize);
            if b - a > 1 {
                child_index[a..b].sort_unstable_by(by_start);
            }
        }
        roots.sort_unstable_by(by_start);

        // Spans by kind, same layout.
        let mut kind_offsets = [0u32; IoKind::COUNT + 1];
        for s in spans {
            kind_offsets[s.kind as usize + 1] += 1;
        }
        for k in 0..IoKind::COUNT {
            kind_offsets[k + 1] += kind_offsets[k];
        }
        let mut kcursor = kind_offsets;
        let mut kind_index = vec![0u32; n];
        for (i, s) in spans.iter().enumerate() {
            let k = s.kind as usize;
            kind_index[kcursor[k] as usize] = i as u32;
            kcursor[k] += 1;
        }
        for k in 0..IoKind::COUNT {
            let (a, b) = (kind_offsets[k] as usize, kind_offsets[k + 1] as usize);
            kind_index[a..b].sort_unstable_by(by_start);
        }

        Self {
            child_offsets,
            child_index,
            kind_offsets,
            kind_index,
            roots,
        }
    }
}

fn valid_parent(s: &SpanView<'_>, n: usize) -> Option<usize> {
    (s.parent != NO_PARENT && (s.parent as usize) < n).then_some(s.parent as usize)
}

/// One trace: its spans and their indexes, all borrowed.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct TraceView<'a> {
    trace_id: TraceId,
    spans: RSlice<'a, SpanView<'a>>,
    child_offsets: RSlice<'a, u32>,
    child_index: RSlice<'a, u32>,
    kind_offsets: [u32; IoKind::COUNT + 1],
    kind_index: RSlice<'a, u32>,
    roots: RSlice<'a, u32>,
}

impl<'a> TraceView<'a> {
    /// Borrows `spans` and the `index` built from them.
    ///
    /// # Panics
    /// When `index` was not built from a slice of the same length.
    pub fn new(trace_id: TraceId, spans: &'a [SpanView<'a>], index: &'a TraceIndex) -> Self {
        assert_eq!(
            index.child_offsets.len(),
            spans.len() + 1,
            "TraceIndex built for another span slice"
        );
        Self {
            trace_id,
            spans: RSlice::from_slice(spans),
            child_offsets: RSlice::from_slice(&index.child_offsets),
            child_index: RSlice::from_slice(&index.child_index),
            kind_offsets: index.kind_offsets,
            kind_index: RSlice::from_slice(&index.kind_index),
            roots: RSlice::from_slice(&index.roots),
        }
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// Every span, in the order the host received them.
    pub fn spans(&self) -> &'a [SpanView<'a>] {
        self.spans.as_slice()
    }

    /// Number of spans.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when the trace holds no span.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The span at `index`, if any.
    pub fn span(&self, index: usize) -> Option<&'a SpanView<'a>> {
        self.spans.as_slice().get(index)
    }

    /// Indexes of the direct children of span `index`, ordered by start time.
    /// Empty for an out-of-range index.
    pub fn children_of(&self, index: usize) -> &'a [u32] {
        let offsets = self.child_offsets.as_slice();
        match (offsets.get(index), offsets.get(index + 1)) {
            (Some(&a), Some(&b)) => self
                .child_index
                .as_slice()
                .get(a as usize..b as usize)
                .unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Indexes of every span of `kind`, ordered by start time.
    pub fn of_kind(&self, kind: IoKind) -> &'a [u32] {
        let k = kind as usize;
        let (a, b) = (self.kind_offsets[k], self.kind_offsets[k + 1]);
        self.kind_index
            .as_slice()
            .get(a as usize..b as usize)
            .unwrap_or(&[])
    }

    /// Indexes of the spans with no parent in the trace, ordered by start time.
    pub fn roots(&self) -> &'a [u32] {
        self.roots.as_slice()
    }

    /// The parent of span `index`, when it is in the trace.
    pub fn parent(&self, index: usize) -> Option<&'a SpanView<'a>> {
        self.span(index)
            .and_then(|s| s.parent_index())
            .and_then(|p| self.span(p))
    }

    /// Walks from span `index` up to its root (excluding `index` itself),
    /// yielding `(index, span)`. Stops after `len()` steps so a cyclic parent
    /// chain in hostile input cannot loop forever.
    pub fn ancestors(&self, index: usize) -> impl Iterator<Item = (usize, &'a SpanView<'a>)> + 'a {
        let spans = self.spans();
        let mut current = spans.get(index).and_then(|s| s.parent_index());
        let mut budget = spans.len();
        std::iter::from_fn(move || {
            let i = current?;
            let span = spans.get(i)?;
            if budget == 0 {
                return None;
            }
            budget -= 1;
            current = span.parent_index();
            Some((i, span))
        })
    }

    /// The endpoint that led to span `index`: the nearest inbound span at or
    /// above it (see [`SpanView::endpoint`]).
    pub fn source_endpoint(&self, index: usize) -> Option<(usize, &'a SpanView<'a>)> {
        let own = self.span(index).map(|s| (index, s));
        own.into_iter()
            .chain(self.ancestors(index))
            .find(|(_, s)| s.span_kind.is_inbound())
    }
}
