//! Readers for the fixed sections (`[daemon]`, `[daemon.ack]`, `[detection]`,
//! `[thresholds]`, `[plugins]`) and the top level that dispatches to them and
//! to the detector tables.

use std::path::PathBuf;

use toml::Table;

use super::detectors::DetectorsConfig;
use super::fields::Section;
use super::problems::{Origins, Problems};
use super::secrets::{check_secrets, env_reference};
use super::{
    AckConfig, Config, ConfigError, ConfigProblem, DaemonConfig, PluginsConfig, ThresholdsConfig,
    check_environment, ports_clash,
};
use crate::correlation::CorrelationConfig;

/// Reads the merged table into a [`Config`], collecting every problem.
/// `earlier` holds problems found before reading (badly named fragments).
pub(crate) fn read_config(
    table: &Table,
    origins: Origins,
    source: Option<PathBuf>,
    earlier: Vec<ConfigProblem>,
) -> Result<Config, ConfigError> {
    let (config, problems) = read_config_partial(table, origins, source, earlier);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// Reads every section, keeping defaults in place of invalid values, and
/// returns the problems beside the config.
pub(crate) fn read_config_partial(
    table: &Table,
    origins: Origins,
    source: Option<PathBuf>,
    earlier: Vec<ConfigProblem>,
) -> (Config, Vec<ConfigProblem>) {
    let mut problems = Problems::new(&origins);
    problems.list = earlier;
    let empty = Table::new();
    let mut top = Section::new("", table, &mut problems);
    let daemon = top.table("daemon");
    let detection = top.table("detection");
    let thresholds = top.table("thresholds");
    let detector_tables = top.table("detectors");
    let environments = top.table("environments");
    let green = top.table("green").cloned().unwrap_or_default();
    let plugins = top.table("plugins");
    top.finish();

    let daemon = read_daemon(daemon.unwrap_or(&empty), &mut problems);
    let detection = read_detection(detection.unwrap_or(&empty), &mut problems);
    let thresholds = read_thresholds(thresholds.unwrap_or(&empty), &mut problems);
    let detectors = DetectorsConfig::read(detector_tables, environments, &mut problems);
    let plugins = read_plugins(plugins.unwrap_or(&empty), &mut problems);
    let green_settings = super::green::read_green(&green, &mut problems);
    check_secrets(table, &mut problems);

    let list = problems.list;
    let config = Config {
        source,
        daemon,
        detection,
        thresholds,
        detectors,
        plugins,
        green,
        green_settings,
        origins,
    };
    (config, list)
}

fn read_daemon(table: &Table, problems: &mut Problems<'_>) -> DaemonConfig {
    let d = DaemonConfig::default();
    let mut s = Section::new("daemon", table, problems);
    let mut c = DaemonConfig {
        listen_address: s.ip("listen_address", d.listen_address),
        listen_port_grpc: s.u16("listen_port_grpc", d.listen_port_grpc, 1..=u16::MAX),
        listen_port_http: s.u16("listen_port_http", d.listen_port_http, 1..=u16::MAX),
        environment: s.string("environment", &d.environment, check_environment),
        trace_ttl_ms: s.u64("trace_ttl_ms", d.trace_ttl_ms, 100..=3_600_000),
        trace_settle_ms: s.u64("trace_settle_ms", d.trace_settle_ms, 0..=600_000),
        max_active_traces: s.usize("max_active_traces", d.max_active_traces, 1..=10_000_000),
        max_events_per_trace: s.usize(
            "max_events_per_trace",
            d.max_events_per_trace,
            1..=1_000_000,
        ),
        max_payload_size: s.usize("max_payload_size", d.max_payload_size, 1024..=1 << 30),
        max_retained_findings: s.usize(
            "max_retained_findings",
            d.max_retained_findings,
            1..=10_000_000,
        ),
        max_retained_traces: s.usize("max_retained_traces", d.max_retained_traces, 0..=1_000_000),
        analysis_queue_capacity: s.usize(
            "analysis_queue_capacity",
            d.analysis_queue_capacity,
            1..=100_000_000,
        ),
        admission_wait_ms: s.u64("admission_wait_ms", d.admission_wait_ms, 0..=10_000),
        sampling_rate: s.f64("sampling_rate", d.sampling_rate, 0.0..=1.0),
        memory_high_water_pct: s
            .int_opt("memory_high_water_pct", 1..=99)
            .and_then(|v| u8::try_from(v).ok()),
        findings_queue_capacity: s.usize(
            "findings_queue_capacity",
            d.findings_queue_capacity,
            1..=1_000_000,
        ),
        stdout_queue_capacity: s.usize(
            "stdout_queue_capacity",
            d.stdout_queue_capacity,
            1..=1_000_000,
        ),
        analysis_shards: s.usize("analysis_shards", d.analysis_shards, 0..=256),
        api_enabled: s.bool("api_enabled", d.api_enabled),
        ui_enabled: s.bool("ui_enabled", d.ui_enabled),
        shutdown_grace_ms: s.u64("shutdown_grace_ms", d.shutdown_grace_ms, 0..=600_000),
        quarantine_after: s.u32("quarantine_after", d.quarantine_after, 1..=1_000_000),
        tls_cert_path: s.string_opt("tls_cert_path").map(PathBuf::from),
        tls_key_path: s.string_opt("tls_key_path").map(PathBuf::from),
        max_connections: s.usize("max_connections", d.max_connections, 1..=1_000_000),
        max_tls_handshakes: s.usize("max_tls_handshakes", d.max_tls_handshakes, 1..=100_000),
        tls_handshake_timeout_ms: s.u64(
            "tls_handshake_timeout_ms",
            d.tls_handshake_timeout_ms,
            100..=600_000,
        ),
        http_header_timeout_ms: s.u64(
            "http_header_timeout_ms",
            d.http_header_timeout_ms,
            100..=600_000,
        ),
        http_request_timeout_ms: s.u64(
            "http_request_timeout_ms",
            d.http_request_timeout_ms,
            100..=3_600_000,
        ),
        ack: AckConfig::default(),
        correlation: crate::correlation::CorrelationConfig::default(),
        cors_allowed_origins: Vec::new(),
    };
    if c.listen_port_grpc == c.listen_port_http {
        s.problem("listen_port_http", ports_clash(c.listen_port_http));
    }
    if c.trace_settle_ms > c.trace_ttl_ms {
        let message = format!(
            "must not exceed `trace_ttl_ms` ({}), got {}",
            c.trace_ttl_ms, c.trace_settle_ms
        );
        s.problem("trace_settle_ms", message);
    }
    if c.sampling_rate == 0.0 {
        s.problem(
            "sampling_rate",
            "must be above 0 (0 would analyze no trace); use 1.0 to analyze all",
        );
        c.sampling_rate = d.sampling_rate;
    }
    if c.tls_cert_path.is_some() != c.tls_key_path.is_some() {
        let missing = if c.tls_cert_path.is_some() {
            "tls_key_path"
        } else {
            "tls_cert_path"
        };
        s.problem(
            missing,
            "TLS needs both `tls_cert_path` and `tls_key_path` (or neither)".to_owned(),
        );
    }
    if let Some(ack) = s.table("ack") {
        c.ack = read_ack(ack, s.problems());
    }
    if let Some(correlation) = s.table("correlation") {
        c.correlation = read_correlation(correlation, s.problems());
    }
    if let Some(cors) = s.table("cors") {
        c.cors_allowed_origins = read_cors(cors, s.problems());
    }
    s.finish();
    c
}

fn read_ack(table: &Table, problems: &mut Problems<'_>) -> AckConfig {
    let mut s = Section::new("daemon.ack", table, problems);
    let storage_path = path(&mut s, "storage_path");
    let toml_path = path(&mut s, "toml_path");
    let enabled = s.bool_opt("enabled");
    // Checked, with every other credential in the file, by `check_secrets`.
    let api_key_env = s
        .get("api_key")
        .and_then(|v| env_reference(v).ok())
        .map(str::to_owned);
    s.finish();
    AckConfig {
        enabled,
        storage_path,
        api_key_env,
        toml_path,
    }
}

fn read_correlation(table: &Table, problems: &mut Problems<'_>) -> CorrelationConfig {
    let d = CorrelationConfig::default();
    let mut s = Section::new("daemon.correlation", table, problems);
    let c = CorrelationConfig {
        enabled: s.bool("enabled", d.enabled),
        window_minutes: s.u64("window_minutes", d.window_minutes, 1..=1_440),
        lag_threshold_ms: s.u64("lag_threshold_ms", d.lag_threshold_ms, 1..=3_600_000),
        min_co_occurrences: s.u32("min_co_occurrences", d.min_co_occurrences, 1..=u32::MAX),
        min_confidence: s.f64("min_confidence", d.min_confidence, 0.0..=1.0),
        max_tracked_pairs: s.usize("max_tracked_pairs", d.max_tracked_pairs, 1..=1_000_000),
    };
    // Ranges are checked key by key above; what remains is how they relate.
    let c = match c.validate() {
        Ok(()) => c,
        Err(e) => {
            s.problem("lag_threshold_ms", e.to_string());
            d
        }
    };
    s.finish();
    c
}

fn read_cors(table: &Table, problems: &mut Problems<'_>) -> Vec<String> {
    let mut s = Section::new("daemon.cors", table, problems);
    let origins = s.string_array("allowed_origins").unwrap_or_default();
    let (good, bad): (Vec<_>, Vec<_>) = origins.into_iter().partition(|o| is_origin(o));
    for origin in bad {
        s.problem(
            "allowed_origins",
            format!(
                "{origin:?} is not an origin: write `*` or `scheme://host[:port]`, without path or trailing slash"
            ),
        );
    }
    s.finish();
    good
}

/// `*`, or `http(s)://host[:port]` as browsers send it in `Origin`.
fn is_origin(text: &str) -> bool {
    if text == "*" {
        return true;
    }
    let Some((scheme, host)) = text.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

fn path(s: &mut Section<'_, '_, '_>, key: &'static str) -> Option<PathBuf> {
    let value = s.string_opt(key)?;
    if value.is_empty() {
        s.problem(key, "must not be empty");
        return None;
    }
    Some(PathBuf::from(value))
}

/// `[detection]` keys and their ranges; only the keys the user set are kept,
/// the detectors own the defaults.
const DETECTION_KEYS: &[(&str, i64, i64)] = &[
    ("n_plus_one_min_occurrences", 2, i64::MAX),
    ("window_duration_ms", 1, 3_600_000),
    ("slow_query_threshold_ms", 1, i64::MAX),
    ("slow_query_min_occurrences", 1, i64::MAX),
    ("max_fanout", 1, i64::MAX),
    ("chatty_service_min_calls", 1, i64::MAX),
    ("pool_saturation_concurrent_threshold", 1, i64::MAX),
    ("serialized_min_sequential", 2, i64::MAX),
];

fn read_detection(table: &Table, problems: &mut Problems<'_>) -> Table {
    let mut s = Section::new("detection", table, problems);
    let mut out = Table::new();
    for &(key, min, max) in DETECTION_KEYS {
        if let Some(v) = s.int_opt(key, min..=max) {
            out.insert(key.to_owned(), toml::Value::Integer(v));
        }
    }
    // How N+1 detection treats statements the agent already sanitized.
    const SANITIZER: &str = "sanitizer_aware_classification";
    let mode = s.string(SANITIZER, "", |v| match v {
        "auto" | "strict" | "always" | "never" => Ok(()),
        other => Err(format!(
            "must be one of \"auto\", \"strict\", \"always\", \"never\", got {other:?}"
        )),
    });
    if !mode.is_empty() {
        out.insert(SANITIZER.to_owned(), toml::Value::String(mode));
    }
    s.finish();
    out
}

fn read_thresholds(table: &Table, problems: &mut Problems<'_>) -> ThresholdsConfig {
    let d = ThresholdsConfig::default();
    let mut s = Section::new("thresholds", table, problems);
    let all = 0..=u32::MAX;
    let c = ThresholdsConfig {
        n_plus_one_sql_critical_max: s.u32(
            "n_plus_one_sql_critical_max",
            d.n_plus_one_sql_critical_max,
            all.clone(),
        ),
        n_plus_one_http_warning_max: s.u32(
            "n_plus_one_http_warning_max",
            d.n_plus_one_http_warning_max,
            all.clone(),
        ),
        n_plus_one_messaging_warning_max: s.u32(
            "n_plus_one_messaging_warning_max",
            d.n_plus_one_messaging_warning_max,
            all,
        ),
        io_waste_ratio_max: s.f64("io_waste_ratio_max", d.io_waste_ratio_max, 0.0..=1.0),
    };
    s.finish();
    c
}

fn read_plugins(table: &Table, problems: &mut Problems<'_>) -> PluginsConfig {
    let mut s = Section::new("plugins", table, problems);
    let paths = s.string_array("paths").unwrap_or_default();
    let optional = s.string_array("optional").unwrap_or_default();
    s.finish();
    PluginsConfig {
        paths: paths.into_iter().map(PathBuf::from).collect(),
        optional: optional.into_iter().map(PathBuf::from).collect(),
    }
}
