//! One span into its fragment: the semantic-convention mapping, string caps,
//! and attribute values rendered as text.

use std::fmt::Write as _;

use detector_api::{IoKind, SpanId, SpanKind};

use crate::model::{Arena, AttrRef, Kind, Role, SpanRecord, StrRef, TraceFragment};

use super::from_wire;
use super::{Attr, ConvertLimits, Origin, SpanIn, Val};

/// The semantic-convention attributes perf-sentinel maps, first name wins
/// where the old and new conventions differ.
#[derive(Default)]
struct Known<'a> {
    statement: Option<Val<'a>>,
    db_system: Option<Val<'a>>,
    method: Option<Val<'a>>,
    url_full: Option<Val<'a>>,
    url_path: Option<Val<'a>>,
    server_address: Option<Val<'a>>,
    route: Option<Val<'a>>,
    status: Option<Val<'a>>,
    response_size: Option<Val<'a>>,
    peer_service: Option<Val<'a>>,
    messaging_system: Option<Val<'a>>,
    destination: Option<Val<'a>>,
    rpc_system: Option<Val<'a>>,
    rpc_service: Option<Val<'a>>,
    rpc_method: Option<Val<'a>>,
    code_function: Option<Val<'a>>,
    code_filepath: Option<Val<'a>>,
    code_lineno: Option<Val<'a>>,
    code_namespace: Option<Val<'a>>,
}

impl<'a> Known<'a> {
    /// Records a mapped key; false when `key` is not one. A key without a
    /// value counts as absent but is still not repeated as a plain attribute.
    fn take(&mut self, key: &str, v: Val<'a>) -> bool {
        let slot = match key {
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
        if slot.is_none() && !matches!(v, Val::Empty) {
            *slot = Some(v);
        }
        true
    }
}

fn str_of<'a>(v: Option<Val<'a>>) -> Option<&'a str> {
    v.and_then(Val::as_str)
}

fn i64_of(v: Option<Val<'_>>) -> Option<i64> {
    v.and_then(Val::as_i64)
}

/// The OpenTelemetry resource attribute naming the cloud region.
const CLOUD_REGION: &str = "cloud.region";

/// Copies one span into `frag`; returns how many strings were cut and how
/// many attributes were left out.
pub(super) fn push_span(
    frag: &mut TraceFragment,
    span: &SpanIn<'_>,
    (span_id, parent_id): (SpanId, SpanId),
    attrs: &[Attr<'_>],
    origin: Origin<'_, '_>,
    limits: &ConvertLimits,
) -> (usize, usize) {
    let mut cut = 0usize;
    let mut dropped = 0usize;
    let mut known = Known::default();
    let attrs_start = frag.attrs.len() as u32;
    let arena = &mut frag.arena;

    let mut kept = 0usize;
    for &(key, value) in attrs {
        if known.take(key, value) {
            continue;
        }
        if kept >= limits.max_attributes {
            dropped += 1;
            continue;
        }
        kept += 1;
        let (key, c1) = arena.push_capped(key, limits.max_string_bytes);
        let (value, c2) = render_value(arena, value, limits.max_string_bytes);
        cut += usize::from(c1) + usize::from(c2);
        frag.attrs.push(AttrRef { key, value });
    }
    // Resource attributes rarely carry these, but `code.namespace` or
    // `peer.service` sometimes do; span attributes win.
    let mut resource_region = None;
    for &(key, value) in origin.resource_attrs {
        if key == CLOUD_REGION {
            resource_region = value.as_str().filter(|r| !r.is_empty());
        } else if key != "service.name" {
            let _ = known.take(key, value);
        }
    }
    // `cloud.region` is a resource attribute in OpenTelemetry's semantic
    // conventions; energy scoring reads it from the span, so the span
    // inherits it unless it names its own.
    if let Some(region) = resource_region {
        let own = frag.attrs[attrs_start as usize..]
            .iter()
            .any(|a| arena.get(a.key) == CLOUD_REGION);
        if !own && kept < limits.max_attributes {
            // The previous span's copy, when it is the same region.
            let prev = frag.spans.last().and_then(|p| {
                let end = (p.attrs_start + p.attrs_len) as usize;
                let last = frag.attrs.get(end.checked_sub(1)?)?;
                (end > p.attrs_start as usize
                    && arena.get(last.key) == CLOUD_REGION
                    && arena.get(last.value) == region)
                    .then_some(*last)
            });
            let attr = match prev {
                Some(a) => a,
                None => {
                    let (key, _) = arena.push_capped(CLOUD_REGION, limits.max_string_bytes);
                    let (value, was_cut) = arena.push_capped(region, limits.max_string_bytes);
                    cut += usize::from(was_cut);
                    AttrRef { key, value }
                }
            };
            frag.attrs.push(attr);
        }
    }

    let mut text = |arena: &mut Arena, v: Option<Val<'_>>, cap: usize| -> StrRef {
        match str_of(v) {
            Some(s) => {
                let (r, was_cut) = arena.push_capped(s, cap);
                cut += usize::from(was_cut);
                r
            }
            None => StrRef::EMPTY,
        }
    };
    let s = limits.max_string_bytes;
    let t = limits.max_target_bytes;
    let mut rec = SpanRecord {
        span_id,
        parent_id,
        start_ns: span.start_ns,
        duration_ns: span.end_ns.saturating_sub(span.start_ns),
        attrs_start,
        attrs_len: frag.attrs.len() as u32 - attrs_start,
        is_error: span.is_error,
        ..SpanRecord::default()
    };
    // Spans of a trace mostly share service and scope: point at the
    // previous span's copy instead of storing the name again.
    match frag.spans.last() {
        Some(prev) if arena.get(prev.service) == origin.service => {
            rec.service = prev.service;
        }
        _ => rec.service = text(arena, Some(Val::Str(origin.service)), s),
    }
    match frag.spans.last() {
        Some(prev) if arena.get(prev.scope) == origin.scope => rec.scope = prev.scope,
        _ => rec.scope = text(arena, Some(Val::Str(origin.scope)), s),
    }
    rec.name = text(arena, Some(Val::Str(span.name)), s);
    // OTLP SpanKind numbers: 2 server, 3 client, 4 producer, 5 consumer.
    rec.span_kind = Role(match span.kind {
        2 => SpanKind::Server,
        3 => SpanKind::Client,
        4 => SpanKind::Producer,
        5 => SpanKind::Consumer,
        _ => SpanKind::Internal,
    });
    rec.db_system = text(arena, known.db_system, s);
    rec.http_method = text(arena, known.method, 16);
    rec.http_route = text(arena, known.route, s);
    rec.http_status = i64_of(known.status)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(0);
    rec.response_bytes = i64_of(known.response_size).and_then(|n| u64::try_from(n).ok());
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
    rec.code_lineno = i64_of(known.code_lineno)
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
        arena.append(str_of(known.rpc_service).unwrap_or(""));
        arena.append("/");
        arena.append(str_of(known.rpc_method).unwrap_or(""));
        rec.target = arena.finish(mark, t);
        IoKind::Rpc
    } else if known.method.is_some() {
        rec.target = match known.url_full {
            Some(v) => text(arena, Some(v), t),
            None => {
                // No full URL: rebuild `host/path` so the template keeps the host.
                let mark = arena.mark();
                if rec.span_kind.0 != SpanKind::Server {
                    arena.append(str_of(known.server_address).unwrap_or(""));
                }
                arena.append(str_of(known.url_path).unwrap_or(""));
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
    (cut, dropped)
}

/// Renders any attribute value as text into the arena, cut to `cap` bytes;
/// says whether it was cut.
fn render_value(arena: &mut Arena, v: Val<'_>, cap: usize) -> (StrRef, bool) {
    let mark = arena.mark();
    let mut cut = write_value(arena.buf_mut(), v, cap, 0);
    cut |= arena.len() - mark > cap;
    (arena.finish(mark, cap), cut)
}

/// Nesting rendered before `...`: deeper values are not worth the bytes.
const MAX_RENDER_DEPTH: usize = 4;

/// Writes `v`, stopping early once `cap` bytes are out; true when a string
/// had to be cut.
fn write_value(out: &mut String, v: Val<'_>, cap: usize, depth: usize) -> bool {
    let start = out.len();
    let mut cut = false;
    match v {
        Val::Empty => {}
        Val::Str(s) => {
            let end = crate::model::floor_char_boundary(s, cap);
            cut = end < s.len();
            out.push_str(&s[..end]);
        }
        Val::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Val::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Val::Double(d) => {
            let _ = write!(out, "{d}");
        }
        Val::Bytes(b) => {
            for byte in b.iter().take(cap / 2) {
                let _ = write!(out, "{byte:02x}");
            }
        }
        Val::ProtoArray(_) | Val::WireArray(_) | Val::ProtoKvlist(_) | Val::WireKvlist(_)
            if depth >= MAX_RENDER_DEPTH =>
        {
            out.push_str("...");
        }
        Val::ProtoArray(a) => {
            let items = a
                .values
                .iter()
                .map(|v| (None, super::from_proto::val(Some(v))));
            cut = write_list(out, items, ('[', ']'), (start, cap), depth);
        }
        Val::WireArray(body) => {
            let items = from_wire::array_items(body).map(|v| (None, v));
            cut = write_list(out, items, ('[', ']'), (start, cap), depth);
        }
        Val::ProtoKvlist(l) => {
            let items = l.values.iter().map(|kv| {
                (
                    Some(kv.key.as_str()),
                    super::from_proto::val(kv.value.as_ref()),
                )
            });
            cut = write_list(out, items, ('{', '}'), (start, cap), depth);
        }
        Val::WireKvlist(body) => {
            let items = from_wire::kvlist_items(body).map(|(k, v)| (Some(k), v));
            cut = write_list(out, items, ('{', '}'), (start, cap), depth);
        }
    }
    cut
}

/// Writes `[a,b]` or `{k=v,...}` until `cap` bytes past `start` are out.
fn write_list<'a>(
    out: &mut String,
    items: impl Iterator<Item = (Option<&'a str>, Val<'a>)>,
    (open, close): (char, char),
    (start, cap): (usize, usize),
    depth: usize,
) -> bool {
    let mut cut = false;
    out.push(open);
    for (i, (key, value)) in items.enumerate() {
        if out.len() - start >= cap {
            cut = true;
            break;
        }
        if i > 0 {
            out.push(',');
        }
        if let Some(key) = key {
            out.push_str(&key[..crate::model::floor_char_boundary(key, cap)]);
            out.push('=');
        }
        cut |= write_value(out, value, cap, depth + 1);
    }
    out.push(close);
    cut
}
