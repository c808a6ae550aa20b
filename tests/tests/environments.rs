//! Per-environment overlays and service scoping, observed on the running
//! daemon: the same config file behaves differently in staging and in
//! production, and a detector scoped to some services ignores the others.

mod common;

use std::time::Duration;

use common::{Daemon, FAST, n1_request};
use prost::Message;

const CONFIG: &str = "
[detectors.n_plus_one_sql]
enabled = true
exclude_services = [\"batch\"]

[environments.production.detectors.n_plus_one_sql]
enabled = false
";

async fn send(daemon: &Daemon, trace: u8, service: &str) {
    let resp = reqwest::Client::new()
        .post(daemon.http("/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(n1_request([trace; 16], service, 8).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn analyzed(daemon: &Daemon, n: f64) {
    daemon
        .wait_for(Duration::from_secs(20), "traces analyzed", || async {
            (daemon
                .metric("perf_sentinel_traces_analyzed_total{reason=\"complete\"}")
                .await
                >= n)
                .then_some(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_reports_what_production_switches_off() {
    let mut staging = Daemon::start(FAST, CONFIG);
    send(&staging, 1, "orders").await;
    send(&staging, 2, "batch").await;
    analyzed(&staging, 2.0).await;
    let found = staging.findings("type=n_plus_one_sql").await;
    assert_eq!(found.len(), 1, "only the service in scope: {found:?}");
    assert_eq!(found[0]["service"], "orders");
    assert_eq!(found[0]["confidence"], "daemon_staging");
    assert_eq!(found[0]["environment"], "staging");
    assert!(staging.terminate().success());

    let mut production = Daemon::start(&format!("{FAST}environment = \"production\"\n"), CONFIG);
    send(&production, 1, "orders").await;
    analyzed(&production, 1.0).await;
    assert!(production.findings("type=n_plus_one_sql").await.is_empty());
    let detectors: Vec<serde_json::Value> =
        serde_json::from_str(&production.get("/api/detectors").await).unwrap();
    let sql = detectors
        .iter()
        .find(|d| d["id"] == "n_plus_one_sql")
        .unwrap();
    assert_eq!(sql["enabled"], false);
    assert!(production.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_environment_selects_the_overlay_and_the_confidence() {
    // --environment wins over the file: production here, so N+1 SQL is off
    // and nothing is reported; N+1 HTTP stays on.
    let extra = "[environments.production.detectors.n_plus_one_http]\nmin_occurrences = 3\n";
    let mut daemon = Daemon::start_with_args(
        FAST,
        &format!("{CONFIG}{extra}"),
        &["--environment", "production"],
    );
    send(&daemon, 3, "orders").await;
    analyzed(&daemon, 1.0).await;
    assert!(daemon.findings("type=n_plus_one_sql").await.is_empty());
    let status: serde_json::Value = serde_json::from_str(&daemon.get("/api/status").await).unwrap();
    assert_eq!(status["environment"], "production");
    assert!(daemon.terminate().success());
}
