//! Bad input through the real ports: every malformed, oversized, hostile or
//! half-valid OTLP request gets the status the protocol prescribes, is
//! counted by reason on `/metrics`, never reaches analysis, and the daemon
//! keeps serving the next good request.

mod common;

use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use common::raw_grpc::{export, grpc_client};
use common::{Daemon, FAST, hex, kv, n1_request, request};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::trace::v1::{Span, span};
use prost::Message as _;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Status};

/// The payload cap the daemons here run with.
const LIMIT: usize = 65_536;
/// `[daemon]` keys: fast completion and a 64 KiB payload cap.
const KEYS: &str = "trace_settle_ms = 200\ntrace_ttl_ms = 60000\nmax_payload_size = 65536\n";

/// `google.rpc.Status`, the body of an OTLP/HTTP protobuf error.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// An HTTP answer: status, `Content-Type`, body.
struct Reply {
    status: u16,
    content_type: String,
    body: Bytes,
}

impl Reply {
    /// The body as a `google.rpc.Status` (protobuf error replies).
    fn rpc_status(&self) -> RpcStatus {
        assert_eq!(self.content_type, "application/x-protobuf");
        RpcStatus::decode(self.body.clone())
            .unwrap_or_else(|e| panic!("error body is not a google.rpc.Status ({e})"))
    }

    /// The body as JSON (JSON error replies).
    fn json(&self) -> serde_json::Value {
        assert_eq!(self.content_type, "application/json");
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "error body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as an `ExportTraceServiceResponse` (protobuf successes).
    fn export_response(&self) -> ExportTraceServiceResponse {
        assert_eq!(self.status, 200);
        assert_eq!(self.content_type, "application/x-protobuf");
        ExportTraceServiceResponse::decode(self.body.clone()).unwrap()
    }
}

/// `POST /v1/traces` with the given headers and body.
async fn post(daemon: &Daemon, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> Reply {
    let mut req = reqwest::Client::new()
        .post(daemon.http("/v1/traces"))
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        req = req.header("content-encoding", encoding);
    }
    let resp = req.send().await.expect("the daemon answers");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp.bytes().await.unwrap();
    Reply {
        status,
        content_type,
        body,
    }
}

async fn post_protobuf(daemon: &Daemon, body: Vec<u8>) -> Reply {
    post(daemon, "application/x-protobuf", None, body).await
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A valid N+1 request whose encoding is over 100 KB (a padding attribute on
/// the root span), so only its size is wrong with it.
fn oversized_request(trace_id: [u8; 16]) -> Vec<u8> {
    let mut req = n1_request(trace_id, "oversized", 5);
    req.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(kv("padding", &"p".repeat(100 * 1024)));
    let bytes = req.encode_to_vec();
    assert!(bytes.len() > 100 * 1024);
    bytes
}

/// A valid N+1 request with the bytes of one attribute value replaced by
/// invalid UTF-8 of the same length.
fn invalid_utf8_request(trace_id: [u8; 16]) -> Vec<u8> {
    const MARKER: &[u8] = b"MARKER-XYZ";
    let mut req = n1_request(trace_id, "utf8", 5);
    req.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(kv("note", "MARKER-XYZ"));
    let mut bytes = req.encode_to_vec();
    let at = bytes
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .expect("marker in the encoding");
    bytes[at..at + MARKER.len()].copy_from_slice(b"MARKER-\xff\xfe\xfd");
    assert!(std::str::from_utf8(&bytes[at..at + MARKER.len()]).is_err());
    bytes
}

/// A valid request cut in the middle.
fn truncated_request(trace_id: [u8; 16]) -> Vec<u8> {
    let bytes = n1_request(trace_id, "truncated", 5).encode_to_vec();
    bytes[..bytes.len() / 2].to_vec()
}

/// 16 MiB of zeros gzip-compressed: well under the payload cap on the wire,
/// 256 times over it once inflated.
fn gzip_bomb() -> Vec<u8> {
    let bomb = gzip(&vec![0u8; 16 * 1024 * 1024]);
    assert!(bomb.len() < LIMIT, "the bomb is {} bytes", bomb.len());
    bomb
}

fn rejected(metrics: &str, reason: &str) -> f64 {
    common::metric_value(
        metrics,
        &format!("perf_sentinel_otlp_rejected_total{{reason=\"{reason}\"}}"),
    )
}

/// Every `perf_sentinel_otlp_rejected_total` sample, summed over reasons.
fn rejected_all(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("perf_sentinel_otlp_rejected_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

async fn wait_for_finding(daemon: &Daemon, trace_id: [u8; 16]) -> serde_json::Value {
    let trace_id = hex(&trace_id);
    daemon
        .wait_for(
            Duration::from_secs(15),
            &format!("the finding of trace {trace_id}"),
            || async {
                let all = daemon.trace_findings(&trace_id).await;
                let n1 = all.iter().find(|f| f["type"] == "n_plus_one_sql").cloned();
                n1.or_else(|| all.into_iter().next())
            },
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_bad_requests_by_reason_and_keeps_serving() {
    let daemon = Daemon::start(KEYS, "");
    let invalid_argument = Code::InvalidArgument as i32;

    // A valid request cut in the middle.
    let r = post_protobuf(&daemon, truncated_request([0x01; 16])).await;
    assert_eq!(r.status, 400);
    let s = r.rpc_status();
    assert_eq!(s.code, invalid_argument, "{s:?}");
    assert!(!s.message.is_empty(), "{s:?}");

    // Invalid JSON.
    let r = post(
        &daemon,
        "application/json",
        None,
        br#"{"resourceSpans": ["#.to_vec(),
    )
    .await;
    assert_eq!(r.status, 400);
    let j = r.json();
    assert_eq!(j["code"], invalid_argument, "{j}");
    assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()), "{j}");

    // An empty JSON body is not a JSON document.
    let r = post(&daemon, "application/json", None, Vec::new()).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().is_some_and(|m| !m.is_empty()));

    // An empty protobuf body is an empty ExportTraceServiceRequest: valid.
    let r = post_protobuf(&daemon, Vec::new()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.export_response().partial_success, None);

    // A content type OTLP does not define.
    let r = post(
        &daemon,
        "text/plain",
        None,
        n1_request([0x02; 16], "plain", 5).encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, 415);
    assert!(!r.rpc_status().message.is_empty());

    // A content encoding the daemon does not speak.
    let r = post(
        &daemon,
        "application/x-protobuf",
        Some("br"),
        n1_request([0x03; 16], "brotli", 5).encode_to_vec(),
    )
    .await;
    assert_eq!(r.status, 415);
    assert!(!r.rpc_status().message.is_empty());

    // Over max_payload_size on the wire.
    let r = post_protobuf(&daemon, oversized_request([0x04; 16])).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.rpc_status().code, Code::ResourceExhausted as i32);

    // Under it on the wire, far over it inflated.
    let r = post(&daemon, "application/x-protobuf", Some("gzip"), gzip_bomb()).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.rpc_status().code, Code::ResourceExhausted as i32);

    // Invalid UTF-8 in a string field.
    let r = post_protobuf(&daemon, invalid_utf8_request([0x05; 16])).await;
    assert_eq!(r.status, 400);
    let s = r.rpc_status();
    assert_eq!(s.code, invalid_argument, "{s:?}");
    assert!(!s.message.is_empty());

    // The refusals, each counted once under its reason, and nothing received.
    let metrics = daemon.get("/metrics").await;
    for (reason, n) in [
        ("malformed_protobuf", 1.0),
        ("malformed_json", 2.0),
        ("unsupported_media_type", 1.0),
        ("unsupported_encoding", 1.0),
        ("payload_too_large", 1.0),
        ("decompressed_too_large", 1.0),
        ("invalid_utf8", 1.0),
    ] {
        assert_eq!(rejected(&metrics, reason), n, "reason {reason}:\n{metrics}");
    }
    assert_eq!(rejected_all(&metrics), 8.0, "{metrics}");
    assert_eq!(
        common::metric_value(&metrics, "perf_sentinel_spans_received_total"),
        0.0,
        "{metrics}"
    );

    // The daemon still serves: a good request is answered and analyzed.
    let good = [0x0a; 16];
    let r = post_protobuf(&daemon, n1_request(good, "good", 6).encode_to_vec()).await;
    assert_eq!(r.export_response().partial_success, None);
    let f = wait_for_finding(&daemon, good).await;
    assert_eq!(f["type"], "n_plus_one_sql", "{f}");
    assert_eq!(f["service"], "good");
    assert_eq!(f["pattern"]["occurrences"], 6);

    let metrics = daemon.get("/metrics").await;
    let m = |s: &str| common::metric_value(&metrics, s);
    assert_eq!(m("perf_sentinel_spans_received_total"), 7.0, "{metrics}");
    assert_eq!(m("perf_sentinel_spans_analyzed_total"), 7.0, "{metrics}");
    assert_eq!(rejected_all(&metrics), 8.0, "{metrics}");
    assert_eq!(
        daemon.findings("type=n_plus_one_sql").await.len(),
        1,
        "no refused request reached analysis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_only_the_spans_with_invalid_ids() {
    let daemon = Daemon::start(FAST, "");
    let good = [0x33; 16];
    let mut req = n1_request(good, "mixed", 5);
    req.resource_spans[0].scope_spans[0].spans.push(Span {
        trace_id: vec![0; 16],
        span_id: vec![9; 8],
        name: "SELECT lost".into(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: common::T0,
        end_time_unix_nano: common::T0 + 1_000_000,
        attributes: vec![kv("db.statement", "SELECT 1")],
        ..Span::default()
    });
    let r = post_protobuf(&daemon, req.encode_to_vec()).await;
    let partial = r
        .export_response()
        .partial_success
        .expect("a partial success");
    assert_eq!(partial.rejected_spans, 1, "{partial:?}");
    assert!(!partial.error_message.is_empty(), "{partial:?}");

    let f = wait_for_finding(&daemon, good).await;
    assert_eq!(f["service"], "mixed");
    assert_eq!(f["pattern"]["occurrences"], 5);

    let metrics = daemon.get("/metrics").await;
    let m = |s: &str| common::metric_value(&metrics, s);
    assert_eq!(
        m("perf_sentinel_spans_rejected_total{reason=\"invalid_id\"}"),
        1.0,
        "{metrics}"
    );
    assert_eq!(m("perf_sentinel_spans_received_total"), 6.0, "{metrics}");
    assert_eq!(m("perf_sentinel_spans_analyzed_total"), 6.0, "{metrics}");
    assert_eq!(rejected_all(&metrics), 0.0, "the request was accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_come_back_intact_as_valid_json() {
    let mut daemon = Daemon::start(FAST, "");
    let hostile = "<script>alert(\"x\")</script> 'q' \"dq\"\n\u{1b}[31mred\u{1b}[0m";
    let service = format!("svc {hostile}");
    let route = format!("/orders/{{id}}{hostile}");
    let padding = "x".repeat(100 * 1024);
    let trace_id = [0x44; 16];
    let root_id = [0xaa; 8];
    let mut spans = vec![Span {
        trace_id: trace_id.to_vec(),
        span_id: root_id.to_vec(),
        name: "GET /orders/{id}".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: common::T0,
        end_time_unix_nano: common::T0 + 100_000_000,
        attributes: vec![kv("http.request.method", "GET"), kv("http.route", &route)],
        ..Span::default()
    }];
    for i in 0..5u64 {
        let start = common::T0 + 1_000_000 * (i + 1);
        // A quoted identifier stays in the template; the literals do not.
        let statement = format!(
            "SELECT \"<script>alert('x')</script>\", \"\u{1b}[31m\" FROM items \
             WHERE id = {i} AND note = '{hostile}' AND pad = '{padding}'"
        );
        assert!(statement.len() > 100 * 1024);
        spans.push(Span {
            trace_id: trace_id.to_vec(),
            span_id: (i + 1).to_be_bytes().to_vec(),
            parent_span_id: root_id.to_vec(),
            name: "SELECT items".into(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + 500_000,
            attributes: vec![
                kv("db.system", "postgresql"),
                kv("db.statement", &statement),
            ],
            ..Span::default()
        });
    }
    let r = post_protobuf(&daemon, request(&service, spans).encode_to_vec()).await;
    assert_eq!(r.export_response().partial_success, None);

    // Valid JSON on the API (`findings` parses it), strings intact.
    let f = wait_for_finding(&daemon, trace_id).await;
    assert_eq!(f["type"], "n_plus_one_sql", "{f}");
    assert_eq!(f["service"], service.as_str());
    assert_eq!(f["source_endpoint"], format!("GET {route}"));
    assert_eq!(f["pattern"]["occurrences"], 5);
    assert_eq!(f["pattern"]["distinct_params"], 5);
    let template = f["pattern"]["template"].as_str().unwrap();
    assert!(
        template.starts_with(
            "SELECT \"<script>alert('x')</script>\", \"\u{1b}[31m\" FROM items WHERE id = ?"
        ),
        "{template:?}"
    );
    assert!(
        !template.contains(hostile),
        "literals are not in the template"
    );
    let raw = daemon
        .get(&format!("/api/findings?trace_id={}", hex(&trace_id)))
        .await;
    assert!(
        serde_json::from_str::<serde_json::Value>(&raw).is_ok(),
        "/api/findings is not JSON"
    );
    assert!(
        !raw.contains('\u{1b}') && !raw.contains('\n'),
        "control characters are escaped"
    );

    // The statements were cut to the 64 KiB cap, once each.
    assert_eq!(
        daemon.metric("perf_sentinel_strings_truncated_total").await,
        5.0
    );

    // Still serving; stdout is NDJSON, one finding per line, escaped.
    let next = [0x45; 16];
    post_protobuf(
        &daemon,
        n1_request(next, "after-hostile", 5).encode_to_vec(),
    )
    .await
    .export_response();
    wait_for_finding(&daemon, next).await;
    let status = daemon.terminate();
    assert!(status.success(), "exit status {status}");
    let lines = daemon.stdout_lines();
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "no raw escape reaches the terminal"
    );
    let printed = daemon.stdout_findings();
    let hostile_line = printed
        .iter()
        .find(|p| p["trace_id"] == hex(&trace_id))
        .expect("the hostile finding on stdout");
    assert_eq!(hostile_line["service"], service.as_str());
    assert!(printed.iter().any(|p| p["trace_id"] == hex(&next)));
}

// ---------------------------------------------------------------- gRPC

fn expect_code(result: Result<ExportTraceServiceResponse, Status>, code: Code, what: &str) {
    match result {
        Ok(r) => panic!("{what}: answered OK ({r:?}), expected {code:?}"),
        Err(s) => {
            assert_eq!(s.code(), code, "{what}: {s:?}");
            assert!(!s.message().is_empty(), "{what}: {s:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_bad_messages_by_reason_and_keeps_serving() {
    let daemon = Daemon::start(KEYS, "");
    let mut grpc = grpc_client(&daemon).await;

    let r = export(&mut grpc, truncated_request([0x01; 16])).await;
    expect_code(r, Code::InvalidArgument, "truncated protobuf");

    let r = export(&mut grpc, invalid_utf8_request([0x02; 16])).await;
    expect_code(r, Code::InvalidArgument, "invalid UTF-8");

    let r = export(&mut grpc, oversized_request([0x03; 16])).await;
    expect_code(r, Code::ResourceExhausted, "message over max_payload_size");

    let mut gzipped = grpc_client(&daemon)
        .await
        .send_compressed(CompressionEncoding::Gzip);
    let r = export(&mut gzipped, vec![0u8; 16 * 1024 * 1024]).await;
    expect_code(r, Code::ResourceExhausted, "gzip bomb");

    let metrics = daemon.get("/metrics").await;
    for reason in [
        "malformed_protobuf",
        "invalid_utf8",
        "payload_too_large",
        "decompressed_too_large",
    ] {
        assert_eq!(
            rejected(&metrics, reason),
            1.0,
            "reason {reason}:\n{metrics}"
        );
    }
    assert_eq!(rejected_all(&metrics), 4.0, "{metrics}");
    assert_eq!(
        common::metric_value(&metrics, "perf_sentinel_spans_received_total"),
        0.0
    );

    // The same connection still serves a good request, compressed or not.
    let good = [0x0b; 16];
    let reply = export(&mut grpc, n1_request(good, "grpc-good", 6).encode_to_vec())
        .await
        .expect("a good request is answered OK");
    assert_eq!(reply.partial_success, None);
    let f = wait_for_finding(&daemon, good).await;
    assert_eq!(f["service"], "grpc-good");
    assert_eq!(f["pattern"]["occurrences"], 6);

    let zipped = [0x0c; 16];
    let reply = export(
        &mut gzipped,
        n1_request(zipped, "grpc-gzip", 5).encode_to_vec(),
    )
    .await
    .expect("a good compressed request is answered OK");
    assert_eq!(reply.partial_success, None);
    wait_for_finding(&daemon, zipped).await;

    let metrics = daemon.get("/metrics").await;
    let m = |s: &str| common::metric_value(&metrics, s);
    assert_eq!(m("perf_sentinel_spans_received_total"), 13.0, "{metrics}");
    assert_eq!(rejected_all(&metrics), 4.0, "{metrics}");
    assert_eq!(daemon.findings("type=n_plus_one_sql").await.len(), 2);
}

/// A request whose only span has a 3-byte trace id.
fn absurd_id_request() -> Vec<u8> {
    request(
        "absurd",
        vec![Span {
            trace_id: vec![1, 2, 3],
            span_id: vec![7; 8],
            name: "GET /".into(),
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: common::T0,
            end_time_unix_nano: common::T0 + 1_000_000,
            ..Span::default()
        }],
    )
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_of_only_invalid_ids_is_refused_and_counted_once() {
    let daemon = Daemon::start(FAST, "");

    let r = post_protobuf(&daemon, absurd_id_request()).await;
    assert_eq!(r.status, 400);
    let s = r.rpc_status();
    assert_eq!(s.code, Code::InvalidArgument as i32, "{s:?}");
    assert!(!s.message.is_empty());
    let metrics = daemon.get("/metrics").await;
    assert_eq!(
        rejected(&metrics, "invalid_id"),
        1.0,
        "one refused HTTP request:\n{metrics}"
    );
    assert_eq!(rejected_all(&metrics), 1.0, "{metrics}");

    let mut grpc = grpc_client(&daemon).await;
    let r = export(&mut grpc, absurd_id_request()).await;
    expect_code(r, Code::InvalidArgument, "3-byte trace id");
    let metrics = daemon.get("/metrics").await;
    assert_eq!(
        rejected(&metrics, "invalid_id"),
        2.0,
        "one refused HTTP and one refused gRPC request:\n{metrics}"
    );
    assert_eq!(rejected_all(&metrics), 2.0, "{metrics}");
    assert_eq!(
        common::metric_value(&metrics, "perf_sentinel_spans_received_total"),
        0.0
    );

    // Both ports still serve.
    let (over_http, over_grpc) = ([0x0d; 16], [0x0e; 16]);
    post_protobuf(
        &daemon,
        n1_request(over_http, "after-absurd", 5).encode_to_vec(),
    )
    .await
    .export_response();
    export(
        &mut grpc,
        n1_request(over_grpc, "after-absurd", 5).encode_to_vec(),
    )
    .await
    .expect("a good request is answered OK");
    wait_for_finding(&daemon, over_http).await;
    wait_for_finding(&daemon, over_grpc).await;
}
