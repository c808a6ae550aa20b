//! The spine end to end: real OpenTelemetry exporters (gRPC and
//! HTTP/protobuf) and a raw OTLP/JSON POST reach the real daemon, which
//! reports the N+1 on `/api/findings`, on stdout and in `/metrics`; SIGTERM
//! analyzes what is still buffered and exits 0.

mod common;

use std::time::Duration;

use common::{Daemon, FAST, hex};
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// Emits one request trace with `loops` SELECTs of distinct ids through
/// `provider`; returns its trace id.
fn emit_n_plus_one(provider: &SdkTracerProvider, loops: u32) -> String {
    let tracer = provider.tracer("e2e");
    let root = tracer
        .span_builder("GET /orders/{id}")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/orders/{id}"),
        ])
        .start(&tracer);
    let trace_id = root.span_context().trace_id().to_string();
    let cx = Context::current_with_span(root);
    for i in 0..loops {
        let mut span = tracer
            .span_builder("SELECT order_items")
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("db.system.name", "postgresql"),
                KeyValue::new(
                    "db.query.text",
                    format!("SELECT * FROM order_items WHERE order_id = {}", 1000 + i),
                ),
                KeyValue::new("code.function.name", "OrderRepository.items"),
                KeyValue::new("code.file.path", "src/orders/repo.rs"),
                KeyValue::new("code.line.number", 57),
            ])
            .start_with_context(&tracer, &cx);
        span.end();
    }
    cx.span().end();
    trace_id
}

fn provider(exporter: opentelemetry_otlp::SpanExporter, service: &str) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(
            Resource::builder_empty()
                .with_service_name(service.to_owned())
                .build(),
        )
        .build()
}

/// Emits the trace and shuts the provider down on a blocking thread that
/// has entered the runtime: the SDK's simple processor blocks on each export,
/// and the exporters' I/O needs the runtime's reactor.
async fn emit(provider: SdkTracerProvider, loops: u32) -> String {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _runtime = handle.enter();
        let trace_id = emit_n_plus_one(&provider, loops);
        provider.force_flush().expect("flush");
        provider.shutdown().expect("shutdown");
        trace_id
    })
    .await
    .unwrap()
}

async fn wait_for_finding(daemon: &Daemon, trace_id: &str) -> serde_json::Value {
    daemon
        .wait_for(Duration::from_secs(20), "the N+1 finding", || async {
            daemon
                .findings(&format!("trace_id={trace_id}"))
                .await
                .into_iter()
                .find(|f| {
                    f["type"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("n_plus_one_"))
                })
        })
        .await
}

fn assert_n_plus_one(f: &serde_json::Value, service: &str, loops: u64) {
    assert_eq!(f["type"], "n_plus_one_sql", "{f}");
    assert_eq!(f["service"], service);
    assert_eq!(f["source_endpoint"], "GET /orders/{id}");
    assert_eq!(
        f["pattern"]["template"],
        "SELECT * FROM order_items WHERE order_id = ?"
    );
    assert_eq!(f["pattern"]["occurrences"], loops);
    assert_eq!(f["pattern"]["distinct_params"], loops);
    assert_eq!(f["detector"], "n_plus_one_sql");
    assert_eq!(f["origin"], "builtin");
    assert_eq!(f["confidence"], "daemon_staging");
    assert_eq!(f["code_location"]["function"], "OrderRepository.items");
    assert_eq!(f["code_location"]["lineno"], 57);
    assert_eq!(f["green_impact"]["estimated_extra_io_ops"], loops - 1);
    assert!(f["signature"].as_str().is_some_and(|s| !s.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_exporters_and_raw_json_reach_findings_stdout_and_metrics() {
    let mut daemon = Daemon::start(FAST, "");

    // 1. gRPC, through the real OTLP exporter, gzip-compressed.
    let grpc = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(daemon.grpc_endpoint())
        .with_compression(opentelemetry_otlp::Compression::Gzip)
        .build()
        .unwrap();
    let grpc_trace = emit(provider(grpc, "checkout-grpc"), 12).await;
    let f = wait_for_finding(&daemon, &grpc_trace).await;
    assert_n_plus_one(&f, "checkout-grpc", 12);
    assert_eq!(f["severity"], "critical", "12 occurrences are critical");

    // 2. HTTP/protobuf, through the real OTLP exporter.
    let http = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(daemon.http("/v1/traces"))
        .build()
        .unwrap();
    let http_trace = emit(provider(http, "checkout-http"), 6).await;
    let f = wait_for_finding(&daemon, &http_trace).await;
    assert_n_plus_one(&f, "checkout-http", 6);
    assert_eq!(f["severity"], "warning");

    // 3. Raw OTLP/JSON: hex ids, string-encoded int64, enums as integers.
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/n_plus_one_http.otlp.json"
    ))
    .unwrap();
    let resp = reqwest::Client::new()
        .post(daemon.http("/v1/traces"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let reply: serde_json::Value = resp.json().await.unwrap();
    assert!(
        reply
            .get("partialSuccess")
            .is_none_or(|p| p.is_null() || p.get("rejectedSpans").is_none()),
        "nothing rejected: {reply}"
    );
    let json_trace = "5b8efff798038103d269b633813fc60c";
    let f = wait_for_finding(&daemon, json_trace).await;
    assert_eq!(f["type"], "n_plus_one_http");
    assert_eq!(f["service"], "cart");
    assert_eq!(f["source_endpoint"], "GET /cart");
    assert_eq!(
        f["pattern"]["template"],
        "GET catalog.internal:8080/products/{id}"
    );
    assert_eq!(f["pattern"]["occurrences"], 5);

    // Filters.
    assert_eq!(
        daemon
            .findings("service=cart&type=n_plus_one_http")
            .await
            .len(),
        1
    );
    assert_eq!(daemon.findings("type=n_plus_one_sql").await.len(), 2);
    assert_eq!(
        daemon
            .findings("severity=critical&type=n_plus_one_sql")
            .await
            .len(),
        1
    );
    assert_eq!(daemon.findings("limit=1").await.len(), 1);
    let newest = daemon.findings("").await;
    assert_eq!(newest[0]["trace_id"], json_trace, "newest first");
    let bad = reqwest::get(daemon.http("/api/findings?severity=loud"))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // Metrics: 13 + 7 + 6 spans received and analyzed, 3 findings.
    let metrics = daemon.get("/metrics").await;
    let m = |s: &str| common::metric_value(&metrics, s);
    assert_eq!(m("perf_sentinel_spans_received_total"), 26.0, "{metrics}");
    assert_eq!(m("perf_sentinel_spans_analyzed_total"), 26.0);
    assert_eq!(
        m("perf_sentinel_traces_analyzed_total{reason=\"complete\"}"),
        3.0
    );
    assert_eq!(
        m("perf_sentinel_findings_total{type=\"n_plus_one_sql\",severity=\"critical\"}"),
        1.0
    );
    assert_eq!(
        m("perf_sentinel_findings_total{type=\"n_plus_one_sql\",severity=\"warning\"}"),
        1.0
    );
    assert_eq!(
        m("perf_sentinel_findings_total{type=\"n_plus_one_http\",severity=\"warning\"}"),
        1.0
    );
    assert_eq!(m("perf_sentinel_active_traces"), 0.0);
    // I/O accounting: 12 + 6 SQL calls and 5 HTTP calls, of which 11 + 5 + 4
    // could have been one call each.
    assert_eq!(m("perf_sentinel_io_ops_total"), 23.0);
    assert_eq!(m("perf_sentinel_avoidable_io_ops_total"), 20.0);
    assert!((m("perf_sentinel_io_waste_ratio") - 20.0 / 23.0).abs() < 1e-9);

    let status: serde_json::Value = serde_json::from_str(&daemon.get("/api/status").await).unwrap();
    assert_eq!(status["spans_received"], 26);
    // Three N+1 findings, and the io_waste finding of each of their traces.
    assert_eq!(status["findings_retained"], 6);
    assert_eq!(daemon.findings("type=io_waste").await.len(), 3);
    assert_eq!(daemon.get("/health").await, r#"{"status":"ok"}"#);

    // A trace whose root never arrives stays buffered (TTL 60 s)...
    let mut pending = common::n1_request([0x77; 16], "pending-svc", 7);
    pending.resource_spans[0].scope_spans[0].spans.remove(0);
    post_protobuf(&daemon, &pending).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        daemon.findings("service=pending-svc").await.is_empty(),
        "not analyzed before its root or TTL"
    );
    assert_eq!(daemon.metric("perf_sentinel_active_traces").await, 1.0);

    // ...until SIGTERM: analyzed, printed, exit 0.
    let status = daemon.terminate();
    assert!(status.success(), "exit status {status}");
    let printed = daemon.stdout_findings();
    let ids: Vec<&str> = printed
        .iter()
        .filter_map(|f| f["trace_id"].as_str())
        .collect();
    for t in [
        grpc_trace.as_str(),
        http_trace.as_str(),
        json_trace,
        &hex(&[0x77; 16]),
    ] {
        assert!(ids.contains(&t), "trace {t} missing from stdout: {ids:?}");
    }
    let pending = printed
        .iter()
        .find(|f| f["service"] == "pending-svc" && f["type"] == "n_plus_one_sql")
        .unwrap();
    assert_eq!(pending["pattern"]["occurrences"], 7);
    assert_eq!(
        pending["source_endpoint"], "",
        "the inbound root never arrived"
    );
}

async fn post_protobuf(
    daemon: &Daemon,
    request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) {
    use prost::Message;
    let resp = reqwest::Client::new()
        .post(daemon.http("/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
