//! `GET /api/explain/{trace_id}`: one trace as a span tree, rendered from
//! the shard that owns it (still in its window, or among the traces it
//! analyzed last), and the bounded ring of analyzed traces kept for it.
//!
//! The tree is a flat list in depth-first order with each span's `depth`,
//! not nested objects: a hostile trace can be a chain thousands of spans
//! deep, and nothing here (or in a browser rendering it) should recurse
//! that far.

use std::collections::HashMap;
use std::sync::Arc;

use detector_api::{SpanId, SpanKind, TraceId};
use hashlink::LinkedHashMap;
use serde::Serialize;

use crate::model::{SpanRecord, TraceFragment};

/// Where the trace was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceSource {
    /// Still in the window, waiting to complete.
    Window,
    /// Among the traces analyzed last.
    Retained,
}

/// One trace, ready to serialize.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedTrace {
    pub trace_id: String,
    pub source: TraceSource,
    /// Start of the earliest span, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    pub duration_ms: f64,
    pub span_count: usize,
    /// Services in order of first appearance.
    pub services: Vec<String>,
    /// Depth-first, children by start time.
    pub spans: Vec<ExplainedSpan>,
}

/// One span of the tree.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedSpan {
    pub span_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// 0 for a root (or a span whose parent never arrived).
    pub depth: usize,
    pub service: String,
    pub name: String,
    pub span_kind: &'static str,
    /// `sql`, `http`, `messaging`, `rpc` or `other`.
    pub io: &'static str,
    /// From the trace's start.
    pub offset_ms: f64,
    pub duration_ms: f64,
    pub error: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The SQL statement or URL as received.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ExplainedCode>,
    /// Signatures of the findings that cite this span (filled by the API).
    pub findings: Vec<String>,
}

/// `code.*` attributes of a span.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedCode {
    pub function: String,
    pub filepath: String,
    pub lineno: u32,
    pub namespace: String,
}

fn span_kind(k: SpanKind) -> &'static str {
    match k {
        SpanKind::Internal => "internal",
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Renders `fragment` as a tree.
pub fn explain(fragment: &TraceFragment, source: TraceSource) -> ExplainedTrace {
    let spans = &fragment.spans;
    let start_ns = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let end_ns = spans
        .iter()
        .map(|s| s.start_ns.saturating_add(s.duration_ns))
        .max()
        .unwrap_or(0);
    let by_id: HashMap<SpanId, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match by_id.get(&s.parent_id) {
            // A span naming itself as parent would otherwise vanish.
            Some(&p) if !s.parent_id.is_zero() && p != i => children[p].push(i),
            _ => roots.push(i),
        }
    }
    let by_start = |v: &mut Vec<usize>| {
        v.sort_by_key(|&i| (spans[i].start_ns, spans[i].span_id));
    };
    by_start(&mut roots);
    for c in &mut children {
        by_start(c);
    }
    let mut order = Vec::with_capacity(spans.len());
    let mut visited = vec![false; spans.len()];
    // Reversed so the earliest root is popped first.
    let mut stack: Vec<(usize, usize)> = roots.iter().rev().map(|&i| (i, 0)).collect();
    loop {
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut visited[i], true) {
                continue;
            }
            order.push((i, depth));
            stack.extend(children[i].iter().rev().map(|&c| (c, depth + 1)));
        }
        // Spans only reachable through a parent cycle: show them as roots.
        match visited.iter().position(|v| !v) {
            Some(i) => stack.push((i, 0)),
            None => break,
        }
    }
    let mut services: Vec<String> = Vec::new();
    let rendered = order
        .into_iter()
        .map(|(i, depth)| {
            let s = &spans[i];
            let service = fragment.arena.get(s.service);
            if !services.iter().any(|known| known == service) {
                services.push(service.to_owned());
            }
            render(fragment, s, depth, start_ns)
        })
        .collect();
    ExplainedTrace {
        trace_id: fragment.trace_id.to_string(),
        source,
        start_ns,
        duration_ms: ms(end_ns.saturating_sub(start_ns)),
        span_count: spans.len(),
        services,
        spans: rendered,
    }
}

fn render(fragment: &TraceFragment, s: &SpanRecord, depth: usize, start_ns: u64) -> ExplainedSpan {
    let text = |r| fragment.arena.get(r).to_owned();
    let code = (!s.code_function.is_empty()
        || !s.code_filepath.is_empty()
        || !s.code_namespace.is_empty())
    .then(|| ExplainedCode {
        function: text(s.code_function),
        filepath: text(s.code_filepath),
        lineno: s.code_lineno,
        namespace: text(s.code_namespace),
    });
    ExplainedSpan {
        span_id: s.span_id.to_string(),
        parent_span_id: (!s.parent_id.is_zero()).then(|| s.parent_id.to_string()),
        depth,
        service: text(s.service),
        name: text(s.name),
        span_kind: span_kind(s.span_kind.0),
        io: s.kind.0.as_str(),
        offset_ms: ms(s.start_ns.saturating_sub(start_ns)),
        duration_ms: ms(s.duration_ns),
        error: s.is_error,
        http_status: (s.http_status != 0).then_some(s.http_status),
        target: text(s.target),
        code,
        findings: Vec::new(),
    }
}

/// The traces a shard analyzed last, newest kept, at most `capacity`.
pub struct RetainedTraces {
    capacity: usize,
    traces: LinkedHashMap<TraceId, Arc<TraceFragment>>,
}

impl RetainedTraces {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            traces: LinkedHashMap::new(),
        }
    }

    /// Keeps `fragment`, forgetting the oldest beyond the capacity. A trace
    /// analyzed again (late spans) replaces its earlier part.
    pub fn keep(&mut self, fragment: Arc<TraceFragment>) {
        if self.capacity == 0 {
            return;
        }
        self.traces.replace(fragment.trace_id, fragment);
        while self.traces.len() > self.capacity {
            self.traces.pop_front();
        }
    }

    pub fn get(&self, trace_id: &TraceId) -> Option<&Arc<TraceFragment>> {
        self.traces.get(trace_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use detector_api::IoKind;

    fn span(f: &mut TraceFragment, id: u8, parent: u8, start: u64, name: &str) {
        let name = f.arena.push(name);
        let service = f.arena.push(if id.is_multiple_of(2) {
            "api"
        } else {
            "db-proxy"
        });
        f.spans.push(SpanRecord {
            span_id: SpanId([id; 8]),
            parent_id: SpanId([parent; 8]),
            name,
            service,
            kind: Kind(if parent == 0 {
                IoKind::Http
            } else {
                IoKind::Sql
            }),
            start_ns: start,
            duration_ns: 1_000_000,
            ..SpanRecord::default()
        });
    }

    #[test]
    fn renders_depth_first_with_children_by_start_time() {
        let mut f = TraceFragment::new(TraceId([9; 16]));
        span(&mut f, 3, 1, 300, "late child");
        span(&mut f, 1, 0, 100, "root");
        span(&mut f, 2, 1, 200, "early child");
        span(&mut f, 4, 2, 250, "grandchild");
        span(&mut f, 5, 77, 50, "orphan");
        let t = explain(&f, TraceSource::Retained);
        let names: Vec<(&str, usize)> =
            t.spans.iter().map(|s| (s.name.as_str(), s.depth)).collect();
        assert_eq!(
            names,
            [
                ("orphan", 0),
                ("root", 0),
                ("early child", 1),
                ("grandchild", 2),
                ("late child", 1)
            ]
        );
        assert_eq!(t.span_count, 5);
        assert_eq!(t.start_ns, 50);
        assert_eq!(t.services, ["db-proxy", "api"]);
        assert_eq!(t.spans[1].parent_span_id, None);
        assert_eq!(
            t.spans[2].parent_span_id.as_deref(),
            Some("0101010101010101")
        );
    }

    #[test]
    fn a_parent_cycle_and_a_deep_chain_neither_loop_nor_recurse() {
        let mut f = TraceFragment::new(TraceId([8; 16]));
        span(&mut f, 1, 2, 10, "a");
        span(&mut f, 2, 1, 20, "b");
        let t = explain(&f, TraceSource::Window);
        assert_eq!(t.spans.len(), 2, "each span once");

        let mut chain = TraceFragment::new(TraceId([7; 16]));
        for i in 0..100_000u32 {
            let name = chain.arena.push("step");
            let mut id = [0u8; 8];
            id[..4].copy_from_slice(&(i + 1).to_be_bytes());
            let mut parent = [0u8; 8];
            parent[..4].copy_from_slice(&i.to_be_bytes());
            chain.spans.push(SpanRecord {
                span_id: SpanId(id),
                parent_id: SpanId(parent),
                name,
                start_ns: u64::from(i),
                ..SpanRecord::default()
            });
        }
        let t = explain(&chain, TraceSource::Window);
        assert_eq!(t.spans.last().map(|s| s.depth), Some(99_999));
        assert!(serde_json::to_string(&t).is_ok());
    }

    #[test]
    fn retention_keeps_the_newest_up_to_its_capacity() {
        let mut r = RetainedTraces::new(2);
        for n in 1..=3u8 {
            r.keep(Arc::new(TraceFragment::new(TraceId([n; 16]))));
        }
        assert!(r.get(&TraceId([1; 16])).is_none());
        assert!(r.get(&TraceId([2; 16])).is_some());
        assert!(r.get(&TraceId([3; 16])).is_some());
        let mut none = RetainedTraces::new(0);
        none.keep(Arc::new(TraceFragment::new(TraceId([1; 16]))));
        assert!(none.get(&TraceId([1; 16])).is_none());
    }
}
