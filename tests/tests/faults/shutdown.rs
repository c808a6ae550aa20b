//! SIGTERM in the middle of load: every trace answered 200 before the
//! signal is analyzed and printed; what was refused or cut is retried, as an
//! OTLP exporter does, and accepted by the restarted daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message as _;

use crate::common::{Daemon, FAST, hex, n1_request};

const TRACES: u32 = 400;
const SENDERS: usize = 4;

fn trace_id(n: u32) -> [u8; 16] {
    let mut id = [0x5e; 16];
    id[12..].copy_from_slice(&n.to_be_bytes());
    id
}

/// What the senders saw, by trace number.
#[derive(Default)]
struct Outcomes {
    accepted: BTreeSet<u32>,
    /// Refused (503), cut, or the port closed: to be sent again.
    retry: BTreeSet<u32>,
}

/// N+1 trace ids printed on stdout, with how often each was printed.
fn printed(daemon: &Daemon) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for f in daemon.stdout_findings() {
        if f["type"] == "n_plus_one_sql" {
            *seen
                .entry(f["trace_id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_load_analyzes_everything_accepted_and_retries_land_after_restart() {
    let mut first = Daemon::start(FAST, "");
    let ports = (first.grpc_port, first.http_port);
    let url = first.http("/v1/traces");
    let next = Arc::new(AtomicU32::new(0));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (next, outcomes, url) = (next.clone(), outcomes.clone(), url.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= TRACES {
                        break;
                    }
                    let body = n1_request(trace_id(n), "orders", 6).encode_to_vec();
                    let ok = client
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .body(body)
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200);
                    let mut o = outcomes.lock().unwrap();
                    if ok {
                        o.accepted.insert(n);
                    } else {
                        o.retry.insert(n);
                    }
                }
            })
        })
        .collect();

    // Signal once a good part of the load is through, while senders go on.
    first
        .wait_for(Duration::from_secs(60), "100 accepted traces", || async {
            (outcomes.lock().unwrap().accepted.len() >= 100).then_some(())
        })
        .await;
    first.signal_term();
    for s in senders {
        s.await.unwrap();
    }
    let status = first.wait_exit();
    assert!(status.success(), "exit status {status}");
    let (accepted, retry) = {
        let o = outcomes.lock().unwrap();
        (o.accepted.clone(), o.retry.clone())
    };
    assert_eq!(accepted.len() + retry.len(), TRACES as usize);
    assert!(
        !retry.is_empty(),
        "the signal came after the whole load: nothing tested the retries"
    );

    // Every trace answered 200 was analyzed before the exit, once.
    let before = printed(&first);
    for n in &accepted {
        let id = hex(&trace_id(*n));
        assert_eq!(
            before.get(&id),
            Some(&1),
            "trace {n} was accepted before SIGTERM but printed {:?} times\nstderr:\n{}",
            before.get(&id),
            first.stderr_text()
        );
    }
    drop(first);

    // The exporter retries on the same address: the restarted daemon
    // accepts every one and analyzes it.
    let mut second = Daemon::start_on(ports, FAST, "");
    for n in &retry {
        let r = second
            .post_otlp(&n1_request(trace_id(*n), "orders", 6))
            .await;
        assert_eq!(r.status(), 200, "retry of trace {n}");
    }
    let expected = retry.len() as f64 * 7.0;
    second
        .wait_for(Duration::from_secs(30), "the retries analyzed", || async {
            (second.metric("perf_sentinel_spans_analyzed_total").await >= expected).then_some(())
        })
        .await;
    assert!(second.terminate().success());
    let after = printed(&second);
    for n in &retry {
        let id = hex(&trace_id(*n));
        assert_eq!(after.get(&id), Some(&1), "retried trace {n}");
    }
    // Nothing lost across the two runs: a request cut after the daemon
    // took it may be printed by both (at least once), never by neither.
    for n in 0..TRACES {
        let id = hex(&trace_id(n));
        assert!(
            before.contains_key(&id) || after.contains_key(&id),
            "trace {n} lost"
        );
    }
}
