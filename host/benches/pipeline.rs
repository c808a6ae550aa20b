//! Criterion benches of the per-span and per-trace hot path: normalization,
//! OTLP decode + conversion, and window insert + completion + detection over
//! synthetic traces (a mix of N+1 loops and clean requests).
//!
//! `cargo bench -p perf-sentinel --bench pipeline`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use perf_sentinel::config::Config;
use perf_sentinel::findings::Stamp;
use perf_sentinel::green::{EnergyState, GreenScorer};
use perf_sentinel::ingest::convert::{ConvertLimits, convert, convert_wire};
use perf_sentinel::metrics::Metrics;
use perf_sentinel::normalize::{normalize_http, normalize_sql};
use perf_sentinel::pipeline::analyze::{Analyzer, PrepScratch, prepare, with_view};
use perf_sentinel::pipeline::detectors::ActiveDetector;
use perf_sentinel::registry::Registry;
use perf_sentinel::window::{TraceWindow, WindowLimits};
use prost::Message;

// The daemon's allocator, so allocation costs match what it pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

/// `traces` traces of `spans_per_trace` spans: every other trace is an N+1
/// (the same SELECT with distinct ids), the others issue distinct queries
/// and an outbound HTTP call per span.
fn synthetic_request(
    traces: usize,
    spans_per_trace: usize,
    seed: u64,
) -> ExportTraceServiceRequest {
    let t0 = 1_700_000_000_000_000_000u64;
    let mut spans = Vec::with_capacity(traces * spans_per_trace);
    for t in 0..traces {
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&seed.to_be_bytes());
        trace_id[8..].copy_from_slice(&(t as u64 + 1).to_be_bytes());
        let root = [1u8; 8];
        spans.push(Span {
            trace_id: trace_id.to_vec(),
            span_id: root.to_vec(),
            name: "GET /orders/{id}".into(),
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: t0,
            end_time_unix_nano: t0 + 50_000_000,
            attributes: vec![
                kv("http.request.method", "GET"),
                kv("http.route", "/orders/{id}"),
            ],
            ..Span::default()
        });
        for i in 1..spans_per_trace {
            let start = t0 + i as u64 * 100_000;
            let attributes = if t % 2 == 0 {
                vec![
                    kv("db.system", "postgresql"),
                    kv(
                        "db.statement",
                        &format!(
                            "SELECT id, name, price FROM order_items WHERE order_id = {i} AND status = 'open'"
                        ),
                    ),
                ]
            } else if i % 2 == 0 {
                vec![
                    kv("db.system", "postgresql"),
                    kv(
                        "db.statement",
                        &format!("UPDATE audit_{i} SET seen = true WHERE id = 7"),
                    ),
                ]
            } else {
                vec![
                    kv("http.request.method", "GET"),
                    kv(
                        "url.full",
                        &format!("http://inventory:8080/v2/stock-{i}?warehouse=eu-{i}"),
                    ),
                ]
            };
            spans.push(Span {
                trace_id: trace_id.to_vec(),
                span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                parent_span_id: root.to_vec(),
                name: "call".into(),
                kind: span::SpanKind::Client as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 80_000,
                attributes,
                ..Span::default()
            });
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "order-svc")],
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

fn bench_normalize(c: &mut Criterion) {
    let mut g = c.benchmark_group("normalize");
    let sql = "SELECT o.id, o.total FROM orders o WHERE o.customer_id = 4711 AND o.status IN ('open', 'paid') LIMIT 10";
    let mut out = String::with_capacity(256);
    let mut params = Vec::with_capacity(8);
    g.throughput(Throughput::Elements(1));
    g.bench_function("sql_statement", |b| {
        b.iter(|| {
            out.clear();
            params.clear();
            normalize_sql(black_box(sql), &mut out, &mut params)
        })
    });
    let url = "https://api.example.com:8443/v1/users/8f14e45f-ceea-467f-a0e6-0e9b5a6d1c2d/orders/42?page=2&size=50";
    g.bench_function("http_url", |b| {
        b.iter(|| {
            out.clear();
            params.clear();
            normalize_http("GET", black_box(url), &mut out, &mut params)
        })
    });
    g.finish();
}

fn bench_decode_convert(c: &mut Criterion) {
    let request = synthetic_request(20, 25, 1);
    let bytes = request.encode_to_vec();
    let spans = 20 * 25;
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(spans as u64));
    // prost's owned decode, then conversion: the reference (OTLP JSON and
    // Zipkin still convert from decoded requests).
    g.bench_function("decode_convert_500_spans", |b| {
        b.iter(|| {
            let req = ExportTraceServiceRequest::decode(black_box(&bytes[..])).unwrap();
            convert(&req, 2, &ConvertLimits::default())
        })
    });
    // The zero-copy walker both receivers use for protobuf bodies.
    g.bench_function("walk_convert_500_spans", |b| {
        b.iter(|| convert_wire(black_box(&bytes[..]), 2, &ConvertLimits::default()).unwrap())
    });
    g.finish();
}

fn analyzer(green: bool) -> (Analyzer, Metrics) {
    let config = Config::default();
    let specs = Registry::load(&config)
        .0
        .specs(&config)
        .expect("default detectors");
    let metrics = Metrics::new();
    let detectors = specs
        .into_iter()
        .map(|s| ActiveDetector::build(s, &metrics).expect("build"))
        .collect();
    let stamp = Stamp {
        environment: Arc::from("bench"),
        confidence: "daemon_staging",
    };
    let scorer = green.then(|| {
        let config: Config = perf_sentinel::config::from_toml_str(
            "[green]\ndefault_region = \"eu-west-3\"\n",
            "bench",
        )
        .expect("green config");
        Arc::new(GreenScorer::new(
            &config.green_settings,
            Arc::new(EnergyState::new()),
        ))
    });
    (Analyzer::new(detectors, stamp).with_green(scorer), metrics)
}

fn bench_window_and_detect(c: &mut Criterion) {
    let (traces, per_trace) = (20, 25);
    let request = synthetic_request(traces, per_trace, 2);
    let mut scratch = PrepScratch::default();
    let limits = WindowLimits {
        max_traces: 10_000,
        max_spans_per_trace: 1000,
        ttl: Duration::from_secs(30),
        settle: Duration::ZERO,
        remembered: 0,
    };
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements((traces * per_trace) as u64));
    // With and without energy scoring: what `[green]` costs per trace.
    for (name, green) in [
        ("window_insert_complete_detect_500_spans", false),
        ("window_insert_complete_detect_score_500_spans", true),
    ] {
        let (mut analyzer, metrics) = analyzer(green);
        g.bench_function(name, |b| {
            b.iter_batched(
                || convert(&request, 1, &ConvertLimits::default()),
                |converted| {
                    let mut window = TraceWindow::new(limits);
                    let mut closed = Vec::new();
                    let now = Instant::now();
                    for shard in converted.shards {
                        for f in shard {
                            window.insert(f, now, &mut closed);
                        }
                    }
                    window.expire(now, &mut closed);
                    let mut findings = 0;
                    for c in closed.drain(..) {
                        findings += analyzer.analyze(&c.fragment, &mut scratch, &metrics).len();
                    }
                    // Every other trace is an N+1 (plus its io_waste finding).
                    assert!(findings >= traces / 2);
                    findings
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// Detection alone (normalization done beforehand; the view is built per
/// trace) by every built-in detector, over 100k and 1M spans of 100-span
/// traces.
fn bench_detect_all_builtins(c: &mut Criterion) {
    let (mut analyzer, metrics) = analyzer(false);
    let mut g = c.benchmark_group("detect_all_builtins");
    g.sample_size(10);
    for total in [100_000usize, 1_000_000] {
        let per_trace = 100;
        let mut scratch = PrepScratch::default();
        let mut traces = Vec::new();
        for chunk in 0..total / (per_trace * 100) {
            let request = synthetic_request(100, per_trace, 1000 + chunk as u64);
            for shard in convert(&request, 1, &ConvertLimits::default()).shards {
                for frag in shard {
                    let prep = prepare(&frag, &mut scratch);
                    traces.push((frag, prep));
                }
            }
        }
        g.throughput(Throughput::Elements(total as u64));
        g.bench_function(format!("{total}_spans"), |b| {
            b.iter(|| {
                let mut findings = 0;
                for (frag, prep) in &traces {
                    findings += with_view(frag, prep, |view| analyzer.run(view, &metrics).len());
                }
                findings
            })
        });
    }
    g.finish();
}

/// Each built-in detector alone over 20k spans of 100-span traces.
fn bench_each_detector(c: &mut Criterion) {
    let per_trace = 100;
    let mut scratch = PrepScratch::default();
    let mut traces = Vec::new();
    for chunk in 0..2u64 {
        let request = synthetic_request(100, per_trace, 5000 + chunk);
        for shard in convert(&request, 1, &ConvertLimits::default()).shards {
            for frag in shard {
                let prep = prepare(&frag, &mut scratch);
                traces.push((frag, prep));
            }
        }
    }
    let spans: usize = traces.iter().map(|(f, _)| f.spans.len()).sum();
    perf_sentinel_detectors::link();
    let mut g = c.benchmark_group("detector");
    g.throughput(Throughput::Elements(spans as u64));
    g.sample_size(10);
    for factory in detector_api::builtin_factories() {
        let mut detector = factory.build(&toml::Table::new()).expect("defaults");
        g.bench_function(factory.id(), |b| {
            b.iter(|| {
                let mut out = detector_api::RVec::new();
                for (frag, prep) in &traces {
                    with_view(frag, prep, |view| detector.detect(view, &mut out)).unwrap();
                }
                out.len()
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_each_detector,
    bench_normalize,
    bench_decode_convert,
    bench_window_and_detect,
    bench_detect_all_builtins
);
criterion_main!(benches);
