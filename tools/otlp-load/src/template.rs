//! Requests encoded once, sent many times: each send only copies the bytes
//! and stamps fresh trace ids where the placeholders sit, so the generator
//! spends its CPU on sending, not on building protobuf.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message as _;

use crate::patterns::{Mix, kv};

/// Marks a placeholder trace id; the last four bytes number the trace
/// within its request.
const MAGIC: [u8; 12] = [
    0xf0, 0x0d, 0xfa, 0xce, 0x5e, 0x17, 0x7e, 0x1a, 0x0a, 0xd0, 0x6e, 0x17,
];

/// One encoded request and where its trace ids sit.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
    /// (offset of a trace id, trace number within the request).
    ids: Vec<(usize, u32)>,
    pub spans: usize,
}

impl Template {
    /// A copy with every trace id made unique to (`worker`, `seq`), and
    /// never all zero (an invalid id), whatever the numbers.
    pub fn stamp(&self, worker: u32, seq: u64) -> Vec<u8> {
        let mut out = self.bytes.clone();
        for &(at, trace) in &self.ids {
            let id = &mut out[at..at + 16];
            id[..4].copy_from_slice(&(worker | 0x8000_0000).to_be_bytes());
            id[4..12].copy_from_slice(&seq.to_be_bytes());
            id[12..].copy_from_slice(&trace.to_be_bytes());
        }
        out
    }
}

/// What a request holds.
#[derive(Debug, Clone)]
pub struct Shape {
    pub traces_per_request: usize,
    pub spans_per_trace: usize,
    pub mix: Mix,
}

/// `count` templates; together they follow the mix's weights.
pub fn build(shape: &Shape, count: usize, t0: u64) -> Vec<Template> {
    let mut next_trace = 0usize;
    (0..count)
        .map(|r| {
            let mut resource_spans = Vec::new();
            for t in 0..shape.traces_per_request {
                let mut id = [0u8; 16];
                id[..12].copy_from_slice(&MAGIC);
                id[12..].copy_from_slice(&(t as u32).to_be_bytes());
                let pattern = shape.mix.pick(next_trace);
                next_trace += 1;
                let spans = pattern.spans(id, shape.spans_per_trace, t0 + t as u64 * 1_000_000);
                resource_spans.push(ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![kv("service.name", &format!("shop-{}", (r + t) % 5))],
                        ..Resource::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        spans,
                        ..ScopeSpans::default()
                    }],
                    ..ResourceSpans::default()
                });
            }
            let request = ExportTraceServiceRequest { resource_spans };
            let spans = request
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum();
            let bytes = request.encode_to_vec();
            let ids = placeholders(&bytes);
            Template { bytes, ids, spans }
        })
        .collect()
}

fn placeholders(bytes: &[u8]) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= bytes.len() {
        if bytes[at..at + 12] == MAGIC {
            let n = u32::from_be_bytes([
                bytes[at + 12],
                bytes[at + 13],
                bytes[at + 14],
                bytes[at + 15],
            ]);
            out.push((at, n));
            at += 16;
        } else {
            at += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::patterns::Mix;

    #[test]
    fn stamping_gives_every_trace_a_fresh_id_and_keeps_the_message_valid() {
        let shape = Shape {
            traces_per_request: 50,
            spans_per_trace: 9,
            mix: Mix::parse("n1,redundant,slow,chatty,fanout,clean=5").unwrap(),
        };
        let templates = build(&shape, 2, 1_700_000_000_000_000_000);
        let t = &templates[0];
        assert_eq!(t.ids.len(), t.spans, "one placeholder per span");
        let a = ExportTraceServiceRequest::decode(&t.stamp(1, 7)[..]).unwrap();
        let b = ExportTraceServiceRequest::decode(&t.stamp(1, 8)[..]).unwrap();
        let ids = |r: &ExportTraceServiceRequest| -> HashSet<Vec<u8>> {
            r.resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
                .map(|s| s.trace_id.clone())
                .collect()
        };
        assert_eq!(ids(&a).len(), 50, "one id per trace");
        assert!(ids(&a).is_disjoint(&ids(&b)), "each send is new traces");
        assert!(ids(&a).iter().all(|id| id[..12] != MAGIC));
    }
}
