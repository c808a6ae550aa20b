//! perf-sentinel's configuration: one TOML file plus numbered fragments, read
//! once at startup. Every unknown key, wrong type and out-of-range value is
//! collected and reported together, so a bad file is fixed in one pass.

mod comfort;
mod detectors;
mod fields;
mod green;
mod load;
mod problems;
mod secrets;
mod sections;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use toml::Table;

pub use detectors::{DetectorPlan, DetectorSettings, DetectorsConfig};
pub use green::{
    Chassis, CloudConfig, EMAPS_TOKEN_VAR, ElectricityMapsConfig, GreenConfig, KeplerConfig,
    KeplerKind, RedfishConfig, ScaphandreConfig, ScrapeTarget,
};
pub(crate) use load::fold_parse_error;
pub use load::{FRAGMENT_DIR, MAIN_FILE, from_toml_str, load, load_partial};
pub(crate) use secrets::CREDENTIAL_KEYS;

use fields::is_valid_name;
use problems::Origins;

/// What `file` says when a problem comes from the built-in defaults.
pub const DEFAULTS_FILE: &str = "<defaults>";
/// What `file` says when a problem comes from a command-line flag.
pub const COMMAND_LINE: &str = "<command line>";

/// The whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from; `None` for the built-in defaults.
    pub source: Option<PathBuf>,
    /// `[daemon]`.
    pub daemon: DaemonConfig,
    /// The `[detection]` keys the user set, type- and range-checked; the
    /// detectors hold the defaults.
    pub detection: Table,
    /// `[thresholds]`.
    pub thresholds: ThresholdsConfig,
    /// `[detectors.<id>]` and `[environments.<env>.detectors.<id>]`.
    pub detectors: DetectorsConfig,
    /// `[plugins]`.
    pub plugins: PluginsConfig,
    /// `[green]` as written (shown by `GET /api/config`, credentials masked).
    pub green: Table,
    /// `[green]`, typed and checked.
    pub green_settings: GreenConfig,
    // Which file set each key, so later checks (detector builds) name it.
    origins: Origins,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            source: None,
            daemon: DaemonConfig::default(),
            detection: Table::new(),
            thresholds: ThresholdsConfig::default(),
            detectors: DetectorsConfig::default(),
            plugins: PluginsConfig::default(),
            green: Table::new(),
            green_settings: GreenConfig::default(),
            origins: Origins::new(DEFAULTS_FILE),
        }
    }
}

/// `[daemon]`: listeners, bounds and queues.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DaemonConfig {
    pub listen_address: IpAddr,
    pub listen_port_grpc: u16,
    pub listen_port_http: u16,
    /// Any name; `production` stamps findings `daemon_production`.
    pub environment: String,
    pub trace_ttl_ms: u64,
    /// Quiet time after the root span ends before a trace is complete.
    pub trace_settle_ms: u64,
    pub max_active_traces: usize,
    pub max_events_per_trace: usize,
    /// Bytes, for compressed and decompressed request bodies alike.
    pub max_payload_size: usize,
    pub max_retained_findings: usize,
    /// Analyzed traces kept for `GET /api/explain` (0 keeps none).
    pub max_retained_traces: usize,
    /// Spans waiting for analysis, across all shards.
    pub analysis_queue_capacity: usize,
    /// How long a request waits for room in the analysis queue before it is
    /// refused with 503 / UNAVAILABLE.
    pub admission_wait_ms: u64,
    /// Fraction of traces analyzed, chosen by a hash of the trace id so all
    /// spans of a trace (and every daemon replica) agree.
    pub sampling_rate: f64,
    /// Refuse ingest while the cgroup's memory use (current minus inactive
    /// file cache, over the limit) is at or above this percentage; `None`
    /// turns the guard off.
    pub memory_high_water_pct: Option<u8>,
    pub findings_queue_capacity: usize,
    pub stdout_queue_capacity: usize,
    /// 0 means one shard per CPU core.
    pub analysis_shards: usize,
    pub api_enabled: bool,
    /// The dashboard at `/ui/`; served only when `api_enabled` too.
    pub ui_enabled: bool,
    pub shutdown_grace_ms: u64,
    /// Consecutive failures (errors or panics) after which a detector is
    /// quarantined.
    pub quarantine_after: u32,
    /// PEM certificate chain and key: TLS on both listeners (both or neither).
    pub tls_cert_path: Option<PathBuf>,
    pub tls_key_path: Option<PathBuf>,
    /// Open connections per listener.
    pub max_connections: usize,
    /// TLS handshakes in flight per listener.
    pub max_tls_handshakes: usize,
    pub tls_handshake_timeout_ms: u64,
    /// Time for an HTTP client to send a request's headers.
    pub http_header_timeout_ms: u64,
    /// Time for a whole HTTP request, body included, to be received and answered.
    pub http_request_timeout_ms: u64,
    /// `[daemon.ack]`.
    pub ack: AckConfig,
    /// `[daemon.correlation]`.
    pub correlation: crate::correlation::CorrelationConfig,
    /// `[daemon.cors] allowed_origins`: browser origins allowed to call
    /// `/api/*` (`*` for any).
    pub cors_allowed_origins: Vec<String>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            listen_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            listen_port_grpc: 4317,
            listen_port_http: 4318,
            environment: "staging".to_owned(),
            trace_ttl_ms: 30_000,
            trace_settle_ms: 2_000,
            max_active_traces: 10_000,
            max_events_per_trace: 1_000,
            max_payload_size: 16 * 1024 * 1024,
            max_retained_findings: 10_000,
            max_retained_traces: 1_000,
            analysis_queue_capacity: 100_000,
            admission_wait_ms: 50,
            sampling_rate: 1.0,
            memory_high_water_pct: None,
            findings_queue_capacity: 4_096,
            stdout_queue_capacity: 8_192,
            analysis_shards: 0,
            api_enabled: true,
            ui_enabled: true,
            shutdown_grace_ms: 25_000,
            quarantine_after: 3,
            tls_cert_path: None,
            tls_key_path: None,
            max_connections: 1024,
            max_tls_handshakes: 64,
            tls_handshake_timeout_ms: 10_000,
            http_header_timeout_ms: 10_000,
            http_request_timeout_ms: 30_000,
            ack: AckConfig::default(),
            correlation: crate::correlation::CorrelationConfig::default(),
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// `[daemon.ack]`, checked but not interpreted: unset keys stay `None` so
/// the acks module owns their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AckConfig {
    pub enabled: Option<bool>,
    pub storage_path: Option<PathBuf>,
    /// The environment variable holding the API key (from `api_key =
    /// "env:NAME"`), not resolved yet. Shown as the reference, never the key.
    #[serde(rename = "api_key", serialize_with = "as_env_reference")]
    pub api_key_env: Option<String>,
    pub toml_path: Option<PathBuf>,
}

fn as_env_reference<S: serde::Serializer>(var: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match var {
        Some(v) => s.collect_str(&format_args!("env:{v}")),
        None => s.serialize_none(),
    }
}

/// `[thresholds]`: the CI gate's limits.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThresholdsConfig {
    pub n_plus_one_sql_critical_max: u32,
    pub n_plus_one_http_warning_max: u32,
    pub n_plus_one_messaging_warning_max: u32,
    pub io_waste_ratio_max: f64,
}

impl Default for ThresholdsConfig {
    fn default() -> Self {
        Self {
            n_plus_one_sql_critical_max: 0,
            n_plus_one_http_warning_max: 3,
            n_plus_one_messaging_warning_max: 3,
            io_waste_ratio_max: 0.30,
        }
    }
}

/// `[plugins]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PluginsConfig {
    /// Plugin files or directories, as written.
    pub paths: Vec<PathBuf>,
    /// Plugin files or directories whose load failure only warns.
    pub optional: Vec<PathBuf>,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `message` is toml's, with line and column, on one line.
    #[error("{path}: invalid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    /// Every problem found, one per line.
    #[error("{}", format_problems(.0))]
    Invalid(Vec<ConfigProblem>),
}

/// One refused key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file, `<defaults>` or `<command line>`.
    pub file: String,
    /// Dotted path, e.g. `daemon.listen_port_grpc`; empty for a problem with
    /// the file itself (a badly named fragment).
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: `{}`: {}", self.file, self.key, self.message)
        }
    }
}

fn format_problems(problems: &[ConfigProblem]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

impl Config {
    /// Overrides from command-line flags, then re-checks what they can break.
    pub fn apply_cli(
        &mut self,
        listen_address: Option<IpAddr>,
        grpc: Option<u16>,
        http: Option<u16>,
        environment: Option<String>,
    ) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| {
            problems.push(ConfigProblem {
                file: COMMAND_LINE.to_owned(),
                key: key.to_owned(),
                message,
            });
        };
        let d = &mut self.daemon;
        if let Some(address) = listen_address {
            d.listen_address = address;
        }
        for (flag, key, slot) in [
            (grpc, "daemon.listen_port_grpc", &mut d.listen_port_grpc),
            (http, "daemon.listen_port_http", &mut d.listen_port_http),
        ] {
            match flag {
                Some(0) => problem(key, "must be between 1 and 65535, got 0".to_owned()),
                Some(port) => *slot = port,
                None => {}
            }
        }
        // A clash already in the file was reported with the file.
        if (grpc.is_some() || http.is_some()) && d.listen_port_grpc == d.listen_port_http {
            let key = if http.is_some() {
                "daemon.listen_port_http"
            } else {
                "daemon.listen_port_grpc"
            };
            problem(key, ports_clash(d.listen_port_grpc));
        }
        if let Some(env) = environment {
            match check_environment(&env) {
                Ok(()) => d.environment = env,
                Err(message) => problem("daemon.environment", message),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

fn ports_clash(port: u16) -> String {
    format!("`listen_port_grpc` and `listen_port_http` must differ (both are {port})")
}

fn check_environment(name: &str) -> Result<(), String> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to 64 letters, digits, `_` or `-`, got {name:?}"
        ))
    }
}
