//! Turns a decoded OTLP `ExportTraceServiceRequest` into [`TraceFragment`]s,
//! one per trace, grouped by analysis shard. Semantic-convention attributes,
//! old and new names alike, are mapped to the dedicated span fields here, once.

use std::collections::HashMap;
use std::fmt::Write as _;

use detector_api::{IoKind, SpanId, SpanKind, TraceId};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::{Span, span, status};

use crate::model::{Arena, AttrRef, SpanRecord, StrRef, TraceFragment};
use crate::model::{Kind, Role};

use super::sampling::Sampler;

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

/// Why a span was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanRejection {
    /// Trace id not 16 bytes or all zero, span id not 8 bytes or zero, or a
    /// parent id that is neither empty nor 8 bytes.
    InvalidId,
}

/// The result of converting one request.
#[derive(Debug, Default)]
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

/// Converts `request`, splitting traces over `shards` shards.
pub fn convert(
    request: &ExportTraceServiceRequest,
    shards: usize,
    limits: &ConvertLimits,
) -> Converted {
    let shards = shards.max(1);
    let mut out = Converted {
        shards: (0..shards).map(|_| Vec::new()).collect(),
        ..Converted::default()
    };
    // (shard, index in shard) of each trace's fragment in this request.
    let mut where_is: HashMap<TraceId, (usize, usize)> = HashMap::new();
    let mut last: Option<(TraceId, usize, usize)> = None;

    for rs in &request.resource_spans {
        let resource_attrs = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let service = resource_attrs
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| as_str(kv.value.as_ref()))
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown_service");
        for ss in &rs.scope_spans {
            let scope = ss.scope.as_ref().map_or("", |s| s.name.as_str());
            for span in &ss.spans {
                let Some((trace_id, span_id, parent_id)) = ids(span) else {
                    out.rejected_invalid_id += 1;
                    continue;
                };
                let (shard, idx) = match last {
                    Some((t, s, i)) if t == trace_id => (s, i),
                    _ if !limits.sampler.keeps(&trace_id) => {
                        out.sampled_out += 1;
                        continue;
                    }
                    _ => *where_is.entry(trace_id).or_insert_with(|| {
                        let s = shard_of(&trace_id, shards);
                        out.shards[s].push(TraceFragment::new(trace_id));
                        (s, out.shards[s].len() - 1)
                    }),
                };
                last = Some((trace_id, shard, idx));
                let frag = &mut out.shards[shard][idx];
                let names = Names { service, scope };
                let (cut, dropped) = push_span(
                    frag,
                    span,
                    span_id,
                    parent_id,
                    names,
                    resource_attrs,
                    limits,
                );
                out.truncated_strings += cut;
                out.dropped_attributes += dropped;
                out.accepted += 1;
            }
        }
    }
    out
}

fn ids(span: &Span) -> Option<(TraceId, SpanId, SpanId)> {
    let trace_id = TraceId::from_slice(&span.trace_id).filter(|t| !t.is_zero())?;
    let span_id = SpanId::from_slice(&span.span_id).filter(|s| !s.is_zero())?;
    let parent_id = match span.parent_span_id.len() {
        0 => SpanId::default(),
        _ => SpanId::from_slice(&span.parent_span_id)?,
    };
    Some((trace_id, span_id, parent_id))
}

fn as_str(v: Option<&AnyValue>) -> Option<&str> {
    match v?.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn as_i64(v: Option<&AnyValue>) -> Option<i64> {
    match v?.value.as_ref()? {
        Value::IntValue(i) => Some(*i),
        Value::StringValue(s) => s.trim().parse().ok(),
        Value::DoubleValue(d) if d.is_finite() => Some(*d as i64),
        _ => None,
    }
}

/// The semantic-convention attributes perf-sentinel maps, first name wins
/// where the old and new conventions differ.
#[derive(Default)]
struct Known<'r> {
    statement: Option<&'r AnyValue>,
    db_system: Option<&'r AnyValue>,
    method: Option<&'r AnyValue>,
    url_full: Option<&'r AnyValue>,
    url_path: Option<&'r AnyValue>,
    server_address: Option<&'r AnyValue>,
    route: Option<&'r AnyValue>,
    status: Option<&'r AnyValue>,
    response_size: Option<&'r AnyValue>,
    peer_service: Option<&'r AnyValue>,
    messaging_system: Option<&'r AnyValue>,
    destination: Option<&'r AnyValue>,
    rpc_system: Option<&'r AnyValue>,
    rpc_service: Option<&'r AnyValue>,
    rpc_method: Option<&'r AnyValue>,
    code_function: Option<&'r AnyValue>,
    code_filepath: Option<&'r AnyValue>,
    code_lineno: Option<&'r AnyValue>,
    code_namespace: Option<&'r AnyValue>,
}

impl<'r> Known<'r> {
    /// Records `kv` when it is a mapped key; false when it is not.
    fn take(&mut self, kv: &'r KeyValue) -> bool {
        let v = kv.value.as_ref();
        let slot = match kv.key.as_str() {
            "db.query.text" | "db.statement" => &mut self.statement,
            "db.system.name" | "db.system" => &mut self.db_system,
            "http.request.method" | "http.method" => &mut self.method,
            "url.full" | "http.url" => &mut self.url_full,
            "url.path" | "http.target" => &mut self.url_path,
            "server.address" | "net.peer.name" | "http.host" | "net.host.name" => {
                &mut self.server_address
            }
            "http.route" => &mut self.route,
            "http.response.status_code" | "http.status_code" => &mut self.status,
            "http.response.body.size" | "http.response_content_length" => &mut self.response_size,
            "peer.service" => &mut self.peer_service,
            "messaging.system" => &mut self.messaging_system,
            "messaging.destination.name" | "messaging.destination" => &mut self.destination,
            "rpc.system" => &mut self.rpc_system,
            "rpc.service" => &mut self.rpc_service,
            "rpc.method" => &mut self.rpc_method,
            "code.function.name" | "code.function" => &mut self.code_function,
            "code.file.path" | "code.filepath" => &mut self.code_filepath,
            "code.line.number" | "code.lineno" => &mut self.code_lineno,
            "code.namespace" => &mut self.code_namespace,
            _ => return false,
        };
        if slot.is_none() {
            *slot = v;
        }
        true
    }
}

/// Names a span inherits from its resource and scope.
struct Names<'r> {
    service: &'r str,
    scope: &'r str,
}

/// Copies one span into `frag`; returns how many strings were cut and how
/// many attributes were left out.
fn push_span(
    frag: &mut TraceFragment,
    span: &Span,
    span_id: SpanId,
    parent_id: SpanId,
    names: Names<'_>,
    resource_attrs: &[KeyValue],
    limits: &ConvertLimits,
) -> (usize, usize) {
    let cut = std::cell::Cell::new(0usize);
    let mut dropped = 0usize;
    let mut known = Known::default();
    let attrs_start = frag.attrs.len() as u32;
    let arena = &mut frag.arena;
    let text = |arena: &mut Arena, v: Option<&AnyValue>, cap: usize| -> StrRef {
        match as_str(v) {
            Some(s) => {
                let (r, was_cut) = arena.push_capped(s, cap);
                cut.set(cut.get() + usize::from(was_cut));
                r
            }
            None => StrRef::EMPTY,
        }
    };

    let mut kept = 0usize;
    for kv in &span.attributes {
        if known.take(kv) {
            continue;
        }
        if kept >= limits.max_attributes {
            dropped += 1;
            continue;
        }
        kept += 1;
        let (key, c1) = arena.push_capped(&kv.key, limits.max_string_bytes);
        let (value, c2) = render_value(arena, kv.value.as_ref(), limits.max_string_bytes);
        cut.set(cut.get() + usize::from(c1) + usize::from(c2));
        frag.attrs.push(AttrRef { key, value });
    }
    // Resource attributes rarely carry these, but `code.namespace` or
    // `peer.service` sometimes do; span attributes win.
    for kv in resource_attrs {
        if kv.key != "service.name" {
            let _ = known.take(kv);
        }
    }

    let s = limits.max_string_bytes;
    let t = limits.max_target_bytes;
    let mut rec = SpanRecord {
        span_id,
        parent_id,
        start_ns: span.start_time_unix_nano,
        duration_ns: span
            .end_time_unix_nano
            .saturating_sub(span.start_time_unix_nano),
        attrs_start,
        attrs_len: frag.attrs.len() as u32 - attrs_start,
        ..SpanRecord::default()
    };
    for (slot, text) in [
        (&mut rec.service, names.service),
        (&mut rec.scope, names.scope),
        (&mut rec.name, span.name.as_str()),
    ] {
        let (r, was_cut) = arena.push_capped(text, s);
        *slot = r;
        cut.set(cut.get() + usize::from(was_cut));
    }
    rec.span_kind = Role(match span::SpanKind::try_from(span.kind) {
        Ok(span::SpanKind::Server) => SpanKind::Server,
        Ok(span::SpanKind::Client) => SpanKind::Client,
        Ok(span::SpanKind::Producer) => SpanKind::Producer,
        Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
        _ => SpanKind::Internal,
    });
    rec.is_error = span
        .status
        .as_ref()
        .is_some_and(|st| st.code == status::StatusCode::Error as i32);
    rec.db_system = text(arena, known.db_system, s);
    rec.http_method = text(arena, known.method, 16);
    rec.http_route = text(arena, known.route, s);
    rec.http_status = as_i64(known.status)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(0);
    rec.response_bytes = as_i64(known.response_size).and_then(|n| u64::try_from(n).ok());
    rec.messaging_system = text(arena, known.messaging_system, s);
    rec.messaging_destination = text(arena, known.destination, s);
    rec.peer_service = match known.peer_service {
        Some(v) => text(arena, Some(v), s),
        None if rec.span_kind.0 != SpanKind::Server => text(arena, known.server_address, s),
        None => StrRef::EMPTY,
    };
    rec.code_function = text(arena, known.code_function, s);
    rec.code_filepath = text(arena, known.code_filepath, s);
    rec.code_namespace = text(arena, known.code_namespace, s);
    rec.code_lineno = as_i64(known.code_lineno)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0);

    let kind = if known.statement.is_some() || known.db_system.is_some() {
        rec.target = text(arena, known.statement, t);
        IoKind::Sql
    } else if known.messaging_system.is_some() {
        rec.target = rec.messaging_destination;
        IoKind::Messaging
    } else if known.rpc_system.is_some() {
        let mark = arena.mark();
        arena.append(as_str(known.rpc_service).unwrap_or(""));
        arena.append("/");
        arena.append(as_str(known.rpc_method).unwrap_or(""));
        rec.target = arena.finish(mark, t);
        IoKind::Rpc
    } else if known.method.is_some() {
        rec.target = match known.url_full {
            Some(v) => text(arena, Some(v), t),
            None => {
                // No full URL: rebuild `host/path` so the template keeps the host.
                let mark = arena.mark();
                if rec.span_kind.0 != SpanKind::Server {
                    arena.append(as_str(known.server_address).unwrap_or(""));
                }
                arena.append(as_str(known.url_path).unwrap_or(""));
                arena.finish(mark, t)
            }
        };
        IoKind::Http
    } else {
        IoKind::Other
    };
    rec.kind = Kind(kind);
    if rec.parent_id.is_zero() {
        frag.has_root = true;
    }
    frag.spans.push(rec);
    (cut.get(), dropped)
}

/// Renders any attribute value as text into the arena, cut to `cap` bytes;
/// says whether it was cut.
fn render_value(arena: &mut Arena, v: Option<&AnyValue>, cap: usize) -> (StrRef, bool) {
    let mark = arena.mark();
    let mut cut = false;
    if let Some(v) = v.and_then(|v| v.value.as_ref()) {
        cut = write_value(arena.buf_mut(), v, cap, 0);
    }
    cut |= arena.len() - mark > cap;
    (arena.finish(mark, cap), cut)
}

/// Writes `v`, stopping early once `cap` bytes are out; true when a string
/// had to be cut.
fn write_value(out: &mut String, v: &Value, cap: usize, depth: usize) -> bool {
    let start = out.len();
    let full = |out: &String| out.len() - start >= cap;
    let mut cut = false;
    match v {
        Value::StringValue(s) => {
            let end = crate::model::floor_char_boundary(s, cap);
            cut = end < s.len();
            out.push_str(&s[..end]);
        }
        Value::BoolValue(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::IntValue(i) => {
            let _ = write!(out, "{i}");
        }
        Value::DoubleValue(d) => {
            let _ = write!(out, "{d}");
        }
        Value::BytesValue(b) => {
            for byte in b.iter().take(cap / 2) {
                let _ = write!(out, "{byte:02x}");
            }
        }
        Value::ArrayValue(a) if depth < 4 => {
            out.push('[');
            for (i, item) in a.values.iter().enumerate() {
                if full(out) {
                    cut = true;
                    break;
                }
                if i > 0 {
                    out.push(',');
                }
                if let Some(inner) = &item.value {
                    cut |= write_value(out, inner, cap, depth + 1);
                }
            }
            out.push(']');
        }
        Value::KvlistValue(l) if depth < 4 => {
            out.push('{');
            for (i, kv) in l.values.iter().enumerate() {
                if full(out) {
                    cut = true;
                    break;
                }
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&kv.key[..crate::model::floor_char_boundary(&kv.key, cap)]);
                out.push('=');
                if let Some(inner) = kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    cut |= write_value(out, inner, cap, depth + 1);
                }
            }
            out.push('}');
        }
        Value::ArrayValue(_) | Value::KvlistValue(_) => out.push_str("..."),
        // Profiles-only string-table reference: no table in traces.
        Value::StringValueStrindex(_) => {}
    }
    cut
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    use super::*;

    fn kv(key: &str, v: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..KeyValue::default()
        }
    }

    fn s(key: &str, v: &str) -> KeyValue {
        kv(key, Value::StringValue(v.into()))
    }

    fn span(
        trace: u8,
        id: u8,
        parent: Option<u8>,
        kind: span::SpanKind,
        attrs: Vec<KeyValue>,
    ) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: format!("span-{id}"),
            kind: kind as i32,
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 3_500,
            attributes: attrs,
            ..Span::default()
        }
    }

    fn req(service: Option<&str>, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: service
                        .map(|n| vec![s("service.name", n)])
                        .unwrap_or_default(),
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    fn one(request: &ExportTraceServiceRequest) -> TraceFragment {
        let mut c = convert(request, 1, &ConvertLimits::default());
        assert_eq!(c.shards[0].len(), 1);
        c.shards[0].remove(0)
    }

    #[test]
    fn old_and_new_conventions_map_to_the_same_fields() {
        let new = vec![
            s("db.system.name", "postgresql"),
            s("db.query.text", "SELECT 1"),
            s("code.function.name", "load"),
            s("code.file.path", "a.rs"),
            kv("code.line.number", Value::IntValue(7)),
        ];
        let old = vec![
            s("db.system", "postgresql"),
            s("db.statement", "SELECT 1"),
            s("code.function", "load"),
            s("code.filepath", "a.rs"),
            s("code.lineno", "7"),
        ];
        for attrs in [new, old] {
            let f = one(&req(
                Some("api"),
                vec![span(1, 2, Some(1), span::SpanKind::Client, attrs)],
            ));
            let r = &f.spans[0];
            let a = &f.arena;
            assert_eq!(r.kind.0, IoKind::Sql);
            assert_eq!(a.get(r.target), "SELECT 1");
            assert_eq!(a.get(r.db_system), "postgresql");
            assert_eq!(a.get(r.code_function), "load");
            assert_eq!(a.get(r.code_filepath), "a.rs");
            assert_eq!(r.code_lineno, 7);
            assert_eq!(a.get(r.service), "api");
            assert_eq!(r.duration_ns, 2_500);
            assert_eq!(r.span_kind.0, SpanKind::Client);
            assert_eq!(r.attrs_len, 0, "mapped attributes are not repeated");
        }
    }

    #[test]
    fn http_client_without_full_url_rebuilds_host_and_path() {
        let old = vec![
            s("http.method", "GET"),
            s("net.peer.name", "users.internal"),
            s("http.target", "/users/7"),
            kv("http.status_code", Value::IntValue(503)),
        ];
        let f = one(&req(
            Some("api"),
            vec![span(1, 2, Some(1), span::SpanKind::Client, old)],
        ));
        let (r, a) = (&f.spans[0], &f.arena);
        assert_eq!(r.kind.0, IoKind::Http);
        assert_eq!(a.get(r.target), "users.internal/users/7");
        assert_eq!(a.get(r.http_method), "GET");
        assert_eq!(a.get(r.peer_service), "users.internal");
        assert_eq!(r.http_status, 503);

        let new = vec![
            s("http.request.method", "POST"),
            s("url.full", "https://pay.example/charge?id=1"),
            kv("http.response.status_code", Value::IntValue(201)),
            kv("http.response.body.size", Value::IntValue(512)),
        ];
        let f = one(&req(
            Some("api"),
            vec![span(1, 2, Some(1), span::SpanKind::Client, new)],
        ));
        let (r, a) = (&f.spans[0], &f.arena);
        assert_eq!(a.get(r.target), "https://pay.example/charge?id=1");
        assert_eq!((r.http_status, r.response_bytes), (201, Some(512)));
    }

    #[test]
    fn messaging_rpc_and_unmapped_attributes() {
        let msg = vec![
            s("messaging.system", "kafka"),
            s("messaging.destination.name", "orders"),
        ];
        let rpc = vec![
            s("rpc.system", "grpc"),
            s("rpc.service", "inventory.Stock"),
            s("rpc.method", "Get"),
            s("team", "checkout"),
            kv("flags", Value::BoolValue(true)),
        ];
        let c = convert(
            &req(
                None,
                vec![
                    span(1, 2, Some(1), span::SpanKind::Producer, msg),
                    span(1, 3, Some(1), span::SpanKind::Client, rpc),
                ],
            ),
            1,
            &ConvertLimits::default(),
        );
        let f = &c.shards[0][0];
        let a = &f.arena;
        assert_eq!(f.spans[0].kind.0, IoKind::Messaging);
        assert_eq!(a.get(f.spans[0].target), "orders");
        assert_eq!(a.get(f.spans[0].service), "unknown_service");
        assert_eq!(f.spans[1].kind.0, IoKind::Rpc);
        assert_eq!(a.get(f.spans[1].target), "inventory.Stock/Get");
        let kept: Vec<(&str, &str)> = f
            .attrs
            .iter()
            .map(|x| (a.get(x.key), a.get(x.value)))
            .collect();
        assert_eq!(kept, [("team", "checkout"), ("flags", "true")]);
    }

    #[test]
    fn invalid_ids_are_refused_and_traces_grouped() {
        let mut bad_trace = span(1, 2, None, span::SpanKind::Server, vec![]);
        bad_trace.trace_id = vec![1, 2, 3];
        let zero_span = span(1, 0, None, span::SpanKind::Server, vec![]);
        let mut bad_parent = span(1, 4, None, span::SpanKind::Server, vec![]);
        bad_parent.parent_span_id = vec![9; 3];
        let zero_trace = span(0, 5, None, span::SpanKind::Server, vec![]);
        let good = vec![
            span(1, 6, None, span::SpanKind::Server, vec![]),
            span(2, 7, Some(6), span::SpanKind::Client, vec![]),
            span(1, 8, Some(6), span::SpanKind::Client, vec![]),
        ];
        let mut spans = vec![bad_trace, zero_span, bad_parent, zero_trace];
        spans.extend(good);
        let c = convert(&req(Some("x"), spans), 4, &ConvertLimits::default());
        assert_eq!((c.accepted, c.rejected_invalid_id), (3, 4));
        let frags: Vec<&TraceFragment> = c.shards.iter().flatten().collect();
        assert_eq!(frags.len(), 2, "two traces");
        let t1 = frags
            .iter()
            .find(|f| f.trace_id == TraceId([1; 16]))
            .unwrap();
        assert_eq!(t1.spans.len(), 2);
        assert!(t1.has_root);
        let t2 = frags
            .iter()
            .find(|f| f.trace_id == TraceId([2; 16]))
            .unwrap();
        assert!(!t2.has_root);
        // The same trace always lands on the same shard.
        assert_eq!(
            shard_of(&TraceId([1; 16]), 4),
            shard_of(&TraceId([1; 16]), 4)
        );
    }

    #[test]
    fn attributes_past_the_cap_are_counted() {
        let attrs: Vec<KeyValue> = (0..130).map(|i| s(&format!("k{i}"), "v")).collect();
        let long_name = "n".repeat(5000);
        let mut sp = span(1, 2, None, span::SpanKind::Internal, attrs);
        sp.name = long_name;
        let c = convert(&req(Some("x"), vec![sp]), 1, &ConvertLimits::default());
        assert_eq!(c.dropped_attributes, 2);
        assert_eq!(c.truncated_strings, 1, "the span name was cut");
        assert_eq!(c.shards[0][0].attrs.len(), 128);
    }

    #[test]
    fn long_strings_are_cut_and_counted_and_errors_flagged() {
        let long = "x".repeat(100 * 1024);
        let mut sp = span(
            1,
            2,
            None,
            span::SpanKind::Client,
            vec![s("db.statement", &long), s("note", &long)],
        );
        sp.status = Some(Status {
            code: status::StatusCode::Error as i32,
            ..Status::default()
        });
        let c = convert(&req(Some("x"), vec![sp]), 1, &ConvertLimits::default());
        assert_eq!(c.truncated_strings, 2);
        assert_eq!(c.dropped_attributes, 0);
        let f = &c.shards[0][0];
        assert_eq!(f.spans[0].target.len(), 64 * 1024);
        assert_eq!(f.arena.get(f.attrs[0].value).len(), 4 * 1024);
        assert!(f.spans[0].is_error);
    }
}
