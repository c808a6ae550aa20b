//! Values that are valid but probably not what the operator wants: each
//! becomes a startup warning (and a `config check` warning) naming the key,
//! the value and what it will do, without refusing to start.

use super::{Config, ConfigProblem, DaemonConfig};

/// One rule: the key, whether its value is outside the comfort zone, and
/// the consequence to spell out.
struct Rule {
    key: &'static str,
    outside: fn(&DaemonConfig) -> Option<String>,
}

const RULES: &[Rule] = &[
    Rule {
        key: "trace_ttl_ms",
        outside: |d| match d.trace_ttl_ms {
            t if t < 1_000 => Some(format!(
                "{t} ms: traces longer than that are analyzed in pieces, so N+1 loops spread over them are missed (comfort zone 1000 to 300000)"
            )),
            t if t > 300_000 => Some(format!(
                "{t} ms: incomplete traces are held that long, which costs memory under load (comfort zone 1000 to 300000)"
            )),
            _ => None,
        },
    },
    Rule {
        key: "trace_settle_ms",
        outside: |d| {
            (d.trace_settle_ms < 100).then(|| format!(
            "{} ms: spans exported a moment after their root (common with batching exporters) arrive late and are analyzed apart (comfort zone 100 or more)",
            d.trace_settle_ms
        ))
        },
    },
    Rule {
        key: "max_active_traces",
        outside: |d| match d.max_active_traces {
            n if n < 100 => Some(format!(
                "{n}: under load traces are evicted into analysis before they complete (comfort zone 100 to 1000000)"
            )),
            n if n > 1_000_000 => Some(format!(
                "{n}: the window may hold that many traces in memory (comfort zone 100 to 1000000)"
            )),
            _ => None,
        },
    },
    Rule {
        key: "max_events_per_trace",
        outside: |d| {
            (d.max_events_per_trace > 100_000).then(|| format!(
            "{}: one runaway trace may hold that many spans in memory (comfort zone up to 100000)",
            d.max_events_per_trace
        ))
        },
    },
    Rule {
        key: "max_payload_size",
        outside: |d| {
            (d.max_payload_size > 64 * 1024 * 1024).then(|| format!(
            "{} bytes: each request in flight may hold that much memory, compressed and again decompressed (comfort zone up to 67108864)",
            d.max_payload_size
        ))
        },
    },
    Rule {
        key: "analysis_queue_capacity",
        outside: |d| match d.analysis_queue_capacity {
            n if n < 1_000 => Some(format!(
                "{n} spans: ordinary bursts will be refused with 503 / UNAVAILABLE (comfort zone 1000 to 10000000)"
            )),
            n if n > 10_000_000 => Some(format!(
                "{n} spans: that many accepted spans may wait in memory (comfort zone 1000 to 10000000)"
            )),
            _ => None,
        },
    },
    Rule {
        key: "admission_wait_ms",
        outside: |d| {
            (d.admission_wait_ms > 1_000).then(|| format!(
            "{} ms: exporters wait that long before a 503 and may time out instead of retrying (comfort zone up to 1000)",
            d.admission_wait_ms
        ))
        },
    },
    Rule {
        key: "sampling_rate",
        outside: |d| {
            (d.sampling_rate < 0.1).then(|| format!(
            "{}: fewer than one trace in ten is analyzed, so rare problems may never show (comfort zone 0.1 to 1.0)",
            d.sampling_rate
        ))
        },
    },
    Rule {
        key: "memory_high_water_pct",
        outside: |d| match d.memory_high_water_pct? {
            p if p < 50 => Some(format!(
                "{p}: ingest is refused while half the memory limit is still free (comfort zone 50 to 95)"
            )),
            p if p > 95 => Some(format!(
                "{p}: the guard engages too close to the limit to prevent an OOM kill (comfort zone 50 to 95)"
            )),
            _ => None,
        },
    },
    Rule {
        key: "http_request_timeout_ms",
        outside: |d| {
            (d.http_request_timeout_ms > 120_000).then(|| format!(
            "{} ms: a slow client may hold a connection that long (comfort zone up to 120000)",
            d.http_request_timeout_ms
        ))
        },
    },
    Rule {
        key: "max_retained_findings",
        outside: |d| {
            (d.max_retained_findings > 1_000_000).then(|| {
                format!(
                    "{}: findings are kept in memory for the API (comfort zone up to 1000000)",
                    d.max_retained_findings
                )
            })
        },
    },
    Rule {
        key: "shutdown_grace_ms",
        outside: |d| {
            (d.shutdown_grace_ms > 28_000).then(|| format!(
            "{} ms: Kubernetes kills the pod after terminationGracePeriodSeconds (30 s unless raised), possibly before buffered traces are analyzed (comfort zone up to 28000)",
            d.shutdown_grace_ms
        ))
        },
    },
];

impl Config {
    /// Every `[daemon]` value outside its comfort zone, attributed to the
    /// file that set it.
    pub fn comfort_warnings(&self) -> Vec<ConfigProblem> {
        RULES
            .iter()
            .filter_map(|rule| {
                let message = (rule.outside)(&self.daemon)?;
                let key = format!("daemon.{}", rule.key);
                Some(ConfigProblem {
                    file: self.origins.file_of(&key).to_owned(),
                    key,
                    message,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::from_toml_str;
    use super::*;

    #[test]
    fn the_defaults_are_comfortable() {
        assert_eq!(Config::default().comfort_warnings(), Vec::new());
        let every_key_at_default =
            from_toml_str("[daemon]\nsampling_rate = 1.0\n", "f.toml").unwrap();
        assert_eq!(every_key_at_default.comfort_warnings(), Vec::new());
    }

    #[test]
    fn values_outside_the_zone_are_named_with_their_consequence() {
        let c = from_toml_str(
            "[daemon]\ntrace_ttl_ms = 500\ntrace_settle_ms = 50\nanalysis_queue_capacity = 10\nsampling_rate = 0.01\nmemory_high_water_pct = 98\n",
            "prod.toml",
        )
        .unwrap();
        let warnings = c.comfort_warnings();
        let keys: Vec<&str> = warnings.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "daemon.trace_ttl_ms",
                "daemon.trace_settle_ms",
                "daemon.analysis_queue_capacity",
                "daemon.sampling_rate",
                "daemon.memory_high_water_pct",
            ]
        );
        assert!(warnings.iter().all(|w| w.file == "prod.toml"));
        assert!(
            warnings[2]
                .message
                .starts_with("10 spans: ordinary bursts will be refused")
        );
    }
}
