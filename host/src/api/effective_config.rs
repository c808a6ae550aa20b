//! `GET /api/config`: the configuration the daemon runs with, defaults
//! filled in and overlays applied, for runbooks checking what a pod really
//! uses. Credentials appear as their `env:` reference, never their value.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{ApiState, json_response};
use crate::config::CREDENTIAL_KEYS;

pub(super) async fn show(State(state): State<Arc<ApiState>>) -> Response {
    let c = &state.config;
    let detectors: Vec<Value> = state
        .detectors
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "origin": &*d.origin,
                "cross_trace": d.cross_trace,
                "config": redact(toml_to_json(&toml::Value::Table(d.params.clone()))),
                "services": d.services,
                "exclude_services": d.exclude_services,
            })
        })
        .collect();
    let body = json!({
        "source": c.source.as_ref().map(|p| p.display().to_string()),
        "daemon": c.daemon,
        "detection": toml_to_json(&toml::Value::Table(c.detection.clone())),
        "thresholds": c.thresholds,
        "enabled_detectors": detectors,
        "plugins": c.plugins,
        "green": redact(toml_to_json(&toml::Value::Table(c.green.clone()))),
    });
    json_response(StatusCode::OK, body.to_string())
}

fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// Credentials are `env:` references by the time the config loaded; they
/// are still masked here so a future key cannot leak by mistake.
fn redact(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) if CREDENTIAL_KEYS.contains(&k.as_str()) => {
                            Value::String(if s.starts_with("env:") {
                                s
                            } else {
                                "<redacted>".into()
                            })
                        }
                        other => redact(other),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked_at_any_depth_unless_env_references() {
        let v = json!({"a": {"api_key": "literal", "token": "env:T", "n": [{"password": "p"}]}});
        assert_eq!(
            redact(v),
            json!({"a": {"api_key": "<redacted>", "token": "env:T", "n": [{"password": "<redacted>"}]}})
        );
    }
}
