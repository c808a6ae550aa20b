//! The ack store on a full or read-only disk. The daemon runs in its own
//! mount namespace (`unshare -m`) with a small tmpfs mounted where its store
//! lives: a real filesystem that really fills up or refuses writes, and
//! disappears with the process. The test reaches into it through
//! `/proc/<pid>/root`.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Daemon, FAST, Launch, TempDir, hex, n1_request};

/// Starts the daemon with a fresh tmpfs (mount `options`) at `disk` and
/// its ack store inside: configured at `disk/acks.jsonl`, or with
/// `default_path` the default one under `$XDG_DATA_HOME` = `disk`.
fn daemon_on_tmpfs(disk: &Path, options: &str, default_path: bool) -> Daemon {
    std::fs::create_dir_all(disk).unwrap();
    let store = disk.join("acks.jsonl");
    let extra = if default_path {
        String::new()
    } else {
        format!(
            "[daemon.ack]\nstorage_path = {:?}\n",
            store.display().to_string()
        )
    };
    let script = format!(
        "mount -t tmpfs -o {options} perf-sentinel-e2e \"$PS_E2E_DISK\" || exit 97; exec \"$0\" \"$@\""
    );
    let wrapper: Vec<String> = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let disk_env = disk.display().to_string();
    Daemon::launch(
        FAST,
        &extra,
        &Launch {
            env: &[("PS_E2E_DISK", &disk_env), ("XDG_DATA_HOME", &disk_env)],
            wrapper,
            ..Launch::default()
        },
    )
}

/// `path` as the daemon sees it, from outside its mount namespace.
fn inside(daemon: &Daemon, path: &Path) -> PathBuf {
    PathBuf::from(format!("/proc/{}/root", daemon.pid())).join(path.strip_prefix("/").unwrap())
}

fn signature(n: usize) -> String {
    format!("n_plus_one_sql:svc-disk:GET__orders:{n:032x}")
}

async fn ack(daemon: &Daemon, n: usize) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(daemon.http(&format!("/api/findings/{}/ack", signature(n))))
        .json(&json!({"by": "disk-test", "reason": "filling the disk"}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Ingest still works: an N+1 trace gives its finding.
async fn still_ingests(daemon: &Daemon, n: u8) {
    let id = [0xd1, n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(
        daemon
            .post_otlp(&n1_request(id, "orders", 6))
            .await
            .status(),
        200
    );
    let id = hex(&id);
    daemon
        .wait_for(Duration::from_secs(20), "the N+1 finding", || async {
            (!daemon.trace_findings(&id).await.is_empty()).then_some(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_507_keeps_ingesting_and_recovers_when_freed() {
    let dir = TempDir::new("disk-full");
    let disk = dir.0.join("disk");
    let mut daemon = daemon_on_tmpfs(&disk, "size=64k,mode=0700", false);
    assert_eq!(ack(&daemon, 0).await.0, 201);

    // Fill what is left of the filesystem.
    let filler = inside(&daemon, &disk.join("filler"));
    let mut file = std::fs::File::create(&filler).expect("create the filler through /proc");
    let block = vec![0u8; 4096];
    let full = loop {
        if let Err(e) = file.write_all(&block) {
            break e;
        }
    };
    assert_eq!(full.raw_os_error(), Some(28), "{full}"); // ENOSPC
    drop(file);

    // Acks go on until the store's last page is full, then are refused with
    // 507 and a message naming the file and the system error.
    let mut ok = BTreeSet::from([0]);
    let (refused, body) = loop {
        let n = ok.len() + 1;
        assert!(n < 200, "acks still succeed on a full disk");
        match ack(&daemon, n).await {
            (201, _) => {
                ok.insert(n);
            }
            (status, body) => break (n, (status, body)),
        }
    };
    assert_eq!(body.0, 507, "{}", body.1);
    let message: Value = serde_json::from_str(&body.1).unwrap();
    let text = message.to_string();
    assert!(
        text.contains("acks.jsonl") && text.contains("No space left on device"),
        "{text}"
    );
    assert_eq!(
        daemon
            .metric(
                "perf_sentinel_ack_operations_failed_total{action=\"ack\",reason=\"disk_full\"}"
            )
            .await,
        1.0
    );

    // Ingest and reads go on; memory holds exactly what was answered 201.
    still_ingests(&daemon, 1).await;
    let listed: BTreeSet<usize> = {
        let text = daemon.get("/api/acks").await;
        let list: Value = serde_json::from_str(&text).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let sig = a["signature"].as_str().unwrap();
                usize::from_str_radix(sig.rsplit(':').next().unwrap(), 16).unwrap()
            })
            .collect()
    };
    assert_eq!(listed, ok);

    // Room again: the refused ack now succeeds.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(ack(&daemon, refused).await.0, 201);
    ok.insert(refused);

    // The file holds each answered ack once, no fragment of the failed
    // write (every line is whole JSON).
    let store = std::fs::read_to_string(inside(&daemon, &disk.join("acks.jsonl"))).unwrap();
    let mut on_disk = Vec::new();
    for line in store.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        let sig = v["signature"].as_str().unwrap();
        on_disk.push(usize::from_str_radix(sig.rsplit(':').next().unwrap(), 16).unwrap());
    }
    assert_eq!(on_disk.len(), ok.len(), "{store}");
    assert_eq!(on_disk.into_iter().collect::<BTreeSet<_>>(), ok);
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_disk_answers_503_and_keeps_ingesting() {
    // The default store path (a configured one that cannot be written
    // refuses startup instead: a wrong or unmounted volume fails loudly).
    let dir = TempDir::new("disk-ro");
    let disk = dir.0.join("disk");
    let mut daemon = daemon_on_tmpfs(&disk, "ro,size=64k,mode=0700", true);
    let (status, body) = ack(&daemon, 1).await;
    // The store cannot even be created: unavailable, with the reason.
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Read-only file system"), "{body}");
    still_ingests(&daemon, 2).await;
    assert!(daemon.terminate().success());
    let err = daemon.stderr_text();
    assert!(
        err.contains("acknowledgment store unavailable") && err.contains("Read-only file system"),
        "{err}"
    );
}
