//! SIGKILL while acknowledgments are being written: after a restart on the
//! same store, every ack answered 201 is there (unless a later unack was
//! answered 204), every unack answered 204 holds, nothing is listed twice,
//! and nothing that was never sent appears.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Daemon, FAST, TempDir};

const WRITERS: usize = 4;
const CYCLES: usize = 3;

fn signature(cycle: usize, writer: usize, n: usize) -> String {
    format!(
        "n_plus_one_sql:svc-{cycle}-{writer}:GET__orders:{:032x}",
        cycle * 1_000_000 + writer * 10_000 + n
    )
}

/// What the writers were told.
#[derive(Default)]
struct Told {
    acked: BTreeSet<String>,
    unacked: BTreeSet<String>,
    /// Sent, answer unknown (cut by the kill).
    unsure: BTreeSet<String>,
}

async fn listed(daemon: &Daemon) -> Vec<String> {
    let text = daemon.get("/api/acks").await;
    let list: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad /api/acks ({e}): {text}"));
    list.as_array()
        .unwrap_or_else(|| panic!("/api/acks is not a list: {text}"))
        .iter()
        .map(|a| a["signature"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_ack_writes_loses_no_answered_write_and_duplicates_none() {
    let dir = TempDir::new("ack-crash");
    let store = dir.0.join("acks.jsonl");
    let extra = format!(
        "[daemon.ack]\nstorage_path = {:?}\n",
        store.display().to_string()
    );
    let told = Arc::new(Mutex::new(Told::default()));
    for cycle in 0..CYCLES {
        let mut daemon = Daemon::start(FAST, &extra);
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (told, base) = (told.clone(), daemon.http("/api/findings/"));
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    for n in 0.. {
                        let sig = signature(cycle, w, n);
                        let url = format!("{base}{sig}/ack");
                        told.lock().unwrap().unsure.insert(sig.clone());
                        let Ok(r) = client
                            .post(&url)
                            .json(&json!({"by": format!("writer-{w}"), "reason": "crash test"}))
                            .send()
                            .await
                        else {
                            break;
                        };
                        assert_eq!(r.status(), 201, "ack {sig}");
                        {
                            let mut t = told.lock().unwrap();
                            t.unsure.remove(&sig);
                            t.acked.insert(sig.clone());
                        }
                        // Every third ack is revoked again: its unack must
                        // win after the restart too.
                        if n % 3 == 0 {
                            told.lock().unwrap().unsure.insert(sig.clone());
                            let Ok(r) = client.delete(&url).send().await else {
                                break;
                            };
                            assert_eq!(r.status(), 204, "unack {sig}");
                            let mut t = told.lock().unwrap();
                            t.unsure.remove(&sig);
                            t.unacked.insert(sig);
                        }
                    }
                })
            })
            .collect();
        // Kill once writes are flowing; the moment varies with the cycle.
        let goal = 60 + 40 * cycle;
        daemon
            .wait_for(Duration::from_secs(60), "acks written", || async {
                let t = told.lock().unwrap();
                (t.acked.len() >= goal * (cycle + 1)).then_some(())
            })
            .await;
        daemon.kill();
        for w in writers {
            w.await.unwrap();
        }
    }

    let daemon = Daemon::start(FAST, &extra);
    let listed = listed(&daemon).await;
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "a signature listed twice");
    let t = told.lock().unwrap();
    for sig in &t.acked {
        if t.unacked.contains(sig) {
            assert!(!unique.contains(sig), "{sig}: unack answered 204 but lost");
        } else if !t.unsure.contains(sig) {
            assert!(unique.contains(sig), "{sig}: ack answered 201 but lost");
        }
    }
    for sig in &unique {
        assert!(
            t.acked.contains(sig) || t.unsure.contains(sig),
            "{sig} listed but never acknowledged"
        );
    }
    // The store was compacted at open: one well-formed line per active ack.
    let text = std::fs::read_to_string(&store).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), unique.len(), "{text}");
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(unique.contains(v["signature"].as_str().unwrap()));
    }
}
