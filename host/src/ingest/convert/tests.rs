//! Conversion tests: the semantic-convention mapping, ids, caps, and the
//! wire walker checked against prost's decode on the same bytes.
use detector_api::{IoKind, SpanKind};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use prost::Message;

use super::*;

#[path = "tests/wire_vs_prost.rs"]
mod wire_vs_prost;

/// Converts through prost and through the wire walker; they must agree.
fn both(request: &ExportTraceServiceRequest, shards: usize, limits: &ConvertLimits) -> Converted {
    let from_proto = convert(request, shards, limits);
    let from_wire = convert_wire(&request.encode_to_vec(), shards, limits)
        .expect("the walker reads what prost encodes");
    assert_eq!(from_wire, from_proto);
    from_wire
}

pub(super) fn kv(key: &str, v: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..KeyValue::default()
    }
}

pub(super) fn s(key: &str, v: &str) -> KeyValue {
    kv(key, Value::StringValue(v.into()))
}

pub(super) fn span(
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

pub(super) fn req(service: Option<&str>, spans: Vec<Span>) -> ExportTraceServiceRequest {
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
    let mut c = both(request, 1, &ConvertLimits::default());
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
    let c = both(
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
    let c = both(&req(Some("x"), spans), 4, &ConvertLimits::default());
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
    let c = both(&req(Some("x"), vec![sp]), 1, &ConvertLimits::default());
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
    let c = both(&req(Some("x"), vec![sp]), 1, &ConvertLimits::default());
    assert_eq!(c.truncated_strings, 2);
    assert_eq!(c.dropped_attributes, 0);
    let f = &c.shards[0][0];
    assert_eq!(f.spans[0].target.len(), 64 * 1024);
    assert_eq!(f.arena.get(f.attrs[0].value).len(), 4 * 1024);
    assert!(f.spans[0].is_error);
}

/// The attributes of span `n`, as text.
fn attrs_of(f: &TraceFragment, n: usize) -> Vec<(String, String)> {
    let r = &f.spans[n];
    f.attrs[r.attrs_start as usize..(r.attrs_start + r.attrs_len) as usize]
        .iter()
        .map(|a| {
            (
                f.arena.get(a.key).to_owned(),
                f.arena.get(a.value).to_owned(),
            )
        })
        .collect()
}

#[test]
fn spans_inherit_the_resource_region_unless_they_name_their_own() {
    let mut request = req(
        Some("api"),
        vec![
            span(1, 1, None, span::SpanKind::Server, vec![]),
            span(1, 2, Some(1), span::SpanKind::Client, vec![s("a", "b")]),
            span(
                1,
                3,
                Some(1),
                span::SpanKind::Client,
                vec![s("cloud.region", "us-east-1")],
            ),
        ],
    );
    let resource = request.resource_spans[0].resource.as_mut().unwrap();
    resource.attributes.push(s("cloud.region", "eu-west-3"));
    let f = one(&request);
    let region = |n: usize| {
        attrs_of(&f, n)
            .into_iter()
            .filter(|(k, _)| k == "cloud.region")
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
    };
    assert_eq!(region(0), ["eu-west-3"]);
    assert_eq!(region(1), ["eu-west-3"]);
    assert_eq!(attrs_of(&f, 1)[0], ("a".to_owned(), "b".to_owned()));
    assert_eq!(region(2), ["us-east-1"], "the span's own region wins");

    // No resource region, nothing added; an empty one is no region.
    let plain = one(&req(
        Some("api"),
        vec![span(1, 1, None, span::SpanKind::Server, vec![])],
    ));
    assert!(attrs_of(&plain, 0).is_empty());
    let mut empty = req(
        Some("api"),
        vec![span(1, 1, None, span::SpanKind::Server, vec![])],
    );
    let resource = empty.resource_spans[0].resource.as_mut().unwrap();
    resource.attributes.push(s("cloud.region", ""));
    assert!(attrs_of(&one(&empty), 0).is_empty());
}
