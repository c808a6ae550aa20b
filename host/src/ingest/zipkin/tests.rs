//! Tests of Zipkin decoding: the mapping onto OTLP, through the shared conversion, and
//! hostile or malformed bodies.

use detector_api::{IoKind, SpanKind, TraceId};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span, span, status};
use proptest::prelude::*;

use super::to_otlp::hex;
use super::*;
use crate::ingest::convert::{ConvertLimits, convert};
use crate::model::TraceFragment;

const TRACE: &str = "5b8efff798038103d269b633813fc60c";

fn attr<'s>(span: &'s Span, key: &str) -> Option<&'s str> {
    span.attributes
        .iter()
        .filter(|kv| kv.key == key)
        .find_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
}

fn service(rs: &ResourceSpans) -> Option<&str> {
    rs.resource
        .as_ref()?
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
}

fn spans(req: &ExportTraceServiceRequest) -> Vec<&Span> {
    req.resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter()))
        .collect()
}

fn fragments(req: &ExportTraceServiceRequest) -> (Vec<TraceFragment>, usize) {
    let c = convert(req, 1, &ConvertLimits::default());
    (
        c.shards.into_iter().flatten().collect(),
        c.rejected_invalid_id,
    )
}

#[test]
fn ids_times_kinds_and_services_map() {
    let body = format!(
        r#"[
          {{"traceId":"{TRACE}","id":"00000000000000aa","name":"get /orders/{{id}}",
            "kind":"SERVER","timestamp":1700000000000000,"duration":100000,
            "localEndpoint":{{"serviceName":"orders","ipv4":"10.0.0.1","port":8080}},
            "shared":true,"debug":false,
            "annotations":[{{"timestamp":1700000000000001,"value":"ws"}}]}},
          {{"traceId":"d269b633813fc60c","id":"00000000000000bb","parentId":"00000000000000AA",
            "kind":"CLIENT","timestamp":1700000000001000,"duration":500,
            "localEndpoint":{{"serviceName":"orders"}},
            "remoteEndpoint":{{"serviceName":"postgres","port":5432}}}},
          {{"traceId":"{TRACE}","id":"00000000000000cc","kind":"PRODUCER",
            "localEndpoint":{{"serviceName":"billing"}}}},
          {{"traceId":"{TRACE}","id":"00000000000000dd","kind":"CONSUMER"}},
          {{"traceId":"{TRACE}","id":"00000000000000ee","kind":"whatever"}}
        ]"#
    );
    let req = decode(body.as_bytes()).unwrap();
    let services: Vec<Option<&str>> = req.resource_spans.iter().map(service).collect();
    assert_eq!(services, [Some("orders"), Some("billing"), None]);
    assert_eq!(req.resource_spans[0].scope_spans[0].spans.len(), 2);

    let s = spans(&req);
    assert_eq!(hex_of(&s[0].trace_id), TRACE);
    assert_eq!(s[0].span_id, [0, 0, 0, 0, 0, 0, 0, 0xaa]);
    assert!(s[0].parent_span_id.is_empty());
    assert_eq!(s[0].name, "get /orders/{id}");
    assert_eq!(s[0].kind, span::SpanKind::Server as i32);
    assert_eq!(s[0].start_time_unix_nano, 1_700_000_000_000_000_000);
    assert_eq!(s[0].end_time_unix_nano, 1_700_000_000_100_000_000);
    assert!(s[0].status.is_none());
    assert!(s[0].attributes.is_empty());

    // 16 hex digits are the low 64 bits of a 128-bit id.
    assert_eq!(hex_of(&s[1].trace_id), "0000000000000000d269b633813fc60c");
    assert_eq!(s[1].parent_span_id, [0, 0, 0, 0, 0, 0, 0, 0xaa]);
    assert_eq!(s[1].kind, span::SpanKind::Client as i32);
    assert_eq!(s[1].end_time_unix_nano - s[1].start_time_unix_nano, 500_000);
    assert_eq!(attr(s[1], "peer.service"), Some("postgres"));

    assert_eq!(s[2].kind, span::SpanKind::Producer as i32);
    assert_eq!((s[2].start_time_unix_nano, s[2].end_time_unix_nano), (0, 0));
    assert_eq!(s[3].kind, span::SpanKind::Consumer as i32);
    assert_eq!(s[4].kind, span::SpanKind::Internal as i32);

    // Through the shared conversion: the service defaults as for OTLP.
    let (frags, invalid) = fragments(&req);
    assert_eq!(invalid, 0);
    let full = frags
        .iter()
        .find(|f| hex_of(&f.trace_id.0) == TRACE)
        .unwrap();
    assert!(full.has_root);
    let names: Vec<&str> = full
        .spans
        .iter()
        .map(|r| full.arena.get(r.service))
        .collect();
    assert_eq!(
        names,
        ["orders", "billing", "unknown_service", "unknown_service"]
    );
    assert_eq!(full.spans[1].span_kind.0, SpanKind::Producer);
}

#[test]
fn tags_map_like_otlp_attributes_and_error_tags_flag_errors() {
    let body = format!(
        r#"[
          {{"traceId":"{TRACE}","id":"0000000000000001","kind":"SERVER",
            "localEndpoint":{{"serviceName":"orders"}},
            "tags":{{"http.method":"GET","http.route":"/orders/{{id}}",
                     "http.status_code":"200","team":"checkout"}}}},
          {{"traceId":"{TRACE}","id":"0000000000000002","parentId":"0000000000000001",
            "kind":"CLIENT","localEndpoint":{{"serviceName":"orders"}},
            "remoteEndpoint":{{"serviceName":"pg"}},
            "tags":{{"db.system":"postgresql",
                     "db.statement":"SELECT * FROM items WHERE id = 7",
                     "code.function":"Repo.items","code.filepath":"repo.py",
                     "code.lineno":"57","error":"deadlock detected"}}}},
          {{"traceId":"{TRACE}","id":"0000000000000003","parentId":"0000000000000001",
            "kind":"CLIENT","localEndpoint":{{"serviceName":"orders"}},
            "tags":{{"http.method":"POST","http.url":"https://pay.example/charge?id=1",
                     "http.status_code":"503","peer.service":"payments",
                     "otel.status_code":"ERROR"}},
            "remoteEndpoint":{{"serviceName":"ignored-when-tagged"}}}},
          {{"traceId":"{TRACE}","id":"0000000000000004","parentId":"0000000000000001",
            "kind":"PRODUCER","localEndpoint":{{"serviceName":"orders"}},
            "tags":{{"messaging.system":"kafka","messaging.destination.name":"orders",
                     "retries":3,"sampled":true,"ratio":0.5,"nested":{{"a":[1]}},
                     "nothing":null}}}}
        ]"#
    );
    let req = decode(body.as_bytes()).unwrap();
    let s = spans(&req);
    assert_eq!(attr(s[0], "http.route"), Some("/orders/{id}"));
    let err = s[1].status.as_ref().unwrap();
    assert_eq!(err.code, status::StatusCode::Error as i32);
    assert_eq!(err.message, "deadlock detected");
    assert!(s[2].status.is_some(), "otel.status_code = ERROR");
    assert!(s[0].status.is_none());
    // Non-string scalars are carried as text; objects and null are not.
    assert_eq!(attr(s[3], "retries"), Some("3"));
    assert_eq!(attr(s[3], "sampled"), Some("true"));
    assert_eq!(attr(s[3], "ratio"), Some("0.5"));
    assert_eq!(attr(s[3], "nested"), None);
    assert_eq!(attr(s[3], "nothing"), None);

    let (frags, _) = fragments(&req);
    let f = &frags[0];
    let a = &f.arena;
    let [server, sql, http, msg] = &f.spans[..] else {
        panic!("four spans expected, got {}", f.spans.len());
    };
    assert_eq!(a.get(server.http_method), "GET");
    assert_eq!(a.get(server.http_route), "/orders/{id}");
    assert_eq!(server.http_status, 200);
    assert_eq!(server.span_kind.0, SpanKind::Server);
    assert!(!server.is_error);

    assert_eq!(sql.kind.0, IoKind::Sql);
    assert_eq!(a.get(sql.target), "SELECT * FROM items WHERE id = 7");
    assert_eq!(a.get(sql.db_system), "postgresql");
    assert_eq!(a.get(sql.code_function), "Repo.items");
    assert_eq!(a.get(sql.code_filepath), "repo.py");
    assert_eq!(sql.code_lineno, 57);
    assert_eq!(a.get(sql.peer_service), "pg");
    assert!(sql.is_error);

    assert_eq!(http.kind.0, IoKind::Http);
    assert_eq!(a.get(http.target), "https://pay.example/charge?id=1");
    assert_eq!(http.http_status, 503);
    assert_eq!(a.get(http.peer_service), "payments", "the tag wins");
    assert!(http.is_error);

    assert_eq!(msg.kind.0, IoKind::Messaging);
    assert_eq!(a.get(msg.target), "orders");
    let kept: Vec<(&str, &str)> = f
        .attrs
        .iter()
        .map(|x| (a.get(x.key), a.get(x.value)))
        .collect();
    assert!(kept.contains(&("team", "checkout")));
    assert!(kept.contains(&("error", "deadlock detected")));
    assert!(kept.contains(&("retries", "3")));
}

#[test]
fn invalid_ids_are_refused_per_span_by_the_conversion() {
    let body = format!(
        r#"[
          {{"traceId":"{TRACE}","id":"0000000000000001"}},
          {{"traceId":"zz8efff798038103d269b633813fc60c","id":"0000000000000002"}},
          {{"traceId":"abc","id":"0000000000000003"}},
          {{"traceId":"{TRACE}","id":"00000000000004"}},
          {{"traceId":"{TRACE}","id":"0000000000000005","parentId":"not-hex-not-hex!"}},
          {{"traceId":"{TRACE}","id":"0000000000000006","parentId":"12"}},
          {{"traceId":"00000000000000000000000000000000","id":"0000000000000007"}},
          {{"traceId":12345678901234567890,"id":"0000000000000008"}},
          {{"id":"0000000000000009"}},
          {{"traceId":"{TRACE}","id":"000000000000000a","parentId":""}},
          {{"traceId":"{TRACE}","id":"000000000000000b","parentId":null}}
        ]"#
    );
    let req = decode(body.as_bytes()).unwrap();
    let (frags, invalid) = fragments(&req);
    assert_eq!(invalid, 8);
    assert_eq!(frags.len(), 1);
    let roots = frags[0]
        .spans
        .iter()
        .filter(|r| r.parent_id.is_zero())
        .count();
    assert_eq!(frags[0].spans.len(), 3);
    assert_eq!(roots, 3, "absent, empty and null parents are roots");
    assert_eq!(
        frags[0].trace_id,
        TraceId::from_slice(&hex(TRACE).unwrap()).unwrap()
    );
}

#[test]
fn anything_but_an_array_of_objects_is_refused() {
    for body in [
        &b""[..],
        b"{}",
        b"{\"traceId\":\"x\"}",
        b"null",
        b"\"spans\"",
        b"42",
        b"[1]",
        b"[\"span\"]",
        b"[[\"5b8efff798038103d269b633813fc60c\",\"0000000000000001\"]]",
        b"[{}, null]",
        b"[{\"traceId\": }]",
        b"[{}] trailing",
        b"[{\"tags\":{\"a\":\"b\"}]",
        b"[{\"timestamp\": 1e999}]",
    ] {
        let got = decode(body);
        assert!(
            matches!(got, Err(IngestError::MalformedJson(_))),
            "{:?} -> {got:?}",
            String::from_utf8_lossy(body)
        );
        if let Err(e) = got {
            assert_eq!(e.reason(), "malformed_json");
            assert_eq!(e.http_status(), 400);
        }
    }
    assert!(matches!(
        decode(b"[{\"name\":\"\xff\"}]"),
        Err(IngestError::InvalidUtf8(_))
    ));
    // An empty array is a valid (empty) batch.
    assert!(spans(&decode(b"[]").unwrap()).is_empty());
    assert!(spans(&decode(b" [ { } ] ").unwrap()).len() == 1);
}

#[test]
fn hostile_values_are_clamped_or_ignored() {
    let body = format!(
        r#"[
          {{"traceId":"{TRACE}","id":"0000000000000001","timestamp":18446744073709551615,
            "duration":18446744073709551615}},
          {{"traceId":"{TRACE}","id":"0000000000000002","timestamp":1e300,"duration":-5}},
          {{"traceId":"{TRACE}","id":"0000000000000003","timestamp":-1,"duration":1.5e2}},
          {{"traceId":"{TRACE}","id":"0000000000000004",
            "timestamp":123456789012345678901234567890,"duration":"12"}},
          {{"traceId":["junk"],"id":{{"x":1}},"parentId":true,"name":{{"a":{{"b":[[[]]]}}}},
            "kind":7,"timestamp":"soon","duration":{{}},"localEndpoint":"svc",
            "remoteEndpoint":[1,2],"tags":["a","b"],"annotations":{{"x":[{{}}]}}}},
          {{"traceId":"{TRACE}","id":"0000000000000005","localEndpoint":{{"serviceName":42}},
            "tags":"nope","name":"\u00e9\u0000\ud83d\ude00"}}
        ]"#
    );
    let req = decode(body.as_bytes()).unwrap();
    let s = spans(&req);
    assert_eq!(s.len(), 6);
    assert_eq!(s[0].start_time_unix_nano, u64::MAX);
    assert_eq!(s[0].end_time_unix_nano, u64::MAX);
    assert_eq!(s[1].start_time_unix_nano, u64::MAX);
    assert_eq!(s[1].end_time_unix_nano, u64::MAX);
    assert_eq!(s[2].start_time_unix_nano, 0);
    assert_eq!(s[2].end_time_unix_nano, 150_000);
    assert_eq!(s[3].start_time_unix_nano, u64::MAX);
    assert_eq!(s[3].end_time_unix_nano, u64::MAX);
    assert!(s[4].trace_id.is_empty() && s[4].span_id.is_empty());
    assert_eq!(s[4].parent_span_id, [0], "not hex: refused, not a root");
    assert_eq!(s[4].name, "");
    assert_eq!(s[4].kind, span::SpanKind::Internal as i32);
    assert!(s[4].attributes.is_empty());
    assert_eq!(s[5].name, "\u{e9}\u{0}\u{1f600}");
    // A numeric service name is printed.
    assert_eq!(service(&req.resource_spans[1]), Some("42"));
    let (frags, invalid) = fragments(&req);
    assert_eq!(invalid, 1);
    assert_eq!(frags[0].spans.len(), 5);

    // Deep nesting anywhere in a span is skipped without recursion.
    let junk = format!("{}1{}", "[{\"x\":".repeat(100_000), "}]".repeat(100_000));
    for (open, close) in [
        ("{\"tags\":{\"a\":", "}}"),
        ("{\"name\":", "}"),
        ("{\"localEndpoint\":", "}"),
        ("{\"annotations\":", "}"),
    ] {
        let deep = format!("[{open}{junk}{close}]");
        let req = decode(deep.as_bytes()).unwrap();
        let s = spans(&req);
        assert_eq!(s.len(), 1);
        assert!(s[0].attributes.is_empty() && s[0].name.is_empty());
    }
    // An unclosed one is refused.
    let open = format!("[{{\"tags\":{{\"a\":{}", "[".repeat(100_000));
    assert!(matches!(
        decode(open.as_bytes()),
        Err(IngestError::MalformedJson(_))
    ));
}

#[test]
fn escaped_strings_are_unescaped() {
    let body = format!(
        r#"[{{"traceId":"{TRACE}","id":"0000000000000001",
             "localEndpoint":{{"serviceName":"a\"b"}},
             "tags":{{"db.statement":"SELECT \"x\"\nFROM t","k\u0065y":"v"}}}}]"#
    );
    let req = decode(body.as_bytes()).unwrap();
    assert_eq!(service(&req.resource_spans[0]), Some("a\"b"));
    let s = spans(&req);
    assert_eq!(attr(s[0], "db.statement"), Some("SELECT \"x\"\nFROM t"));
    assert_eq!(attr(s[0], "key"), Some("v"));
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(req) = decode(&body) {
            let _ = fragments(&req);
        }
    }

    #[test]
    fn arbitrary_field_values_never_panic(
        trace in "[0-9a-fA-Fz]{0,40}",
        id in "[0-9a-f-]{0,20}",
        ts in any::<i64>(),
        dur in any::<f64>(),
        kind in "[A-Z]{0,9}",
        tag in "\\PC{0,20}",
    ) {
        let mut tags = serde_json::Map::new();
        tags.insert(tag.clone(), tag.into());
        tags.insert("error".into(), "".into());
        let duration = if dur.is_finite() { dur.into() } else { serde_json::Value::Null };
        let body = serde_json::json!([{
            "traceId": trace, "id": id, "parentId": id, "timestamp": ts,
            "duration": duration, "kind": kind, "tags": tags,
            "localEndpoint": { "serviceName": "svc" },
        }]);
        let req = decode(body.to_string().as_bytes()).unwrap();
        let s = spans(&req);
        prop_assert_eq!(s.len(), 1);
        prop_assert!(s[0].end_time_unix_nano >= s[0].start_time_unix_nano);
        prop_assert!(s[0].status.is_some());
        let _ = fragments(&req);
    }
}

#[test]
fn scope_tags_become_the_instrumentation_scope() {
    let body = format!(
        r#"[
          {{"traceId":"{TRACE}","id":"00000000000000a1","localEndpoint":{{"serviceName":"orders"}},
            "tags":{{"otel.scope.name":"org.hibernate.orm","otel.scope.version":"6.4","db.system":"h2"}}}},
          {{"traceId":"{TRACE}","id":"00000000000000a2","localEndpoint":{{"serviceName":"orders"}},
            "tags":{{"otel.library.name":"org.hibernate.orm"}}}},
          {{"traceId":"{TRACE}","id":"00000000000000a3","localEndpoint":{{"serviceName":"orders"}}}}
        ]"#
    );
    let req = decode(body.as_bytes()).unwrap();
    let scopes = &req.resource_spans[0].scope_spans;
    assert_eq!(scopes.len(), 2);
    let hibernate = scopes[0].scope.as_ref().unwrap();
    assert_eq!(
        (hibernate.name.as_str(), hibernate.version.as_str()),
        ("org.hibernate.orm", "6.4")
    );
    assert_eq!(scopes[0].spans.len(), 2);
    assert!(scopes[1].scope.is_none());
    let first = &scopes[0].spans[0];
    assert_eq!(attr(first, "db.system"), Some("h2"));
    assert_eq!(
        attr(first, "otel.scope.name"),
        None,
        "a scope, not an attribute"
    );
    let (frags, _) = fragments(&req);
    let f = &frags[0];
    assert_eq!(f.arena.get(f.spans[0].scope), "org.hibernate.orm");
}
