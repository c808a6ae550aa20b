//! `perf-sentinel watch`: wires config, detectors, pipeline, receivers and
//! API together, runs until cancelled, then drains: stop accepting, analyze
//! everything held, print every finding, return.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiState, DetectorListing, router};
use crate::config::{Config, ConfigError};
use crate::findings::{FindingsStore, Stamp, confidence_for, spawn_sink};
use crate::ingest::grpc::TraceGrpc;
use crate::ingest::memory_guard::{CgroupMemory, spawn_memory_guard};
use crate::ingest::sampling::Sampler;
use crate::ingest::{IngestSettings, Ingestor};
use crate::metrics::Metrics;
use crate::net::{AcceptLimits, HttpTimeouts, serve_http, spawn_acceptor};
use crate::pipeline::detectors::DetectorSpec;
use crate::pipeline::{Pipeline, PipelineError, PipelineSettings};
use crate::registry::Registry;
use crate::window::WindowLimits;
use tokio_stream::StreamExt as _;
use tower_http::timeout::TimeoutLayer;

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cannot start the findings writer: {0}")]
    Sink(std::io::Error),
    #[error("acknowledgments: {0}")]
    Acks(#[from] crate::acks::AckError),
}

/// Every registered detector with its origin and whether the configuration
/// enables it, for `GET /api/detectors`.
fn catalog(prepared: &Prepared) -> Vec<DetectorListing> {
    let plans = prepared
        .config
        .detector_plans(&prepared.registry.factories())
        .unwrap_or_default();
    prepared
        .registry
        .entries
        .iter()
        .map(|e| {
            let id = e.factory.id().to_owned();
            DetectorListing {
                enabled: plans.iter().any(|p| p.id == id && p.enabled),
                description: e.factory.description().to_owned(),
                origin: e.origin().to_string(),
                plugin: e
                    .plugin
                    .as_ref()
                    .map(|p| (p.path.display().to_string(), p.version.clone())),
                cross_trace: e.factory.cross_trace(),
                id,
            }
        })
        .collect()
}

/// Command-line values that replace configured ones.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen_address: Option<std::net::IpAddr>,
    pub listen_port_grpc: Option<u16>,
    pub listen_port_http: Option<u16>,
    pub environment: Option<String>,
}

/// A configuration ready to run: the config, every registered detector, and
/// the enabled ones resolved.
pub struct Prepared {
    pub config: Config,
    pub registry: Registry,
    pub specs: Vec<Arc<DetectorSpec>>,
    /// The TLS identity, when `tls_cert_path` and `tls_key_path` are set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `[daemon.ack] api_key`, resolved from its environment variable.
    pub ack_api_key: Option<String>,
    /// `[green] calibration_file`, read; empty when unset.
    pub calibration: Arc<crate::green::Calibration>,
}

/// Shortest API key accepted: anything shorter is guessable.
const MIN_API_KEY_LEN: usize = 12;
/// Keys shorter than this start with a warning.
const COMFORTABLE_API_KEY_LEN: usize = 16;
/// Sets `[daemon.ack] api_key` when the file does not name a variable.
pub const ACK_API_KEY_ENV: &str = "PERF_SENTINEL_ACK_API_KEY";

/// Resolves an `env:VAR` secret: the variable must be set and not empty.
fn resolve_secret(var: &str, key: &str, min_len: usize) -> Result<String, String> {
    match std::env::var(var) {
        Ok(v) if v.chars().count() >= min_len => Ok(v),
        Ok(v) if v.is_empty() => Err(format!(
            "environment variable {var} (named by `{key}`) is empty"
        )),
        Ok(_) => Err(format!(
            "the value of environment variable {var} (named by `{key}`) is shorter than {min_len} characters"
        )),
        Err(_) => Err(format!(
            "environment variable {var} (named by `{key}`) is not set"
        )),
    }
}

/// The configuration with the plugins loaded and the enabled detectors
/// resolved, and every problem found on the way.
pub struct Detectors {
    pub config: Config,
    pub registry: Registry,
    pub specs: Vec<Arc<DetectorSpec>>,
    pub problems: Vec<crate::config::ConfigProblem>,
}

/// Loads the configuration (`explicit` file, else the working directory's,
/// else defaults), applies `overrides`, loads the plugins and resolves the
/// detectors, collecting every problem of these steps: what the daemon and
/// `analyze` both need.
pub fn load_detectors(
    explicit: Option<&std::path::Path>,
    cwd: &std::path::Path,
    overrides: Overrides,
) -> Result<Detectors, ConfigError> {
    let (mut config, mut problems) = crate::config::load_partial(explicit, cwd)?;
    let mut absorb = |result: Result<(), ConfigError>| match result {
        Ok(()) => Ok(()),
        Err(ConfigError::Invalid(more)) => {
            problems.extend(more);
            Ok(())
        }
        Err(e) => Err(e),
    };
    absorb(config.apply_cli(
        overrides.listen_address,
        overrides.listen_port_grpc,
        overrides.listen_port_http,
        overrides.environment,
    ))?;
    let (registry, plugin_problems) = Registry::load(&config);
    let specs = match registry.specs(&config) {
        Ok(specs) => specs,
        Err(e) => {
            absorb(Err(e))?;
            Vec::new()
        }
    };
    problems.extend(plugin_problems);
    Ok(Detectors {
        config,
        registry,
        specs,
        problems,
    })
}

/// [`load_detectors`], then what only the daemon needs (its TLS identity,
/// its API key), reporting every problem of all these steps at once.
pub fn prepare(
    explicit: Option<&std::path::Path>,
    cwd: &std::path::Path,
    overrides: Overrides,
) -> Result<Prepared, ConfigError> {
    let Detectors {
        config,
        registry,
        specs,
        mut problems,
    } = load_detectors(explicit, cwd, overrides)?;
    let tls = match (&config.daemon.tls_cert_path, &config.daemon.tls_key_path) {
        (Some(cert), Some(key)) => match crate::net::load_server_config(cert, key) {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(crate::config::ConfigProblem {
                    file: config
                        .source
                        .as_ref()
                        .map_or_else(|| "<defaults>".to_owned(), |p| p.display().to_string()),
                    key: "daemon.tls_cert_path".into(),
                    message: e.to_string(),
                });
                None
            }
        },
        _ => None,
    };
    let source = config
        .source
        .as_ref()
        .map_or_else(|| "<defaults>".to_owned(), |p| p.display().to_string());
    // The file's `env:` reference first, else the documented variable.
    let api_key_var = config
        .daemon
        .ack
        .api_key_env
        .clone()
        .or_else(|| std::env::var_os(ACK_API_KEY_ENV).map(|_| ACK_API_KEY_ENV.to_owned()));
    let ack_api_key = match &api_key_var {
        Some(var) => match resolve_secret(var, "daemon.ack.api_key", MIN_API_KEY_LEN) {
            Ok(v) => Some(v),
            Err(message) => {
                problems.push(crate::config::ConfigProblem {
                    file: source.clone(),
                    key: "daemon.ack.api_key".into(),
                    message,
                });
                None
            }
        },
        None => None,
    };
    if api_key_var.is_some() && config.daemon.cors_allowed_origins.iter().any(|o| o == "*") {
        problems.push(crate::config::ConfigProblem {
            file: source.clone(),
            key: "daemon.cors.allowed_origins".into(),
            message: "`*` lets any web page drive the API with a browser's stored key; list the origins when an API key is set".into(),
        });
    }
    let calibration = match &config.green_settings.calibration_file {
        Some(file) if config.green_settings.enabled => {
            let dir = config
                .source
                .as_deref()
                .and_then(|p| p.parent())
                .unwrap_or(cwd);
            match crate::green::Calibration::load(&dir.join(file)) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(crate::config::ConfigProblem {
                        file: source.clone(),
                        key: "green.calibration_file".into(),
                        message: e.to_string(),
                    });
                    crate::green::Calibration::default()
                }
            }
        }
        _ => crate::green::Calibration::default(),
    };
    if problems.is_empty() {
        Ok(Prepared {
            config,
            registry,
            specs,
            tls,
            ack_api_key,
            calibration: Arc::new(calibration),
        })
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs the daemon until `shutdown` is cancelled. Findings go to `stdout`.
pub async fn run(
    prepared: Prepared,
    shutdown: CancellationToken,
    stdout: Box<dyn std::io::Write + Send>,
) -> Result<(), DaemonError> {
    let catalog = catalog(&prepared);
    let Prepared {
        config,
        specs,
        tls,
        ack_api_key,
        calibration,
        ..
    } = prepared;
    let d = &config.daemon;
    let cwd = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
    let acks = crate::acks::start_service(&d.ack, &cwd)?
        .map(|service| Arc::new(std::sync::Mutex::new(service)));
    let energy = Arc::new(crate::green::EnergyState::new());
    let green = config.green_settings.enabled.then(|| {
        Arc::new(
            crate::green::GreenScorer::new(&config.green_settings, energy.clone())
                .with_calibration(calibration),
        )
    });
    let mut metrics = Metrics::new();
    if green.is_some() {
        metrics.register_collector(Box::new(
            crate::green::scrape::health::HealthCollector::new(energy.clone()),
        ));
    }
    let metrics = Arc::new(metrics);
    let store = Arc::new(FindingsStore::new(d.max_retained_findings));
    let correlator = d.correlation.enabled.then(|| {
        Arc::new(std::sync::Mutex::new(crate::correlation::Correlator::new(
            d.correlation.clone(),
            metrics.correlator_pairs_evicted.clone(),
        )))
    });
    let (sink, sink_threads) = spawn_sink(
        store.clone(),
        metrics.clone(),
        d.findings_queue_capacity,
        d.stdout_queue_capacity,
        stdout,
        correlator.clone(),
    )
    .map_err(DaemonError::Sink)?;
    let shards = match d.analysis_shards {
        0 => default_shards(),
        n => n,
    };
    let pipeline = Arc::new(Pipeline::start(
        PipelineSettings {
            shards,
            limits: WindowLimits {
                max_traces: d.max_active_traces,
                max_spans_per_trace: d.max_events_per_trace,
                ttl: Duration::from_millis(d.trace_ttl_ms),
                settle: Duration::from_millis(d.trace_settle_ms),
                remembered: d.max_active_traces,
            },
            queue_capacity: d.analysis_queue_capacity,
            retained_traces: d.max_retained_traces,
            stamp: Stamp {
                environment: d.environment.as_str().into(),
                confidence: confidence_for(&d.environment),
            },
            green: green.clone(),
        },
        &specs,
        metrics.clone(),
        &sink,
    )?);
    // Shards hold their own clones; ours must go for the writer to finish.
    drop(sink);
    let ingestor = Arc::new(Ingestor::new(
        pipeline.clone(),
        metrics.clone(),
        IngestSettings {
            max_payload_size: d.max_payload_size,
            admission_wait: Duration::from_millis(d.admission_wait_ms),
            sampler: Sampler::new(d.sampling_rate),
        },
    ));

    let grpc_addr = SocketAddr::new(d.listen_address, d.listen_port_grpc);
    let http_addr = SocketAddr::new(d.listen_address, d.listen_port_http);
    let bind = |addr, what| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Bind { addr, what, source })
    };
    let grpc_listener = match bind(grpc_addr, "OTLP gRPC").await {
        Ok(l) => l,
        Err(e) => {
            pipeline.shutdown();
            sink_threads.join();
            return Err(e);
        }
    };
    let http_listener = match bind(http_addr, "OTLP HTTP and API").await {
        Ok(l) => l,
        Err(e) => {
            pipeline.shutdown();
            sink_threads.join();
            return Err(e);
        }
    };

    let state = Arc::new(ApiState {
        config: Arc::new(config.clone()),
        acks,
        correlator,
        api_key: ack_api_key.clone(),
        ingestor: ingestor.clone(),
        pipeline: pipeline.clone(),
        store,
        metrics: metrics.clone(),
        detectors: specs.clone(),
        catalog,
        environment: d.environment.clone(),
        started: Instant::now(),
        shards,
        energy: green.as_ref().map(|_| energy.clone()),
        calibration: green
            .as_ref()
            .map(|g| g.calibration().clone())
            .unwrap_or_default(),
    });
    let app = router(state, d.api_enabled).layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        Duration::from_millis(d.http_request_timeout_ms),
    ));
    let grace = Duration::from_millis(d.shutdown_grace_ms);
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let limits = AcceptLimits {
        max_connections: d.max_connections,
        max_handshakes: d.max_tls_handshakes,
        handshake_timeout: Duration::from_millis(d.tls_handshake_timeout_ms),
    };
    // The acceptors stop with the token; what they accepted is served to the end.
    let listeners = CancellationToken::new();
    let http_conns = spawn_acceptor(
        http_listener,
        tls.clone(),
        limits,
        metrics.clone(),
        listeners.clone(),
    );
    let grpc_conns = spawn_acceptor(
        grpc_listener,
        tls.clone(),
        limits,
        metrics.clone(),
        listeners.clone(),
    );
    let http_server = tokio::spawn(serve_http(
        http_conns,
        app,
        HttpTimeouts {
            header_read: Duration::from_millis(d.http_header_timeout_ms),
        },
        shutdown.clone(),
        grace,
    ));
    let grpc_token = shutdown.clone();
    // The HTTP port closes silent connections at the header deadline;
    // tonic waits for the HTTP/2 preface without one, so the gRPC port's
    // connections carry the same deadline for their first byte.
    let first_byte = Duration::from_millis(d.http_header_timeout_ms);
    let grpc_server = tokio::spawn(
        tonic::transport::Server::builder()
            .timeout(Duration::from_millis(d.http_request_timeout_ms))
            .add_service(TraceGrpc::new(ingestor))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::ReceiverStream::new(grpc_conns)
                    .map(move |c| Ok::<_, std::io::Error>(c.with_first_byte_deadline(first_byte))),
                async move { grpc_token.cancelled().await },
            ),
    );
    let memory_guard = d
        .memory_high_water_pct
        .and_then(|pct| match CgroupMemory::locate().and_then(|cg| cg.usage().map(|u| (cg, u))) {
            Ok((cgroup, usage)) => {
                if usage.max.is_none() {
                    tracing::warn!(
                        cgroup = %cgroup.dir().display(),
                        "memory_high_water_pct is set but the cgroup has no memory limit (memory.max = max): nothing to guard until one is set"
                    );
                }
                Some(spawn_memory_guard(
                    cgroup,
                    pct,
                    pipeline.admission.clone(),
                    shutdown.clone(),
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, "memory_high_water_pct is set but memory cannot be watched: the guard is off");
                None
            }
        });
    if ack_api_key
        .as_ref()
        .is_some_and(|k| k.chars().count() < COMFORTABLE_API_KEY_LEN)
    {
        tracing::warn!(
            "the ack API key is shorter than {COMFORTABLE_API_KEY_LEN} characters: use a longer random key"
        );
    }
    for w in config.comfort_warnings() {
        tracing::warn!(file = %w.file, key = %w.key, "{}", w.message);
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    if tls.is_none() && !d.listen_address.is_loopback() && ack_api_key.is_none() {
        tracing::warn!(
            address = %d.listen_address,
            "listening beyond loopback without TLS or an API key: anyone who can reach these ports can send traces and read findings"
        );
    }
    tracing::info!(
        grpc = %grpc_addr,
        http = %http_addr,
        scheme,
        environment = %d.environment,
        shards,
        detectors = ?specs.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        "perf-sentinel listening"
    );
    if d.api_enabled && d.ui_enabled {
        tracing::info!("dashboard at {scheme}://{http_addr}/ui/");
    }

    let scrapers = {
        let m = metrics.clone();
        crate::green::scrape::spawn_scrapers(
            &config.green_settings,
            energy.clone(),
            Arc::new(move |service: &str| m.service_io_ops_of(service).unwrap_or(0)),
            shutdown.clone(),
            &|var: &str| std::env::var(var).ok(),
        )
    };

    shutdown.cancelled().await;
    for scraper in scrapers {
        // Sees the same token; ends at its next await point.
        let _ = scraper.await;
    }
    if let Some(guard) = memory_guard {
        // Sees the same token; ends at its next tick at the latest.
        let _ = guard.await;
    }
    listeners.cancel();
    tracing::info!("shutting down: no new requests; analyzing every buffered trace");
    let servers = async {
        if let Err(e) = http_server.await {
            tracing::warn!("HTTP server task: {e}");
        }
        match grpc_server.await {
            Ok(Err(e)) => tracing::warn!("gRPC server: {e}"),
            Err(e) => tracing::warn!("gRPC server task: {e}"),
            Ok(Ok(())) => {}
        }
    };
    if tokio::time::timeout(grace, servers).await.is_err() {
        tracing::warn!("connections still open after the grace period; draining anyway");
    }
    let drained = tokio::task::spawn_blocking(move || {
        pipeline.shutdown();
        sink_threads.join();
    })
    .await;
    if drained.is_err() {
        tracing::error!("draining the pipeline failed");
    }
    tracing::info!("shutdown complete");
    Ok(())
}
