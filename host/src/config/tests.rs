use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use detector_api::{
    BuildError, Detector, DetectorError, DetectorFactory, Finding, RVec, TraceView,
};

use super::*;

// Detector tables, inheritance and environment overlays.
mod plans;

fn invalid(result: Result<Config, ConfigError>) -> Vec<ConfigProblem> {
    match result {
        Err(ConfigError::Invalid(problems)) => problems,
        Err(other) => panic!("expected Invalid, got {other}"),
        Ok(config) => panic!("expected Invalid, got {config:?}"),
    }
}

fn problems_of(text: &str) -> Vec<ConfigProblem> {
    invalid(from_toml_str(text, "test.toml"))
}

fn one_problem(text: &str) -> ConfigProblem {
    let problems = problems_of(text);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    problems.into_iter().next().unwrap()
}

/// A fresh, empty folder under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ps-config-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn empty_text_gives_every_default() {
    let c = from_toml_str("", "empty.toml").unwrap();
    let d = &c.daemon;
    assert_eq!(d.listen_address, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
    assert_eq!((d.listen_port_grpc, d.listen_port_http), (4317, 4318));
    assert_eq!(d.environment, "staging");
    assert_eq!((d.trace_ttl_ms, d.trace_settle_ms), (30_000, 2_000));
    assert_eq!(
        (d.max_active_traces, d.max_events_per_trace),
        (10_000, 1_000)
    );
    assert_eq!(d.max_payload_size, 16 * 1024 * 1024);
    assert_eq!(d.max_retained_findings, 10_000);
    assert_eq!(d.analysis_queue_capacity, 100_000);
    assert_eq!(
        (d.findings_queue_capacity, d.stdout_queue_capacity),
        (4096, 8192)
    );
    assert_eq!(d.analysis_shards, 0);
    assert!(d.api_enabled);
    assert!(d.ui_enabled);
    assert_eq!(d.shutdown_grace_ms, 25_000);
    assert_eq!(d.ack, AckConfig::default());
    assert_eq!(*d, DaemonConfig::default());
    let t = &c.thresholds;
    assert_eq!(t.n_plus_one_sql_critical_max, 0);
    assert_eq!(t.n_plus_one_http_warning_max, 3);
    assert_eq!(t.n_plus_one_messaging_warning_max, 3);
    assert!((t.io_waste_ratio_max - 0.30).abs() < f64::EPSILON);
    assert!(c.detection.is_empty() && c.green.is_empty());
    assert_eq!(c.detectors, DetectorsConfig::default());
    assert_eq!(c.plugins, PluginsConfig::default());
    assert_eq!(c.source, None);
    let default = Config::default();
    assert_eq!(default.daemon, c.daemon);
    assert_eq!(default.thresholds, c.thresholds);
}

const FULL: &str = r#"
[daemon]
listen_address = "0.0.0.0"
listen_port_grpc = 14317
listen_port_http = 14318
environment = "production"
trace_ttl_ms = 60000
trace_settle_ms = 500
max_active_traces = 50000
max_events_per_trace = 2000
max_payload_size = 1048576
max_retained_findings = 500
analysis_queue_capacity = 200000
findings_queue_capacity = 1024
stdout_queue_capacity = 2048
analysis_shards = 4
api_enabled = false
ui_enabled = false
shutdown_grace_ms = 10000

[daemon.ack]
enabled = true
storage_path = "/var/lib/perf-sentinel/acks.jsonl"
api_key = "env:PS_ACK_KEY"
toml_path = "/etc/perf-sentinel/acks.toml"

[detection]
n_plus_one_min_occurrences = 6
window_duration_ms = 800
slow_query_threshold_ms = 250
slow_query_min_occurrences = 2
max_fanout = 30
chatty_service_min_calls = 20
pool_saturation_concurrent_threshold = 12
serialized_min_sequential = 4

[thresholds]
n_plus_one_sql_critical_max = 1
n_plus_one_http_warning_max = 5
n_plus_one_messaging_warning_max = 7
io_waste_ratio_max = 0.5

[green]
enabled = true
default_region = "eu-west-3"

[plugins]
paths = ["/opt/perf-sentinel/plugins"]

[detectors.n_plus_one_sql]
enabled = true
services = ["orders", "billing"]
min_occurrences = 8

[environments.production.detectors.n_plus_one_http]
exclude_services = ["legacy"]
"#;

#[test]
fn full_file_with_fragments_reads_every_value() {
    let dir = temp_dir("full");
    write(&dir.join(MAIN_FILE), FULL);
    write(
        &dir.join(FRAGMENT_DIR).join("10-ports.toml"),
        "[daemon]\nlisten_port_http = 24318\n[detectors.n_plus_one_sql]\nmin_occurrences = 9\nwindow_duration_ms = 700\n",
    );
    write(
        &dir.join(FRAGMENT_DIR).join("20-more.toml"),
        "[daemon]\nlisten_port_http = 34318\n[plugins]\npaths = [\"/a.so\", \"/b.so\"]\n[detectors.n_plus_one_sql]\nwindow_duration_ms = 900\n",
    );
    // Kubernetes ConfigMap bookkeeping is ignored.
    write(&dir.join(FRAGMENT_DIR).join("..data").join("x"), "");

    let c = load(None, &dir).unwrap();
    assert_eq!(c.source, Some(dir.join(MAIN_FILE)));
    let d = &c.daemon;
    assert_eq!(d.listen_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(d.listen_port_grpc, 14317);
    assert_eq!(
        d.listen_port_http, 14318,
        "the main file wins over fragments"
    );
    assert_eq!(d.environment, "production");
    assert_eq!((d.trace_ttl_ms, d.trace_settle_ms), (60_000, 500));
    assert_eq!(
        (d.max_active_traces, d.max_events_per_trace),
        (50_000, 2_000)
    );
    assert_eq!(d.max_payload_size, 1_048_576);
    assert_eq!(d.max_retained_findings, 500);
    assert_eq!(d.analysis_queue_capacity, 200_000);
    assert_eq!(
        (d.findings_queue_capacity, d.stdout_queue_capacity),
        (1024, 2048)
    );
    assert_eq!(d.analysis_shards, 4);
    assert!(!d.api_enabled);
    assert!(!d.ui_enabled);
    assert_eq!(d.shutdown_grace_ms, 10_000);
    assert_eq!(
        d.ack,
        AckConfig {
            enabled: Some(true),
            storage_path: Some("/var/lib/perf-sentinel/acks.jsonl".into()),
            api_key_env: Some("PS_ACK_KEY".into()),
            toml_path: Some("/etc/perf-sentinel/acks.toml".into()),
        }
    );
    assert_eq!(c.detection.len(), 8);
    assert_eq!(
        c.detection["n_plus_one_min_occurrences"].as_integer(),
        Some(6)
    );
    assert_eq!(
        c.detection["serialized_min_sequential"].as_integer(),
        Some(4)
    );
    assert_eq!(
        c.thresholds,
        ThresholdsConfig {
            n_plus_one_sql_critical_max: 1,
            n_plus_one_http_warning_max: 5,
            n_plus_one_messaging_warning_max: 7,
            io_waste_ratio_max: 0.5,
        }
    );
    assert_eq!(c.green["default_region"].as_str(), Some("eu-west-3"));
    assert_eq!(
        c.plugins.paths,
        vec![PathBuf::from("/opt/perf-sentinel/plugins")],
        "arrays replace, and the main file wins"
    );
    let sql = &c.detectors.tables["n_plus_one_sql"];
    assert_eq!(sql.enabled, Some(true));
    assert_eq!(
        sql.services,
        Some(vec!["orders".to_owned(), "billing".to_owned()])
    );
    assert_eq!(
        sql.params
            .get("min_occurrences")
            .and_then(|v| v.as_integer()),
        Some(8),
        "the main file wins over a fragment"
    );
    assert_eq!(
        sql.params
            .get("window_duration_ms")
            .and_then(|v| v.as_integer()),
        Some(900),
        "the later fragment wins over an earlier one"
    );
    assert_eq!(
        sql.params.len(),
        2,
        "host keys are not passed to the detector"
    );
    let http = &c.detectors.overlays["production"]["n_plus_one_http"];
    assert_eq!(http.exclude_services, Some(vec!["legacy".to_owned()]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_problem_is_reported_at_once() {
    let problems = problems_of(
        "[daemon]\ntrace_tll_ms = 5000\nlisten_port_grpc = 70000\n\n[thresholds]\nio_waste_ratio_max = \"high\"\n",
    );
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 3, "{lines:#?}");
    assert!(problems.iter().all(|p| p.file == "test.toml"));
    let find = |key: &str| problems.iter().find(|p| p.key == key).unwrap();
    assert_eq!(
        find("daemon.trace_tll_ms").message,
        "unknown key `trace_tll_ms` (did you mean `trace_ttl_ms`?)"
    );
    assert_eq!(
        find("daemon.listen_port_grpc").message,
        "must be between 1 and 65535, got 70000"
    );
    assert_eq!(
        find("thresholds.io_waste_ratio_max").message,
        "expected a number, found a string (\"high\")"
    );
    let shown = ConfigError::Invalid(problems).to_string();
    assert_eq!(shown.lines().count(), 3);
    assert!(shown.contains("test.toml: `daemon.trace_tll_ms`: unknown key `trace_tll_ms`"));
}

#[test]
fn type_and_range_messages() {
    let p = one_problem("[daemon]\ntrace_ttl_ms = \"abc\"");
    assert_eq!(p.message, "expected an integer, found a string (\"abc\")");
    let p = one_problem("[daemon]\nmax_active_traces = 100.0");
    assert_eq!(p.message, "expected an integer, found a float (100.0)");
    let p = one_problem("[daemon]\nlisten_port_http = -1");
    assert_eq!(
        (p.key.as_str(), p.message.as_str()),
        (
            "daemon.listen_port_http",
            "must be between 1 and 65535, got -1"
        )
    );
    let p = one_problem("[daemon]\nlisten_port_grpc = 4318");
    assert_eq!(p.key, "daemon.listen_port_http");
    assert!(p.message.contains("must differ"), "{}", p.message);
    let p = one_problem("[daemon]\ntrace_settle_ms = 40000");
    assert_eq!(
        p.message,
        "must not exceed `trace_ttl_ms` (30000), got 40000"
    );
    let p = one_problem("[daemon]\nlisten_address = \"localhost:80\"");
    assert!(
        p.message.starts_with("expected an IP address"),
        "{}",
        p.message
    );
    let p = one_problem("[daemon]\nenvironment = \"prod env\"");
    assert!(p.message.contains("letters, digits"), "{}", p.message);
    let p = one_problem("[daemon]\napi_enabled = 1");
    assert_eq!(
        p.message,
        "expected a boolean (true or false), found an integer (1)"
    );
    let p = one_problem("[daemon]\nui_enabled = \"yes\"");
    assert_eq!(p.key, "daemon.ui_enabled");
    let p = one_problem("[detection]\nn_plus_one_min_occurrences = 1");
    assert_eq!(p.message, "must be at least 2, got 1");
    let p = one_problem("[detection]\nwindow_duration_ms = 0");
    assert_eq!(p.message, "must be between 1 and 3600000, got 0");
    let p = one_problem("[thresholds]\nio_waste_ratio_max = 1.5");
    assert_eq!(p.message, "must be between 0 and 1, got 1.5");
    let p = one_problem("[plugins]\npaths = \"/a.so\"");
    assert_eq!(
        p.message,
        "expected an array of strings, found a string (\"/a.so\")"
    );
    let problems = problems_of("[plugins]\npaths = [\"/a.so\"]\ndirs = []");
    assert_eq!(problems[0].key, "plugins.dirs");
    let p = one_problem("[deamon]\nlisten_port_grpc = 1");
    assert_eq!(p.message, "unknown key `deamon` (did you mean `daemon`?)");
    let p = one_problem("daemon = 3");
    assert_eq!(p.message, "expected a table, found an integer (3)");
    let p = one_problem("[green]\nenabeld = false");
    assert_eq!(p.key, "green.enabeld");
    assert_eq!(p.message, "unknown key `enabeld` (did you mean `enabled`?)");
}

#[test]
fn ack_api_key_must_be_an_env_reference() {
    let p = one_problem("[daemon.ack]\napi_key = \"s3cr3t-value-123\"");
    assert_eq!(p.key, "daemon.ack.api_key");
    assert_eq!(
        p.message,
        "secrets never live in the config file; write `env:VAR_NAME`"
    );
    assert!(!ConfigError::Invalid(vec![p]).to_string().contains("s3cr3t"));
    let p = one_problem("[daemon.ack]\napi_key = \"env:1BAD\"");
    assert!(
        p.message.contains("environment variable name"),
        "{}",
        p.message
    );
    let p = one_problem("[daemon.ack]\nenabled = true\nkey = \"x\"");
    assert_eq!(p.key, "daemon.ack.key");
    let c = from_toml_str("[daemon.ack]\napi_key = \"env:PS_ACK_KEY\"", "t").unwrap();
    assert_eq!(c.daemon.ack.api_key_env.as_deref(), Some("PS_ACK_KEY"));
}

#[test]
fn credentials_anywhere_must_be_env_references_and_urls_carry_none() {
    let text = r#"
[green.electricity_maps]
api_key = "abc-literal-key-123"
endpoint = "https://api.example.com/v3"
region_map = { "eu-west-3" = "FR" }

[green.kepler]
endpoint = "http://admin:hunter2@kepler.monitoring:9102/metrics"
auth_header = "env:KEPLER_AUTH"
service_mappings = { orders = "orders" }

[green.scaphandre]
endpoint = "http://scaphandre:8080/metrics"
auth_header = "Bearer literal-token"
process_map = { orders = "orders-api" }
"#;
    let problems = match from_toml_str(text, "green.toml") {
        Err(ConfigError::Invalid(p)) => p,
        other => panic!("expected refusal, got {other:?}"),
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "green.electricity_maps.api_key",
            "green.kepler.endpoint",
            "green.scaphandre.auth_header",
        ]
    );
    assert!(problems[1].message.contains("must not embed credentials"));
    let shown = ConfigError::Invalid(problems).to_string();
    for secret in ["abc-literal-key", "hunter2", "literal-token"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let ok = "[green.kepler]\nendpoint = \"http://kepler:9102/metrics\"\nauth_header = \"env:KEPLER_AUTH\"\nservice_mappings = { orders = \"orders\" }\n";
    let c = from_toml_str(ok, "ok").unwrap();
    let kepler = c.green_settings.kepler.unwrap();
    assert_eq!(
        kepler.target.auth_header_env.as_deref(),
        Some("KEPLER_AUTH")
    );
}

#[test]
fn invalid_toml_is_a_parse_error_with_its_line() {
    match from_toml_str(
        "[daemon]\nlisten_port_grpc = 4317\nenvironment = prod\n",
        "bad.toml",
    ) {
        Err(ConfigError::Parse { path, message }) => {
            assert_eq!(path, PathBuf::from("bad.toml"));
            assert!(message.starts_with("line 3, column 15"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
        other => panic!("expected Parse, got {other:?}"),
    }
}

#[test]
fn loader_finds_files_and_names_them() {
    let dir = temp_dir("load");
    // No file: defaults, and fragments are looked for in cwd.
    assert_eq!(load(None, &dir).unwrap().source, None);
    write(
        &dir.join(FRAGMENT_DIR).join("05-env.toml"),
        "[daemon]\nenvironment = \"qa\"\n",
    );
    assert_eq!(load(None, &dir).unwrap().daemon.environment, "qa");

    let missing = dir.join("nope.toml");
    match load(Some(Path::new("nope.toml")), &dir) {
        Err(e @ ConfigError::Read { .. }) => {
            assert!(
                e.to_string().contains(&missing.display().to_string()),
                "{e}"
            );
        }
        other => panic!("expected Read, got {other:?}"),
    }

    // An explicit file takes its fragments from its own folder.
    let etc = dir.join("etc");
    write(&etc.join("ps.toml"), "[daemon]\ntrace_ttl_ms = 1000\n");
    let bad_fragment = etc.join(FRAGMENT_DIR).join("20-bad.toml");
    write(
        &bad_fragment,
        "[daemon]\ntrace_settle_ms = 5000\nmax_fanout = 3\n",
    );
    write(&etc.join(FRAGMENT_DIR).join("notes.txt"), "");
    let problems = invalid(load(Some(&etc.join("ps.toml")), &dir));
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 3, "{lines:#?}");
    let fragment = bad_fragment.display().to_string();
    assert!(lines.contains(&format!(
        "{}: fragment names must look like NN-name.toml",
        etc.join(FRAGMENT_DIR).join("notes.txt").display()
    )));
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "{fragment}: `daemon.max_fanout`: unknown key `max_fanout`; known keys: ack, admission_wait_ms, analysis_queue_capacity,"
        ))),
        "{lines:#?}"
    );
    assert!(lines.contains(&format!(
        "{fragment}: `daemon.trace_settle_ms`: must not exceed `trace_ttl_ms` (1000), got 5000"
    )));

    write(&bad_fragment, "[daemon\n");
    match load(Some(&etc.join("ps.toml")), &dir) {
        Err(ConfigError::Parse { path, message }) => {
            assert_eq!(path, bad_fragment);
            assert!(message.starts_with("line 1"), "{message}");
        }
        other => panic!("expected Parse, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn command_line_overrides_are_checked() {
    let mut c = Config::default();
    c.apply_cli(
        Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        Some(5317),
        None,
        Some("production".into()),
    )
    .unwrap();
    assert_eq!(c.daemon.listen_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(c.daemon.listen_port_grpc, 5317);
    assert_eq!(c.daemon.environment, "production");
    let Err(ConfigError::Invalid(problems)) =
        c.apply_cli(None, None, Some(5317), Some("a b".into()))
    else {
        panic!("expected Invalid");
    };
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems.iter().all(|p| p.file == COMMAND_LINE));
    assert_eq!(problems[0].key, "daemon.listen_port_http");
    assert_eq!(problems[1].key, "daemon.environment");
}

// ---- detector plans ----
