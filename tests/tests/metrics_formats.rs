//! `/metrics` in both formats, read by the official Python parsers
//! (prometheus_client, installed by scripts/test.sh): Prometheus text by
//! default, OpenMetrics with trace-id exemplars when asked for, and every
//! exemplar names a trace whose finding is on `/api/findings`.

mod common;

use std::time::Duration;

use common::{Daemon, FAST, n1_request, parse_metrics_with_python};
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_formats_parse_and_exemplars_name_real_traces() {
    let mut daemon = Daemon::start(FAST, "");
    for t in [0x31u8, 0x32] {
        let resp = reqwest::Client::new()
            .post(daemon.http("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(n1_request([t; 16], "orders", 7).encode_to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    daemon
        .wait_for(Duration::from_secs(20), "both findings", || async {
            let folded = daemon.findings("type=n_plus_one_sql").await;
            (folded.len() == 1 && folded[0]["seen_count"] == 2).then_some(())
        })
        .await;

    let plain = reqwest::get(daemon.http("/metrics")).await.unwrap();
    assert!(
        plain.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let plain = parse_metrics_with_python("prometheus", &plain.text().await.unwrap());
    let samples = &plain["samples"];
    assert_eq!(
        samples["perf_sentinel_findings_total{severity=\"warning\",type=\"n_plus_one_sql\"}"], 2.0,
        "{plain}"
    );
    assert_eq!(samples["perf_sentinel_spans_received_total{}"], 16.0);
    assert!(samples["process_resident_memory_bytes{}"].as_f64().unwrap() > 1e6);
    assert!(samples["process_open_fds{}"].as_f64().unwrap() >= 3.0);
    assert!(samples["process_start_time_seconds{}"].as_f64().unwrap() > 1.7e9);
    assert!(plain["exemplars"].as_array().unwrap().is_empty());

    let om = reqwest::Client::new()
        .get(daemon.http("/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        om.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let om = parse_metrics_with_python("openmetrics", &om.text().await.unwrap());
    let exemplars: Vec<String> = om["exemplars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    assert!(!exemplars.is_empty(), "{om}");
    for trace in exemplars {
        assert!(
            !daemon
                .findings(&format!("trace_id={trace}"))
                .await
                .is_empty(),
            "exemplar trace {trace} has no finding"
        );
    }
    assert!(daemon.terminate().success());
}
