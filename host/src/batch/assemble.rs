//! Traces put back together, compactly. A file lists spans in no useful
//! order (a trace's spans may sit in batches far apart), so nothing can be
//! analyzed before the input ends, and a million spans are held at once.
//! Held as the daemon's [`TraceFragment`]s they would cost about 450 bytes
//! each plus the growth of their buffers; here every string is interned
//! once for the whole input (services, scopes, attribute keys and resource
//! values repeat on every span) and a span is a fixed 112-byte record of
//! symbols, stored in fixed-size blocks that never move. A trace is a chain
//! through the blocks, turned back into a [`TraceFragment`] only when it is
//! analyzed. A trace keeps at most `max_events_per_trace` spans, as in the
//! daemon, and the rest are counted.

use std::collections::HashMap;

use detector_api::{SpanId, TraceId};
use hashbrown::HashTable;

use crate::model::{Arena, AttrRef, Kind, Role, SpanRecord, StrRef, TraceFragment};

/// Items per block of a [`Blocks`].
const BLOCK: usize = 16 * 1024;
/// Interned text is stored in pieces of this size (longer strings get
/// their own piece).
const TEXT_PIECE: usize = 1 << 20;
/// The end of a trace's chain of spans.
const END: u32 = u32::MAX;

/// An append-only list in fixed-size blocks: pushing never moves what is
/// stored (no reallocation copies, no doubling slack).
struct Blocks<T> {
    blocks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Self {
            blocks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Copy> Blocks<T> {
    /// Appends `items` contiguously (in one block); returns the index of
    /// the first, `None` past `u32::MAX` items.
    fn push_run(&mut self, items: &[T]) -> Option<u32> {
        let room = self.blocks.last().map_or(0, |b| b.capacity() - b.len());
        if room < items.len() {
            self.blocks.push(Vec::with_capacity(BLOCK.max(items.len())));
            // The rest of the previous block stays unused.
            self.len = (self.blocks.len() - 1) * BLOCK;
        }
        let start = u32::try_from(self.len).ok()?;
        u32::try_from(self.len + items.len()).ok()?;
        self.blocks.last_mut()?.extend_from_slice(items);
        self.len += items.len();
        Some(start)
    }

    fn get(&self, index: u32) -> Option<&T> {
        let i = index as usize;
        self.blocks.get(i / BLOCK)?.get(i % BLOCK)
    }

    fn get_mut(&mut self, index: u32) -> Option<&mut T> {
        let i = index as usize;
        self.blocks.get_mut(i / BLOCK)?.get_mut(i % BLOCK)
    }

    fn run(&self, start: u32, len: usize) -> &[T] {
        let i = start as usize;
        self.blocks
            .get(i / BLOCK)
            .and_then(|b| b.get(i % BLOCK..i % BLOCK + len))
            .unwrap_or(&[])
    }

    fn heap_bytes(&self) -> usize {
        self.blocks.iter().map(Vec::capacity).sum::<usize>() * std::mem::size_of::<T>()
    }
}

/// An interned string; 0 is the empty string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sym(u32);

/// Every distinct string of the input, once.
#[derive(Default)]
struct Interner {
    /// (32-bit hash, symbol) of every string.
    table: HashTable<(u32, u32)>,
    /// (piece, offset, length) of each symbol's text.
    refs: Vec<(u32, u32, u32)>,
    pieces: Vec<String>,
}

fn hash32(s: &str) -> u32 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes()) as u32
}

/// The table's hash: derived from the stored 32 bits alone, so growing the
/// table needs no string.
fn spread(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl Interner {
    fn text(&self, sym: Sym) -> &str {
        let Some(&(piece, off, len)) = sym.0.checked_sub(1).and_then(|i| self.refs.get(i as usize))
        else {
            return "";
        };
        self.pieces
            .get(piece as usize)
            .and_then(|p| p.get(off as usize..(off + len) as usize))
            .unwrap_or("")
    }

    fn intern(&mut self, s: &str) -> Option<Sym> {
        if s.is_empty() {
            return Some(Sym(0));
        }
        let h = hash32(s);
        let found = self.table.find(spread(h), |&(eh, sym)| {
            eh == h && {
                let &(piece, off, len) = &self.refs[sym as usize - 1];
                self.pieces[piece as usize].get(off as usize..(off + len) as usize) == Some(s)
            }
        });
        if let Some(&(_, sym)) = found {
            return Some(Sym(sym));
        }
        let room = self.pieces.last().map_or(0, |p| p.capacity() - p.len());
        if room < s.len() {
            self.pieces
                .push(String::with_capacity(TEXT_PIECE.max(s.len())));
        }
        let piece = u32::try_from(self.pieces.len() - 1).ok()?;
        let last = self.pieces.last_mut()?;
        let off = u32::try_from(last.len()).ok()?;
        last.push_str(s);
        self.refs.push((piece, off, u32::try_from(s.len()).ok()?));
        let sym = u32::try_from(self.refs.len()).ok()?;
        self.table
            .insert_unique(spread(h), (h, sym), |&(eh, _)| spread(eh));
        Some(Sym(sym))
    }

    fn heap_bytes(&self) -> usize {
        self.table.capacity() * 9
            + self.refs.capacity() * 12
            + self.pieces.iter().map(String::capacity).sum::<usize>()
    }
}

/// The strings of a [`SpanRecord`], in a fixed order.
const STRINGS: usize = SpanRecord::TEXT_FIELDS;

/// One held span: a [`SpanRecord`] with symbols for strings.
#[derive(Debug, Clone, Copy)]
struct HeldSpan {
    span_id: SpanId,
    parent_id: SpanId,
    start_ns: u64,
    duration_ns: u64,
    /// `u64::MAX` for none.
    response_bytes: u64,
    strings: [Sym; STRINGS],
    code_lineno: u32,
    attrs_start: u32,
    /// The next span of the same trace, or [`END`].
    next: u32,
    attrs_len: u16,
    http_status: u16,
    kind: Kind,
    span_kind: Role,
    is_error: bool,
}

/// One trace: its chain of spans.
#[derive(Debug, Clone, Copy)]
struct Chain {
    trace_id: TraceId,
    first: u32,
    last: u32,
    spans: u32,
}

/// Every trace of the input, in order of first appearance.
pub struct Traces {
    index: HashMap<TraceId, u32>,
    chains: Vec<Chain>,
    spans_store: Blocks<HeldSpan>,
    attrs: Blocks<(Sym, Sym)>,
    strings: Interner,
    max_spans: usize,
    scratch: Vec<(Sym, Sym)>,
    /// Spans kept.
    pub spans: usize,
    /// Spans over `max_spans` in their trace, not kept.
    pub dropped_over_cap: usize,
    /// Spans beyond what this store can address (4 billion), not kept.
    pub dropped_over_store: usize,
    /// The latest span end, ns since the epoch: "now" for detectors that
    /// report across traces.
    pub last_ns: u64,
}

impl Traces {
    /// Keeps at most `max_spans` spans per trace.
    pub fn new(max_spans: usize) -> Self {
        Self {
            index: HashMap::new(),
            chains: Vec::new(),
            spans_store: Blocks::default(),
            attrs: Blocks::default(),
            strings: Interner::default(),
            max_spans: max_spans.clamp(1, u32::MAX as usize),
            scratch: Vec::new(),
            spans: 0,
            dropped_over_cap: 0,
            dropped_over_store: 0,
            last_ns: 0,
        }
    }

    /// Merges `fragment`'s spans into their trace.
    pub fn add(&mut self, fragment: &TraceFragment) {
        let n = match self.index.get(&fragment.trace_id) {
            Some(&n) => n,
            None => {
                let n = self.chains.len() as u32;
                self.index.insert(fragment.trace_id, n);
                self.chains.push(Chain {
                    trace_id: fragment.trace_id,
                    first: END,
                    last: END,
                    spans: 0,
                });
                n
            }
        };
        for s in &fragment.spans {
            self.last_ns = self.last_ns.max(s.start_ns.saturating_add(s.duration_ns));
            if self.chains[n as usize].spans as usize >= self.max_spans {
                self.dropped_over_cap += 1;
                continue;
            }
            match self.hold(fragment, s) {
                Some(at) => self.link(n, at),
                None => self.dropped_over_store += 1,
            }
        }
    }

    /// Stores one span; its index.
    fn hold(&mut self, fragment: &TraceFragment, s: &SpanRecord) -> Option<u32> {
        let arena = &fragment.arena;
        let mut strings = [Sym::default(); STRINGS];
        for (slot, r) in strings.iter_mut().zip(s.text_fields()) {
            *slot = self.strings.intern(arena.get(r))?;
        }
        let a = s.attrs_start as usize;
        let span_attrs = fragment
            .attrs
            .get(a..a + s.attrs_len as usize)
            .unwrap_or(&[]);
        self.scratch.clear();
        for attr in span_attrs.iter().take(u16::MAX as usize) {
            let key = self.strings.intern(arena.get(attr.key))?;
            let value = self.strings.intern(arena.get(attr.value))?;
            self.scratch.push((key, value));
        }
        let attrs_start = if self.scratch.is_empty() {
            0
        } else {
            self.attrs.push_run(&self.scratch)?
        };
        let held = HeldSpan {
            span_id: s.span_id,
            parent_id: s.parent_id,
            start_ns: s.start_ns,
            duration_ns: s.duration_ns,
            response_bytes: s.response_bytes.unwrap_or(u64::MAX),
            strings,
            code_lineno: s.code_lineno,
            attrs_start,
            next: END,
            attrs_len: self.scratch.len() as u16,
            http_status: s.http_status,
            kind: s.kind,
            span_kind: s.span_kind,
            is_error: s.is_error,
        };
        self.spans_store.push_run(&[held])
    }

    fn link(&mut self, trace: u32, at: u32) {
        let chain = &mut self.chains[trace as usize];
        let previous = chain.last;
        chain.last = at;
        chain.spans += 1;
        if previous == END {
            chain.first = at;
        } else if let Some(prev) = self.spans_store.get_mut(previous) {
            prev.next = at;
        }
        self.spans += 1;
    }

    /// Traces held.
    pub fn len(&self) -> usize {
        self.chains.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }

    /// Bytes held, for the debug log.
    pub fn heap_bytes(&self) -> usize {
        self.spans_store.heap_bytes()
            + self.attrs.heap_bytes()
            + self.strings.heap_bytes()
            + self.chains.capacity() * std::mem::size_of::<Chain>()
            + self.index.capacity() * (std::mem::size_of::<(TraceId, u32)>() + 1)
    }

    /// Trace `n` (in order of first appearance) as the daemon holds traces.
    pub fn fragment(&self, n: usize) -> Option<TraceFragment> {
        let chain = self.chains.get(n)?;
        let mut f = TraceFragment::new(chain.trace_id);
        f.spans.reserve_exact(chain.spans as usize);
        f.arena = Arena::with_capacity(chain.spans as usize * 96);
        let mut at = chain.first;
        while at != END {
            let Some(h) = self.spans_store.get(at) else {
                break;
            };
            let text = |sym: Sym| self.strings.text(sym);
            let attrs_start = f.attrs.len() as u32;
            f.has_root |= h.parent_id.is_zero();
            // Every other field named: a field added to `SpanRecord` must
            // be held too (text fields go through `text_fields`).
            let mut record = SpanRecord {
                span_id: h.span_id,
                parent_id: h.parent_id,
                service: StrRef::EMPTY,
                name: StrRef::EMPTY,
                scope: StrRef::EMPTY,
                kind: h.kind,
                span_kind: h.span_kind,
                is_error: h.is_error,
                http_status: h.http_status,
                start_ns: h.start_ns,
                duration_ns: h.duration_ns,
                target: StrRef::EMPTY,
                db_system: StrRef::EMPTY,
                http_method: StrRef::EMPTY,
                http_route: StrRef::EMPTY,
                peer_service: StrRef::EMPTY,
                messaging_system: StrRef::EMPTY,
                messaging_destination: StrRef::EMPTY,
                response_bytes: (h.response_bytes != u64::MAX).then_some(h.response_bytes),
                code_function: StrRef::EMPTY,
                code_filepath: StrRef::EMPTY,
                code_namespace: StrRef::EMPTY,
                code_lineno: h.code_lineno,
                attrs_start,
                attrs_len: u32::from(h.attrs_len),
            };
            // The span's own strings first, then its attributes, as
            // conversion lays them out.
            for (slot, sym) in record.text_fields_mut().into_iter().zip(h.strings) {
                *slot = f.arena.push(text(sym));
            }
            for &(key, value) in self.attrs.run(h.attrs_start, usize::from(h.attrs_len)) {
                let key = f.arena.push(text(key));
                let value = f.arena.push(text(value));
                f.attrs.push(AttrRef { key, value });
            }
            f.spans.push(record);
            at = h.next;
        }
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use detector_api::IoKind;

    use super::*;

    fn frag(trace: u8, spans: &[(u8, u64, &str)]) -> TraceFragment {
        let mut f = TraceFragment::new(TraceId([trace; 16]));
        for &(id, start, statement) in spans {
            let target = f.arena.push(statement);
            let service = f.arena.push("orders");
            let key = f.arena.push("db.system");
            let value = f.arena.push("postgresql");
            f.attrs.push(AttrRef { key, value });
            f.spans.push(SpanRecord {
                span_id: SpanId([id; 8]),
                parent_id: SpanId([if id == 1 { 0 } else { 1 }; 8]),
                start_ns: start,
                duration_ns: 10,
                target,
                service,
                kind: Kind(IoKind::Sql),
                response_bytes: (id == 2).then_some(512),
                code_lineno: u32::from(id),
                attrs_start: f.attrs.len() as u32 - 1,
                attrs_len: 1,
                ..SpanRecord::default()
            });
        }
        f
    }

    #[test]
    fn fragments_join_their_trace_in_first_seen_order_under_the_cap() {
        let mut t = Traces::new(3);
        t.add(&frag(2, &[(1, 100, "SELECT 1")]));
        t.add(&frag(1, &[(1, 50, "SELECT 2")]));
        t.add(&frag(
            2,
            &[(2, 300, "SELECT 3"), (3, 200, "SELECT 1"), (4, 0, "x")],
        ));
        t.add(&frag(1, &[(2, 10, "SELECT 2")]));
        assert_eq!(
            (t.len(), t.spans, t.dropped_over_cap, t.last_ns),
            (2, 5, 1, 310)
        );
        let f = t.fragment(0).unwrap();
        assert_eq!(f.trace_id, TraceId([2; 16]));
        let ids: Vec<u8> = f.spans.iter().map(|s| s.span_id.0[0]).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(f.has_root);
        assert!(t.fragment(2).is_none());
    }

    #[test]
    fn a_span_comes_back_as_it_went_in() {
        let original = frag(7, &[(1, 5, "SELECT a"), (2, 6, "SELECT b")]);
        let mut t = Traces::new(100);
        t.add(&original);
        let back = t.fragment(0).unwrap();
        for (a, b) in original.spans.iter().zip(&back.spans) {
            let text = |f: &TraceFragment, r: StrRef| f.arena.get(r).to_owned();
            assert_eq!(text(&original, a.target), text(&back, b.target));
            assert_eq!(text(&original, a.service), text(&back, b.service));
            assert_eq!(text(&back, b.name), "");
            assert_eq!(
                (
                    a.span_id,
                    a.parent_id,
                    a.start_ns,
                    a.duration_ns,
                    a.kind,
                    a.response_bytes,
                    a.code_lineno
                ),
                (
                    b.span_id,
                    b.parent_id,
                    b.start_ns,
                    b.duration_ns,
                    b.kind,
                    b.response_bytes,
                    b.code_lineno
                )
            );
            let attr = back.attrs[b.attrs_start as usize];
            assert_eq!(back.arena.get(attr.key), "db.system");
            assert_eq!(back.arena.get(attr.value), "postgresql");
        }
        // "orders" and the attribute were stored once for both spans.
        assert_eq!(t.strings.refs.len(), 5);
    }

    #[test]
    fn interning_survives_growth_and_long_strings() {
        let mut i = Interner::default();
        let long = "x".repeat(TEXT_PIECE + 10);
        let syms: Vec<Sym> = (0..50_000)
            .map(|n| i.intern(&format!("s{n}")).unwrap())
            .collect();
        let l = i.intern(&long).unwrap();
        for (n, sym) in syms.iter().enumerate() {
            assert_eq!(i.text(*sym), format!("s{n}"));
            assert_eq!(i.intern(&format!("s{n}")), Some(*sym));
        }
        assert_eq!(i.text(l), long);
        assert_eq!(i.intern(""), Some(Sym(0)));
        assert_eq!(i.text(Sym(0)), "");
    }

    #[test]
    fn a_held_span_stays_small() {
        assert!(std::mem::size_of::<HeldSpan>() <= 112);
    }

    #[test]
    fn runs_never_straddle_blocks() {
        let mut b: Blocks<u32> = Blocks::default();
        let first = b.push_run(&vec![1; BLOCK - 2]).unwrap();
        let second = b.push_run(&[7, 8, 9]).unwrap();
        assert_eq!(first, 0);
        assert_eq!(second as usize, BLOCK);
        assert_eq!(b.run(second, 3), [7, 8, 9]);
        assert_eq!(b.get(second + 2), Some(&9));
    }
}
