//! The finding-latency probe: while the load runs, it sends one N+1 trace
//! a second whose root span ends at the moment of sending, then polls the
//! daemon's `GET /api/findings/{trace_id}` until the finding is there. The
//! time from the root span's end to the finding being served is what a user
//! waits for; stdout gets the same finding in the same step.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message as _;
use serde::Serialize;

use crate::patterns::{Pattern, kv};
use crate::send::{Outcome, Transport};

/// How long one probe waits for its finding before counting it missing.
const GIVE_UP: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);
/// The root span of a probe trace lasts this long and ends when it is sent.
const ROOT_NS: u64 = 200_000_000;

/// What the probes saw.
#[derive(Debug, Serialize)]
pub struct ProbeReport {
    pub probes: u64,
    /// Probes whose finding was served within the 30 s limit.
    pub found: u64,
    /// Probes the daemon refused to take in (retried by nobody).
    pub refused: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Runs probes every `every` until `deadline`.
pub async fn run(
    mut transport: Transport,
    api: String,
    every: Duration,
    deadline: tokio::time::Instant,
) -> Result<ProbeReport, String> {
    let base = api.trim_end_matches('/').to_owned();
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    // 1 ms to 60 s, three significant figures: constant bounds, cannot fail.
    let mut latency =
        Histogram::<u64>::new_with_bounds(1, 60_000, 3).map_err(|e| format!("histogram: {e}"))?;
    let (mut probes, mut refused) = (0u64, 0u64);
    let mut waits = tokio::task::JoinSet::new();
    let mut ticker = tokio::time::interval(every);
    // A probe slower than `every` skips the ticks it missed.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        // `timeout_at` still yields a ready tick past the deadline: check.
        if tokio::time::timeout_at(deadline, ticker.tick())
            .await
            .is_err()
            || tokio::time::Instant::now() >= deadline
        {
            break;
        }
        probes += 1;
        let trace_id = probe_id(probes);
        let root_end = now_ns();
        let body = request(trace_id, root_end);
        let ended = Instant::now();
        if let Outcome::Refused(_) = transport.export(body).await {
            refused += 1;
            continue;
        }
        let url: http::Uri = format!("{base}/api/findings/{}", hex(&trace_id))
            .parse()
            .map_err(|e| format!("bad --probe URL {api:?}: {e}"))?;
        // Waits overlap, so probes keep their one-a-second pace.
        waits.spawn(wait_for_finding(client.clone(), url, ended));
    }
    while let Some(waited) = waits.join_next().await {
        if let Ok(Some(waited)) = waited {
            let _ = latency.record((waited.as_millis() as u64).clamp(1, 60_000));
        }
    }
    let q = |p: f64| latency.value_at_quantile(p) as f64;
    Ok(ProbeReport {
        probes,
        found: latency.len(),
        refused,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: latency.max() as f64,
    })
}

/// Polls `url` until it lists a finding; `None` after [`GIVE_UP`].
async fn wait_for_finding(
    client: Client<HttpConnector, Empty<Bytes>>,
    url: http::Uri,
    since: Instant,
) -> Option<Duration> {
    while since.elapsed() < GIVE_UP {
        if let Ok(resp) = client.get(url.clone()).await
            && resp.status().is_success()
            && let Ok(body) = resp.into_body().collect().await
        {
            // An empty list is `[]`; any finding makes it longer.
            if body.to_bytes().len() > 2 {
                return Some(since.elapsed());
            }
        }
        tokio::time::sleep(POLL).await;
    }
    None
}

/// Probe trace ids: a namespace no load worker uses (their first byte has
/// the high bit set), numbered, never zero.
fn probe_id(n: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(b"prob");
    id[8..].copy_from_slice(&n.to_be_bytes());
    id
}

fn request(trace_id: [u8; 16], root_end_ns: u64) -> Vec<u8> {
    let spans = Pattern::NPlusOne.spans(trace_id, 9, root_end_ns.saturating_sub(ROOT_NS));
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "otlp-load-probe")],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_traces_are_n_plus_one_shaped_and_end_now() {
        let body = request(probe_id(3), 5_000_000_000);
        let req = ExportTraceServiceRequest::decode(&body[..]).unwrap();
        let spans = &req.resource_spans[0].scope_spans[0].spans;
        let root = &spans[0];
        assert!(root.parent_span_id.is_empty());
        assert_eq!(root.end_time_unix_nano, 5_000_000_000);
        assert_eq!(root.trace_id, probe_id(3));
        assert!(spans.len() >= 6, "enough repeated SELECTs for an N+1");
        assert_ne!(probe_id(1)[0] & 0x80, 0x80, "outside the workers' ids");
        assert_eq!(hex(&[0x0a, 0xff]), "0aff");
    }
}
