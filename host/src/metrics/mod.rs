//! Every counter and gauge the daemon exports on `/metrics`, registered once
//! in a prometheus-client registry and shared by all tasks through an `Arc`.

mod process;

pub use process::{ProcessCollector, resident_bytes};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::{CounterWithExemplar, HistogramWithExemplars};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionReasonLabels {
    pub action: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    #[prometheus(flatten)]
    pub kind: TypeLabel,
    pub severity: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: String,
}

/// The exemplar label: the trace a sample came from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceIdLabel {
    pub trace_id: String,
}

/// `sql`, `http` or `messaging`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IoTypeLabel {
    pub r#type: &'static str,
}

/// `io` (every outbound operation, plus embodied carbon per request) or
/// `avoidable` (what N+1 and redundant findings say could be saved).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabel {
    pub scope: &'static str,
}

/// Buckets of slow operations: 100 ms to about 100 s.
fn slow_histogram() -> HistogramWithExemplars<TraceIdLabel> {
    HistogramWithExemplars::new(exponential_buckets(0.1, 2.0, 11))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    pub service: String,
}

/// Distinct `service` label values at most: trace data must not be able to
/// grow the metrics without bound.
pub const MAX_SERVICE_LABELS: usize = 1024;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DetectorLabel {
    pub detector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DetectorErrorLabels {
    pub detector: String,
    /// `error` or `panic`.
    pub reason: &'static str,
}

/// Histogram buckets of one detector call: 1 µs to about 0.26 s.
fn detector_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1e-6, 4.0, 10))
}

/// The daemon's metrics.
pub struct Metrics {
    registry: Registry,
    pub spans_received: Counter,
    pub spans_analyzed: Counter,
    pub spans_rejected: Family<ReasonLabel, Counter>,
    pub spans_dropped: Family<ReasonLabel, Counter>,
    pub late_spans: Counter,
    pub strings_truncated: Counter,
    pub attributes_dropped: Counter,
    pub traces_analyzed: Family<ReasonLabel, Counter>,
    pub active_traces: Gauge,
    pub otlp_rejected: Family<ReasonLabel, Counter>,
    pub shed_batches: Counter,
    pub shed_spans: Counter,
    pub shed_traces: Counter,
    pub connections_refused: Family<ReasonLabel, Counter>,
    pub service_io_ops: Family<ServiceLabel, Counter>,
    pub service_io_ops_overflow: Counter,
    /// Services already given a label, bounded by [`MAX_SERVICE_LABELS`].
    services: std::sync::RwLock<std::collections::HashSet<String>>,
    pub queue_depth: Gauge,
    pub queue_capacity: Gauge,
    pub memory_pressure: Gauge,
    pub ack_operations: Family<ActionLabel, Counter>,
    pub correlator_pairs_evicted: Counter,
    pub ack_operations_failed: Family<ActionReasonLabels, Counter>,
    pub spans_sampled_out: Counter,
    pub findings: Family<FindingLabels, CounterWithExemplar<TraceIdLabel>>,
    pub slow_duration: Family<
        IoTypeLabel,
        HistogramWithExemplars<TraceIdLabel>,
        fn() -> HistogramWithExemplars<TraceIdLabel>,
    >,
    pub findings_stdout_dropped: Counter,
    pub detector_errors: Family<DetectorErrorLabels, Counter>,
    pub detector_seconds: Family<DetectorLabel, Histogram, fn() -> Histogram>,
    pub detectors_quarantined: Gauge,
    pub io_ops: Counter,
    pub avoidable_io_ops: Counter,
    pub io_waste_ratio: Gauge<f64, AtomicU64>,
    pub energy_kwh: Family<ScopeLabel, Gauge<f64, AtomicU64>>,
    pub carbon_gco2: Family<ScopeLabel, Gauge<f64, AtomicU64>>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector::new()));
        let registry = root.sub_registry_with_prefix("perf_sentinel");
        let m = Self {
            spans_received: Counter::default(),
            spans_analyzed: Counter::default(),
            spans_rejected: Family::default(),
            spans_dropped: Family::default(),
            late_spans: Counter::default(),
            strings_truncated: Counter::default(),
            attributes_dropped: Counter::default(),
            traces_analyzed: Family::default(),
            active_traces: Gauge::default(),
            otlp_rejected: Family::default(),
            shed_batches: Counter::default(),
            shed_spans: Counter::default(),
            shed_traces: Counter::default(),
            connections_refused: Family::default(),
            service_io_ops: Family::default(),
            service_io_ops_overflow: Counter::default(),
            services: Default::default(),
            queue_depth: Gauge::default(),
            queue_capacity: Gauge::default(),
            memory_pressure: Gauge::default(),
            ack_operations: Family::default(),
            correlator_pairs_evicted: Counter::default(),
            ack_operations_failed: Family::default(),
            spans_sampled_out: Counter::default(),
            findings: Family::default(),
            slow_duration: Family::new_with_constructor(slow_histogram),
            findings_stdout_dropped: Counter::default(),
            detector_errors: Family::default(),
            detector_seconds: Family::new_with_constructor(detector_histogram),
            detectors_quarantined: Gauge::default(),
            io_ops: Counter::default(),
            avoidable_io_ops: Counter::default(),
            io_waste_ratio: Gauge::default(),
            energy_kwh: Family::default(),
            carbon_gco2: Family::default(),
            registry: Registry::default(),
        };
        let r = registry;
        r.register(
            "spans_received",
            "Spans accepted from OTLP exporters (answered OK)",
            m.spans_received.clone(),
        );
        r.register(
            "spans_analyzed",
            "Spans that went through the detectors",
            m.spans_analyzed.clone(),
        );
        r.register(
            "spans_rejected",
            "Spans refused inside an accepted request (partial success), by reason",
            m.spans_rejected.clone(),
        );
        r.register(
            "spans_dropped",
            "Accepted spans not analyzed, by reason (over max_events_per_trace)",
            m.spans_dropped.clone(),
        );
        r.register(
            "late_spans",
            "Spans that arrived after their trace was analyzed (analyzed again as a new fragment)",
            m.late_spans.clone(),
        );
        r.register(
            "strings_truncated",
            "Span strings cut to their size cap",
            m.strings_truncated.clone(),
        );
        r.register(
            "attributes_dropped",
            "Span attributes beyond the 128 kept per span",
            m.attributes_dropped.clone(),
        );
        r.register(
            "traces_analyzed",
            "Traces analyzed, by why they left the window",
            m.traces_analyzed.clone(),
        );
        r.register(
            "active_traces",
            "Traces held in the window, waiting to complete",
            m.active_traces.clone(),
        );
        r.register(
            "otlp_rejected",
            "OTLP requests refused, by reason",
            m.otlp_rejected.clone(),
        );
        r.register(
            "analysis_shed_batches",
            "Requests refused with 503/UNAVAILABLE because analysis was behind",
            m.shed_batches.clone(),
        );
        r.register(
            "analysis_shed_spans",
            "Spans in requests refused because analysis was behind",
            m.shed_spans.clone(),
        );
        r.register(
            "connections_refused",
            "Connections closed before serving, by reason (connection cap, TLS handshake)",
            m.connections_refused.clone(),
        );
        r.register(
            "analysis_shed_traces",
            "Traces in requests refused because analysis was behind",
            m.shed_traces.clone(),
        );
        r.register(
            "service_io_ops",
            "Outbound I/O calls by the service that made them (at most 1024 services)",
            m.service_io_ops.clone(),
        );
        r.register(
            "service_io_ops_overflow",
            "Outbound I/O calls of services past the first 1024, not labelled",
            m.service_io_ops_overflow.clone(),
        );
        r.register(
            "analysis_queue_depth",
            "Spans accepted and waiting for their shard",
            m.queue_depth.clone(),
        );
        r.register(
            "analysis_queue_capacity",
            "Spans that may wait for analysis before requests are refused",
            m.queue_capacity.clone(),
        );
        r.register(
            "ingest_memory_pressure",
            "1 while ingest is refused because memory use is above memory_high_water_pct, else 0",
            m.memory_pressure.clone(),
        );
        r.register(
            "correlator_pairs_evicted",
            "Correlation pairs (and signatures) forgotten to stay within max_tracked_pairs",
            m.correlator_pairs_evicted.clone(),
        );
        r.register(
            "ack_operations",
            "Acknowledgment API operations that succeeded, by action (ack, unack, list)",
            m.ack_operations.clone(),
        );
        r.register(
            "ack_operations_failed",
            "Acknowledgment API operations refused, by action and reason",
            m.ack_operations_failed.clone(),
        );
        r.register(
            "spans_sampled_out",
            "Spans accepted but not analyzed because sampling_rate left their trace out",
            m.spans_sampled_out.clone(),
        );
        r.register(
            "findings",
            "Findings reported, by type and severity",
            m.findings.clone(),
        );
        r.register(
            "slow_duration_seconds",
            "Slowest call of each slow-operation finding, by I/O type",
            m.slow_duration.clone(),
        );
        r.register(
            "findings_stdout_dropped",
            "Findings not printed because stdout could not keep up (still stored and counted)",
            m.findings_stdout_dropped.clone(),
        );
        r.register(
            "detector_errors",
            "Detector failures (errors and caught panics), by detector",
            m.detector_errors.clone(),
        );
        r.register(
            "detector_duration_seconds",
            "Time one detector spends on one trace",
            m.detector_seconds.clone(),
        );
        r.register(
            "detectors_quarantined",
            "Detectors stopped after failing repeatedly",
            m.detectors_quarantined.clone(),
        );
        r.register(
            "io_ops",
            "Outbound I/O calls (SQL, HTTP, messaging, RPC) in analyzed traces",
            m.io_ops.clone(),
        );
        r.register(
            "avoidable_io_ops",
            "I/O calls that N+1 and redundant findings say could have been avoided",
            m.avoidable_io_ops.clone(),
        );
        r.register(
            "io_waste_ratio",
            "Avoidable over all I/O calls since start",
            m.io_waste_ratio.clone(),
        );
        r.register(
            "energy_kwh",
            "Estimated energy of analyzed I/O since start, in kWh (scope io: every outbound operation; avoidable: what findings say could be saved)",
            m.energy_kwh.clone(),
        );
        r.register(
            "carbon_gco2",
            "Estimated CO2 of analyzed I/O since start, in grams, mid estimate (scope io includes embodied carbon per request)",
            m.carbon_gco2.clone(),
        );
        Self {
            registry: root,
            ..m
        }
    }

    /// Registers a collector under the `perf_sentinel_` prefix (the energy
    /// scrapers' health). Before the metrics are shared.
    pub fn register_collector(
        &mut self,
        collector: Box<dyn prometheus_client::collector::Collector>,
    ) {
        self.registry
            .sub_registry_with_prefix("perf_sentinel")
            .register_collector(collector);
    }

    /// Cumulative outbound I/O calls of `service`, if it has a label.
    pub fn service_io_ops_of(&self, service: &str) -> Option<u64> {
        let known = self
            .services
            .read()
            .map(|s| s.contains(service))
            .unwrap_or(false);
        known.then(|| {
            self.service_io_ops
                .get_or_create(&ServiceLabel {
                    service: service.to_owned(),
                })
                .get()
        })
    }

    /// Adds one trace's energy and carbon (every operation, and the avoidable part).
    pub fn record_energy(
        &self,
        io_kwh: f64,
        io_gco2: f64,
        avoidable_kwh: f64,
        avoidable_gco2: f64,
    ) {
        for (family, io, avoidable) in [
            (&self.energy_kwh, io_kwh, avoidable_kwh),
            (&self.carbon_gco2, io_gco2, avoidable_gco2),
        ] {
            family.get_or_create(&ScopeLabel { scope: "io" }).inc_by(io);
            family
                .get_or_create(&ScopeLabel { scope: "avoidable" })
                .inc_by(avoidable);
        }
    }

    /// Counts `calls` outbound I/O calls of `service`, under its own label
    /// while fewer than [`MAX_SERVICE_LABELS`] services have one.
    pub fn record_service_io(&self, service: &str, calls: u64) {
        let known = self
            .services
            .read()
            .map(|s| s.contains(service))
            .unwrap_or(false);
        let labelled = known || {
            let mut set = self.services.write().unwrap_or_else(|p| p.into_inner());
            if set.len() < MAX_SERVICE_LABELS {
                set.insert(service.to_owned());
                true
            } else {
                set.contains(service)
            }
        };
        if labelled {
            self.service_io_ops
                .get_or_create(&ServiceLabel {
                    service: service.to_owned(),
                })
                .inc_by(calls);
        } else {
            self.service_io_ops_overflow.inc_by(calls);
        }
    }

    /// Adds one trace's I/O figures and refreshes the cumulative ratio.
    pub fn record_io(&self, total: u64, avoidable: u64) {
        if total == 0 {
            return;
        }
        let all = self.io_ops.inc_by(total) + total;
        let wasted = self.avoidable_io_ops.inc_by(avoidable) + avoidable;
        self.io_waste_ratio.set(wasted as f64 / all as f64);
    }

    /// Counts a refused request.
    pub fn reject(&self, reason: &'static str) {
        self.otlp_rejected
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// OpenMetrics text of every metric, with exemplars.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Prometheus text (0.0.4) of every metric: no exemplars.
    pub fn encode_prometheus(&self) -> String {
        let mut out = String::with_capacity(8192);
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_labels_are_capped_and_the_rest_overflows() {
        let m = Metrics::new();
        for i in 0..MAX_SERVICE_LABELS + 10 {
            m.record_service_io(&format!("svc-{i}"), 2);
        }
        // A service labelled before the cap keeps its label.
        m.record_service_io("svc-0", 3);
        assert_eq!(
            m.service_io_ops
                .get_or_create(&ServiceLabel {
                    service: "svc-0".into()
                })
                .get(),
            5
        );
        assert_eq!(m.service_io_ops_overflow.get(), 20);
        let text = m.encode_prometheus();
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("perf_sentinel_service_io_ops_total{"))
                .count(),
            MAX_SERVICE_LABELS
        );
    }

    #[test]
    fn energy_and_carbon_accumulate_by_scope() {
        let m = Metrics::new();
        m.record_energy(1e-6, 0.002, 5e-7, 0.0001);
        m.record_energy(1e-6, 0.002, 0.0, 0.0);
        let text = m.encode_prometheus();
        let value = |series: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(series))
                .unwrap_or_else(|| panic!("no {series} in {text}"));
            line[series.len()..].trim().parse().unwrap()
        };
        let close = |a: f64, b: f64| (a - b).abs() <= b * 1e-9;
        assert!(close(value("perf_sentinel_energy_kwh{scope=\"io\"}"), 2e-6));
        assert!(close(
            value("perf_sentinel_energy_kwh{scope=\"avoidable\"}"),
            5e-7
        ));
        assert!(close(
            value("perf_sentinel_carbon_gco2{scope=\"io\"}"),
            0.004
        ));
        assert!(close(
            value("perf_sentinel_carbon_gco2{scope=\"avoidable\"}"),
            1e-4
        ));
    }

    #[test]
    fn io_waste_ratio_is_cumulative() {
        let m = Metrics::new();
        m.record_io(10, 5);
        m.record_io(30, 5);
        m.record_io(0, 0);
        assert!((m.io_waste_ratio.get() - 0.25).abs() < 1e-12);
    }
}
