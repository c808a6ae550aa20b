//! The `perf-sentinel` command line.

use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use perf_sentinel::config::{self, Config};
use perf_sentinel::daemon;
use perf_sentinel::registry::Registry;
use tokio_util::sync::CancellationToken;

mod allocator;
mod batch_cli;
mod calibrate_cli;
mod remote;

/// Finds N+1 queries and other I/O anti-patterns in OpenTelemetry traces.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (default: .perf-sentinel.toml in the working
    /// directory when present, else built-in defaults).
    #[arg(long, global = true, env = "PERF_SENTINEL_CONFIG")]
    config: Option<PathBuf>,
    /// Environment name: selects `[environments.<name>]` overlays and stamps
    /// findings (overrides [daemon] environment).
    #[arg(long, global = true, env = "PERF_SENTINEL_ENVIRONMENT")]
    environment: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: receive OTLP traces, report findings (the default).
    Watch(WatchArgs),
    /// List the detectors, whether they are enabled, and where they come from.
    Detectors,
    /// Work with the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Acknowledge findings on a running daemon (or revoke, or list).
    #[command(subcommand)]
    Ack(AckCommand),
    /// Read what a running daemon knows.
    #[command(subcommand)]
    Query(QueryCommand),
    /// Analyze a captured trace file with the daemon's detectors: a CI
    /// quality gate (exit 0 passed, 1 gate failed with --ci, 2 unusable
    /// input or configuration).
    Analyze(AnalyzeArgs),
    /// Derive per-service energy calibration factors from a trace file and
    /// measured power or energy over the same period; writes the TOML that
    /// `[green] calibration_file` reads (exit 2 on unusable input).
    Calibrate(CalibrateArgs),
}

#[derive(clap::Args)]
struct CalibrateArgs {
    /// The trace file (any format `analyze` reads), `-` for standard input.
    #[arg(long)]
    traces: PathBuf,
    /// CSV with a header: `timestamp` (RFC 3339 or Unix seconds), `watts`
    /// or `kwh`, and optionally `service`.
    #[arg(long)]
    measured_energy: PathBuf,
    /// Write the calibration here instead of standard output.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Largest trace input read, after decompression (e.g. 500M, 4G).
    #[arg(long, default_value = "2G", value_parser = perf_sentinel::batch::input::parse_size)]
    max_input_size: u64,
}

#[derive(clap::Args)]
struct AnalyzeArgs {
    /// The trace file, `-` for standard input: OTLP JSON (an
    /// ExportTraceServiceRequest, or one per line as the Collector's file
    /// exporter writes), a Zipkin v2 JSON array or a Jaeger JSON export,
    /// plain or gzip. The format is recognised from the content.
    #[arg(long, short = 'i')]
    input: PathBuf,
    /// `text` (default), `json` or `sarif` (SARIF 2.1.0, for code scanning).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// Exit 1 when the quality gate fails.
    #[arg(long)]
    ci: bool,
    /// Ignore the acknowledgment baseline (.perf-sentinel-acknowledgments.toml
    /// or [daemon.ack] toml_path).
    #[arg(long, conflicts_with = "show_acknowledged")]
    no_acknowledgments: bool,
    /// List acknowledged findings too; they still do not count for the gate.
    #[arg(long)]
    show_acknowledged: bool,
    /// Largest input read, after decompression (e.g. 500M, 4G).
    #[arg(long, default_value = "2G", value_parser = perf_sentinel::batch::input::parse_size)]
    max_input_size: u64,
    /// Write the report to this file instead of standard output.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Subcommand)]
enum AckCommand {
    /// Acknowledge the finding with this signature.
    Create {
        signature: String,
        /// Who acknowledges (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// Why it is acceptable.
        #[arg(long)]
        reason: Option<String>,
        /// When the acknowledgment lapses (RFC 3339, e.g. 2026-12-31T23:59:59Z).
        #[arg(long)]
        expires_at: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke the runtime acknowledgment of this signature.
    Revoke {
        signature: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the active runtime acknowledgments.
    List {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum QueryCommand {
    /// Findings, folded by signature, newest first.
    Findings {
        #[arg(long)]
        service: Option<String>,
        #[arg(long = "type")]
        kind: Option<String>,
        /// critical, warning or info.
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        /// Also show acknowledged findings, annotated.
        #[arg(long)]
        include_acked: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// The daemon's counters and detectors.
    Status {
        #[command(flatten)]
        remote: Remote,
    },
    /// Findings that repeatedly follow each other across services.
    Correlations {
        #[command(flatten)]
        remote: Remote,
    },
    /// One trace as a span tree with its findings.
    Explain {
        trace_id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Where the daemon is and how to print its answers.
#[derive(clap::Args)]
struct Remote {
    /// The daemon's HTTP port.
    #[arg(
        long,
        env = "PERF_SENTINEL_DAEMON",
        default_value = "http://127.0.0.1:4318"
    )]
    daemon: String,
    /// `text` (default) or `json` (the API's answer as is).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// A file whose first line is the API key (else $PERF_SENTINEL_DAEMON_API_KEY).
    #[arg(long)]
    api_key_file: Option<PathBuf>,
    /// PEM certificate(s) to trust, for a daemon with a self-signed certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Seconds to wait for the daemon.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration, print every problem, exit 2 on any.
    Check,
}

#[derive(clap::Args, Default)]
struct WatchArgs {
    /// Address to listen on (overrides [daemon] listen_address).
    #[arg(long)]
    listen_address: Option<IpAddr>,
    /// OTLP gRPC port (overrides [daemon] listen_port_grpc).
    #[arg(long)]
    listen_port_grpc: Option<u16>,
    /// OTLP HTTP and API port (overrides [daemon] listen_port_http).
    #[arg(long)]
    listen_port_http: Option<u16>,
}

/// Exit code for unusable configuration (distinct from runtime failures).
const EXIT_CONFIG: u8 = 2;

fn refused(e: &config::ConfigError) -> ExitCode {
    eprintln!("perf-sentinel: configuration refused:\n{e}");
    ExitCode::from(EXIT_CONFIG)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut cli = Cli::parse();
    // Still before any thread: neither the parser nor the subscriber
    // starts one.
    allocator::configure(match cli.command {
        Some(Command::Analyze(_) | Command::Calibrate(_)) => allocator::Lifetime::Batch,
        _ => allocator::Lifetime::Daemon,
    });
    // Remote commands need no local configuration: a bad file must not
    // stop an operator from querying the daemon that runs fine.
    match cli.command.take() {
        Some(Command::Ack(cmd)) => return remote::ack(cmd),
        Some(Command::Query(cmd)) => return remote::query(cmd),
        Some(Command::Analyze(args)) => {
            return batch_cli::analyze(&args, cli.config.as_deref(), cli.environment.clone());
        }
        Some(Command::Calibrate(args)) => return calibrate_cli::calibrate(&args),
        other => cli.command = other,
    }
    let mut overrides = match &cli.command {
        Some(Command::Watch(args)) => daemon::Overrides {
            listen_address: args.listen_address,
            listen_port_grpc: args.listen_port_grpc,
            listen_port_http: args.listen_port_http,
            environment: None,
        },
        _ => daemon::Overrides::default(),
    };
    overrides.environment = cli.environment.clone();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let prepared = match daemon::prepare(cli.config.as_deref(), &cwd, overrides) {
        Ok(prepared) => prepared,
        Err(e) => return refused(&e),
    };
    let (config, registry, specs) = (&prepared.config, &prepared.registry, &prepared.specs);
    match cli.command {
        Some(Command::Detectors) => list_detectors(config, registry),
        Some(Command::Config(ConfigCommand::Check)) => {
            // Valid, so the exit code stays 0; but said where it is seen.
            for w in config.comfort_warnings() {
                eprintln!("warning: {w}");
            }
            let origin = config
                .source
                .as_ref()
                .map_or("built-in defaults".to_owned(), |p| p.display().to_string());
            println!(
                "configuration OK ({origin}); environment `{}`; {} detectors enabled: {}",
                config.daemon.environment,
                specs.len(),
                specs
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            ExitCode::SUCCESS
        }
        Some(Command::Watch(_)) | None => watch(prepared),
        // Answered before the configuration was read.
        Some(Command::Ack(_) | Command::Query(_) | Command::Analyze(_) | Command::Calibrate(_)) => {
            ExitCode::SUCCESS
        }
    }
}

fn watch(prepared: daemon::Prepared) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("perf-sentinel-io")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("perf-sentinel: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let token = CancellationToken::new();
        tokio::spawn(cancel_on_signal(token.clone()));
        daemon::run(prepared, token, Box::new(std::io::stdout())).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(daemon::DaemonError::Config(e)) => refused(&e),
        Err(e) => {
            eprintln!("perf-sentinel: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn cancel_on_signal(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    token.cancel();
}

fn list_detectors(config: &Config, registry: &Registry) -> ExitCode {
    let plans = match config.detector_plans(&registry.factories()) {
        Ok(p) => p,
        Err(e) => return refused(&e),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "environment: {}\n\n{:<26} {:<8} {:<8} {:<34} DESCRIPTION",
        config.daemon.environment, "ID", "ENABLED", "DEFAULT", "ORIGIN"
    );
    for p in plans {
        let Some(entry) = registry.entries.iter().find(|e| e.factory.id() == p.id) else {
            continue;
        };
        let factory = &entry.factory;
        let _ = writeln!(
            out,
            "{:<26} {:<8} {:<8} {:<34} {}",
            p.id,
            if p.enabled { "yes" } else { "no" },
            if factory.enabled_by_default() {
                "on"
            } else {
                "off"
            },
            entry.origin(),
            factory.description()
        );
        if let Some(plugin) = &entry.plugin {
            let _ = writeln!(
                out,
                "    plugin: {} {} ({})",
                plugin.name,
                plugin.version,
                plugin.path.display()
            );
        }
        let keys = factory.default_config();
        if !keys.is_empty() {
            let _ = writeln!(out, "    keys (defaults): {}", inline(&keys));
        }
        if !p.params.is_empty() {
            let _ = writeln!(out, "    configured:      {}", inline(&p.params));
        }
        for (label, list) in [
            ("services", &p.services),
            ("exclude_services", &p.exclude_services),
        ] {
            if !list.is_empty() {
                let _ = writeln!(out, "    {label}: {}", list.join(", "));
            }
        }
    }
    ExitCode::SUCCESS
}

/// `a = 1, b = "x"` on one line.
fn inline(table: &toml::Table) -> String {
    table
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
