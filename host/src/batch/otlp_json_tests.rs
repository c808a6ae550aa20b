use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use proptest::prelude::*;

use super::*;

/// What `opentelemetry-proto`'s own serde support makes of `json`, less
/// the events and links this decoder skips.
fn reference(json: &str) -> ResourceSpans {
    let mut rs: ResourceSpans = serde_json::from_str(json).unwrap();
    for ss in &mut rs.scope_spans {
        for s in &mut ss.spans {
            s.events.clear();
            s.links.clear();
        }
    }
    rs
}

#[test]
fn every_golden_fixture_decodes_as_the_reference_decoder_decodes_it() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/golden");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".otlp.json") {
            continue;
        }
        let request: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for item in request["resourceSpans"].as_array().unwrap() {
            let text = item.to_string();
            assert_eq!(
                resource_spans(text.as_bytes()).unwrap(),
                reference(&text),
                "{}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 17, "{checked} items");
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        ".{0,12}".prop_map(Value::StringValue),
        any::<bool>().prop_map(Value::BoolValue),
        any::<i64>().prop_map(Value::IntValue),
        (-1e12f64..1e12).prop_map(Value::DoubleValue),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Value::BytesValue),
    ]
    .prop_map(|v| AnyValue { value: Some(v) });
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|values| Value::ArrayValue(ArrayValue { values })),
            proptest::collection::vec(("[a-z.]{1,8}", inner), 0..4).prop_map(|kvs| {
                Value::KvlistValue(KeyValueList {
                    values: kvs
                        .into_iter()
                        .map(|(key, v)| KeyValue {
                            key,
                            value: Some(v),
                            ..KeyValue::default()
                        })
                        .collect(),
                })
            }),
        ]
        .prop_map(|v| AnyValue { value: Some(v) })
    })
}

fn attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    proptest::collection::vec(
        ("[a-z.\"\\\\é]{0,10}", proptest::option::of(any_value())),
        0..5,
    )
    .prop_map(|kvs| {
        kvs.into_iter()
            .map(|(key, value)| KeyValue {
                key,
                value,
                ..KeyValue::default()
            })
            .collect()
    })
}

fn span() -> impl Strategy<Value = Span> {
    (
        proptest::collection::vec(any::<u8>(), 16),
        proptest::collection::vec(any::<u8>(), 8),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 8)),
        ".{0,16}",
        0i32..6,
        any::<u64>(),
        any::<u64>(),
        attributes(),
        proptest::option::of((0i32..3, ".{0,8}")),
        any::<u32>(),
        ".{0,6}",
    )
        .prop_map(
            |(
                trace_id,
                span_id,
                parent,
                name,
                kind,
                start,
                end,
                attributes,
                status,
                flags,
                state,
            )| Span {
                trace_id,
                span_id,
                parent_span_id: parent.unwrap_or_default(),
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                status: status.map(|(code, message)| Status { code, message }),
                flags,
                trace_state: state,
                dropped_attributes_count: flags % 7,
                events: vec![Event {
                    name: "skipped".into(),
                    ..Event::default()
                }],
                links: vec![Link::default()],
                ..Span::default()
            },
        )
}

fn resource_spans_strategy() -> impl Strategy<Value = ResourceSpans> {
    (
        proptest::option::of(attributes()),
        proptest::collection::vec(
            (
                proptest::option::of((".{0,8}", ".{0,4}", attributes())),
                proptest::collection::vec(span(), 0..4),
                ".{0,4}",
            ),
            0..3,
        ),
        ".{0,4}",
    )
        .prop_map(|(resource, scopes, schema_url)| ResourceSpans {
            resource: resource.map(|attributes| Resource {
                attributes,
                ..Resource::default()
            }),
            scope_spans: scopes
                .into_iter()
                .map(|(scope, spans, schema_url)| ScopeSpans {
                    scope: scope.map(|(name, version, attributes)| InstrumentationScope {
                        name,
                        version,
                        attributes,
                        ..InstrumentationScope::default()
                    }),
                    spans,
                    schema_url,
                })
                .collect(),
            schema_url,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever `opentelemetry-proto` writes as OTLP JSON, both decoders
    /// read the same.
    #[test]
    fn decodes_what_the_reference_encoder_writes_as_the_reference_decoder_does(
        rs in resource_spans_strategy()
    ) {
        let text = serde_json::to_string(&rs).unwrap();
        prop_assert_eq!(resource_spans(text.as_bytes()).unwrap(), reference(&text));
        // Inside a request, through the conversion, to the same spans.
        let ours = ExportTraceServiceRequest { resource_spans: vec![resource_spans(text.as_bytes()).unwrap()] };
        let theirs: ExportTraceServiceRequest =
            serde_json::from_str(&format!("{{\"resourceSpans\":[{text}]}}")).unwrap();
        let limits = crate::ingest::convert::ConvertLimits::default();
        let a = crate::ingest::convert::convert(&ours, 1, &limits);
        let b = crate::ingest::convert::convert(&theirs, 1, &limits);
        prop_assert_eq!(a.accepted, b.accepted);
        prop_assert_eq!(a.rejected_invalid_id, b.rejected_invalid_id);
    }
}

#[test]
fn numbers_may_be_strings_and_nulls_are_absent() {
    let rs = resource_spans(
        br#"{"resource":null,"scopeSpans":[{"scope":null,"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c",
            "spanId":"b7ad6b7169203331","name":null,"kind":"2","startTimeUnixNano":17,"endTimeUnixNano":"18",
            "attributes":[{"key":"n","value":{"intValue":"-5"}},{"key":"z","value":null},
                          {"key":"d","value":{"doubleValue":2,"unknown":{"x":[1]}}}],
            "events":[{"name":"e","attributes":[{"key":"k","value":{"kvlistValue":{"values":[]}}}]}],
            "status":{"code":2,"message":"boom"}}]}]}"#,
    )
    .unwrap();
    assert!(rs.resource.is_none());
    let s = &rs.scope_spans[0].spans[0];
    assert_eq!(
        (s.kind, s.start_time_unix_nano, s.end_time_unix_nano),
        (2, 17, 18)
    );
    assert_eq!(s.name, "");
    assert_eq!(
        s.attributes[0].value.as_ref().unwrap().value,
        Some(Value::IntValue(-5))
    );
    assert!(s.attributes[1].value.is_none());
    assert_eq!(
        s.attributes[2].value.as_ref().unwrap().value,
        Some(Value::DoubleValue(2.0))
    );
    assert!(s.events.is_empty(), "events are skipped");
    assert_eq!(s.status.as_ref().unwrap().message, "boom");
}

#[test]
fn ids_that_are_not_hex_become_invalid_ids_and_the_rest_still_reads() {
    let rs = resource_spans(
        br#"{"scopeSpans":[{"spans":[{"traceId":"not-hex","spanId":"b7ad6b716920333","parentSpanId":"","name":"x"}]}]}"#,
    )
    .unwrap();
    let s = &rs.scope_spans[0].spans[0];
    assert_eq!(s.trace_id, [0]);
    assert_eq!(s.span_id, [0], "odd length");
    assert!(s.parent_span_id.is_empty());
    assert_eq!(s.name, "x");
}

#[test]
fn malformed_values_are_errors_with_a_reason() {
    for (json, want) in [
        (
            r#"{"scopeSpans":[{"spans":[{"kind":1.5}]}]}"#,
            "floating point",
        ),
        (
            r#"{"scopeSpans":[{"spans":[{"startTimeUnixNano":"-1"}]}]}"#,
            "not an integer",
        ),
        (
            r#"{"scopeSpans":[{"spans":[{"attributes":[{"key":"b","value":{"bytesValue":"!!"}}]}]}]}"#,
            "Invalid",
        ),
        (r#"{"scopeSpans":{}}"#, "an array of a scopeSpans object"),
        (r#"{"scopeSpans":[]} x"#, "trailing characters"),
    ] {
        let e = resource_spans(json.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(want), "{json}: {e}");
    }
}
