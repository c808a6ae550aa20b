//! Zipkin v2 JSON ingest end to end: raw Zipkin bodies (plain and gzip) and
//! the real OpenTelemetry Python SDK with its Zipkin JSON exporter (from
//! PyPI, installed by scripts/test.sh) reach `POST /api/v2/spans`, are
//! answered 202, and the N+1 shows on `/api/findings` exactly as it does
//! through OTLP. Bad bodies are refused with 400/413/415, counted by reason.

mod common;

use std::io::Write as _;
use std::process::Command;
use std::time::Duration;

use common::{Daemon, FAST};

/// `[daemon]` keys: fast completion and a 64 KiB payload cap.
const KEYS: &str = "trace_settle_ms = 200\ntrace_ttl_ms = 60000\nmax_payload_size = 65536\n";
const TEMPLATE: &str = "SELECT * FROM order_items WHERE order_id = ?";
const T0_US: u64 = 1_700_000_000_000_000;

/// A Zipkin v2 JSON body holding one trace: an inbound `GET /orders/{id}`
/// whose handler runs `n` SELECTs with distinct ids, 1 ms apart.
fn n1_body(trace_id: &str, service: &str, n: u64) -> String {
    let root = "00000000000000aa";
    let mut spans = vec![serde_json::json!({
        "traceId": trace_id,
        "id": root,
        "name": "get /orders/{id}",
        "kind": "SERVER",
        "timestamp": T0_US,
        "duration": 100_000,
        "localEndpoint": { "serviceName": service, "ipv4": "10.0.0.7", "port": 8080 },
        "remoteEndpoint": { "ipv4": "10.0.0.1" },
        "tags": { "http.method": "GET", "http.route": "/orders/{id}", "http.status_code": "200" },
        "shared": false,
        "annotations": [{ "timestamp": T0_US + 1, "value": "wr" }],
    })];
    for i in 0..n {
        spans.push(serde_json::json!({
            "traceId": trace_id,
            "id": format!("{:016x}", i + 1),
            "parentId": root,
            "name": "select order_items",
            "kind": "CLIENT",
            "timestamp": T0_US + 1_000 * (i + 1),
            "duration": 500,
            "localEndpoint": { "serviceName": service },
            "remoteEndpoint": { "serviceName": "postgres", "port": 5432 },
            "tags": {
                "db.system": "postgresql",
                "db.statement": format!("SELECT * FROM order_items WHERE order_id = {}", 1000 + i),
                "code.function": "OrderRepository.items",
                "code.filepath": "orders/repo.py",
                "code.lineno": "57",
            },
            "debug": false,
        }));
    }
    serde_json::Value::Array(spans).to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// POSTs `body` to `/api/v2/spans` with the given headers; returns the
/// status, the `Content-Type` and the body.
async fn post(daemon: &Daemon, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String, String) {
    let mut req = reqwest::Client::new()
        .post(daemon.http("/api/v2/spans"))
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, resp.text().await.unwrap())
}

/// POSTs a body that must be refused with `want_status` and a JSON
/// `{code, message}` whose message contains `want_message`.
async fn refused(
    daemon: &Daemon,
    what: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    want_status: u16,
    want_message: &str,
) {
    let (status, content_type, reply) = post(daemon, headers, body.to_vec()).await;
    assert_eq!(status, want_status, "{what}: {reply}");
    assert_eq!(content_type, "application/json", "{what}");
    let reply: serde_json::Value = serde_json::from_str(&reply)
        .unwrap_or_else(|e| panic!("{what}: error body is not JSON ({e}): {reply}"));
    assert!(reply["code"].is_i64(), "{what}: {reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(message.contains(want_message), "{what}: {message}");
}

async fn wait_for_finding(daemon: &Daemon, trace_id: &str) -> serde_json::Value {
    daemon
        .wait_for(Duration::from_secs(20), "the N+1 finding", || async {
            daemon
                .findings(&format!("trace_id={trace_id}&type=n_plus_one_sql"))
                .await
                .into_iter()
                .next()
        })
        .await
}

fn assert_n_plus_one(f: &serde_json::Value, trace_id: &str, service: &str, loops: u64) {
    assert_eq!(f["type"], "n_plus_one_sql", "{f}");
    assert_eq!(f["trace_id"], trace_id);
    assert_eq!(f["service"], service);
    assert_eq!(f["source_endpoint"], "GET /orders/{id}");
    assert_eq!(f["pattern"]["template"], TEMPLATE);
    assert_eq!(f["pattern"]["occurrences"], loops);
    assert_eq!(f["pattern"]["distinct_params"], loops);
    assert_eq!(f["green_impact"]["estimated_extra_io_ops"], loops - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_zipkin_json_plain_and_gzip_reach_findings_and_bad_bodies_are_counted() {
    let mut daemon = Daemon::start(KEYS, "");

    // 1. Plain JSON, 128-bit trace id.
    let plain_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (status, content_type, body) = post(
        &daemon,
        &[("content-type", "application/json")],
        n1_body(plain_trace, "orders-zipkin", 7).into_bytes(),
    )
    .await;
    assert_eq!((status, body.as_str()), (202, ""), "{content_type}");

    // 2. Gzip, no Content-Type at all, 64-bit trace id (left-padded).
    let short_trace = "a3ce929d0e0e4736";
    let (status, _, body) = post(
        &daemon,
        &[("content-encoding", "gzip")],
        gzip(n1_body(short_trace, "cart-zipkin", 5).as_bytes()),
    )
    .await;
    assert_eq!((status, body.as_str()), (202, ""));

    let f = wait_for_finding(&daemon, plain_trace).await;
    assert_n_plus_one(&f, plain_trace, "orders-zipkin", 7);
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["code_location"]["function"], "OrderRepository.items");
    assert_eq!(f["code_location"]["filepath"], "orders/repo.py");
    assert_eq!(f["code_location"]["lineno"], 57);
    let padded = format!("0000000000000000{short_trace}");
    let f = wait_for_finding(&daemon, &padded).await;
    assert_n_plus_one(&f, &padded, "cart-zipkin", 5);

    // 3. Partial acceptance: a span with an invalid id is refused alone.
    let mut spans: Vec<serde_json::Value> =
        serde_json::from_str(&n1_body("0af7651916cd43dd8448eb211c80319c", "partial", 6)).unwrap();
    spans.push(serde_json::json!({ "traceId": "not-hex", "id": "0000000000000001" }));
    let (status, _, _) = post(
        &daemon,
        &[("content-type", "application/json; charset=utf-8")],
        serde_json::Value::Array(spans).to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 202);
    wait_for_finding(&daemon, "0af7651916cd43dd8448eb211c80319c").await;

    // 4. Refusals: status, a JSON {code, message} body, a reason.
    let json = [("content-type", "application/json")];
    let too_big = format!("[{}]", "{},".repeat(30_000)).replace(",]", "]");
    let d = &daemon;
    let js = &json[..];
    refused(
        d,
        "an object",
        js,
        br#"{"spans":[]}"#,
        400,
        "invalid Zipkin v2 JSON",
    )
    .await;
    refused(
        d,
        "an array of numbers",
        js,
        b"[1,2,3]",
        400,
        "Zipkin span object",
    )
    .await;
    refused(
        d,
        "not JSON",
        &[],
        b"<spans/>",
        400,
        "invalid Zipkin v2 JSON",
    )
    .await;
    let bad_ids = br#"[{"traceId":"xyz","id":"1"},{"id":"0000000000000001"}]"#;
    refused(
        d,
        "only invalid ids",
        js,
        bad_ids,
        400,
        "invalid trace or span id",
    )
    .await;
    let text = [("content-type", "text/plain")];
    refused(d, "text/plain", &text, b"[]", 415, "application/json").await;
    let proto = [("content-type", "application/x-protobuf")];
    let hint = "Zipkin v2 spans are application/json";
    refused(d, "protobuf", &proto, b"\x0a\x00", 415, hint).await;
    let gz = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    refused(d, "bad gzip", &gz, b"not gzip at all", 400, "gzip").await;
    refused(
        d,
        "over the cap",
        js,
        too_big.as_bytes(),
        413,
        "max_payload_size",
    )
    .await;
    let bomb = gzip(&vec![b' '; 1 << 20]);
    refused(d, "a gzip bomb", &gz[1..], &bomb, 413, "decompressed").await;
    // An empty batch is fine.
    let (status, _, _) = post(&daemon, &json, b"[]".to_vec()).await;
    assert_eq!(status, 202);

    let metrics = daemon.get("/metrics").await;
    let m = |s: &str| common::metric_value(&metrics, s);
    let rejected = |reason: &str| {
        m(&format!(
            "perf_sentinel_otlp_rejected_total{{reason=\"{reason}\"}}"
        ))
    };
    assert_eq!(rejected("malformed_json"), 3.0, "{metrics}");
    assert_eq!(rejected("invalid_id"), 1.0);
    assert_eq!(rejected("unsupported_media_type"), 2.0);
    assert_eq!(rejected("bad_compression"), 1.0);
    assert_eq!(rejected("payload_too_large"), 1.0);
    assert_eq!(rejected("decompressed_too_large"), 1.0);
    assert_eq!(
        m("perf_sentinel_spans_rejected_total{reason=\"invalid_id\"}"),
        1.0
    );
    // 8 + 6 + 7 spans accepted, all analyzed.
    assert_eq!(m("perf_sentinel_spans_received_total"), 21.0);
    assert_eq!(
        m("perf_sentinel_findings_total{type=\"n_plus_one_sql\",severity=\"warning\"}"),
        3.0
    );

    // Zipkin ingest stays when the JSON API is off.
    assert!(daemon.terminate().success());
    let off = Daemon::start(&format!("{KEYS}api_enabled = false\n"), "");
    let (status, _, _) = post(&off, &json, n1_body(plain_trace, "x", 5).into_bytes()).await;
    assert_eq!(status, 202);
}

/// Runs `tests/tools/zipkin_n_plus_one.py` against the daemon; returns the
/// trace id it printed.
fn python_zipkin_trace(endpoint: &str, service: &str) -> String {
    let python = std::env::var("PERF_SENTINEL_PYTHON").expect(
        "PERF_SENTINEL_PYTHON is not set: run the suite with ./scripts/test.sh, which prepares the Python tools",
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/zipkin_n_plus_one.py");
    let out = Command::new(python)
        .args([script, endpoint, service])
        .output()
        .expect("cannot run the Python Zipkin exporter");
    assert!(
        out.status.success(),
        "the Python Zipkin exporter failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let trace_id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    trace_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_opentelemetry_zipkin_exporter_reports_the_n_plus_one() {
    let mut daemon = Daemon::start(FAST, "");
    let endpoint = daemon.http("/api/v2/spans");
    let trace_id = tokio::task::spawn_blocking(move || python_zipkin_trace(&endpoint, "py-orders"))
        .await
        .unwrap();
    let f = wait_for_finding(&daemon, &trace_id).await;
    assert_n_plus_one(&f, &trace_id, "py-orders", 6);
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["detector"], "n_plus_one_sql");
    // One root and six SELECTs, one span per export (simple processor).
    assert_eq!(
        daemon.metric("perf_sentinel_spans_received_total").await,
        7.0
    );
    assert_eq!(
        daemon
            .metric("perf_sentinel_otlp_rejected_total{reason=\"malformed_json\"}")
            .await,
        0.0
    );
    assert!(daemon.terminate().success());
}
