//! The sharded topology behind a real OpenTelemetry Collector: one Collector
//! (built by `scripts/install-test-tools.sh` with ocb: OTLP receiver, OTLP
//! and loadbalancing exporters) routes by trace id, with a static resolver,
//! to two daemons. Traces sent through it with the real OTLP exporter each
//! give their findings on exactly one daemon, and the same findings as one
//! daemon that saw all the traffic. The static-resolver example
//! configuration is validated by the same Collector.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Daemon, FAST, TempDir, free_port};
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use serde_json::Value;

const TRACES: u32 = 40;

/// The Collector binary. A missing variable fails the test (as for the
/// chart tools): the suite runs through `./scripts/test.sh`, which builds
/// the Collector and exports its path.
fn otelcol() -> PathBuf {
    let var = "PERF_SENTINEL_OTELCOL";
    let path = std::env::var_os(var).unwrap_or_else(|| {
        panic!(
            "{var} is not set: run the suite with ./scripts/test.sh, which builds the \
             OpenTelemetry Collector (scripts/install-test-tools.sh) and exports its path"
        )
    });
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "{var} names {}, which does not exist: run ./scripts/test.sh again",
        path.display()
    );
    path
}

/// A running Collector, killed on drop.
struct Collector {
    child: Child,
    grpc_port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl Collector {
    /// Starts the Collector: OTLP/gRPC in on a free loopback port, out to
    /// `backends` (gRPC `host:port`) by trace id.
    fn start(backends: &[String]) -> Collector {
        let dir = TempDir::new("otelcol");
        let grpc_port = free_port();
        let hostnames: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
        let config = format!(
            r#"receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc_port}
exporters:
  loadbalancing:
    routing_key: traceID
    protocol:
      otlp:
        timeout: 5s
        tls:
          insecure: true
    resolver:
      static:
        hostnames: [{}]
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [loadbalancing]
"#,
            hostnames.join(", ")
        );
        let config_path = dir.0.join("otelcol.yaml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.0.join("otelcol.log");
        let child = Command::new(otelcol())
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.0.join("otelcol.out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start the OpenTelemetry Collector");
        let mut collector = Collector {
            child,
            grpc_port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", grpc_port)).is_err() {
            if let Ok(Some(status)) = collector.child.try_wait() {
                panic!(
                    "the Collector exited at startup ({status}):\n{}",
                    collector.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the Collector did not listen within 30 s:\n{}",
                collector.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        collector
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Trace `n`: an inbound request of service `svc-{n % 3}` running `loops`
/// SELECTs of distinct ids (an N+1 from 5 on), each SELECT also followed by
/// an HTTP call to one fixed URL (an N+1 of HTTP calls from 5 on).
/// Returns the trace id.
fn emit_trace(provider: &SdkTracerProvider, n: u32) -> String {
    let tracer = provider.tracer("sharding-e2e");
    let loops = 2 + n % 7;
    let root = tracer
        .span_builder("GET /orders/{id}")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/orders/{id}"),
            KeyValue::new("shard.test.trace", i64::from(n)),
        ])
        .start(&tracer);
    let trace_id = root.span_context().trace_id().to_string();
    let cx = Context::current_with_span(root);
    for i in 0..loops {
        tracer
            .span_builder("SELECT order_items")
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("db.system.name", "postgresql"),
                KeyValue::new(
                    "db.query.text",
                    format!("SELECT * FROM order_items WHERE order_id = {}", 100 * n + i),
                ),
            ])
            .start_with_context(&tracer, &cx)
            .end();
        tracer
            .span_builder("GET")
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("url.full", format!("http://stock/items/{}", 7 * n + i)),
                KeyValue::new("server.address", "stock"),
            ])
            .start_with_context(&tracer, &cx)
            .end();
    }
    cx.span().end();
    trace_id
}

fn exporter(endpoint: String) -> opentelemetry_otlp::SpanExporter {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(10))
        .with_compression(opentelemetry_otlp::Compression::Gzip)
        .build()
        .expect("OTLP exporter");
    exporter.set_resource(&resource());
    exporter
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_service_name("checkout")
        .build()
}

/// Keeps the spans the SDK ends, to export them in chosen batches.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Recorder {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

/// Makes every trace with the SDK, then exports the very same spans with
/// the OTLP gRPC exporter through the Collector and to the reference
/// daemon, `BATCH` spans per request: the traces' spans are interleaved
/// and most traces are cut over two requests, so the Collector must split
/// requests by trace and send the parts of one trace to one daemon.
/// Returns the trace ids and the span count.
async fn send(collector: String, reference: String) -> (Vec<String>, u64) {
    const BATCH: usize = 23;
    let recorder = Recorder::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(recorder.clone())
        .with_resource(resource())
        .build();
    let mut ids = Vec::new();
    for n in 0..TRACES {
        ids.push(emit_trace(&provider, n));
    }
    provider.shutdown().expect("shutdown");
    let spans = std::mem::take(&mut *recorder.0.lock().unwrap());
    let (through, direct) = (exporter(collector), exporter(reference));
    for chunk in spans.chunks(BATCH) {
        through
            .export(chunk.to_vec())
            .await
            .expect("export through the Collector");
        direct
            .export(chunk.to_vec())
            .await
            .expect("export to the single daemon");
    }
    (ids, spans.len() as u64)
}

async fn analyzed(daemon: &Daemon) -> f64 {
    daemon.metric("perf_sentinel_spans_analyzed_total").await
}

/// A finding without what depends on when or where it was seen.
fn comparable(mut f: Value) -> Value {
    if let Some(obj) = f.as_object_mut() {
        for key in ["detected_at", "first_seen", "last_seen", "timestamp"] {
            obj.remove(key);
        }
    }
    f
}

fn sorted(list: Vec<Value>) -> Vec<Value> {
    let mut list: Vec<Value> = list.into_iter().map(comparable).collect();
    list.sort_by_key(|f| f.to_string());
    list
}

/// Findings printed on stdout, by trace id.
fn printed_by_trace(daemon: &Daemon) -> BTreeMap<String, Vec<Value>> {
    let mut by_trace: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for f in daemon.stdout_findings() {
        let id = f["trace_id"].as_str().unwrap_or_default().to_owned();
        by_trace.entry(id).or_default().push(comparable(f));
    }
    by_trace
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_trace_is_analyzed_once_behind_the_collector_as_by_one_daemon() {
    // Windows and correlations are per daemon, so only per-trace detectors
    // are compared; cross-trace ones are documented as per shard.
    let shards = [Daemon::start(FAST, ""), Daemon::start(FAST, "")];
    let reference = Daemon::start(FAST, "");
    let backends: Vec<String> = shards
        .iter()
        .map(|d| format!("127.0.0.1:{}", d.grpc_port))
        .collect();
    let collector = Collector::start(&backends);

    let (ids, spans) = send(
        format!("http://127.0.0.1:{}", collector.grpc_port),
        reference.grpc_endpoint(),
    )
    .await;
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());

    // Every span reaches exactly one shard: together they analyzed what the
    // reference analyzed, which is everything sent.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b, r) = (
            analyzed(&shards[0]).await,
            analyzed(&shards[1]).await,
            analyzed(&reference).await,
        );
        if a + b == spans as f64 && r == spans as f64 {
            assert!(
                a > 0.0 && b > 0.0,
                "the Collector sent everything to one daemon ({a} / {b} spans)"
            );
            break;
        }
        assert!(
            a + b <= spans as f64,
            "the shards analyzed {a} + {b} spans, more than the {spans} sent"
        );
        assert!(
            Instant::now() < deadline,
            "after 60 s the shards analyzed {a} + {b} spans and the reference {r}, \
             of {spans} sent\nCollector log:\n{}",
            collector.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // No trace was cut in two by the routing.
    for d in shards.iter().chain([&reference]) {
        assert_eq!(d.metric("perf_sentinel_late_spans_total").await, 0.0);
    }

    // Analyzed spans are counted once their trace's findings are stored.
    let mut with_findings = 0;
    for id in &ids {
        let path = format!("/api/findings/{id}");
        let expected = sorted(reference.trace_findings(id).await);
        let on_shards = [
            sorted(shards[0].trace_findings(id).await),
            sorted(shards[1].trace_findings(id).await),
        ];
        let holders = on_shards.iter().filter(|l| !l.is_empty()).count();
        if expected.is_empty() {
            assert_eq!(
                holders, 0,
                "{path}: findings on a shard, none on one daemon"
            );
            continue;
        }
        with_findings += 1;
        assert_eq!(holders, 1, "{path}: findings on {holders} shards");
        let on_shard = on_shards.into_iter().find(|l| !l.is_empty()).unwrap();
        assert_eq!(on_shard, expected, "{path}: shard and single daemon differ");
    }
    // Traces with loops >= 5 carry an N+1 of each kind.
    let expected_with = (0..TRACES).filter(|n| 2 + n % 7 >= 5).count();
    assert_eq!(with_findings, expected_with);

    // The same on stdout (NDJSON): each trace's lines once across shards.
    let mut shard_docs = Vec::new();
    for mut d in shards {
        assert!(d.terminate().success());
        shard_docs.push(printed_by_trace(&d));
    }
    let mut reference = reference;
    assert!(reference.terminate().success());
    let single = printed_by_trace(&reference);
    assert_eq!(single.len(), expected_with, "{single:?}");
    for (id, lines) in &single {
        let holders: Vec<&Vec<Value>> = shard_docs.iter().filter_map(|m| m.get(id)).collect();
        assert_eq!(
            holders.len(),
            1,
            "trace {id} printed by {} shards",
            holders.len()
        );
        let mut got = holders[0].clone();
        let mut want = lines.clone();
        got.sort_by_key(|f| f.to_string());
        want.sort_by_key(|f| f.to_string());
        assert_eq!(got, want, "trace {id}: stdout differs");
    }
    let printed_on_shards: usize = shard_docs.iter().map(BTreeMap::len).sum();
    assert_eq!(printed_on_shards, single.len());
}

/// The example for daemons at fixed addresses is a configuration the real
/// Collector accepts (`validate` decodes every component's settings and
/// refuses unknown keys).
#[test]
fn the_static_shards_example_is_a_valid_collector_configuration() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/otel-collector-static-shards.yaml");
    let out = Command::new(otelcol())
        .arg("validate")
        .arg("--config")
        .arg(&example)
        .output()
        .expect("run the Collector");
    assert!(
        out.status.success(),
        "{}: {}{}",
        example.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
