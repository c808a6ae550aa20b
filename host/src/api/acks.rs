//! The acknowledgment routes: `POST` / `DELETE
//! /api/findings/{signature}/ack` and `GET /api/acks`. Writes go through
//! the [`AckService`] on a blocking thread (each is an fsync), behind the
//! API key when one is set.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{ApiState, error, json_response};
use crate::acks::{AckError, AckService};
use crate::metrics::{ActionLabel, ActionReasonLabels};

/// Largest ack request body: `by` and `reason` are capped far below this.
pub(super) const MAX_BODY: usize = 16 * 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    by: Option<String>,
    reason: Option<String>,
    expires_at: Option<String>,
}

/// The service for an authorized caller, or the response refusing it:
/// 503 when acks are off, 401 without the right key.
fn admit(
    state: &ApiState,
    headers: &HeaderMap,
    action: &'static str,
) -> Result<Arc<Mutex<AckService>>, Box<Response>> {
    let Some(acks) = state.acks.clone() else {
        return Err(Box::new(refuse(
            state,
            action,
            StatusCode::SERVICE_UNAVAILABLE,
            "disabled",
            "acknowledgments are disabled ([daemon.ack] enabled = false)",
        )));
    };
    if !authorized(state, headers) {
        return Err(Box::new(refuse(
            state,
            action,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong X-API-Key",
        )));
    }
    Ok(acks)
}

/// Compares digests of both keys: equal length whatever the input, and
/// every byte visited, so timing says nothing about how much matched.
fn key_matches(expected: &str, given: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(given);
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn authorized(state: &ApiState, headers: &HeaderMap) -> bool {
    match &state.api_key {
        None => true,
        Some(key) => headers
            .get("x-api-key")
            .is_some_and(|given| key_matches(key, given.as_bytes())),
    }
}

fn refuse(
    state: &ApiState,
    action: &'static str,
    status: StatusCode,
    reason: &'static str,
    message: &str,
) -> Response {
    state
        .metrics
        .ack_operations_failed
        .get_or_create(&ActionReasonLabels { action, reason })
        .inc();
    let mut response = error(status, message);
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("X-API-Key"),
        );
    }
    response
}

fn failed(state: &ApiState, action: &'static str, e: &AckError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = match status.as_u16() {
        400 => "invalid",
        404 => "not_found",
        409 => "conflict",
        503 => "unavailable",
        507 if e.is_out_of_space() => "disk_full",
        507 => "limit",
        _ => "io",
    };
    refuse(state, action, status, reason, &e.to_string())
}

fn succeeded(state: &ApiState, action: &'static str) {
    state
        .metrics
        .ack_operations
        .get_or_create(&ActionLabel { action })
        .inc();
}

/// The response to a finished operation, counted: `ok` renders success;
/// `None` means the blocking task itself died.
fn answer<T>(
    state: &ApiState,
    action: &'static str,
    outcome: Option<Result<T, AckError>>,
    ok: impl FnOnce(T) -> Response,
) -> Response {
    match outcome {
        Some(Ok(value)) => {
            succeeded(state, action);
            ok(value)
        }
        Some(Err(e)) => failed(state, action, &e),
        None => refuse(
            state,
            action,
            StatusCode::INTERNAL_SERVER_ERROR,
            "io",
            "the ack store task failed",
        ),
    }
}

/// `X-User-Id`, set by an authenticating proxy: it wins over a
/// self-declared `by`.
fn user_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-user-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Runs `f` on the service off the async threads (it may fsync).
async fn with_service<T: Send + 'static>(
    acks: Arc<Mutex<AckService>>,
    f: impl FnOnce(&mut AckService) -> T + Send + 'static,
) -> Option<T> {
    tokio::task::spawn_blocking(move || {
        let mut service = acks.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut service)
    })
    .await
    .ok()
}

pub(super) async fn create(
    State(state): State<Arc<ApiState>>,
    Path(signature): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ACTION: &str = "ack";
    let acks = match admit(&state, &headers, ACTION) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let parsed: AckBody = if body.iter().all(u8::is_ascii_whitespace) {
        AckBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                let message =
                    format!("body must be a JSON object with `by`, `reason`, `expires_at`: {e}");
                return refuse(&state, ACTION, StatusCode::BAD_REQUEST, "invalid", &message);
            }
        }
    };
    let expires_at = match parsed
        .expires_at
        .as_deref()
        .map(|t| OffsetDateTime::parse(t, &Rfc3339))
    {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            return refuse(
                &state,
                ACTION,
                StatusCode::BAD_REQUEST,
                "invalid",
                "expires_at must be an RFC 3339 date-time, e.g. 2026-12-31T23:59:59Z",
            );
        }
    };
    let by = user_id(&headers).or(parsed.by).unwrap_or_default();
    let reason = parsed.reason.unwrap_or_default();
    let outcome = with_service(acks, move |s| {
        s.ack(
            &signature,
            &by,
            &reason,
            expires_at,
            OffsetDateTime::now_utc(),
        )
    })
    .await;
    answer(&state, ACTION, outcome, |ack| {
        json_response(
            StatusCode::CREATED,
            serde_json::to_string(&ack).unwrap_or_default(),
        )
    })
}

pub(super) async fn revoke(
    State(state): State<Arc<ApiState>>,
    Path(signature): Path<String>,
    headers: HeaderMap,
) -> Response {
    const ACTION: &str = "unack";
    let acks = match admit(&state, &headers, ACTION) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let by = user_id(&headers).unwrap_or_default();
    let outcome = with_service(acks, move |s| {
        s.unack(&signature, &by, OffsetDateTime::now_utc())
    })
    .await;
    answer(&state, ACTION, outcome, |()| {
        StatusCode::NO_CONTENT.into_response()
    })
}

pub(super) async fn list(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    const ACTION: &str = "list";
    let acks = match admit(&state, &headers, ACTION) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let listed = with_service(acks, |s| match s.unavailable_reason() {
        Some(why) => Err(AckError::Unavailable(why.to_owned())),
        None => Ok(s.list(OffsetDateTime::now_utc())),
    })
    .await;
    answer(&state, ACTION, listed, |list| {
        json_response(
            StatusCode::OK,
            serde_json::to_string(&list).unwrap_or_default(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::key_matches;

    #[test]
    fn only_the_exact_key_matches() {
        let key = "correct-horse-battery";
        assert!(key_matches(key, key.as_bytes()));
        for wrong in [
            "",
            "correct-horse",
            "correct-horse-battery ",
            "CORRECT-HORSE-BATTERY",
            "correct-horse-batterx",
        ] {
            assert!(!key_matches(key, wrong.as_bytes()), "{wrong:?}");
        }
    }
}
