//! GreenOps end to end: the real daemon scores findings with the proxy
//! model, then scrapes a Scaphandre-format exporter and an Electricity
//! Maps-format API served by this test on loopback, replaces the proxy
//! with the measurement, and reports the backends' health on `/metrics`
//! and `GET /api/energy`. The Electricity Maps token never shows.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Daemon, FAST, hex, metric_value, n1_request, parse_metrics_with_python};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "e2e-emaps-token-5f3a9c";

const SCAPHANDRE: &str = "# HELP scaph_host_power_microwatts Power measurement on the whole host, in microwatts\n\
# TYPE scaph_host_power_microwatts gauge\n\
scaph_host_power_microwatts 24567000\n\
# HELP scaph_process_power_consumption_microwatts Power consumption due to the process, measured on at the topology level, in microwatts\n\
# TYPE scaph_process_power_consumption_microwatts gauge\n\
scaph_process_power_consumption_microwatts{exe=\"java\",pid=\"4211\",cmdline=\"java -jar /app/orders-api.jar\"} 3600000\n\
scaph_process_power_consumption_microwatts{exe=\"postgres\",pid=\"901\",cmdline=\"postgres: checkpointer\"} 400000\n";

const EMAPS: &str = r#"{"zone":"FR","carbonIntensity":31,"datetime":"2026-11-26T02:00:00.000Z","updatedAt":"2026-11-26T01:45:12.345Z","emissionFactorType":"lifecycle","isEstimated":true}"#;

/// A one-answer-per-connection HTTP/1.1 server on loopback: `body` for
/// every request whose headers contain `need` (else 401). Counts requests.
async fn exporter(body: &'static str, need: Option<String>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let need = need.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::Relaxed);
                let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let allowed = need
                    .as_ref()
                    .is_none_or(|n| text.contains(&n.to_ascii_lowercase()));
                let (status, body) = if allowed {
                    ("200 OK", body)
                } else {
                    ("401 Unauthorized", "{}")
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), hits)
}

async fn energy(daemon: &Daemon) -> Value {
    serde_json::from_str(&daemon.get("/api/energy").await).unwrap()
}

fn backend<'a>(e: &'a Value, name: &str) -> &'a Value {
    e["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["backend"] == name)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_scores_then_measured_energy_replaces_it() {
    let (scaph, scaph_hits) = exporter(SCAPHANDRE, None).await;
    let (emaps, _) = exporter(EMAPS, Some(format!("auth-token: {TOKEN}"))).await;
    let extra = format!(
        "[green]\ndefault_region = \"eu-west-3\"\n\n\
         [green.scaphandre]\nendpoint = \"{scaph}/metrics\"\nscrape_interval_secs = 1\n\
         process_map = {{ \"order-svc\" = \"orders-api\" }}\n\n\
         [green.electricity_maps]\nendpoint = \"{emaps}/v3\"\napi_key = \"env:PS_E2E_EMAPS\"\n\
         region_map = {{ \"eu-west-3\" = \"FR\" }}\n"
    );
    let daemon = Daemon::start_with_env(FAST, &extra, &[("PS_E2E_EMAPS", TOKEN)]);

    // The real-time intensity arrives with the first poll.
    daemon
        .wait_for(Duration::from_secs(20), "a grid reading", || async {
            let e = energy(&daemon).await;
            (backend(&e, "electricity_maps")["status"] == "ok").then_some(())
        })
        .await;

    // Traces keep flowing until the scraper has a window with operations.
    let mut round = 0u8;
    let measured = daemon
        .wait_for(Duration::from_secs(30), "a measured finding", || {
            round += 1;
            let id = [round; 16];
            let daemon = &daemon;
            async move {
                assert_eq!(
                    daemon
                        .post_otlp(&n1_request(id, "order-svc", 6))
                        .await
                        .status(),
                    200
                );
                tokio::time::sleep(Duration::from_millis(400)).await;
                let f = daemon.trace_findings(&hex(&id)).await;
                let n1 = f.into_iter().find(|f| f["type"] == "n_plus_one_sql")?;
                (n1["green_impact"]["energy_source"] == "measured:scaphandre").then_some(n1)
            }
        })
        .await;
    let g = &measured["green_impact"];
    assert_eq!(g["estimated_extra_io_ops"], 5);
    assert_eq!(g["grid_region"], "eu-west-3");
    assert_eq!(g["grid_intensity_gco2_kwh"], 31.0);
    let kwh = g["estimated_energy_kwh"].as_f64().unwrap();
    let co2 = g["estimated_co2_gco2"].as_f64().unwrap();
    assert!(kwh > 0.0 && (co2 - kwh * 31.0).abs() <= co2 * 1e-9, "{g}");

    let e = energy(&daemon).await;
    let s = backend(&e, "scaphandre");
    assert_eq!(s["configured"], true);
    assert_eq!(s["status"], "ok");
    assert_eq!(s["endpoint"], scaph, "path left out");
    assert!(s["scrapes_ok"].as_u64().unwrap() >= 2);
    assert_eq!(backend(&e, "kepler")["configured"], false);
    let services = e["measured_services"].as_array().unwrap();
    assert!(
        services
            .iter()
            .any(|m| m["service"] == "order-svc" && m["in_use"] == true),
        "{e}"
    );
    assert!(scaph_hits.load(Ordering::Relaxed) >= 2);

    let metrics = daemon.get("/metrics").await;
    assert_eq!(
        metric_value(
            &metrics,
            "perf_sentinel_energy_backend_configured{backend=\"scaphandre\"}"
        ),
        1.0
    );
    assert_eq!(
        metric_value(
            &metrics,
            "perf_sentinel_energy_backend_configured{backend=\"kepler\"}"
        ),
        0.0
    );
    assert!(
        metric_value(
            &metrics,
            "perf_sentinel_scaphandre_scrape_total{status=\"ok\"}"
        ) >= 2.0
    );
    let age = metric_value(&metrics, "perf_sentinel_scaphandre_last_scrape_age_seconds");
    assert!(
        metrics.contains("perf_sentinel_scaphandre_last_scrape_age_seconds ") && age < 10.0,
        "{metrics}"
    );
    assert!(metrics.contains("perf_sentinel_electricity_maps_last_scrape_age_seconds "));
    assert!(metric_value(&metrics, "perf_sentinel_energy_kwh{scope=\"io\"}") > 0.0);
    assert!(metric_value(&metrics, "perf_sentinel_carbon_gco2{scope=\"avoidable\"}") > 0.0);

    let plain = parse_metrics_with_python("prometheus", &metrics);
    assert!(
        plain["samples"]["perf_sentinel_scaphandre_scrape_total{status=\"ok\"}"]
            .as_f64()
            .unwrap()
            >= 2.0,
        "{plain}"
    );
    let om = reqwest::Client::new()
        .get(daemon.http("/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let om = parse_metrics_with_python("openmetrics", &om);
    let samples = &om["samples"];
    assert_eq!(
        samples["perf_sentinel_energy_backend_configured{backend=\"electricity_maps\"}"], 1.0,
        "{om}"
    );
    assert!(
        samples["perf_sentinel_electricity_maps_last_scrape_age_seconds{}"].is_number(),
        "{om}"
    );
    assert!(
        samples["perf_sentinel_energy_kwh{scope=\"io\"}"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{om}"
    );

    let config = daemon.get("/api/config").await;
    assert!(config.contains("env:PS_E2E_EMAPS"), "{config}");
    for shown in [
        config,
        daemon.get("/api/energy").await,
        metrics,
        daemon.stderr_text(),
    ] {
        assert!(!shown.contains(TOKEN), "the token leaked: {shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_model_scores_findings_and_a_dead_exporter_shows_as_failing() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/metrics", l.local_addr().unwrap())
    };
    let extra = format!(
        "[green]\ndefault_region = \"eu-west-3\"\n\n\
         [green.kepler]\nendpoint = \"{closed}\"\nscrape_interval_secs = 1\n\
         service_mappings = {{ \"order-svc\" = \"orders\" }}\n"
    );
    let daemon = Daemon::start(FAST, &extra);
    let id = [0x51; 16];
    assert_eq!(
        daemon
            .post_otlp(&n1_request(id, "order-svc", 6))
            .await
            .status(),
        200
    );
    let n1 = daemon.wait_trace_finding(&id, "n_plus_one_sql").await;
    // 5 avoidable SELECTs x 1e-7 kWh x 0.5 x PUE 1.135, x 51 g/kWh.
    let g = &n1["green_impact"];
    assert_eq!(g["energy_source"], "proxy");
    let kwh = g["estimated_energy_kwh"].as_f64().unwrap();
    assert!((kwh - 2.8375e-7).abs() < 1e-18, "{g}");
    let co2 = g["estimated_co2_gco2"].as_f64().unwrap();
    assert!((co2 - 2.8375e-7 * 51.0).abs() < 1e-15, "{g}");
    assert_eq!(g["estimated_co2_gco2_low"].as_f64().unwrap(), co2 * 0.5);
    assert_eq!(g["estimated_co2_gco2_high"].as_f64().unwrap(), co2 * 2.0);

    let e = daemon
        .wait_for(Duration::from_secs(10), "a failed scrape", || async {
            let e = energy(&daemon).await;
            (backend(&e, "kepler")["status"] == "failing").then_some(e)
        })
        .await;
    let k = backend(&e, "kepler");
    assert!(k["scrapes_failed"]["connect"].as_u64().unwrap() >= 1, "{e}");
    let metrics = daemon.get("/metrics").await;
    assert!(
        metric_value(
            &metrics,
            "perf_sentinel_kepler_scrape_failed_total{reason=\"connect\"}"
        ) >= 1.0
    );
    assert!(
        metric_value(
            &metrics,
            "perf_sentinel_kepler_scrape_total{status=\"error\"}"
        ) >= 1.0
    );
    let stderr = daemon.stderr_text();
    assert!(stderr.contains("energy scrape failed"), "{stderr}");
    assert!(
        !stderr.contains("/metrics\""),
        "the endpoint's path is not logged: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn green_off_means_no_scores_no_scrapers() {
    let daemon = Daemon::start(FAST, "[green]\nenabled = false\n");
    let id = [0x52; 16];
    daemon.post_otlp(&n1_request(id, "order-svc", 6)).await;
    let n1 = daemon.wait_trace_finding(&id, "n_plus_one_sql").await;
    assert!(
        n1["green_impact"].get("estimated_energy_kwh").is_none(),
        "{n1}"
    );
    assert_eq!(n1["green_impact"]["estimated_extra_io_ops"], 5);
    let e = energy(&daemon).await;
    assert_eq!(e["enabled"], false);
    assert!(
        !daemon
            .get("/metrics")
            .await
            .contains("perf_sentinel_energy_kwh{")
    );
}
