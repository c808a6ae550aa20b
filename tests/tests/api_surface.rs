//! The API's outer surface: the effective configuration (secrets never
//! echoed), CORS on `/api/*` only, and `api_enabled = false` removing the
//! API while ingest, health and metrics stay.

mod common;

use common::{Daemon, FAST, n1_request};

const KEY_VAR: &str = "PS_SURFACE_ACK_KEY";
const KEY: &str = "surface-secret-value-42";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_effective_config_shows_references_never_secrets() {
    let extra = format!(
        "[daemon.ack]\napi_key = \"env:{KEY_VAR}\"\n\n[detectors.n_plus_one_sql]\nmin_occurrences = 7\n\n\
         [green.electricity_maps]\napi_key = \"env:EM_KEY\"\nendpoint = \"http://127.0.0.1:9/v3\"\n\
         region_map = {{ \"eu-west-3\" = \"FR\" }}\n"
    );
    let keys = format!("{FAST}max_retained_traces = 42\n");
    let daemon = Daemon::start_with_env(&keys, &extra, &[(KEY_VAR, KEY)]);
    let text = daemon.get("/api/config").await;
    assert!(!text.contains(KEY), "the key itself never appears: {text}");
    let c: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(c["daemon"]["max_retained_traces"], 42);
    assert_eq!(c["daemon"]["trace_settle_ms"], 200);
    assert_eq!(c["daemon"]["listen_port_http"], daemon.http_port);
    assert_eq!(c["daemon"]["ack"]["api_key"], format!("env:{KEY_VAR}"));
    assert_eq!(c["daemon"]["correlation"]["enabled"], false);
    assert_eq!(c["green"]["electricity_maps"]["api_key"], "env:EM_KEY");
    let n1 = c["enabled_detectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "n_plus_one_sql")
        .expect("n_plus_one_sql is on by default");
    assert_eq!(n1["config"]["min_occurrences"], 7);
    assert_eq!(n1["origin"], "builtin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_applies_to_the_api_only_and_to_listed_origins() {
    let extra = "[daemon.cors]\nallowed_origins = [\"https://grafana.example.com\"]\n";
    let daemon = Daemon::start(FAST, extra);
    let client = reqwest::Client::new();
    let preflight = |path: &str, origin: &str| {
        client
            .request(reqwest::Method::OPTIONS, daemon.http(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "x-api-key,content-type")
            .send()
    };
    let allowed = preflight("/api/findings/x/ack", "https://grafana.example.com")
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://grafana.example.com"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    let other = preflight("/api/findings/x/ack", "https://evil.example.net")
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let get = client
        .get(daemon.http("/metrics"))
        .header("origin", "https://grafana.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        get.headers().get("access-control-allow-origin").is_none(),
        "metrics: no CORS"
    );
    let api = client
        .get(daemon.http("/api/status"))
        .header("origin", "https://grafana.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.headers()["access-control-allow-origin"],
        "https://grafana.example.com"
    );
}

#[test]
fn any_origin_with_an_api_key_is_refused_and_bad_origins_are_named() {
    let extra = format!(
        "[daemon.ack]\napi_key = \"env:{KEY_VAR}\"\n[daemon.cors]\nallowed_origins = [\"*\"]\n"
    );
    let (code, stderr) = Daemon::refused_with_env(FAST, &extra, &[(KEY_VAR, KEY)]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("daemon.cors.allowed_origins"), "{stderr}");
    let (code, stderr) = Daemon::refused(
        FAST,
        "[daemon.cors]\nallowed_origins = [\"grafana.example.com/\"]\n",
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("\"grafana.example.com/\" is not an origin"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_api_ingest_health_and_metrics_remain() {
    let daemon = Daemon::start(&format!("{FAST}api_enabled = false\n"), "");
    for path in [
        "/api/findings",
        "/api/status",
        "/api/config",
        "/api/acks",
        "/api/correlations",
        "/api/energy",
    ] {
        let status = reqwest::get(daemon.http(path)).await.unwrap().status();
        assert_eq!(status, 404, "{path}");
    }
    assert_eq!(
        daemon
            .post_otlp(&n1_request([0x3a; 16], "api", 6))
            .await
            .status(),
        200
    );
    assert_eq!(daemon.get("/health").await, r#"{"status":"ok"}"#);
    assert!(
        daemon
            .get("/metrics")
            .await
            .contains("perf_sentinel_spans_received_total")
    );
}
