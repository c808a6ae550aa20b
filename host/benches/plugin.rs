//! Per-trace cost of a detector loaded as a plugin `.so` against the very
//! same detector linked in natively (the select-star example plugin).
//!
//! ```sh
//! cargo build --release -p perf-sentinel-plugin-select-star
//! cargo bench -p perf-sentinel --bench plugin
//! ```

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use detector_api::testkit::{SpanSpec, TraceBuilder};
use detector_api::{DetectorFactory, RVec};
use perf_sentinel::plugins::load_path;
use perf_sentinel_plugin_select_star::SelectStarFactory;

/// A request with 40 SQL calls, 4 of them `SELECT *` without LIMIT.
fn trace() -> TraceBuilder {
    let mut t = TraceBuilder::new();
    let root = t.root(SpanSpec::server("GET", "/orders/{id}").at_us(0, 50_000));
    for i in 0..40u64 {
        let template = match i % 10 {
            0 => "SELECT * FROM orders WHERE customer_id = ?",
            1..=4 => "SELECT id, total FROM orders WHERE id = ? LIMIT ?",
            _ => "UPDATE order_items SET seen = ? WHERE id = ?",
        };
        t.child(
            root,
            SpanSpec::sql(template, &i.to_string()).at_us(i * 100, 80),
        );
    }
    t
}

fn plugin_path() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("release/libperf_sentinel_plugin_select_star.so")
}

fn bench(c: &mut Criterion) {
    let trace = trace();
    let table = toml::Table::new();
    let mut g = c.benchmark_group("select_star_per_trace");

    let mut native = SelectStarFactory.build(&table).unwrap();
    g.bench_function("built_in", |b| {
        trace.with_view(|view| {
            let mut out = RVec::new();
            b.iter(|| {
                out.clear();
                native.detect(black_box(view), &mut out).unwrap();
                out.len()
            })
        })
    });

    let path = plugin_path();
    match load_path(&path) {
        Ok(factories) => {
            let mut plugin = factories[0].build(&table).unwrap();
            g.bench_function("plugin_so", |b| {
                trace.with_view(|view| {
                    let mut out = RVec::new();
                    b.iter(|| {
                        out.clear();
                        plugin.detect(black_box(view), &mut out).unwrap();
                        out.len()
                    })
                })
            });
        }
        Err(e) => eprintln!(
            "skipping the plugin half: {e}\n(build it with `cargo build --release -p perf-sentinel-plugin-select-star`)"
        ),
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
