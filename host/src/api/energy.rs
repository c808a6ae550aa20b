//! `GET /api/energy`: the green model in use and each energy backend's
//! health (configured or not, last scrape, failures by reason, what it
//! covers), plus the services and regions measured figures apply to now.
//! Endpoints show scheme, host and port only.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{ApiState, json_response};
use crate::green::model::BASELINE_KWH_PER_OP;
use crate::green::scrape::BACKENDS;
use crate::green::state::{BackendHealth, MISSED_INTERVALS};
use crate::green::{HIGH_FACTOR, LOW_FACTOR};

/// `pending` (no scrape yet), `ok`, `degraded` (failing, last reading
/// still used), `stale` (readings dropped), `failing` (never succeeded).
fn status(h: &BackendHealth, now: Instant) -> &'static str {
    let fresh_for = h.interval * MISSED_INTERVALS;
    match h.last_success {
        None if h.consecutive_failures == 0 => "pending",
        None => "failing",
        Some(t) if now.saturating_duration_since(t) > fresh_for => "stale",
        Some(_) if h.consecutive_failures > 0 => "degraded",
        Some(_) => "ok",
    }
}

fn rfc3339_ms(ms: u64) -> String {
    crate::findings::rfc3339(ms.saturating_mul(1_000_000))
}

pub(super) async fn show(State(state): State<Arc<ApiState>>) -> Response {
    let g = &state.config.green_settings;
    let now = Instant::now();
    let backends = state
        .energy
        .as_ref()
        .map(|e| e.backends())
        .unwrap_or_default();
    let listed: Vec<Value> = BACKENDS
        .iter()
        .map(|name| match backends.get(name) {
            None => json!({ "backend": name, "configured": false }),
            Some(h) => json!({
                "backend": name,
                "configured": true,
                "endpoint": h.endpoint,
                "interval_secs": h.interval.as_secs_f64(),
                "status": status(h, now),
                "last_scrape_age_seconds": h.last_success.map(|t| now.saturating_duration_since(t).as_secs_f64()),
                "last_success": h.last_success_unix_ms.map(rfc3339_ms),
                "consecutive_failures": h.consecutive_failures,
                "last_error": h.last_error,
                "scrapes_ok": h.ok_total,
                "scrapes_failed": h.failed_total,
                "covers": h.covered,
            }),
        })
        .collect();
    let (services, grid) = match &state.energy {
        Some(e) => (
            e.measured_services(now)
                .into_iter()
                .map(|(service, (m, fresh))| {
                    json!({
                        "service": service,
                        "backend": m.backend,
                        "kwh_per_op": m.kwh_per_op,
                        "in_use": fresh,
                    })
                })
                .collect::<Vec<_>>(),
            e.grid_regions(now)
                .into_iter()
                .map(|(region, (r, fresh))| {
                    json!({
                        "region": region,
                        "backend": r.backend,
                        "gco2_per_kwh": r.gco2_per_kwh,
                        "in_use": fresh,
                    })
                })
                .collect::<Vec<_>>(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let body = json!({
        "enabled": g.enabled && state.energy.is_some(),
        "model": {
            "baseline_kwh_per_op": BASELINE_KWH_PER_OP,
            "default_region": g.default_region,
            "service_regions": g.service_regions,
            "embodied_carbon_per_request_gco2": g.embodied_carbon_per_request_gco2,
            "co2_band": { "low": LOW_FACTOR, "high": HIGH_FACTOR },
            "fallback_after_missed_intervals": MISSED_INTERVALS,
            "calibration": {
                "file": state.calibration.source.as_ref().map(|p| p.display().to_string()),
                "factors": state.calibration.factors,
            },
        },
        "backends": listed,
        "measured_services": services,
        "grid_readings": grid,
        "generated_at": rfc3339_ms(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_millis() as u64,
        ),
    });
    json_response(StatusCode::OK, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_scrape_history() {
        let now = Instant::now();
        let mut h = BackendHealth {
            interval: Duration::from_secs(5),
            ..BackendHealth::default()
        };
        assert_eq!(status(&h, now), "pending");
        h.consecutive_failures = 1;
        assert_eq!(status(&h, now), "failing");
        h.last_success = Some(now);
        assert_eq!(status(&h, now + Duration::from_secs(6)), "degraded");
        h.consecutive_failures = 0;
        assert_eq!(status(&h, now + Duration::from_secs(6)), "ok");
        assert_eq!(status(&h, now + Duration::from_secs(16)), "stale");
    }
}
