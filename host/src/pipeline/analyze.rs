//! Analysis of one closed trace: normalize every span once, build the
//! borrowed [`TraceView`] and its indexes once, run every detector over it,
//! and stamp the findings.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use abi_stable::std_types::{ROption, RSlice};
use detector_api::{
    Attribute, CodeLocation, Finding, IoKind, NO_PARENT, RVec, SpanId, SpanView, TraceIndex,
    TraceView,
};
use xxhash_rust::xxh3::Xxh3;

use super::detectors::ActiveDetector;

use crate::findings::{FindingRecord, Stamp, io_intensity};
use crate::green::GreenScorer;
use crate::metrics::Metrics;
use crate::model::TraceFragment;
use crate::normalize::{normalize_http, normalize_sql};

/// Template and parameter facts of one span.
#[derive(Clone, Copy, Default)]
struct Norm {
    template: (u32, u32),
    template_hash: u64,
    params_hash: u64,
    param_count: u32,
}

/// Normalizes one span's target into `templates`.
fn normalize_span(
    kind: IoKind,
    target: &str,
    method: &str,
    route: &str,
    messaging_system: &str,
    templates: &mut String,
    params: &mut Vec<Range<usize>>,
) -> Norm {
    params.clear();
    let start = templates.len();
    let source = match kind {
        IoKind::Sql => {
            normalize_sql(target, templates, params);
            target
        }
        IoKind::Http => {
            // An inbound span's route is already a template; prefer it.
            let url = if route.is_empty() { target } else { route };
            normalize_http(method, url, templates, params);
            url
        }
        IoKind::Messaging => {
            templates.push_str(messaging_system);
            templates.push(' ');
            templates.push_str(target);
            target
        }
        IoKind::Rpc => {
            templates.push_str(target);
            target
        }
        IoKind::Other => target,
    };
    let mut hasher = Xxh3::new();
    for r in params.iter() {
        hasher.update(source.get(r.clone()).unwrap_or("").as_bytes());
        hasher.update(&[0xff]);
    }
    Norm {
        template_hash: xxhash_rust::xxh3::xxh3_64(templates.as_bytes().get(start..).unwrap_or(&[])),
        template: (start as u32, templates.len() as u32),
        params_hash: if params.is_empty() {
            0
        } else {
            hasher.digest()
        },
        param_count: params.len() as u32,
    }
}

/// What normalization made of one trace: the templates its views borrow and
/// the parent index of every span. Owned, so a trace can move to the
/// cross-trace stage without being normalized again.
#[derive(Default)]
pub struct Prepared {
    templates: String,
    norms: Vec<Norm>,
    parents: Vec<u32>,
}

/// Reusable buffers of the preparation step.
#[derive(Default)]
pub struct PrepScratch {
    params: Vec<Range<usize>>,
    ids: HashMap<SpanId, u32>,
}

/// Normalizes every span of `frag` once and resolves parents.
pub fn prepare(frag: &TraceFragment, scratch: &mut PrepScratch) -> Prepared {
    let arena = &frag.arena;
    let mut prep = Prepared {
        templates: String::with_capacity(frag.spans.len() * 48),
        norms: Vec::with_capacity(frag.spans.len()),
        parents: Vec::with_capacity(frag.spans.len()),
    };
    scratch.ids.clear();
    for (i, s) in frag.spans.iter().enumerate() {
        scratch.ids.insert(s.span_id, i as u32);
        let norm = normalize_span(
            s.kind.0,
            arena.get(s.target),
            arena.get(s.http_method),
            arena.get(s.http_route),
            arena.get(s.messaging_system),
            &mut prep.templates,
            &mut scratch.params,
        );
        prep.norms.push(norm);
    }
    for s in &frag.spans {
        let parent = if s.parent_id.is_zero() {
            NO_PARENT
        } else {
            scratch.ids.get(&s.parent_id).copied().unwrap_or(NO_PARENT)
        };
        prep.parents.push(parent);
    }
    prep
}

/// Builds the borrowed [`TraceView`] of a prepared trace and hands it to `f`.
pub fn with_view<R>(
    frag: &TraceFragment,
    prep: &Prepared,
    f: impl FnOnce(&TraceView<'_>) -> R,
) -> R {
    let arena = &frag.arena;
    let attrs: Vec<Attribute<'_>> = frag
        .attrs
        .iter()
        .map(|a| Attribute {
            key: arena.get(a.key).into(),
            value: arena.get(a.value).into(),
        })
        .collect();
    let templates = prep.templates.as_str();
    let spans: Vec<SpanView<'_>> = frag
        .spans
        .iter()
        .zip(&prep.norms)
        .zip(&prep.parents)
        .map(|((s, n), &parent)| {
            let a = s.attrs_start as usize;
            let span_attrs = attrs.get(a..a + s.attrs_len as usize).unwrap_or(&[]);
            SpanView {
                span_id: s.span_id,
                parent,
                service: arena.get(s.service).into(),
                name: arena.get(s.name).into(),
                scope: arena.get(s.scope).into(),
                kind: s.kind.0,
                span_kind: s.span_kind.0,
                is_error: s.is_error,
                http_status: s.http_status,
                start_ns: s.start_ns,
                duration_ns: s.duration_ns,
                target: arena.get(s.target).into(),
                template: templates
                    .get(n.template.0 as usize..n.template.1 as usize)
                    .unwrap_or("")
                    .into(),
                template_hash: n.template_hash,
                params_hash: n.params_hash,
                param_count: n.param_count,
                db_system: arena.get(s.db_system).into(),
                http_method: arena.get(s.http_method).into(),
                http_route: arena.get(s.http_route).into(),
                peer_service: arena.get(s.peer_service).into(),
                messaging_system: arena.get(s.messaging_system).into(),
                messaging_destination: arena.get(s.messaging_destination).into(),
                response_bytes: s.response_bytes.map_or(ROption::RNone, ROption::RSome),
                code: CodeLocation {
                    function: arena.get(s.code_function).into(),
                    filepath: arena.get(s.code_filepath).into(),
                    namespace: arena.get(s.code_namespace).into(),
                    lineno: s.code_lineno,
                },
                attributes: RSlice::from_slice(span_attrs),
            }
        })
        .collect();
    let index = TraceIndex::build(&spans);
    let view = TraceView::new(frag.trace_id, &spans, &index);
    f(&view)
}

/// A set of detector instances and the stamp their findings get.
pub struct Analyzer {
    detectors: Vec<ActiveDetector>,
    stamp: Stamp,
    findings: RVec<Finding>,
    /// Green scoring; `None` when `[green] enabled = false`.
    green: Option<Arc<GreenScorer>>,
    /// Records leave without their line (see [`Analyzer::with_deferred_lines`]).
    defer_lines: bool,
}

impl Analyzer {
    /// An analyzer running `detectors`, stamping findings with `stamp`.
    pub fn new(detectors: Vec<ActiveDetector>, stamp: Stamp) -> Self {
        Self {
            detectors,
            stamp,
            findings: RVec::new(),
            green: None,
            defer_lines: false,
        }
    }

    /// Per-trace records leave with their line unrendered
    /// ([`FindingRecord::render`] renders it): for batch mode, which keeps
    /// a few dozen of a hundred thousand findings.
    pub fn with_deferred_lines(mut self) -> Self {
        self.defer_lines = true;
        self
    }

    /// Scores every finding's energy and CO2 with `green`.
    pub fn with_green(mut self, green: Option<Arc<GreenScorer>>) -> Self {
        self.green = green;
        self
    }

    /// The green scorer, when scoring is on.
    pub fn green(&self) -> Option<&Arc<GreenScorer>> {
        self.green.as_ref()
    }

    /// True when it runs no detector.
    pub fn is_empty(&self) -> bool {
        self.detectors.is_empty()
    }

    /// Runs every detector over `view`; returns the findings, sorted on a
    /// stable key.
    pub fn run(&mut self, view: &TraceView<'_>, metrics: &Metrics) -> Vec<FindingRecord> {
        let mut records = Vec::new();
        // Same for every finding of the trace; only computed when one exists.
        let mut intensity = None;
        for d in &mut self.detectors {
            self.findings.clear();
            d.detect(view, &mut self.findings, metrics);
            for f in self.findings.drain(..) {
                let intensity = *intensity.get_or_insert_with(|| io_intensity(view));
                let green = self.green.as_ref().map(|g| g.score_finding(&f, Some(view)));
                let origin = &d.spec.origin;
                records.push(if self.defer_lines {
                    FindingRecord::scored_deferred(f, origin, &self.stamp, Some(intensity), green)
                } else {
                    FindingRecord::scored(f, origin, &self.stamp, Some(intensity), green.as_ref())
                });
            }
        }
        records.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        records
    }

    /// Normalizes, builds the view and runs every detector: the whole
    /// analysis of one trace in one call (benches, batch mode).
    pub fn analyze(
        &mut self,
        frag: &TraceFragment,
        scratch: &mut PrepScratch,
        metrics: &Metrics,
    ) -> Vec<FindingRecord> {
        let prep = prepare(frag, scratch);
        with_view(frag, &prep, |view| self.run(view, metrics))
    }

    /// Asks every detector to report what it accumulated across traces.
    pub fn flush(&mut self, now_ns: u64, metrics: &Metrics) -> Vec<FindingRecord> {
        let mut records = Vec::new();
        for d in &mut self.detectors {
            self.findings.clear();
            d.flush(now_ns, &mut self.findings, metrics);
            for f in self.findings.drain(..) {
                let green = self.green.as_ref().map(|g| g.score_finding(&f, None));
                records.push(FindingRecord::scored(
                    f,
                    &d.spec.origin,
                    &self.stamp,
                    None,
                    green.as_ref(),
                ));
            }
        }
        records.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        records
    }
}

/// Outbound I/O calls in `view`, and how many of them the findings say
/// could have been avoided (N+1 and redundant calls, counted once per
/// template and endpoint: the larger figure wins).
pub fn io_accounting(view: &TraceView<'_>, records: &[FindingRecord]) -> (u64, u64) {
    io_accounting_by_service(view, records, |_, _| {})
}

/// Energy (kWh) and carbon (g) of the operations the findings say could
/// have been avoided, counted like [`io_accounting`] counts them.
pub fn avoidable_energy(
    view: &TraceView<'_>,
    records: &[FindingRecord],
    green: &GreenScorer,
) -> (f64, f64) {
    let mut worst: HashMap<(&str, &str), (u32, f64, f64)> = HashMap::new();
    for r in records {
        let f = &r.finding;
        let kind = f.kind.as_str();
        if !(kind.starts_with("n_plus_one_") || kind.starts_with("redundant_")) {
            continue;
        }
        let slot = worst
            .entry((f.template.as_str(), f.endpoint.as_str()))
            .or_insert((0, 0.0, 0.0));
        if f.avoidable_io > slot.0 {
            let g = green.score_finding(f, Some(view));
            *slot = (f.avoidable_io, g.energy_kwh, g.co2_gco2);
        }
    }
    worst
        .values()
        .fold((0.0, 0.0), |(e, c), &(_, ke, kc)| (e + ke, c + kc))
}

/// [`io_accounting`], also reporting each service's outbound calls to
/// `per_service` (in first-seen order).
pub fn io_accounting_by_service(
    view: &TraceView<'_>,
    records: &[FindingRecord],
    mut per_service: impl FnMut(&str, u64),
) -> (u64, u64) {
    let spans = view.spans();
    let mut services: Vec<(&str, u64)> = Vec::new();
    for k in [IoKind::Sql, IoKind::Http, IoKind::Messaging, IoKind::Rpc] {
        for &i in view.of_kind(k) {
            let s = &spans[i as usize];
            if s.span_kind.is_inbound() {
                continue;
            }
            match services
                .iter_mut()
                .find(|(name, _)| *name == s.service.as_str())
            {
                Some((_, n)) => *n += 1,
                None => services.push((s.service.as_str(), 1)),
            }
        }
    }
    let mut total = 0;
    for (service, calls) in services {
        total += calls;
        per_service(service, calls);
    }
    let mut avoidable: HashMap<(&str, &str), u64> = HashMap::new();
    for r in records {
        let f = &r.finding;
        let kind = f.kind.as_str();
        if kind.starts_with("n_plus_one_") || kind.starts_with("redundant_") {
            let slot = avoidable
                .entry((f.template.as_str(), f.endpoint.as_str()))
                .or_insert(0);
            *slot = (*slot).max(u64::from(f.avoidable_io));
        }
    }
    (total, avoidable.values().sum::<u64>().min(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(kind: IoKind, target: &str, method: &str, route: &str) -> (String, Norm) {
        let mut t = String::new();
        let mut p = Vec::new();
        let n = normalize_span(kind, target, method, route, "kafka", &mut t, &mut p);
        (t, n)
    }

    #[test]
    fn same_statement_shape_same_template_params_decide_the_hash() {
        let (t1, a) = norm(IoKind::Sql, "SELECT * FROM t WHERE id = 1", "", "");
        let (t2, b) = norm(IoKind::Sql, "SELECT * FROM t WHERE id = 2", "", "");
        let (_, c) = norm(IoKind::Sql, "SELECT * FROM t WHERE id = 1", "", "");
        assert_eq!(t1, "SELECT * FROM t WHERE id = ?");
        assert_eq!(t1, t2);
        assert_ne!(a.params_hash, b.params_hash);
        assert_eq!(a.params_hash, c.params_hash);
        assert_eq!(a.param_count, 1);
    }

    #[test]
    fn http_prefers_the_route_and_messaging_names_the_destination() {
        let (t, _) = norm(IoKind::Http, "/orders/42", "GET", "/orders/{id}");
        assert_eq!(t, "GET /orders/{id}");
        let (t, n) = norm(IoKind::Http, "http://api:8080/users/7?x=1", "get", "");
        assert_eq!(t, "GET api:8080/users/{id}");
        assert_eq!(n.param_count, 2);
        let (t, _) = norm(IoKind::Messaging, "orders", "", "");
        assert_eq!(t, "kafka orders");
    }
}
