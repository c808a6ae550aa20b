//! [`TraceFragment`]: the spans of one trace received together, and how
//! fragments of the same trace merge in the window.

use detector_api::{IoKind, SpanId, SpanKind, TraceId};

use super::{Arena, StrRef};

/// One attribute kept for detectors, as arena references.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrRef {
    /// Key.
    pub key: StrRef,
    /// Value rendered as text.
    pub value: StrRef,
}

/// One received span, its strings in the fragment's arena.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpanRecord {
    pub span_id: SpanId,
    /// Zero when the span has no parent.
    pub parent_id: SpanId,
    pub service: StrRef,
    pub name: StrRef,
    /// Instrumentation scope name.
    pub scope: StrRef,
    pub kind: Kind,
    pub span_kind: Role,
    pub is_error: bool,
    pub http_status: u16,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub target: StrRef,
    pub db_system: StrRef,
    pub http_method: StrRef,
    pub http_route: StrRef,
    pub peer_service: StrRef,
    pub messaging_system: StrRef,
    pub messaging_destination: StrRef,
    pub response_bytes: Option<u64>,
    pub code_function: StrRef,
    pub code_filepath: StrRef,
    pub code_namespace: StrRef,
    pub code_lineno: u32,
    /// Range into [`TraceFragment::attrs`].
    pub attrs_start: u32,
    pub attrs_len: u32,
}

/// [`IoKind`] with a `Default`, so records can be built field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind(pub IoKind);

impl Default for Kind {
    fn default() -> Self {
        Kind(IoKind::Other)
    }
}

/// [`SpanKind`] with a `Default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role(pub SpanKind);

impl Default for Role {
    fn default() -> Self {
        Role(SpanKind::Internal)
    }
}

impl SpanRecord {
    /// How many text fields a span record has ([`SpanRecord::text_fields`]).
    pub const TEXT_FIELDS: usize = 13;

    /// Every text field, in one fixed order: the one list that moving a
    /// record's strings (rebasing, the batch store) walks.
    pub fn text_fields(&self) -> [StrRef; Self::TEXT_FIELDS] {
        [
            self.service,
            self.name,
            self.scope,
            self.target,
            self.db_system,
            self.http_method,
            self.http_route,
            self.peer_service,
            self.messaging_system,
            self.messaging_destination,
            self.code_function,
            self.code_filepath,
            self.code_namespace,
        ]
    }

    /// [`SpanRecord::text_fields`], to write, in the same order.
    pub fn text_fields_mut(&mut self) -> [&mut StrRef; Self::TEXT_FIELDS] {
        [
            &mut self.service,
            &mut self.name,
            &mut self.scope,
            &mut self.target,
            &mut self.db_system,
            &mut self.http_method,
            &mut self.http_route,
            &mut self.peer_service,
            &mut self.messaging_system,
            &mut self.messaging_destination,
            &mut self.code_function,
            &mut self.code_filepath,
            &mut self.code_namespace,
        ]
    }

    fn rebase(&mut self, base: u32, attr_base: u32) {
        for r in self.text_fields_mut() {
            *r = r.rebased(base);
        }
        self.attrs_start += attr_base;
    }
}

/// Spans of one trace with the arena that holds their strings.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TraceFragment {
    pub trace_id: TraceId,
    pub arena: Arena,
    pub spans: Vec<SpanRecord>,
    pub attrs: Vec<AttrRef>,
    /// A span without parent (the root, ended since it was exported) is here.
    pub has_root: bool,
}

impl TraceFragment {
    /// An empty fragment of `trace_id`.
    pub fn new(trace_id: TraceId) -> Self {
        Self {
            trace_id,
            ..Self::default()
        }
    }

    /// Moves up to `max_spans` spans of `other` (same trace) into `self`.
    /// Returns how many spans of `other` did not fit.
    pub fn absorb(&mut self, other: TraceFragment, max_spans: usize) -> usize {
        let room = max_spans.saturating_sub(self.spans.len());
        let dropped = other.spans.len().saturating_sub(room);
        if room == 0 {
            return dropped;
        }
        let base = self.arena.extend(&other.arena);
        let attr_base = self.attrs.len() as u32;
        self.attrs.extend(other.attrs.iter().map(|a| AttrRef {
            key: a.key.rebased(base),
            value: a.value.rebased(base),
        }));
        for mut s in other.spans.into_iter().take(room) {
            self.has_root |= s.parent_id.is_zero();
            s.rebase(base, attr_base);
            self.spans.push(s);
        }
        dropped
    }

    /// Cuts the fragment to `max_spans` spans; returns how many were dropped.
    pub fn truncate(&mut self, max_spans: usize) -> usize {
        let dropped = self.spans.len().saturating_sub(max_spans);
        self.spans.truncate(max_spans);
        if dropped > 0 {
            self.has_root = self.spans.iter().any(|s| s.parent_id.is_zero());
        }
        dropped
    }

    /// Gives back the spare capacity the conversion's growth left: a trace
    /// may wait in the window for seconds, ten thousand of them at once.
    pub fn shrink_to_fit(&mut self) {
        self.spans.shrink_to_fit();
        self.attrs.shrink_to_fit();
        self.arena.shrink_to_fit();
    }

    /// Approximate heap bytes held, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity()
            + self.spans.capacity() * std::mem::size_of::<SpanRecord>()
            + self.attrs.capacity() * std::mem::size_of::<AttrRef>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(names: &[&str], root: bool) -> TraceFragment {
        let mut f = TraceFragment::new(TraceId([7; 16]));
        for (i, n) in names.iter().enumerate() {
            let name = f.arena.push(n);
            let key = f.arena.push("k");
            let value = f.arena.push(n);
            f.attrs.push(AttrRef { key, value });
            f.spans.push(SpanRecord {
                span_id: SpanId([i as u8 + 1; 8]),
                parent_id: if root && i == 0 {
                    SpanId::default()
                } else {
                    SpanId([1; 8])
                },
                name,
                attrs_start: i as u32,
                attrs_len: 1,
                ..SpanRecord::default()
            });
        }
        f.has_root = root;
        f
    }

    #[test]
    fn absorb_rebases_strings_and_attributes() {
        let mut a = frag(&["root", "child"], true);
        let b = frag(&["late1", "late2"], false);
        assert_eq!(a.absorb(b, 10), 0);
        let names: Vec<_> = a.spans.iter().map(|s| a.arena.get(s.name)).collect();
        assert_eq!(names, ["root", "child", "late1", "late2"]);
        let s = &a.spans[3];
        let attr = a.attrs[s.attrs_start as usize];
        assert_eq!(a.arena.get(attr.value), "late2");
        assert!(a.has_root);
    }

    #[test]
    fn absorb_respects_the_span_cap() {
        let mut a = frag(&["a", "b"], false);
        assert_eq!(a.absorb(frag(&["c", "d", "e"], true), 3), 2);
        assert_eq!(a.spans.len(), 3);
        assert!(
            a.has_root,
            "the first span of the absorbed fragment was its root"
        );
        assert_eq!(a.truncate(1), 2);
    }
}
