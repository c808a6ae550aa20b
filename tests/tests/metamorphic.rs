//! Metamorphic properties of the whole analysis (OTLP conversion, trace
//! window, normalization, every built-in detector, finding records), run in
//! process over generated request traces: random mixes of N+1 loops (SQL
//! and HTTP), redundant calls, slow calls, fan-outs and clean calls.
//!
//! - the order spans arrive in (within a request, or split over two
//!   requests) does not change the findings;
//! - a copy of a trace under a new trace id gets the original's findings,
//!   apart from the trace id and span ids, so every count doubles;
//! - removing the repeated calls of an N+1 removes that N+1 finding and no
//!   other;
//! - two runs over the same input print byte-identical finding lines.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use perf_sentinel::config::Config;
use perf_sentinel::findings::Stamp;
use perf_sentinel::ingest::convert::{ConvertLimits, convert};
use perf_sentinel::metrics::Metrics;
use perf_sentinel::pipeline::analyze::{Analyzer, PrepScratch};
use perf_sentinel::pipeline::detectors::ActiveDetector;
use perf_sentinel::registry::Registry;
use perf_sentinel::window::{TraceWindow, WindowLimits};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::Value;

const T0: u64 = 1_717_000_000_000_000_000;
const US: u64 = 1_000;
const MS: u64 = 1_000_000;

// ------------------------------------------------------------------ pipeline

/// Every built-in detector with its defaults, as the daemon builds them.
fn analyzer() -> (Analyzer, Metrics) {
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
        environment: Arc::from("staging"),
        confidence: "daemon_staging",
    };
    (Analyzer::new(detectors, stamp), metrics)
}

/// Finding lines (the NDJSON the daemon prints) by trace id.
type Output = BTreeMap<String, Vec<String>>;

/// Runs `requests`, in order, through conversion, one trace window and a
/// fresh set of detectors; every trace is closed at the end.
fn run(requests: &[ExportTraceServiceRequest]) -> Output {
    let (mut analyzer, metrics) = analyzer();
    let mut window = TraceWindow::new(WindowLimits {
        max_traces: 10_000,
        max_spans_per_trace: 10_000,
        ttl: Duration::from_secs(3600),
        settle: Duration::from_secs(3600),
        remembered: 1024,
    });
    let mut closed = Vec::new();
    let now = Instant::now();
    for request in requests {
        let converted = convert(request, 1, &ConvertLimits::default());
        assert_eq!(converted.rejected_invalid_id, 0);
        for fragment in converted.shards.into_iter().flatten() {
            window.insert(fragment, now, &mut closed);
        }
    }
    assert!(closed.is_empty(), "nothing is evicted");
    window.drain(&mut closed);
    let mut scratch = PrepScratch::default();
    let mut out = Output::new();
    for c in closed {
        let id = c.fragment.trace_id.to_string();
        let lines = analyzer
            .analyze(&c.fragment, &mut scratch, &metrics)
            .into_iter()
            .map(|r| r.json)
            .collect();
        assert!(out.insert(id, lines).is_none(), "one fragment per trace");
    }
    out
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

fn count_by_type(lines: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for l in lines {
        let kind = json(l)["type"].as_str().unwrap().to_owned();
        *counts.entry(kind).or_default() += 1;
    }
    counts
}

// Generated traces (blocks, strategies, OTLP building) live in `traces`.
#[path = "metamorphic/traces.rs"]
mod traces;
use traces::*;

/// Shuffles `items` with a seeded xorshift (Fisher-Yates).
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    seed |= 1;
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// `None` when both outputs are the same, else the lines only one has.
fn differences(expected: &Output, actual: &Output) -> Option<String> {
    if expected == actual {
        return None;
    }
    let all = |o: &Output| o.values().flatten().cloned().collect::<BTreeSet<String>>();
    let (e, a) = (all(expected), all(actual));
    let mut out = String::new();
    for l in e.difference(&a) {
        out.push_str(&format!("- {l}\n"));
    }
    for l in a.difference(&e) {
        out.push_str(&format!("+ {l}\n"));
    }
    if out.is_empty() {
        out = format!("same lines, another order:\n- {expected:?}\n+ {actual:?}\n");
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(config())]

    /// Shuffling the spans of a request, or splitting them over two
    /// requests, changes no finding line.
    #[test]
    fn span_order_does_not_change_findings(
        plan in plan(),
        seed in any::<u64>(),
        split in any::<prop::sample::Index>(),
    ) {
        let trace = trace_id(seed, 0);
        let spans = build(&plan, trace, 0).spans;
        let reference = run(&[request(spans.clone())]);

        let mut shuffled = spans;
        shuffle(&mut shuffled, seed);
        let one = run(&[request(shuffled.clone())]);
        if let Some(d) = differences(&reference, &one) {
            prop_assert!(false, "shuffled within one request (- in order, + shuffled):\n{}", d);
        }

        let at = split.index(shuffled.len() + 1);
        let tail = shuffled.split_off(at);
        let two = run(&[request(tail), request(shuffled)]);
        if let Some(d) = differences(&reference, &two) {
            prop_assert!(false, "shuffled over two requests (- in order, + shuffled):\n{}", d);
        }
    }

    /// A copy of a trace under another trace id (and other span ids, in
    /// the same order) gets exactly the original's findings; the original
    /// keeps its own; so every count per type doubles.
    #[test]
    fn duplicating_a_trace_doubles_every_count(plan in plan(), seed in any::<u64>()) {
        let (original, copy) = (trace_id(seed, 0), trace_id(seed, 1));
        let a = build(&plan, original, 0).spans;
        let b = build(&plan, copy, 1).spans;
        let single = run(&[request(a.clone())]);
        let mut both = a;
        both.extend(b);
        let double = run(&[request(both)]);

        let (oid, cid) = (hex(&original), hex(&copy));
        let empty = Vec::new();
        let alone = single.get(&oid).unwrap_or(&empty);
        let with_copy = double.get(&oid).unwrap_or(&empty);
        let of_copy = double.get(&cid).unwrap_or(&empty);
        prop_assert_eq!(with_copy, alone, "the copy changed the original's findings");

        // The copy's findings, read back with the original's ids.
        let restored: Vec<String> = of_copy
            .iter()
            .map(|line| {
                let mut v = json(line);
                prop_assert_eq!(v["trace_id"].as_str(), Some(cid.as_str()));
                v["trace_id"] = Value::from(oid.clone());
                for id in v["evidence_span_ids"].as_array_mut().unwrap() {
                    let s = id.as_str().unwrap();
                    prop_assert!(s.starts_with("01"), "evidence {} is not the copy's", s);
                    *id = Value::from(format!("00{}", &s[2..]));
                }
                Ok(v)
            })
            .collect::<Result<Vec<Value>, TestCaseError>>()?
            .iter()
            .map(Value::to_string)
            .collect();
        let originals: Vec<String> = alone.iter().map(|l| json(l).to_string()).collect();
        prop_assert_eq!(&restored, &originals, "the copy's findings differ");

        let all_single: Vec<String> = single.values().flatten().cloned().collect();
        let all_double: Vec<String> = double.values().flatten().cloned().collect();
        let (once, twice) = (count_by_type(&all_single), count_by_type(&all_double));
        let doubled: BTreeMap<String, usize> =
            once.iter().map(|(k, n)| (k.clone(), 2 * n)).collect();
        prop_assert_eq!(twice, doubled);
    }

    /// Keeping only the first call of an N+1 loop removes its finding, and
    /// leaves every other N+1 finding of the trace as it was.
    #[test]
    fn removing_the_repeated_calls_removes_the_n_plus_one(
        (plan, index) in plan_with_n_plus_one(),
        seed in any::<u64>(),
    ) {
        let trace = trace_id(seed, 0);
        let built = build(&plan, trace, 0);
        let before = run(&[request(built.spans.clone())]);
        let lines = before.get(&hex(&trace)).cloned().unwrap_or_default();
        let calls: BTreeSet<String> = built.block_calls[index].iter().map(|id| hex(id)).collect();
        let n_plus_one = |l: &&String| json(l)["type"].as_str().unwrap().starts_with("n_plus_one_");
        let mine = |l: &String| {
            json(l)["evidence_span_ids"]
                .as_array()
                .unwrap()
                .iter()
                .all(|id| calls.contains(id.as_str().unwrap()))
        };
        let (loop_findings, others): (Vec<String>, Vec<String>) =
            lines.iter().filter(n_plus_one).cloned().partition(|l| mine(l));
        prop_assert_eq!(loop_findings.len(), 1, "the loop is one N+1: {:?}", lines);
        let finding = json(&loop_findings[0]);
        prop_assert_eq!(
            finding["pattern"]["occurrences"].as_u64(),
            Some(calls.len() as u64)
        );

        let repeated: BTreeSet<String> = calls.iter().skip(1).cloned().collect();
        let kept: Vec<(&str, Span)> = built
            .spans
            .into_iter()
            .filter(|(_, s)| !repeated.contains(&hex(&s.span_id)))
            .collect();
        let after = run(&[request(kept)]);
        let after_lines = after.get(&hex(&trace)).cloned().unwrap_or_default();
        let gone = !after_lines.iter().any(|l| {
            let v = json(l);
            v["type"] == finding["type"]
                && v["service"] == finding["service"]
                && v["pattern"]["template"] == finding["pattern"]["template"]
        });
        prop_assert!(gone, "the N+1 is still reported: {:?}", after_lines);
        // The trace-wide I/O intensity changes with the number of calls;
        // everything else of the other N+1 findings stays.
        let without_intensity = |l: &String| {
            let mut v = json(l);
            let green = v["green_impact"].as_object_mut().unwrap();
            green.remove("io_intensity_score");
            green.remove("io_intensity_band");
            v.to_string()
        };
        let remaining: Vec<String> = after_lines
            .iter()
            .filter(n_plus_one)
            .map(without_intensity)
            .collect();
        let others: Vec<String> = others.iter().map(without_intensity).collect();
        prop_assert_eq!(remaining, others, "other N+1 findings changed");
    }

    /// Two runs over the same requests print the same bytes.
    #[test]
    fn two_runs_print_byte_identical_findings(
        plans in prop::collection::vec(plan(), 1..=4),
        seed in any::<u64>(),
    ) {
        let requests: Vec<ExportTraceServiceRequest> = plans
            .iter()
            .enumerate()
            .map(|(i, plan)| {
                let trace = trace_id(seed.wrapping_add(i as u64), 0);
                request(build(plan, trace, 0).spans)
            })
            .collect();
        let first = run(&requests);
        let second = run(&requests);
        let lines = |o: &Output| o.values().flatten().cloned().collect::<Vec<String>>().join("\n");
        prop_assert!(
            lines(&first) == lines(&second),
            "two runs differ:\n{}",
            differences(&first, &second).unwrap_or_default()
        );
    }
}

/// The generator makes what it says: a loop is an N+1, a fan-out is one,
/// and a plan of clean calls alone yields nothing.
#[test]
fn generated_blocks_yield_their_findings() {
    let kinds = |blocks: Vec<(Block, Parent)>| -> Vec<String> {
        let plan = Plan {
            service: "orders-api",
            blocks,
        };
        let trace = trace_id(1, 0);
        let out = run(&[request(build(&plan, trace, 0).spans)]);
        let mut kinds: Vec<String> = out
            .values()
            .flatten()
            .map(|l| json(l)["type"].as_str().unwrap().to_owned())
            .collect();
        kinds.sort();
        kinds
    };
    let sql = Block::NPlusOneSql {
        n: 6,
        dur_us: 1_000,
        gap_us: 2_000,
    };
    assert_eq!(
        kinds(vec![(sql, Parent::Root)]),
        ["io_waste", "n_plus_one_sql"]
    );
    let http = Block::NPlusOneHttp {
        n: 5,
        dur_us: 1_000,
        gap_us: 500,
    };
    assert_eq!(
        kinds(vec![(http, Parent::Internal)]),
        ["io_waste", "n_plus_one_http"]
    );
    let redundant = Block::Redundant { http: true, n: 3 };
    assert_eq!(
        kinds(vec![(redundant, Parent::Root)]),
        ["io_waste", "redundant_http"]
    );
    let slow = Block::Slow {
        http: false,
        durations_ms: vec![600, 700, 800],
    };
    assert_eq!(kinds(vec![(slow, Parent::Root)]), ["slow_sql"]);
    let fanout = Block::Fanout { n: 22, ties: true };
    assert_eq!(
        kinds(vec![(fanout, Parent::Internal)]),
        ["chatty_service", "excessive_fanout"]
    );
    let clean = Block::Clean {
        n: 3,
        overlap: false,
    };
    assert!(kinds(vec![(clean, Parent::Root)]).is_empty());
    let sanitized = |orm, concurrent| Block::Sanitized {
        n: 6,
        dur_us: 1_000,
        gap_us: 500,
        orm,
        concurrent,
    };
    let n1 = ["io_waste", "n_plus_one_sql"];
    assert_eq!(kinds(vec![(sanitized(true, true), Parent::Root)]), n1);
    assert_eq!(kinds(vec![(sanitized(false, false), Parent::Internal)]), n1);
    assert!(kinds(vec![(sanitized(false, true), Parent::Root)]).is_empty());
    let pool = Block::Concurrent { n: 11, ties: true };
    assert_eq!(kinds(vec![(pool, Parent::Internal)]), ["pool_saturation"]);
    let sequential = Block::Sequential { n: 4 };
    assert_eq!(
        kinds(vec![(sequential, Parent::Internal)]),
        ["serialized_calls"]
    );
    let burst = Block::Burst { http: false, n: 6 };
    assert_eq!(kinds(vec![(burst, Parent::Root)]), n1);

    // A loop slower than the window: the 500 ms window holds 6 of its 9
    // calls (100 ms apart); in another service, under its own endpoint.
    let plan = Plan {
        service: "orders-api",
        blocks: vec![(Block::Wide { n: 9, gap_ms: 100 }, Parent::Remote)],
    };
    let out = run(&[request(build(&plan, trace_id(2, 0), 0).spans)]);
    let n_plus_one: Vec<Value> = out
        .values()
        .flatten()
        .map(|l| json(l))
        .filter(|v| v["type"] == "n_plus_one_sql")
        .collect();
    assert_eq!(n_plus_one.len(), 1, "{out:?}");
    assert_eq!(n_plus_one[0]["service"], REMOTE);
    assert_eq!(n_plus_one[0]["source_endpoint"], "GET /inventory/step-0");
    assert_eq!(n_plus_one[0]["pattern"]["occurrences"], 6);
    assert_eq!(n_plus_one[0]["pattern"]["distinct_params"], 6);
}

/// The smallest case of the span-order property: five SELECTs with distinct
/// ids started at the same instant (`Promise.all`, an executor, a clock with
/// coarse resolution), received in two orders, must give the same finding
/// lines, evidence included.
#[test]
fn calls_started_at_the_same_instant_give_the_same_findings_in_any_arrival_order() {
    let plan = Plan {
        service: "orders-api",
        blocks: vec![(Block::Burst { http: false, n: 5 }, Parent::Root)],
    };
    let spans = build(&plan, trace_id(3, 0), 0).spans;
    let forward = run(&[request(spans.clone())]);
    let mut reversed = spans;
    reversed[1..].reverse();
    let backward = run(&[request(reversed)]);
    assert!(
        forward.values().flatten().next().is_some(),
        "the burst is an N+1"
    );
    if let Some(d) = differences(&forward, &backward) {
        panic!("arrival order changed the findings (- forward, + reversed):\n{d}");
    }
}
