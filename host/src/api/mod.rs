//! The HTTP surface on the OTLP/HTTP port besides `/v1/traces`: health,
//! Prometheus metrics, and the JSON API over the findings store.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::findings::FindingsStore;
use crate::ingest::Ingestor;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::pipeline::detectors::DetectorSpec;

mod acks;
mod effective_config;
mod energy;
mod findings;
mod ui;

/// What the HTTP handlers share.
pub struct ApiState {
    pub config: Arc<crate::config::Config>,
    /// `None` when `[daemon.ack] enabled = false`.
    pub acks: Option<Arc<std::sync::Mutex<crate::acks::AckService>>>,
    /// `None` unless `[daemon.correlation] enabled`.
    pub correlator: Option<crate::findings::SharedCorrelator>,
    /// `[daemon.ack] api_key`, resolved: guards the ack routes.
    pub api_key: Option<String>,
    pub ingestor: Arc<Ingestor>,
    pub pipeline: Arc<Pipeline>,
    pub store: Arc<FindingsStore>,
    pub metrics: Arc<Metrics>,
    pub detectors: Vec<Arc<DetectorSpec>>,
    /// Every registered detector, enabled or not.
    pub catalog: Vec<DetectorListing>,
    pub environment: String,
    pub started: Instant,
    pub shards: usize,
    /// What the energy scrapers know; `None` when `[green] enabled = false`.
    pub energy: Option<Arc<crate::green::EnergyState>>,
    /// `[green] calibration_file`, as read at startup.
    pub calibration: Arc<crate::green::Calibration>,
}

impl ApiState {
    /// The ack service, locked, for reads that do no I/O.
    fn ack_reader(&self) -> Option<std::sync::MutexGuard<'_, crate::acks::AckService>> {
        self.acks
            .as_ref()
            .map(|a| a.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A registered detector as `GET /api/detectors` lists it.
#[derive(Debug, Clone)]
pub struct DetectorListing {
    pub id: String,
    pub description: String,
    /// `builtin` or the plugin's name.
    pub origin: String,
    /// The plugin's path and version.
    pub plugin: Option<(String, String)>,
    pub enabled: bool,
    pub cross_trace: bool,
}

/// The router of the HTTP port. The JSON API is left out when
/// `api_enabled = false`, and the dashboard (which only reads and writes
/// through that API) with it or with `ui_enabled = false`; ingest, health
/// and metrics always stay.
pub fn router(state: Arc<ApiState>, api_enabled: bool) -> Router {
    let ui_enabled = api_enabled && state.config.daemon.ui_enabled;
    let ingest = Router::new()
        .route("/v1/traces", post(crate::ingest::http::export_traces))
        .route("/api/v2/spans", post(crate::ingest::http::zipkin_spans))
        .with_state(state.ingestor.clone());
    let mut app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics));
    if api_enabled {
        let mut api = Router::new()
            .route("/api/findings", get(findings::list))
            .route("/api/findings/{trace_id}", get(findings::by_trace))
            .route("/api/explain/{trace_id}", get(findings::explain))
            .route("/api/status", get(status))
            .route("/api/detectors", get(detectors))
            .route("/api/config", get(effective_config::show))
            .route("/api/energy", get(energy::show))
            .route(
                "/api/findings/{signature}/ack",
                post(acks::create)
                    .delete(acks::revoke)
                    .layer(axum::extract::DefaultBodyLimit::max(acks::MAX_BODY)),
            )
            .route("/api/acks", get(acks::list))
            .route("/api/correlations", get(correlations));
        // Only the API speaks to browsers; ingest and metrics never need CORS.
        if let Some(cors) = cors_layer(&state.config.daemon.cors_allowed_origins) {
            api = api.layer(cors);
        }
        app = app.merge(api);
    }
    if ui_enabled {
        app = app.merge(ui::router());
    }
    app.with_state(state).merge(ingest)
}

/// `[daemon.cors] allowed_origins` as a layer; `None` when empty.
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        // Validated at load as `scheme://host[:port]`, so they parse.
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                axum::http::header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-user-id"),
            ]),
    )
}

async fn health() -> Response {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#.to_owned())
}

/// Prometheus text by default; OpenMetrics (with exemplars) when the
/// scraper asks for it, as Prometheus does with exemplar storage on.
async fn metrics(State(state): State<Arc<ApiState>>, headers: axum::http::HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            state.metrics.encode(),
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            state.metrics.encode_prometheus(),
        )
            .into_response()
    }
}

async fn status(State(state): State<Arc<ApiState>>) -> Response {
    let m = &state.metrics;
    let detectors: Vec<_> = state
        .detectors
        .iter()
        .map(|d| {
            serde_json::json!({
                "id": d.id,
                "origin": &*d.origin,
                "runs": d.stats.runs.load(Ordering::Relaxed),
                "findings": d.stats.findings.load(Ordering::Relaxed),
                "errors": d.stats.errors.load(Ordering::Relaxed),
                "quarantined": d.stats.quarantined.load(Ordering::Relaxed),
            })
        })
        .collect();
    let body = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "environment": state.environment,
        "uptime_seconds": state.started.elapsed().as_secs(),
        "analysis_shards": state.shards,
        "active_traces": m.active_traces.get(),
        "spans_received": m.spans_received.get(),
        "spans_analyzed": m.spans_analyzed.get(),
        "analysis_queue_depth": m.queue_depth.get(),
        "analysis_queue_capacity": m.queue_capacity.get(),
        "findings_retained": state.store.len(),
        "io": io_totals(m),
        "detectors": detectors,
    });
    json_response(StatusCode::OK, body.to_string())
}

/// The I/O and green totals since start that `/metrics` also exposes
/// (`io_ops`, `avoidable_io_ops`, `io_waste_ratio`, `energy_kwh`,
/// `carbon_gco2`), for clients that read JSON rather than Prometheus text.
fn io_totals(m: &Metrics) -> serde_json::Value {
    use crate::metrics::ScopeLabel;
    let scoped = |family: &prometheus_client::metrics::family::Family<
        ScopeLabel,
        prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>,
    >| {
        // `get`, not `get_or_create`: reading must not add a zero series.
        let read = |scope| family.get(&ScopeLabel { scope }).map_or(0.0, |g| g.get());
        serde_json::json!({ "io": read("io"), "avoidable": read("avoidable") })
    };
    serde_json::json!({
        "io_ops": m.io_ops.get(),
        "avoidable_io_ops": m.avoidable_io_ops.get(),
        "io_waste_ratio": m.io_waste_ratio.get(),
        "energy_kwh": scoped(&m.energy_kwh),
        "carbon_gco2": scoped(&m.carbon_gco2),
    })
}

/// Cross-service correlations over the rolling window, strongest first.
async fn correlations(State(state): State<Arc<ApiState>>) -> Response {
    let Some(correlator) = &state.correlator else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "correlation is off; set [daemon.correlation] enabled = true",
        );
    };
    let now = crate::pipeline::shard::wall_ns();
    let found = correlator
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .snapshot(now);
    json_response(
        StatusCode::OK,
        serde_json::to_string(&found).unwrap_or_else(|_| "[]".to_owned()),
    )
}

async fn detectors(State(state): State<Arc<ApiState>>) -> Response {
    let list: Vec<_> = state
        .catalog
        .iter()
        .map(|c| {
            let running = state.detectors.iter().find(|d| d.id == c.id);
            let stat = |f: fn(&DetectorSpec) -> u64| running.map_or(0, |d| f(d));
            serde_json::json!({
                "id": c.id,
                "description": c.description,
                "origin": c.origin,
                "plugin": c.plugin.as_ref().map(|(path, version)| {
                    serde_json::json!({ "path": path, "version": version })
                }),
                "enabled": c.enabled,
                "cross_trace": c.cross_trace,
                "quarantined": running
                    .is_some_and(|d| d.stats.quarantined.load(Ordering::Relaxed)),
                "runs": stat(|d| d.stats.runs.load(Ordering::Relaxed)),
                "findings": stat(|d| d.stats.findings.load(Ordering::Relaxed)),
                "errors": stat(|d| d.stats.errors.load(Ordering::Relaxed)),
            })
        })
        .collect();
    json_response(StatusCode::OK, serde_json::Value::Array(list).to_string())
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, serde_json::json!({ "error": message }).to_string())
}

fn bad_request(message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        serde_json::json!({ "error": message }).to_string(),
    )
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
