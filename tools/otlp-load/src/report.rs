//! What a run measured: per-worker tallies merged into one report, printed
//! as text for people or JSON for scripts and docs.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::probe::ProbeReport;

/// One worker's counts.
pub struct Tally {
    /// Export latency in microseconds, 1 µs to 60 s.
    pub latency_us: Histogram<u64>,
    pub ok_requests: u64,
    pub accepted_spans: u64,
    pub rejected_spans: u64,
    pub errors: BTreeMap<String, u64>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            // Three significant figures over the whole range; fixed size.
            // These bounds are valid constants, so creation cannot fail.
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
            ok_requests: 0,
            accepted_spans: 0,
            rejected_spans: 0,
            errors: BTreeMap::new(),
        }
    }
}

impl Tally {
    pub fn merge(&mut self, other: &Tally) {
        let _ = self.latency_us.add(&other.latency_us);
        self.ok_requests += other.ok_requests;
        self.accepted_spans += other.accepted_spans;
        self.rejected_spans += other.rejected_spans;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }
}

/// The run's result.
#[derive(Debug, Serialize)]
pub struct Report {
    pub protocol: String,
    pub endpoint: String,
    pub concurrency: usize,
    pub traces_per_request: usize,
    pub spans_per_request: f64,
    pub target_spans_per_second: Option<u64>,
    pub seconds: f64,
    pub ok_requests: u64,
    pub accepted_spans: u64,
    pub accepted_spans_per_second: f64,
    pub rejected_spans: u64,
    pub latency_ms: Latency,
    /// Refused requests by HTTP status or gRPC code.
    pub errors: BTreeMap<String, u64>,
    /// Root span end to finding served, when `--probe` ran.
    pub finding_latency: Option<ProbeReport>,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Report {
    pub fn new(run: RunInfo, tally: &Tally, elapsed: Duration) -> Report {
        let q = |p: f64| tally.latency_us.value_at_quantile(p) as f64 / 1000.0;
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Report {
            protocol: run.protocol,
            endpoint: run.endpoint,
            concurrency: run.concurrency,
            traces_per_request: run.traces_per_request,
            spans_per_request: run.spans_per_request,
            target_spans_per_second: run.rate,
            seconds,
            ok_requests: tally.ok_requests,
            accepted_spans: tally.accepted_spans,
            accepted_spans_per_second: tally.accepted_spans as f64 / seconds,
            rejected_spans: tally.rejected_spans,
            latency_ms: Latency {
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                max: tally.latency_us.max() as f64 / 1000.0,
            },
            errors: tally.errors.clone(),
            finding_latency: None,
        }
    }

    pub fn text(&self) -> String {
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let probe = match &self.finding_latency {
            Some(p) => format!(
                "findings: {} of {} probes served (refused: {}), root end to finding p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms\n",
                p.found, p.probes, p.refused, p.p50_ms, p.p99_ms, p.max_ms
            ),
            None => String::new(),
        };
        format!(
            "{} {} for {:.1} s, {} workers, {} traces / {:.0} spans per request\n\
             accepted: {} spans in {} requests = {:.0} spans/s (refused inside accepted requests: {})\n\
             latency:  p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n\
             errors:   {}\n{}",
            self.protocol,
            self.endpoint,
            self.seconds,
            self.concurrency,
            self.traces_per_request,
            self.spans_per_request,
            self.accepted_spans,
            self.ok_requests,
            self.accepted_spans_per_second,
            self.rejected_spans,
            self.latency_ms.p50,
            self.latency_ms.p90,
            self.latency_ms.p99,
            self.latency_ms.max,
            errors,
            probe,
        )
    }
}

/// The run's settings, echoed in the report.
pub struct RunInfo {
    pub protocol: String,
    pub endpoint: String,
    pub concurrency: usize,
    pub traces_per_request: usize,
    pub spans_per_request: f64,
    pub rate: Option<u64>,
}
