//! Each scraper against a real HTTP server on loopback, serving the
//! exporter's wire format, then garbage, oversize, slow and redirecting
//! answers.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::*;
use crate::config::{
    CloudConfig, ElectricityMapsConfig, KeplerConfig, KeplerKind, RedfishConfig, ScaphandreConfig,
};

/// One canned answer.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: String,
    delay: Duration,
    location: Option<String>,
}

fn ok(body: &str) -> Answer {
    Answer {
        status: 200,
        body: body.to_owned(),
        delay: Duration::ZERO,
        location: None,
    }
}

/// Serves `answers` in turn (the last one forever) and records requests.
#[derive(Default)]
struct Script {
    answers: Mutex<Vec<Answer>>,
    requests: Mutex<Vec<(String, HeaderMap)>>,
}

async fn serve(
    State(script): State<Arc<Script>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    script
        .requests
        .lock()
        .unwrap()
        .push((uri.to_string(), headers));
    let answer = {
        let mut a = script.answers.lock().unwrap();
        if a.len() > 1 {
            a.remove(0)
        } else {
            a[0].clone()
        }
    };
    tokio::time::sleep(answer.delay).await;
    let mut r = (StatusCode::from_u16(answer.status).unwrap(), answer.body).into_response();
    if let Some(l) = answer.location {
        r.headers_mut().insert(header::LOCATION, l.parse().unwrap());
    }
    r
}

async fn server(answers: Vec<Answer>) -> (String, Arc<Script>) {
    let script = Arc::new(Script {
        answers: Mutex::new(answers),
        ..Script::default()
    });
    let app = Router::new().fallback(serve).with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), script)
}

fn target(endpoint: &str, interval_ms: u64) -> ScrapeTarget {
    ScrapeTarget {
        endpoint: endpoint.to_owned(),
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_millis(500),
        max_body_bytes: 64 * 1024,
        auth_header_env: None,
    }
}

/// Operations that grow by 100 per read.
fn growing_ops() -> OpsSource {
    let n = Arc::new(AtomicU64::new(0));
    Arc::new(move |_| n.fetch_add(100, Ordering::Relaxed) + 100)
}

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TEST_WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn green(f: impl FnOnce(&mut GreenConfig)) -> GreenConfig {
    let mut c = GreenConfig::default();
    f(&mut c);
    c
}

const SCAPH: &str = "# HELP scaph_process_power_consumption_microwatts Power consumption due to the process, measured on at the topology level, in microwatts\n# TYPE scaph_process_power_consumption_microwatts gauge\nscaph_process_power_consumption_microwatts{exe=\"java\",pid=\"4211\",cmdline=\"java -jar /app/orders-api.jar\"} 3600000\n";

#[test]
fn window_energy_is_divided_by_the_operations_of_the_window() {
    let n = Arc::new(AtomicU64::new(0));
    let counter = n.clone();
    let mut w = Window {
        ops: Arc::new(move |_| counter.load(Ordering::Relaxed)),
        last: None,
    };
    let t0 = Instant::now();
    let watts: BTreeMap<String, f64> = [("orders".to_owned(), 3.6)].into();
    n.store(1_000, Ordering::Relaxed);
    assert!(w.per_op(&Reading::Power(watts.clone()), t0).is_empty());
    // 3.6 W for 10 s = 36 J = 1e-5 kWh, over 500 operations.
    n.store(1_500, Ordering::Relaxed);
    let per_op = w.per_op(&Reading::Power(watts.clone()), t0 + Duration::from_secs(10));
    assert_eq!(per_op.len(), 1);
    assert!((per_op[0].1 - 2e-8).abs() < 1e-20, "{per_op:?}");
    // No operation in the window: no figure (the last one ages out).
    let none = w.per_op(&Reading::Power(watts), t0 + Duration::from_secs(20));
    assert!(none.is_empty());
    // A chassis shared by two services: one figure for both; a second
    // chassis (twice the power, half the operations) its own figure.
    let shared = Reading::SharedPower(vec![
        (vec!["a".into(), "b".into()], 360.0),
        (vec!["c".into()], 720.0),
    ]);
    let mut w2 = Window {
        ops: growing_ops(),
        last: None,
    };
    w2.per_op(&shared, t0);
    let per_op = w2.per_op(&shared, t0 + Duration::from_secs(1));
    assert_eq!(per_op.len(), 3);
    assert_eq!(per_op[0].1, per_op[1].1);
    // Every service moved 300 operations in the window.
    assert!(
        (per_op[0].1 - 360.0 / 3.6e6 / 600.0).abs() < 1e-20,
        "{per_op:?}"
    );
    assert!(
        (per_op[2].1 - 4.0 * per_op[0].1).abs() < 1e-20,
        "{per_op:?}"
    );
}

#[tokio::test]
async fn scaphandre_measures_and_falls_back_after_three_missed_intervals() {
    let mut failing = ok("boom");
    failing.status = 500;
    let (url, script) = server(vec![ok(SCAPH), ok(SCAPH), ok(SCAPH), failing]).await;
    let state = Arc::new(EnergyState::new());
    let config = green(|g| {
        g.scaphandre = Some(ScaphandreConfig {
            target: target(&format!("{url}/metrics"), 300),
            process_map: [("orders".to_owned(), "orders-api".to_owned())].into(),
        });
    });
    let stop = CancellationToken::new();
    let tasks = spawn_scrapers(&config, state.clone(), growing_ops(), stop.clone(), &no_env);
    let m = until("a measurement", || state.measured("orders", Instant::now())).await;
    assert_eq!(m.backend, "scaphandre");
    assert!(m.kwh_per_op > 0.0);
    until("the failures", || {
        let h = state.backends()["scaphandre"].clone();
        (h.failed_total.get("http_status").copied().unwrap_or(0) >= 1).then_some(())
    })
    .await;
    // Three intervals (0.9 s) after the last good scrape, the proxy is back.
    until("the fallback", || {
        state
            .measured("orders", Instant::now())
            .is_none()
            .then_some(())
    })
    .await;
    let h = state.backends()["scaphandre"].clone();
    assert!(h.ok_total >= 3);
    assert_eq!(h.last_error.as_deref(), Some("answered HTTP 500"));
    assert_eq!(h.endpoint, url);
    assert!(script.requests.lock().unwrap()[0].0.ends_with("/metrics"));
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
}

async fn first_failure(config: GreenConfig, backend: &'static str) -> (&'static str, String) {
    let state = Arc::new(EnergyState::new());
    let stop = CancellationToken::new();
    let tasks = spawn_scrapers(&config, state.clone(), growing_ops(), stop.clone(), &no_env);
    let out = until("a failure", || {
        let h = state.backends().get(backend)?.clone();
        let (reason, _) = h.failed_total.iter().next()?;
        Some((*reason, h.last_error.clone().unwrap_or_default()))
    })
    .await;
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    out
}

fn scaph_config(url: &str) -> GreenConfig {
    green(|g| {
        g.scaphandre = Some(ScaphandreConfig {
            target: ScrapeTarget {
                max_body_bytes: 4096,
                timeout: Duration::from_millis(200),
                ..target(url, 5_000)
            },
            process_map: [("orders".to_owned(), "orders-api".to_owned())].into(),
        });
    })
}

#[tokio::test]
async fn oversize_slow_malformed_and_redirecting_answers_fail_with_their_reason() {
    let big = ok(&SCAPH.repeat(100));
    let (url, _) = server(vec![big]).await;
    let (reason, message) = first_failure(scaph_config(&url), "scaphandre").await;
    assert_eq!(reason, "too_large");
    assert!(message.contains("4096-byte cap"), "{message}");

    let mut slow = ok(SCAPH);
    slow.delay = Duration::from_secs(3);
    let (url, _) = server(vec![slow]).await;
    assert_eq!(
        first_failure(scaph_config(&url), "scaphandre").await.0,
        "timeout"
    );

    let (url, _) = server(vec![ok(
        "scaph_process_power_consumption_microwatts{exe=\"java\" 12\n",
    )])
    .await;
    let (reason, message) = first_failure(scaph_config(&url), "scaphandre").await;
    assert_eq!(reason, "parse");
    assert!(message.contains("line 1"), "{message}");

    let mut moved = ok("");
    moved.status = 302;
    moved.location = Some("http://169.254.169.254/latest/meta-data".into());
    let (url, script) = server(vec![moved]).await;
    assert_eq!(
        first_failure(scaph_config(&url), "scaphandre").await.0,
        "redirect"
    );
    assert!(
        script
            .requests
            .lock()
            .unwrap()
            .iter()
            .all(|(u, _)| !u.contains("meta-data")),
        "the redirect was followed"
    );

    // Nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    assert_eq!(
        first_failure(scaph_config(&closed), "scaphandre").await.0,
        "connect"
    );
}

fn kepler_body(joules: f64) -> String {
    format!(
        "# HELP kepler_container_cpu_joules_total Energy consumption of cpu at container level in joules\n# TYPE kepler_container_cpu_joules_total counter\nkepler_container_cpu_joules_total{{container_id=\"4f1c\",container_name=\"orders\",runtime=\"containerd\",state=\"running\",zone=\"package\"}} {joules}\n"
    )
}

#[tokio::test]
async fn kepler_deltas_survive_a_counter_reset() {
    // 1000 J, +36 J, then a reset to 36 J: every window is 36 J.
    let (url, _) = server(vec![
        ok(&kepler_body(1000.0)),
        ok(&kepler_body(1036.0)),
        ok(&kepler_body(36.0)),
    ])
    .await;
    let state = Arc::new(EnergyState::new());
    let config = green(|g| {
        g.kepler = Some(KeplerConfig {
            target: target(&url, 200),
            metric_kind: KeplerKind::Container,
            service_mappings: [("orders".to_owned(), "orders".to_owned())].into(),
        });
    });
    let stop = CancellationToken::new();
    let tasks = spawn_scrapers(&config, state.clone(), growing_ops(), stop.clone(), &no_env);
    until("three scrapes", || {
        (state.backends()["kepler"].ok_total >= 4).then_some(())
    })
    .await;
    // The last body repeats: delta 0, so the last figure came from the reset
    // window: 36 J / 100 ops = 1e-7 kWh per op.
    let m = state.measured("orders", Instant::now()).unwrap();
    assert!(m.kwh_per_op < 1.01e-7, "{m:?}");
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn redfish_and_cloud_readings_become_measurements() {
    let (bmc, _) = server(vec![ok(
        r#"{"PowerControl":[{"MemberId":"0","PowerConsumedWatts":344}]}"#,
    )])
    .await;
    let (prom, script) = server(vec![ok(
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"service":"billing"},"value":[1764120000,"0.5"]}]}}"#,
    )])
    .await;
    let state = Arc::new(EnergyState::new());
    let config = green(|g| {
        g.redfish = Some(RedfishConfig {
            target: target(&format!("{bmc}/redfish/v1/Chassis/1/Power"), 200),
            chassis: vec![crate::config::Chassis {
                endpoint: format!("{bmc}/redfish/v1/Chassis/1/Power"),
                services: vec!["orders".into()],
            }],
        });
        g.cloud = Some(CloudConfig {
            target: target(&prom, 200),
            query: "avg by (service) (rate(container_cpu_usage_seconds_total[1m]))".into(),
            service_label: "service".into(),
            instance_types: BTreeMap::new(),
            default_instance_type: Some("m5.large".into()),
        });
    });
    let stop = CancellationToken::new();
    let tasks = spawn_scrapers(&config, state.clone(), growing_ops(), stop.clone(), &no_env);
    let r = until("redfish", || state.measured("orders", Instant::now())).await;
    assert_eq!(r.backend, "redfish");
    let c = until("cloud", || state.measured("billing", Instant::now())).await;
    assert_eq!(c.backend, "cloud");
    let (uri, _) = script.requests.lock().unwrap()[0].clone();
    assert!(uri.starts_with("/api/v1/query?query=avg+by"), "{uri}");
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[tokio::test]
async fn electricity_maps_sends_the_token_and_never_shows_it() {
    const TOKEN: &str = "emaps-secret-token-1234";
    let (url, script) = server(vec![
        ok(r#"{"zone":"FR","carbonIntensity":31,"datetime":"2026-11-26T02:00:00.000Z","updatedAt":"2026-11-26T01:45:12.345Z","emissionFactorType":"lifecycle","isEstimated":true}"#),
        Answer {
            status: 401,
            body: format!("{{\"message\":\"bad token {TOKEN}\"}}"),
            delay: Duration::ZERO,
            location: None,
        },
    ])
    .await;
    let state = Arc::new(EnergyState::new());
    let config = green(|g| {
        g.electricity_maps = Some(ElectricityMapsConfig {
            target: target(&format!("{url}/v3"), 200),
            token_env: "PS_EMAPS".into(),
            region_map: [("eu-west-3".to_owned(), "FR".to_owned())].into(),
        });
    });
    let env = |v: &str| (v == "PS_EMAPS").then(|| TOKEN.to_owned());
    let stop = CancellationToken::new();
    let tasks = spawn_scrapers(&config, state.clone(), growing_ops(), stop.clone(), &env);
    let g = until("a grid reading", || state.grid("eu-west-3", Instant::now())).await;
    assert_eq!(g.gco2_per_kwh, 31.0);
    until("the 401", || {
        state.backends()["electricity_maps"]
            .failed_total
            .get("http_status")
            .map(|_| ())
    })
    .await;
    stop.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    let (uri, headers) = script.requests.lock().unwrap()[0].clone();
    assert!(
        uri.starts_with("/v3/carbon-intensity/latest?zone=FR"),
        "{uri}"
    );
    assert_eq!(headers["auth-token"], TOKEN);
    let h = state.backends()["electricity_maps"].clone();
    let shown = format!("{h:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert_eq!(h.endpoint, url);
}

#[tokio::test]
async fn electricity_maps_without_a_token_fails_without_calling() {
    let (url, script) = server(vec![ok("{}")]).await;
    let config = green(|g| {
        g.electricity_maps = Some(ElectricityMapsConfig {
            target: target(&url, 200),
            token_env: "PS_EMAPS_UNSET".into(),
            region_map: [("eu-west-3".to_owned(), "FR".to_owned())].into(),
        });
    });
    let (reason, message) = first_failure(config, "electricity_maps").await;
    assert_eq!(reason, "no_token");
    assert!(message.contains("PS_EMAPS_UNSET"), "{message}");
    assert!(script.requests.lock().unwrap().is_empty());
}
