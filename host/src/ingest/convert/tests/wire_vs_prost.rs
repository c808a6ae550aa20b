//! The zero-copy walker against prost, the reference decoder: same
//! fragments for anything prost accepts, an error (never a panic) for
//! malformed bodies, and the cases prost's encoder never produces.

use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
use proptest::prelude::*;

use super::*;
use crate::ingest::wire::WireError;

fn wrap(v: Value) -> AnyValue {
    AnyValue { value: Some(v) }
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        "[a-z/ ?=0-9]{0,12}".prop_map(Value::StringValue),
        any::<bool>().prop_map(Value::BoolValue),
        any::<i64>().prop_map(Value::IntValue),
        any::<f64>().prop_map(Value::DoubleValue),
        prop::collection::vec(any::<u8>(), 0..6).prop_map(Value::BytesValue),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|vs| Value::ArrayValue(
                ArrayValue {
                    values: vs.into_iter().map(wrap).collect()
                }
            )),
            prop::collection::vec(("[a-z]{1,4}", inner), 0..4).prop_map(|kvs| {
                Value::KvlistValue(KeyValueList {
                    values: kvs.into_iter().map(|(k, v)| kv(&k, v)).collect(),
                })
            }),
        ]
    })
}

/// Mapped keys, old and new names, and free ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "db.statement",
            "db.query.text",
            "db.system",
            "http.method",
            "http.request.method",
            "url.full",
            "http.target",
            "net.peer.name",
            "server.address",
            "http.status_code",
            "http.response.body.size",
            "peer.service",
            "messaging.system",
            "messaging.destination.name",
            "rpc.system",
            "rpc.service",
            "rpc.method",
            "code.lineno",
            "code.function",
            "service.name",
        ])
        .prop_map(String::from),
        "[a-z.]{1,8}",
    ]
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    prop::collection::vec(
        (key(), prop::option::of(value())).prop_map(|(k, v)| KeyValue {
            key: k,
            value: v.map(wrap),
            ..KeyValue::default()
        }),
        0..6,
    )
}

fn id(valid_len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => (1u8..4).prop_map(move |b| vec![b; valid_len]),
        1 => prop::collection::vec(any::<u8>(), 0..18),
    ]
}

fn a_span() -> impl Strategy<Value = Span> {
    (
        (id(16), id(8), prop_oneof![Just(vec![]), id(8)]),
        "[a-z ]{0,10}",
        0i32..7,
        (any::<u64>(), any::<u64>()),
        attributes(),
        prop::option::of(0i32..4),
    )
        .prop_map(
            |((t, s, p), name, kind, (start, end), attributes, code)| Span {
                trace_id: t,
                span_id: s,
                parent_span_id: p,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                status: code.map(|code| Status {
                    code,
                    ..Status::default()
                }),
                ..Span::default()
            },
        )
}

fn request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let scope = (
        prop::option::of("[a-z.]{0,8}"),
        prop::collection::vec(a_span(), 0..6),
    )
        .prop_map(|(name, spans)| ScopeSpans {
            scope: name.map(|name| InstrumentationScope {
                name,
                ..InstrumentationScope::default()
            }),
            spans,
            ..ScopeSpans::default()
        });
    let resource = (
        prop::option::of(attributes()),
        prop::collection::vec(scope, 0..3),
    )
        .prop_map(|(attrs, scope_spans)| ResourceSpans {
            resource: attrs.map(|attributes| Resource {
                attributes,
                ..Resource::default()
            }),
            scope_spans,
            ..ResourceSpans::default()
        });
    prop::collection::vec(resource, 0..3)
        .prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

fn small_limits() -> ConvertLimits {
    ConvertLimits {
        max_target_bytes: 24,
        max_string_bytes: 9,
        max_attributes: 3,
        ..ConvertLimits::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_walker_converts_like_prost(req in request(), shards in 1usize..4, small in any::<bool>()) {
        let limits = if small { small_limits() } else { ConvertLimits::default() };
        both(&req, shards, &limits);
    }

    /// Whatever prost accepts after damage, the walker reads the same way;
    /// nothing panics.
    #[test]
    fn damaged_bodies_never_diverge_from_prost(
        req in request(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = req.encode_to_vec();
        prop_assume!(!bytes.is_empty());
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let bytes = &bytes[..cut.index(bytes.len() + 1)];
        let limits = ConvertLimits::default();
        let walked = convert_wire(bytes, 2, &limits);
        if let Ok(decoded) = ExportTraceServiceRequest::decode(bytes) {
            prop_assert_eq!(walked.expect("prost accepted it"), convert(&decoded, 2, &limits));
        }
    }
}

/// A `ResourceSpans` written with its resource after the spans (legal, if
/// unusual) still names the service.
#[test]
fn a_resource_after_its_spans_still_names_the_service() {
    let full = req(
        Some("late-svc"),
        vec![span(1, 2, None, span::SpanKind::Server, vec![])],
    );
    let mut spans_only = full.resource_spans[0].clone();
    let resource_only = ResourceSpans {
        resource: spans_only.resource.take(),
        ..ResourceSpans::default()
    };
    // Concatenated encodings of a message merge into one message.
    let mut rs = spans_only.encode_to_vec();
    rs.extend(resource_only.encode_to_vec());
    let mut body = vec![0x0a];
    prost::encoding::encode_varint(rs.len() as u64, &mut body);
    body.extend(rs);

    let c = convert_wire(&body, 1, &ConvertLimits::default()).unwrap();
    let f = &c.shards[0][0];
    assert_eq!(f.arena.get(f.spans[0].service), "late-svc");
    let decoded = ExportTraceServiceRequest::decode(&body[..]).unwrap();
    assert_eq!(c, convert(&decoded, 1, &ConvertLimits::default()));
}

#[test]
fn every_prefix_of_a_request_is_refused_or_read_like_prost() {
    let r = req(
        Some("api"),
        vec![
            span(
                1,
                1,
                None,
                span::SpanKind::Server,
                vec![s("http.route", "/a")],
            ),
            span(
                1,
                2,
                Some(1),
                span::SpanKind::Client,
                vec![
                    s("db.statement", "SELECT 1"),
                    kv(
                        "list",
                        Value::ArrayValue(ArrayValue {
                            values: vec![wrap(Value::IntValue(3))],
                        }),
                    ),
                ],
            ),
        ],
    );
    let bytes = r.encode_to_vec();
    let limits = ConvertLimits::default();
    for end in 0..bytes.len() {
        let cut = &bytes[..end];
        match (
            ExportTraceServiceRequest::decode(cut),
            convert_wire(cut, 1, &limits),
        ) {
            (Ok(d), Ok(w)) => assert_eq!(w, convert(&d, 1, &limits), "prefix {end}"),
            (Err(_), Err(_)) => {}
            (p, w) => panic!(
                "prefix {end}: prost {:?}, walker {:?}",
                p.is_ok(),
                w.is_ok()
            ),
        }
    }
}

#[test]
fn bad_text_wrong_types_and_deep_values_are_named() {
    let limits = ConvertLimits::default();
    let marked = |attrs: Vec<KeyValue>| {
        req(
            Some("x"),
            vec![span(1, 2, None, span::SpanKind::Client, attrs)],
        )
        .encode_to_vec()
    };
    let mut bytes = marked(vec![s("note", "MARK")]);
    let at = bytes.windows(4).position(|w| w == b"MARK").unwrap();
    bytes[at] = 0xff;
    assert_eq!(
        convert_wire(&bytes, 1, &limits).unwrap_err(),
        WireError::InvalidUtf8 {
            context: "an attribute value"
        }
    );

    // Span name (field 5) sent as a varint.
    let mut sp = Vec::new();
    sp.extend([0x0a, 16]);
    sp.extend([1u8; 16]);
    sp.extend([0x12, 8]);
    sp.extend([2u8; 8]);
    sp.extend([0x28, 1]);
    let mut ss = vec![0x12, sp.len() as u8];
    ss.extend(sp);
    let mut rs = vec![0x12, ss.len() as u8];
    rs.extend(ss);
    let mut body = vec![0x0a, rs.len() as u8];
    body.extend(rs);
    let err = convert_wire(&body, 1, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            WireError::WireType {
                field: 5,
                wire_type: 0,
                context: "Span"
            }
        ),
        "{err}"
    );
    assert!(ExportTraceServiceRequest::decode(&body[..]).is_err());

    let mut deep = Value::IntValue(1);
    for _ in 0..40 {
        deep = Value::ArrayValue(ArrayValue {
            values: vec![wrap(deep)],
        });
    }
    let err = convert_wire(&marked(vec![kv("deep", deep)]), 1, &limits).unwrap_err();
    assert!(matches!(err, WireError::TooDeep { .. }), "{err}");
}

#[test]
fn nested_values_render_the_same_from_both_readers() {
    let nested = Value::KvlistValue(KeyValueList {
        values: vec![
            kv("a", Value::IntValue(1)),
            kv(
                "b",
                Value::ArrayValue(ArrayValue {
                    values: vec![
                        wrap(Value::BoolValue(true)),
                        wrap(Value::StringValue("z".into())),
                    ],
                }),
            ),
        ],
    });
    let c = both(
        &req(
            Some("x"),
            vec![span(
                1,
                2,
                None,
                span::SpanKind::Client,
                vec![kv("n", nested)],
            )],
        ),
        1,
        &ConvertLimits::default(),
    );
    let f = &c.shards[0][0];
    assert_eq!(f.arena.get(f.attrs[0].value), "{a=1,b=[true,z]}");
}

/// Found by the `otlp_protobuf` fuzz target (its input cut to the part
/// that mattered): unknown fields holding an empty group, which prost skips,
/// made the walker refuse the request.
#[test]
fn unknown_groups_are_skipped_like_prost_skips_them() {
    let mut body = req(
        Some("billing"),
        vec![span(1, 1, None, span::SpanKind::Server, vec![])],
    )
    .encode_to_vec();
    body.extend([0x2a, 0x02, b'h', b'i']); // field 5, bytes
    body.extend([0x73, 0x74]); // field 14, an empty group
    body.extend([0x61]); // field 12, fixed64
    body.extend(b"tus_code");
    body.extend([0x12, 0x03, 0x18, 0xc8, 0x01]); // field 2, bytes
    let limits = ConvertLimits::default();
    let decoded = ExportTraceServiceRequest::decode(&body[..]).expect("prost skips them");
    let walked = convert_wire(&body, 1, &limits).expect("the walker skips them too");
    assert_eq!(walked.accepted, 1);
    assert_eq!(walked, convert(&decoded, 1, &limits));
}
