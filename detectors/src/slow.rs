//! Slow calls: SQL statements, outbound HTTP calls and message sends that take
//! longer than a threshold, reported per trace when one trace repeats them, and
//! across traces when the nearest-rank p99 of a template over a rolling window
//! stays above the threshold in several traces.
//!
//! The three detectors are cross-trace (`DetectorFactory::cross_trace`): the
//! host runs one instance that sees every trace through `detect`, which both
//! reports per-trace findings and records each call's duration; `flush`
//! reports the percentiles. Every bound on the recorded samples is a config key
//! or a constant below, so memory stays bounded whatever the input.

use std::collections::{HashMap, VecDeque};

use detector_api::{
    BuildError, CodeLocation, Detector, DetectorConfig, DetectorError, DetectorFactory, Finding,
    InheritedKey, IoKind, OwnedCodeLocation, RVec, Severity, SpanId, SpanKind, SpanView, TraceId,
    TraceView, defaults_table, parse_config, register_builtin,
};
use serde::{Deserialize, Serialize};

use crate::common::{
    Grouper, MAX_EVIDENCE, SeededState, code_of, endpoint_of, is_outbound, timing,
};

/// Longest service name or template, in bytes, kept as a cross-trace key;
/// longer ones are cut at a character boundary (and share a series when they
/// only differ after the cut).
const MAX_KEY_BYTES: usize = 4096;

/// Longest endpoint, in bytes, remembered for a cross-trace finding.
const MAX_ENDPOINT_BYTES: usize = 512;

/// Distinct endpoints remembered per template; the slow calls of further
/// endpoints are reported without one.
const MAX_ENDPOINTS: usize = 4;

/// A sample's endpoint slot when none is known.
const NO_ENDPOINT: u8 = u8::MAX;

const NS_PER_MS: u64 = 1_000_000;
const NS_PER_SEC: u64 = 1_000_000_000;

/// Configuration of `slow_sql`, `slow_http` and `slow_messaging`.
///
/// Memory of the cross-trace statistics is bounded by `max_templates` x
/// `max_samples_per_template` samples of 48 bytes each, plus at most
/// 2 x 4 KiB of key and 4 x 512 B of endpoints per template: about 60 MiB per
/// detector at the defaults in the worst case, far less in practice since a
/// template's buffer grows with its traffic and is freed when its samples
/// leave the window.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SlowConfig {
    /// A call is slow when its duration is strictly above this, in
    /// milliseconds (default 500, inherited from
    /// `[detection] slow_query_threshold_ms`).
    pub threshold_ms: u64,
    /// Slow calls of one template needed in one trace (default 3, inherited
    /// from `[detection] slow_query_min_occurrences`).
    pub min_occurrences: u32,
    /// A finding is critical when its slowest call (per trace) or its p99
    /// (across traces) is above this multiple of the threshold (default 5.0).
    pub critical_multiplier: f64,
    /// The rolling window of the cross-trace percentiles, in seconds, measured
    /// on span end times (default 300).
    pub percentile_window_secs: u64,
    /// Distinct traces with a slow call needed for a cross-trace finding
    /// (default 2).
    pub cross_trace_min_traces: u32,
    /// Durations kept per (service, template); the oldest leave first
    /// (default 1024).
    pub max_samples_per_template: u32,
    /// (service, template) pairs tracked across traces; the least recently
    /// seen is forgotten to make room (default 1024).
    pub max_templates: u32,
}

impl Default for SlowConfig {
    fn default() -> Self {
        Self {
            threshold_ms: 500,
            min_occurrences: 3,
            critical_multiplier: 5.0,
            percentile_window_secs: 300,
            cross_trace_min_traces: 2,
            max_samples_per_template: 1024,
            max_templates: 1024,
        }
    }
}

impl DetectorConfig for SlowConfig {
    fn validate(&self) -> Result<(), BuildError> {
        fn range(key: &str, value: u64, min: u64, max: u64) -> Result<(), BuildError> {
            if value < min || value > max {
                return Err(BuildError::invalid(
                    key,
                    format!("must be between {min} and {max}, got {value}"),
                ));
            }
            Ok(())
        }
        range("threshold_ms", self.threshold_ms, 1, 86_400_000)?;
        range(
            "min_occurrences",
            u64::from(self.min_occurrences),
            1,
            u64::from(u32::MAX),
        )?;
        let m = self.critical_multiplier;
        if !(1.0..=1000.0).contains(&m) {
            return Err(BuildError::invalid(
                "critical_multiplier",
                format!("must be between 1 and 1000, got {m}"),
            ));
        }
        range(
            "percentile_window_secs",
            self.percentile_window_secs,
            1,
            86_400,
        )?;
        range(
            "cross_trace_min_traces",
            u64::from(self.cross_trace_min_traces),
            1,
            u64::from(u32::MAX),
        )?;
        range(
            "max_samples_per_template",
            u64::from(self.max_samples_per_template),
            1,
            65_536,
        )?;
        range("max_templates", u64::from(self.max_templates), 1, 1_000_000)?;
        Ok(())
    }
}

const INHERITED: &[InheritedKey] = &[
    InheritedKey {
        detection_key: "slow_query_threshold_ms",
        key: "threshold_ms",
    },
    InheritedKey {
        detection_key: "slow_query_min_occurrences",
        key: "min_occurrences",
    },
];

/// The nearest-rank `p`-th percentile (0..=100) of `sorted` (ascending): the
/// value at 1-based rank `ceil(p / 100 * n)`, clamped to `1..=n`. `None` for
/// an empty slice. Integer arithmetic, so `p = 99` of 100 values is exactly
/// the 99th.
pub(crate) fn nearest_rank(sorted: &[u64], p: u32) -> Option<u64> {
    let n = sorted.len() as u64;
    let p = u64::from(p.min(100));
    let rank = (p * n).div_ceil(100).clamp(1, n.max(1));
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

/// Milliseconds as text: whole milliseconds plus up to three decimals
/// (microseconds), trailing zeros dropped: `512`, `500.001`.
fn ms(ns: u64) -> String {
    let whole = ns / NS_PER_MS;
    let us = (ns % NS_PER_MS) / 1000;
    if us == 0 {
        return whole.to_string();
    }
    let frac = format!("{us:03}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// `code` and `owned` name the same location.
fn same_code(code: &CodeLocation<'_>, owned: &OwnedCodeLocation) -> bool {
    code.lineno == owned.lineno
        && code.function.as_str() == owned.function.as_str()
        && code.filepath.as_str() == owned.filepath.as_str()
        && code.namespace.as_str() == owned.namespace.as_str()
}

/// Longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// What distinguishes the SQL, HTTP and messaging flavours.
struct Flavour {
    kind: IoKind,
    finding_kind: &'static str,
    noun: &'static str,
    /// Message sends (producer or client spans) rather than outbound calls.
    sends: bool,
    suggestion: &'static str,
}

impl Flavour {
    fn eligible(&self, s: &SpanView<'_>) -> bool {
        if self.sends {
            message_send(s)
        } else {
            outbound_call(s)
        }
    }
}

fn outbound_call(s: &SpanView<'_>) -> bool {
    !s.template.is_empty() && is_outbound(s)
}

fn message_send(s: &SpanView<'_>) -> bool {
    !s.template.is_empty() && matches!(s.span_kind, SpanKind::Producer | SpanKind::Client)
}

const SQL: Flavour = Flavour {
    kind: IoKind::Sql,
    finding_kind: "slow_sql",
    noun: "queries",
    sends: false,
    suggestion: "Read the query plan (EXPLAIN ANALYZE): add the index the filter or join needs, avoid full scans, and paginate or narrow queries that read many rows.",
};

const HTTP: Flavour = Flavour {
    kind: IoKind::Http,
    finding_kind: "slow_http",
    noun: "calls",
    sends: false,
    suggestion: "Set a timeout below the caller's latency budget, cache responses that can be reused, and move calls the response does not need off the request path (asynchronous or in parallel); then find out why the remote side is slow.",
};

const MESSAGING: Flavour = Flavour {
    kind: IoKind::Messaging,
    finding_kind: "slow_messaging",
    noun: "sends",
    sends: true,
    suggestion: "Check the broker's health (disk, partition leaders, replication acknowledgements) and consumer lag, and tune producer batching, acks and buffer sizes; send asynchronously when the request does not need the acknowledgement.",
};

/// One recorded call duration.
#[derive(Debug, Clone, Copy)]
struct Sample {
    end_ns: u64,
    duration_ns: u64,
    trace_id: TraceId,
    span_id: SpanId,
    /// Index into [`Series::endpoints`], or [`NO_ENDPOINT`].
    endpoint: u8,
}

/// The recent durations of one (service, template).
#[derive(Debug)]
struct Series {
    /// Arrival order, newest at the back, at most `max_samples_per_template`.
    samples: VecDeque<Sample>,
    /// Endpoints of slow samples (fast samples never need one).
    endpoints: Vec<String>,
    /// The code location of the latest slow calls that named one.
    code: OwnedCodeLocation,
    /// Its node in [`Store::recency`].
    node: u32,
    /// Samples arrived since this template was last reported.
    new_since_report: bool,
    /// Samples arrived or left since this template was last evaluated.
    changed_since_eval: bool,
}

impl Series {
    fn new(node: u32) -> Self {
        Self {
            samples: VecDeque::new(),
            endpoints: Vec::new(),
            code: OwnedCodeLocation::default(),
            node,
            new_since_report: false,
            changed_since_eval: false,
        }
    }

    fn endpoint_slot(&mut self, endpoint: &str) -> u8 {
        let endpoint = cap(endpoint, MAX_ENDPOINT_BYTES);
        if let Some(i) = self.endpoints.iter().position(|e| e == endpoint) {
            return u8::try_from(i).unwrap_or(NO_ENDPOINT);
        }
        if self.endpoints.len() >= MAX_ENDPOINTS {
            return NO_ENDPOINT;
        }
        self.endpoints.push(endpoint.to_owned());
        u8::try_from(self.endpoints.len() - 1).unwrap_or(NO_ENDPOINT)
    }

    fn push(&mut self, sample: Sample, max: usize) {
        while self.samples.len() >= max {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        self.new_since_report = true;
        self.changed_since_eval = true;
    }

    /// Drops samples that ended before `cutoff_ns`; gives memory back when
    /// the buffer is mostly empty.
    fn prune(&mut self, cutoff_ns: u64) {
        let before = self.samples.len();
        self.samples.retain(|s| s.end_ns >= cutoff_ns);
        if self.samples.len() != before {
            self.changed_since_eval = true;
            if self.samples.capacity() > 4 * self.samples.len().max(8) {
                self.samples.shrink_to(2 * self.samples.len().max(8));
            }
        }
    }
}

/// A map keyed by text that lives across traces (fast, randomly seeded hash).
type TextMap<V> = HashMap<String, V, SeededState>;

const NIL: u32 = u32::MAX;

/// One tracked (service, template) in recency order.
#[derive(Debug)]
struct Node {
    prev: u32,
    next: u32,
    /// The trace (see [`Recency::batch`]) that last saw it.
    batch: u64,
    /// Whether the nodes of its batch are in (service, template) order.
    ordered: bool,
    service: String,
    template: String,
}

/// The tracked (service, template) pairs from the least to the most recently
/// seen: a doubly linked list in a slab, so that marking one as seen,
/// adding, evicting the oldest and removing one are all O(1).
///
/// The pairs one trace sees count as seen in (service, template) order. A
/// trace may mark them in another order (then its batch of nodes is not
/// `ordered`): the batch is sorted when eviction first reaches it. The
/// nodes of a batch stay contiguous, since marking a node moves it to the
/// back.
#[derive(Debug)]
struct Recency {
    nodes: Vec<Node>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    live: usize,
    /// The current batch (one per trace) and whether it is marked in order.
    batch: u64,
    ordered: bool,
    /// Scratch for sorting a batch.
    scratch: Vec<u32>,
}

impl Default for Recency {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            live: 0,
            batch: 0,
            ordered: true,
            scratch: Vec::new(),
        }
    }
}

impl Recency {
    /// How many pairs it orders.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.live
    }

    /// Starts the batch of a new trace, whose pairs are marked in
    /// (service, template) order when `ordered`.
    fn next_batch(&mut self, ordered: bool) {
        self.batch = self.batch.wrapping_add(1);
        self.ordered = ordered;
    }

    fn unlink(&mut self, id: u32) {
        let (prev, next) = {
            let n = &self.nodes[id as usize];
            (n.prev, n.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    fn link_back(&mut self, id: u32) {
        let tail = self.tail;
        {
            let n = &mut self.nodes[id as usize];
            n.prev = tail;
            n.next = NIL;
        }
        match tail {
            NIL => self.head = id,
            t => self.nodes[t as usize].next = id,
        }
        self.tail = id;
    }

    /// Adds a pair as the most recently seen; returns its node.
    fn push(&mut self, service: &str, template: &str) -> u32 {
        let node = Node {
            prev: NIL,
            next: NIL,
            batch: self.batch,
            ordered: self.ordered,
            service: service.to_owned(),
            template: template.to_owned(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                u32::try_from(self.nodes.len() - 1).unwrap_or(NIL)
            }
        };
        self.link_back(id);
        self.live += 1;
        id
    }

    /// Marks node `id` as the most recently seen.
    fn touch(&mut self, id: u32) {
        if self.tail != id {
            self.unlink(id);
            self.link_back(id);
        }
        let n = &mut self.nodes[id as usize];
        n.batch = self.batch;
        n.ordered = self.ordered;
    }

    /// The least recently seen node.
    fn oldest(&mut self) -> Option<u32> {
        let head = self.head;
        let first = self.nodes.get(head as usize)?;
        if !first.ordered {
            self.order_batch_at_head();
        }
        Some(self.head)
    }

    /// Sorts the batch at the head by (service, template).
    fn order_batch_at_head(&mut self) {
        let batch = self.nodes[self.head as usize].batch;
        let mut ids = std::mem::take(&mut self.scratch);
        ids.clear();
        let mut at = self.head;
        while at != NIL && self.nodes[at as usize].batch == batch {
            ids.push(at);
            at = self.nodes[at as usize].next;
        }
        let nodes = &self.nodes;
        ids.sort_by(|&a, &b| {
            let (a, b) = (&nodes[a as usize], &nodes[b as usize]);
            (a.service.as_str(), a.template.as_str())
                .cmp(&(b.service.as_str(), b.template.as_str()))
        });
        // Relink the batch in order in front of what follows it.
        let mut prev = NIL;
        for &id in &ids {
            let n = &mut self.nodes[id as usize];
            n.prev = prev;
            n.ordered = true;
            match prev {
                NIL => self.head = id,
                p => self.nodes[p as usize].next = id,
            }
            prev = id;
        }
        if prev != NIL {
            self.nodes[prev as usize].next = at;
            match at {
                NIL => self.tail = prev,
                a => self.nodes[a as usize].prev = prev,
            }
        }
        self.scratch = ids;
    }

    /// Removes node `id`; returns its pair.
    fn remove(&mut self, id: u32) -> (String, String) {
        self.unlink(id);
        self.free.push(id);
        self.live -= 1;
        let n = &mut self.nodes[id as usize];
        (
            std::mem::take(&mut n.service),
            std::mem::take(&mut n.template),
        )
    }
}

/// Every tracked (service, template), with least-recently-seen eviction.
#[derive(Debug, Default)]
struct Store {
    by_service: TextMap<TextMap<Series>>,
    recency: Recency,
    len: usize,
}

impl Store {
    /// Calls `f` with the series of (`service`, `template`), created (after
    /// evicting the least recently seen ones down to `max_templates - 1`)
    /// when new, and marked as the most recently seen.
    fn with_series(
        &mut self,
        service: &str,
        template: &str,
        max_templates: usize,
        f: impl FnOnce(&mut Series),
    ) {
        let service = cap(service, MAX_KEY_BYTES);
        let template = cap(template, MAX_KEY_BYTES);
        if let Some(series) = self
            .by_service
            .get_mut(service)
            .and_then(|m| m.get_mut(template))
        {
            self.recency.touch(series.node);
            f(series);
            return;
        }
        while self.len >= max_templates.max(1) && self.evict_oldest() {}
        let node = self.recency.push(service, template);
        let templates = match self.by_service.get_mut(service) {
            Some(m) => m,
            None => self.by_service.entry(service.to_owned()).or_default(),
        };
        let series = templates
            .entry(template.to_owned())
            .or_insert_with(|| Series::new(node));
        self.len += 1;
        f(series);
    }

    /// Forgets the least recently seen series; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        let Some(oldest) = self.recency.oldest() else {
            return false;
        };
        let (service, template) = self.recency.remove(oldest);
        self.remove(&service, &template);
        true
    }

    fn remove(&mut self, service: &str, template: &str) {
        if let Some(m) = self.by_service.get_mut(service) {
            if m.remove(template).is_some() {
                self.len = self.len.saturating_sub(1);
            }
            if m.is_empty() {
                self.by_service.remove(service);
            }
        }
    }
}

/// Thresholds in nanoseconds, computed once.
#[derive(Debug, Clone, Copy)]
struct Limits {
    threshold_ns: u64,
    critical_ns: u64,
    min_occurrences: usize,
    window_ns: u64,
    min_traces: usize,
    max_samples: usize,
    max_templates: usize,
}

impl Limits {
    fn new(c: &SlowConfig) -> Self {
        let threshold_ns = c.threshold_ms.saturating_mul(NS_PER_MS);
        // Float to integer casts saturate; the multiplier is validated finite.
        let critical_ns = (threshold_ns as f64 * c.critical_multiplier) as u64;
        Self {
            threshold_ns,
            critical_ns: critical_ns.max(threshold_ns),
            min_occurrences: c.min_occurrences.max(1) as usize,
            window_ns: c.percentile_window_secs.saturating_mul(NS_PER_SEC),
            min_traces: c.cross_trace_min_traces.max(1) as usize,
            max_samples: c.max_samples_per_template.max(1) as usize,
            max_templates: c.max_templates.max(1) as usize,
        }
    }
}

struct Slow {
    flavour: &'static Flavour,
    config: SlowConfig,
    limits: Limits,
    store: Store,
    // Scratch buffers reused across traces and flushes.
    candidates: Vec<u32>,
    grouper: Grouper,
    slow: Vec<u32>,
    hashes: Vec<u64>,
    durations: Vec<u64>,
    traces: Vec<TraceId>,
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Slow {
    fn new(flavour: &'static Flavour, config: SlowConfig) -> Self {
        Self {
            flavour,
            limits: Limits::new(&config),
            config,
            store: Store::default(),
            candidates: Vec::new(),
            grouper: Grouper::default(),
            slow: Vec::new(),
            hashes: Vec::new(),
            durations: Vec::new(),
            traces: Vec::new(),
        }
    }

    /// How many (service, template) pairs are tracked across traces.
    #[cfg(test)]
    fn tracked_templates(&self) -> usize {
        self.store.len
    }

    fn severity(&self, slowest_ns: u64) -> Severity {
        if slowest_ns > self.limits.critical_ns {
            Severity::Critical
        } else {
            Severity::Warning
        }
    }

    /// The per-trace finding for the slow calls `slow` (start order) of one
    /// group.
    fn report(&mut self, trace: &TraceView<'_>, slow: &[u32], endpoint: &str) -> Option<Finding> {
        let spans = trace.spans();
        let first = spans.get(*slow.first()? as usize)?;
        let max_ns = slow
            .iter()
            .map(|&i| spans[i as usize].duration_ns)
            .max()
            .unwrap_or(0);
        self.hashes.clear();
        self.hashes
            .extend(slow.iter().map(|&i| spans[i as usize].params_hash));
        self.hashes.sort_unstable();
        self.hashes.dedup();
        let distinct = count_u32(self.hashes.len());
        let occurrences = count_u32(slow.len());
        let (first_ns, last_ns, total) = timing(spans, slow);
        let template = first.template.as_str();
        let threshold = self.config.threshold_ms;
        let mut title = format!(
            "{occurrences} slow {} of `{template}` (max {} ms, threshold {threshold} ms)",
            self.flavour.noun,
            ms(max_ns)
        );
        if !endpoint.is_empty() {
            title.push_str(" in ");
            title.push_str(endpoint);
        }
        // Cite the slowest calls when there are too many, in start order.
        let mut cited: Vec<(usize, u32)> = slow.iter().copied().enumerate().collect();
        if cited.len() > MAX_EVIDENCE {
            cited.sort_by_key(|&(pos, i)| (std::cmp::Reverse(spans[i as usize].duration_ns), pos));
            cited.truncate(MAX_EVIDENCE);
            cited.sort_unstable_by_key(|&(pos, _)| pos);
        }
        let finding = Finding::new(
            self.flavour.finding_kind,
            self.severity(max_ns),
            trace.trace_id(),
        )
        .title(title)
        .template(template)
        .service(first.service.as_str())
        .endpoint(endpoint)
        .occurrences(occurrences, distinct)
        .avoidable_io(0)
        .timing(first_ns, last_ns, total)
        .evidence(cited.iter().map(|&(_, i)| spans[i as usize].span_id))
        .suggestion(self.flavour.suggestion)
        .code(code_of(spans, slow))
        .extra("max_ms", ms(max_ns))
        .extra("threshold_ms", threshold.to_string());
        Some(finding)
    }

    /// Records every call of one group as cross-trace samples; `slow` are the
    /// group's slow calls, `endpoint` theirs.
    fn record(&mut self, trace: &TraceView<'_>, group: &[u32], slow: &[u32], endpoint: &str) {
        let spans = trace.spans();
        let Some(first) = group.first().and_then(|&i| spans.get(i as usize)) else {
            return;
        };
        let limits = self.limits;
        let trace_id = trace.trace_id();
        let record = |series: &mut Series| {
            let slow_slot = if slow.is_empty() {
                NO_ENDPOINT
            } else {
                let code = code_of(spans, slow);
                if !code.is_empty() && !same_code(code, &series.code) {
                    series.code = code.into();
                }
                series.endpoint_slot(endpoint)
            };
            // Only the newest `max_samples` calls of the group can stay.
            let skip = group.len().saturating_sub(limits.max_samples);
            for &i in group.iter().skip(skip) {
                let Some(s) = spans.get(i as usize) else {
                    continue;
                };
                let is_slow = s.duration_ns > limits.threshold_ns;
                series.push(
                    Sample {
                        end_ns: s.end_ns(),
                        duration_ns: s.duration_ns,
                        trace_id,
                        span_id: s.span_id,
                        endpoint: if is_slow { slow_slot } else { NO_ENDPOINT },
                    },
                    limits.max_samples,
                );
            }
        };
        self.store.with_series(
            first.service.as_str(),
            first.template.as_str(),
            limits.max_templates,
            record,
        );
    }

    /// The cross-trace finding of one series, when its p99 is above the
    /// threshold with slow calls in enough traces.
    fn evaluate(&mut self, service: &str, template: &str, series: &Series) -> Option<Finding> {
        let limits = self.limits;
        self.durations.clear();
        self.durations
            .extend(series.samples.iter().map(|s| s.duration_ns));
        self.durations.sort_unstable();
        let p50 = nearest_rank(&self.durations, 50)?;
        let p95 = nearest_rank(&self.durations, 95)?;
        let p99 = nearest_rank(&self.durations, 99)?;
        if p99 <= limits.threshold_ns {
            return None;
        }
        let is_slow = |s: &&Sample| s.duration_ns > limits.threshold_ns;

        self.traces.clear();
        self.traces
            .extend(series.samples.iter().filter(is_slow).map(|s| s.trace_id));
        self.traces.sort_unstable();
        self.traces.dedup();
        let slow_traces = self.traces.len();
        if slow_traces < limits.min_traces {
            return None;
        }
        self.traces.clear();
        self.traces
            .extend(series.samples.iter().map(|s| s.trace_id));
        self.traces.sort_unstable();
        self.traces.dedup();
        let traces = self.traces.len();

        // The slowest sample; ties go to the latest, then the smallest ids.
        let slowest = series.samples.iter().max_by(|a, b| {
            a.duration_ns
                .cmp(&b.duration_ns)
                .then(a.end_ns.cmp(&b.end_ns))
                .then(b.trace_id.cmp(&a.trace_id))
                .then(b.span_id.cmp(&a.span_id))
        })?;
        let (mut first_ns, mut last_ns, mut total, mut slow_calls) = (u64::MAX, 0u64, 0u64, 0usize);
        for s in series.samples.iter().filter(is_slow) {
            first_ns = first_ns.min(s.end_ns.saturating_sub(s.duration_ns));
            last_ns = last_ns.max(s.end_ns);
            total = total.saturating_add(s.duration_ns);
            slow_calls += 1;
        }
        let endpoint = series
            .endpoints
            .get(usize::from(slowest.endpoint))
            .map_or("", String::as_str);
        let samples = series.samples.len();
        let mut title = format!(
            "p99 of `{template}` is {} ms over {samples} {} in {traces} traces (threshold {} ms)",
            ms(p99),
            self.flavour.noun,
            self.config.threshold_ms
        );
        if !endpoint.is_empty() {
            title.push_str("; slowest in ");
            title.push_str(endpoint);
        }
        let mut finding = Finding::new(
            self.flavour.finding_kind,
            self.severity(p99),
            slowest.trace_id,
        )
        .title(title)
        .template(template)
        .service(service)
        .endpoint(endpoint)
        .occurrences(count_u32(slow_calls), 0)
        .avoidable_io(0)
        .timing(first_ns.min(last_ns), last_ns, total)
        .evidence([slowest.span_id])
        .suggestion(self.flavour.suggestion)
        .extra("scope", "cross_trace")
        .extra("p50_ms", ms(p50))
        .extra("p95_ms", ms(p95))
        .extra("p99_ms", ms(p99))
        .extra("max_ms", ms(slowest.duration_ns))
        .extra("threshold_ms", self.config.threshold_ms.to_string())
        .extra("samples", samples.to_string())
        .extra("traces", traces.to_string())
        .extra("slow_traces", slow_traces.to_string())
        .extra(
            "window_secs",
            self.config.percentile_window_secs.to_string(),
        );
        finding.code = series.code.clone();
        Some(finding)
    }
}

impl Detector for Slow {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        let spans = trace.spans();
        let flavour = self.flavour;
        let mut candidates = std::mem::take(&mut self.candidates);
        let mut slow = std::mem::take(&mut self.slow);
        candidates.clear();
        candidates.extend(
            trace
                .of_kind(self.flavour.kind)
                .iter()
                .copied()
                .filter(|&i| spans.get(i as usize).is_some_and(|s| flavour.eligible(s))),
        );
        let threshold_ns = self.limits.threshold_ns;
        let mut grouper = std::mem::take(&mut self.grouper);
        grouper.group_unordered(spans, &mut candidates, 1);
        // The groups are recorded in (service, template) order, which the
        // recency order shows when a template is evicted during this trace
        // and two capped keys may share a series. Otherwise any order does:
        // the recency batch is ordered when eviction reaches it, and the
        // findings are sorted below.
        let may_evict =
            self.store.len.saturating_add(grouper.groups.len()) > self.limits.max_templates;
        let ordered = may_evict
            || candidates.iter().any(|&i| {
                let s = &spans[i as usize];
                s.template.len() > MAX_KEY_BYTES - 4 || s.service.len() > MAX_KEY_BYTES - 4
            });
        if ordered {
            grouper.order_groups(spans, &candidates);
        }
        self.store.recency.next_batch(ordered);
        let from = out.len();
        for range in &grouper.groups {
            let Some(group) = candidates.get(range.clone()) else {
                continue;
            };
            slow.clear();
            slow.extend(
                group
                    .iter()
                    .copied()
                    .filter(|&i| spans[i as usize].duration_ns > threshold_ns),
            );
            let endpoint = match slow.first() {
                Some(&i) => endpoint_of(trace, i as usize),
                None => String::new(),
            };
            if slow.len() >= self.limits.min_occurrences {
                out.extend(self.report(trace, &slow, &endpoint));
            }
            self.record(trace, group, &slow, &endpoint);
        }
        if !ordered && let Some(found) = out.get_mut(from..) {
            found.sort_by(|a, b| {
                (a.service.as_str(), a.template.as_str())
                    .cmp(&(b.service.as_str(), b.template.as_str()))
            });
        }
        self.grouper = grouper;
        self.candidates = candidates;
        self.slow = slow;
        Ok(())
    }

    fn flush(&mut self, now_ns: u64, out: &mut RVec<Finding>) -> Result<(), DetectorError> {
        let cutoff = now_ns.saturating_sub(self.limits.window_ns);
        let start = out.len();
        let mut store = std::mem::take(&mut self.store);
        let mut emptied: Vec<u32> = Vec::new();
        for (service, templates) in &mut store.by_service {
            for (template, series) in templates.iter_mut() {
                series.prune(cutoff);
                if series.samples.is_empty() {
                    emptied.push(series.node);
                    continue;
                }
                if !(series.new_since_report && series.changed_since_eval) {
                    continue;
                }
                series.changed_since_eval = false;
                if let Some(f) = self.evaluate(service, template, series) {
                    out.push(f);
                    series.new_since_report = false;
                }
            }
        }
        for node in emptied {
            let (service, template) = store.recency.remove(node);
            store.remove(&service, &template);
        }
        self.store = store;
        if let Some(new) = out.get_mut(start..) {
            new.sort_by(|a, b| {
                (a.service.as_str(), a.template.as_str())
                    .cmp(&(b.service.as_str(), b.template.as_str()))
            });
        }
        Ok(())
    }
}

/// Factory of the `slow_sql` detector.
pub struct SlowSql;

/// Factory of the `slow_http` detector.
pub struct SlowHttp;

/// Factory of the `slow_messaging` detector.
pub struct SlowMessaging;

macro_rules! slow_factory {
    ($factory:ident, $flavour:ident, $id:literal, $description:literal) => {
        impl DetectorFactory for $factory {
            fn id(&self) -> &str {
                $id
            }
            fn description(&self) -> &str {
                $description
            }
            fn cross_trace(&self) -> bool {
                true
            }
            fn inherited_keys(&self) -> &[InheritedKey] {
                INHERITED
            }
            fn default_config(&self) -> toml::Table {
                defaults_table::<SlowConfig>()
            }
            fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
                Ok(Box::new(Slow::new(&$flavour, parse_config(config)?)))
            }
        }

        register_builtin!($factory);
    };
}

slow_factory!(
    SlowSql,
    SQL,
    "slow_sql",
    "SQL statements slower than a threshold, repeated in one trace or with a p99 above it across traces."
);
slow_factory!(
    SlowHttp,
    HTTP,
    "slow_http",
    "Outbound HTTP calls slower than a threshold, repeated in one trace or with a p99 above it across traces."
);
slow_factory!(
    SlowMessaging,
    MESSAGING,
    "slow_messaging",
    "Message sends (producer spans) slower than a threshold, repeated in one trace or with a p99 above it across traces."
);

#[cfg(test)]
mod tests;
