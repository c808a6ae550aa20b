//! Example perf-sentinel plugin: a downstream dependency whose error rate
//! spikes. Stateful and cross-trace: it counts outbound calls and errors per
//! peer over a rolling window and reports on `flush`.

use std::collections::{BTreeMap, VecDeque};

use detector_api::{
    defaults_table, parse_config, BuildError, Detector, DetectorConfig, DetectorError,
    DetectorFactory, Finding, IoKind, RVec, Severity, SpanId, TraceId, TraceView,
};
use serde::{Deserialize, Serialize};

/// Peers tracked at most; the least recently called is forgotten first.
const MAX_PEERS: usize = 1000;
/// Calls remembered per peer at most.
const MAX_CALLS: usize = 10_000;

/// Configuration, from `[detectors.downstream_error_spike]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The rolling window, in seconds.
    pub window_secs: u64,
    /// Calls needed in the window before a rate means anything.
    pub min_calls: u32,
    /// Error rate (0..1) from which the peer is reported.
    pub error_rate_threshold: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window_secs: 60,
            min_calls: 20,
            error_rate_threshold: 0.2,
        }
    }
}

impl DetectorConfig for Config {
    fn validate(&self) -> Result<(), BuildError> {
        if !(1..=86_400).contains(&self.window_secs) {
            return Err(BuildError::invalid(
                "window_secs",
                format!("must be between 1 and 86400, got {}", self.window_secs),
            ));
        }
        if self.min_calls == 0 {
            return Err(BuildError::invalid("min_calls", "must be at least 1"));
        }
        if !(self.error_rate_threshold > 0.0 && self.error_rate_threshold <= 1.0) {
            return Err(BuildError::invalid(
                "error_rate_threshold",
                format!("must be in (0, 1], got {}", self.error_rate_threshold),
            ));
        }
        Ok(())
    }
}

struct Call {
    end_ns: u64,
    error: bool,
}

#[derive(Default)]
struct Peer {
    calls: VecDeque<Call>,
    last_error: Option<(TraceId, SpanId, String)>,
    caller: String,
    /// Reported and not yet back under the threshold.
    alerting: bool,
    last_seen_ns: u64,
}

struct ErrorSpike {
    config: Config,
    peers: BTreeMap<String, Peer>,
}

impl ErrorSpike {
    fn forget_one(&mut self) {
        let oldest = self
            .peers
            .iter()
            .min_by_key(|(_, p)| p.last_seen_ns)
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.peers.remove(&k);
        }
    }
}

impl Detector for ErrorSpike {
    fn detect(
        &mut self,
        trace: &TraceView<'_>,
        _out: &mut RVec<Finding>,
    ) -> Result<(), DetectorError> {
        let spans = trace.spans();
        for kind in [IoKind::Http, IoKind::Rpc] {
            for &i in trace.of_kind(kind) {
                let s = &spans[i as usize];
                if s.span_kind.is_inbound() || s.peer_service.is_empty() {
                    continue;
                }
                let name = s.peer_service.as_str();
                if !self.peers.contains_key(name) && self.peers.len() >= MAX_PEERS {
                    self.forget_one();
                }
                let peer = self.peers.entry(name.to_owned()).or_default();
                let error = s.is_error || s.http_status >= 500;
                peer.calls.push_back(Call {
                    end_ns: s.end_ns(),
                    error,
                });
                if peer.calls.len() > MAX_CALLS {
                    peer.calls.pop_front();
                }
                peer.last_seen_ns = peer.last_seen_ns.max(s.end_ns());
                if error {
                    peer.last_error = Some((trace.trace_id(), s.span_id, s.template.to_string()));
                    peer.caller = s.service.to_string();
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self, now_ns: u64, out: &mut RVec<Finding>) -> Result<(), DetectorError> {
        let window = self.config.window_secs.saturating_mul(1_000_000_000);
        let since = now_ns.saturating_sub(window);
        for (name, peer) in &mut self.peers {
            while peer.calls.front().is_some_and(|c| c.end_ns < since) {
                peer.calls.pop_front();
            }
            let calls = peer.calls.len() as u32;
            let errors = peer.calls.iter().filter(|c| c.error).count() as u32;
            let rate = if calls == 0 {
                0.0
            } else {
                f64::from(errors) / f64::from(calls)
            };
            let spiking =
                calls >= self.config.min_calls && rate >= self.config.error_rate_threshold;
            if !spiking {
                peer.alerting = false;
                continue;
            }
            if peer.alerting {
                continue;
            }
            peer.alerting = true;
            let Some((trace_id, span_id, template)) = peer.last_error.clone() else {
                continue;
            };
            let severity = if rate >= 0.5 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            out.push(
                Finding::new("example.downstream_error_spike", severity, trace_id)
                    .title(format!(
                        "{name}: {errors} of {calls} calls failed in the last {}s",
                        self.config.window_secs
                    ))
                    .template(&template)
                    .service(&peer.caller)
                    .occurrences(errors, 0)
                    .timing(since, now_ns, 0)
                    .evidence([span_id])
                    .extra("peer", name.as_str())
                    .extra("error_rate", format!("{rate:.3}"))
                    .extra("calls", calls.to_string())
                    .suggestion(format!(
                        "Check {name}'s health; add a circuit breaker or fallback so its errors do not cascade."
                    )),
            );
        }
        Ok(())
    }
}

/// Factory of `downstream_error_spike`.
pub struct ErrorSpikeFactory;

impl DetectorFactory for ErrorSpikeFactory {
    fn id(&self) -> &str {
        "downstream_error_spike"
    }
    fn description(&self) -> &str {
        "A downstream dependency whose error rate over a rolling window crosses a threshold (example plugin)."
    }
    fn cross_trace(&self) -> bool {
        true
    }
    fn default_config(&self) -> toml::Table {
        defaults_table::<Config>()
    }
    fn build(&self, config: &toml::Table) -> Result<Box<dyn Detector>, BuildError> {
        Ok(Box::new(ErrorSpike {
            config: parse_config(config)?,
            peers: BTreeMap::new(),
        }))
    }
}

detector_api::export_detectors![ErrorSpikeFactory];

#[cfg(test)]
mod tests {
    use detector_api::testkit::{check_conformance, SpanSpec, TraceBuilder, T0_NS};

    use super::*;

    fn calls(trace_no: u8, failing: u32, ok: u32) -> TraceBuilder {
        let mut t = TraceBuilder::with_id(TraceId([trace_no; 16]));
        let root = t.root(SpanSpec::server("GET", "/pay"));
        for i in 0..failing + ok {
            let mut s = SpanSpec::http_client("POST", "bank/charge", &i.to_string())
                .at_us(u64::from(i) * 10, 5);
            s.peer_service = "bank".into();
            s.http_status = if i < failing { 503 } else { 200 };
            t.child(root, s);
        }
        t
    }

    #[test]
    fn conformance() {
        check_conformance(&ErrorSpikeFactory).unwrap();
    }

    #[test]
    fn a_spike_is_reported_once_then_rearmed() {
        let mut d = ErrorSpikeFactory.build(&toml::Table::new()).unwrap();
        let now = T0_NS + 1_000_000_000;
        calls(1, 3, 17).run(d.as_mut()).unwrap();
        let mut out = RVec::new();
        d.flush(now, &mut out).unwrap();
        assert!(out.is_empty(), "15 % is under the threshold");
        calls(2, 10, 0).run(d.as_mut()).unwrap();
        d.flush(now, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind.as_str(), "example.downstream_error_spike");
        assert_eq!(out[0].trace_id, TraceId([2; 16]));
        assert_eq!(out[0].extra_value("peer"), Some("bank"));
        assert_eq!(out[0].occurrences, 13);
        d.flush(now, &mut out).unwrap();
        assert_eq!(out.len(), 1, "not reported again while still spiking");
        // After the window the calls age out and the alert re-arms.
        d.flush(now + 120_000_000_000, &mut out).unwrap();
        calls(3, 25, 0).run(d.as_mut()).unwrap();
        d.flush(now + 120_000_000_000, &mut out).unwrap();
        assert_eq!(
            out.len(),
            1,
            "calls of trace 3 are also older than the window"
        );
    }

    #[test]
    fn config_is_validated() {
        for bad in [
            "window_secs = 0",
            "min_calls = 0",
            "error_rate_threshold = 1.5",
        ] {
            let err = ErrorSpikeFactory
                .build(&bad.parse().unwrap())
                .err()
                .unwrap();
            assert!(
                err.to_string().contains(bad.split(' ').next().unwrap()),
                "{err}"
            );
        }
    }
}
