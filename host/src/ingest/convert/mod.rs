//! Turns OTLP traces into [`TraceFragment`]s, one per trace, grouped by
//! analysis shard. Semantic-convention attributes, old and new names alike,
//! are mapped to the dedicated span fields here, once.
//!
//! Two readers feed one conversion: [`convert_wire`] walks protobuf bytes
//! zero-copy (the hot path of both receivers), [`convert`] reads a decoded
//! prost request (OTLP JSON, Zipkin). Both hand [`span::push_span`] the same
//! borrowed [`SpanIn`] and attribute slices, so they cannot disagree; the
//! tests check the walker against prost on the same bytes.

mod from_proto;
mod from_wire;
mod span;

use std::collections::HashMap;

use detector_api::{SpanId, TraceId};
use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

use crate::model::TraceFragment;

use super::sampling::Sampler;

pub use from_proto::convert;
pub use from_wire::convert_wire;

/// Per-string bounds: what a span may make the daemon hold.
#[derive(Debug, Clone, Copy)]
pub struct ConvertLimits {
    /// SQL statements and URLs (the normalizer reads at most 64 KiB).
    pub max_target_bytes: usize,
    /// Any other string.
    pub max_string_bytes: usize,
    /// Attributes kept per span beyond the mapped ones.
    pub max_attributes: usize,
    /// Which traces are analyzed at all (`[daemon] sampling_rate`).
    pub sampler: Sampler,
}

impl Default for ConvertLimits {
    fn default() -> Self {
        Self {
            max_target_bytes: 64 * 1024,
            max_string_bytes: 4 * 1024,
            max_attributes: 128,
            sampler: Sampler::default(),
        }
    }
}

/// The result of converting one request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Converted {
    /// Fragments per shard.
    pub shards: Vec<Vec<TraceFragment>>,
    /// Spans accepted.
    pub accepted: usize,
    /// Spans refused, all for invalid ids.
    pub rejected_invalid_id: usize,
    /// Strings cut to their cap.
    pub truncated_strings: usize,
    /// Attributes beyond `max_attributes` per span, not kept.
    pub dropped_attributes: usize,
    /// Valid spans of traces the sampler leaves out: accepted, not analyzed.
    pub sampled_out: usize,
}

/// Which shard owns a trace: a hash, so hostile ids cannot pick a shard.
pub fn shard_of(trace_id: &TraceId, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    (xxhash_rust::xxh3::xxh3_64(&trace_id.0) % shards as u64) as usize
}

/// An attribute value borrowed from the request, whichever reader made it.
/// Arrays and key-value lists stay unparsed until rendered as text.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    /// No value, or a value of no known kind.
    Empty,
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    ProtoArray(&'a ArrayValue),
    ProtoKvlist(&'a KeyValueList),
    /// The body of an `ArrayValue` message (already validated).
    WireArray(&'a [u8]),
    /// The body of a `KeyValueList` message (already validated).
    WireKvlist(&'a [u8]),
}

impl<'a> Val<'a> {
    fn as_str(self) -> Option<&'a str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_i64(self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(i),
            Val::Str(s) => s.trim().parse().ok(),
            Val::Double(d) if d.is_finite() => Some(d as i64),
            _ => None,
        }
    }
}

/// One attribute: key and value.
pub(crate) type Attr<'a> = (&'a str, Val<'a>);

/// The span fields conversion reads, borrowed from the request.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SpanIn<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub parent_id: &'a [u8],
    pub name: &'a str,
    /// The OTLP `SpanKind` number.
    pub kind: i32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub is_error: bool,
}

impl SpanIn<'_> {
    fn ids(&self) -> Option<(TraceId, SpanId, SpanId)> {
        let trace_id = TraceId::from_slice(self.trace_id).filter(|t| !t.is_zero())?;
        let span_id = SpanId::from_slice(self.span_id).filter(|s| !s.is_zero())?;
        let parent_id = match self.parent_id.len() {
            0 => SpanId::default(),
            _ => SpanId::from_slice(self.parent_id)?,
        };
        Some((trace_id, span_id, parent_id))
    }
}

/// What a span inherits from its resource and scope.
#[derive(Clone, Copy)]
pub(crate) struct Origin<'a, 'r> {
    pub service: &'a str,
    pub scope: &'a str,
    pub resource_attrs: &'r [Attr<'a>],
}

/// The service a resource names, `unknown_service` when it names none.
pub(crate) fn service_name<'a>(resource_attrs: &[Attr<'a>]) -> &'a str {
    resource_attrs
        .iter()
        .find(|(k, _)| *k == "service.name")
        .and_then(|(_, v)| v.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown_service")
}

/// Groups spans into one fragment per trace, each on its trace's shard.
pub(crate) struct Builder<'l> {
    out: Converted,
    limits: &'l ConvertLimits,
    /// (shard, index in shard) of each trace's fragment in this request.
    where_is: HashMap<TraceId, (usize, usize)>,
    /// The last trace seen: spans of a trace usually come together.
    last: Option<(TraceId, usize, usize)>,
}

impl<'l> Builder<'l> {
    pub fn new(shards: usize, limits: &'l ConvertLimits) -> Self {
        let shards = shards.max(1);
        Self {
            out: Converted {
                shards: (0..shards).map(|_| Vec::new()).collect(),
                ..Converted::default()
            },
            limits,
            where_is: HashMap::new(),
            last: None,
        }
    }

    /// Converts one span with its attributes into its trace's fragment.
    pub fn add(&mut self, span: &SpanIn<'_>, attrs: &[Attr<'_>], origin: Origin<'_, '_>) {
        let Some((trace_id, span_id, parent_id)) = span.ids() else {
            self.out.rejected_invalid_id += 1;
            return;
        };
        let shards = self.out.shards.len();
        let (shard, idx) = match self.last {
            Some((t, s, i)) if t == trace_id => (s, i),
            _ if !self.limits.sampler.keeps(&trace_id) => {
                self.out.sampled_out += 1;
                return;
            }
            _ => *self.where_is.entry(trace_id).or_insert_with(|| {
                let s = shard_of(&trace_id, shards);
                self.out.shards[s].push(TraceFragment::new(trace_id));
                (s, self.out.shards[s].len() - 1)
            }),
        };
        self.last = Some((trace_id, shard, idx));
        let frag = &mut self.out.shards[shard][idx];
        let (cut, dropped) =
            span::push_span(frag, span, (span_id, parent_id), attrs, origin, self.limits);
        self.out.truncated_strings += cut;
        self.out.dropped_attributes += dropped;
        self.out.accepted += 1;
    }

    pub fn finish(self) -> Converted {
        self.out
    }
}

#[cfg(test)]
mod tests;
