//! `GET /api/findings` (folded by signature), `GET /api/findings/{trace_id}`
//! (every finding of one trace) and `GET /api/explain/{trace_id}` (the
//! trace as a span tree with its findings inline).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use detector_api::{Severity, TraceId};
use serde::Deserialize;

use super::{ApiState, bad_request, error, json_response};
use crate::findings::{FindingFilter, FindingRecord, fold, push_folded, rfc3339};

/// Most folded findings one `GET /api/findings` returns.
const MAX_LIMIT: usize = 1_000;
const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FindingsQuery {
    service: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    severity: Option<String>,
    trace_id: Option<String>,
    limit: Option<usize>,
    include_acked: Option<bool>,
}

pub(super) async fn list(
    State(state): State<Arc<ApiState>>,
    query: Result<Query<FindingsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return bad_request(&e.body_text()),
    };
    let severity = match q.severity.as_deref().map(Severity::parse) {
        Some(None) => return bad_request("severity must be one of critical, warning, info"),
        Some(Some(s)) => Some(s),
        None => None,
    };
    let limit = match q.limit {
        Some(0) => return bad_request("limit must be between 1 and 1000"),
        Some(n) => n.min(MAX_LIMIT),
        None => DEFAULT_LIMIT,
    };
    // Severity applies to the folded entry (its worst), not to each record.
    let filter = FindingFilter {
        service: q.service,
        kind: q.kind,
        severity: None,
        trace_id: q.trace_id.map(|t| t.to_ascii_lowercase()),
        limit: usize::MAX,
    };
    let records = state.store.query(&filter);
    let include_acked = q.include_acked.unwrap_or(false);
    let now = time::OffsetDateTime::now_utc();
    let acks = state.ack_reader();
    let mut body = String::from("[");
    let mut shown = 0;
    for folded in fold(records.iter()) {
        if shown == limit {
            break;
        }
        if severity.is_some_and(|s| folded.shown.finding.severity != s) {
            continue;
        }
        let ack = acks
            .as_ref()
            .and_then(|a| a.lookup(&folded.shown.signature, now))
            .and_then(|info| serde_json::to_value(info).ok());
        if ack.is_some() && !include_acked {
            continue;
        }
        if shown > 0 {
            body.push(',');
        }
        push_folded(&mut body, &folded, ack);
        shown += 1;
    }
    body.push(']');
    json_response(StatusCode::OK, body)
}

fn parse_trace_id(text: &str) -> Option<TraceId> {
    TraceId::from_hex(&text.to_ascii_lowercase()).filter(|t| !t.is_zero())
}

fn bad_trace_id() -> Response {
    bad_request("trace id must be 32 hex characters, not all zero")
}

/// Every retained finding of one trace, unfolded, in publication order.
pub(super) async fn by_trace(
    State(state): State<Arc<ApiState>>,
    Path(trace_id): Path<String>,
) -> Response {
    let Some(trace_id) = parse_trace_id(&trace_id) else {
        return bad_trace_id();
    };
    let records = trace_findings(&state, trace_id);
    let mut body = String::from("[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&r.json);
    }
    body.push(']');
    json_response(StatusCode::OK, body)
}

fn trace_findings(state: &ApiState, trace_id: TraceId) -> Vec<Arc<FindingRecord>> {
    let mut records = state.store.query(&FindingFilter {
        trace_id: Some(trace_id.to_string()),
        limit: usize::MAX,
        ..FindingFilter::default()
    });
    records.reverse();
    records
}

/// The trace as a span tree, each span listing the findings that cite it,
/// and the findings themselves.
pub(super) async fn explain(
    State(state): State<Arc<ApiState>>,
    Path(trace_id): Path<String>,
) -> Response {
    let Some(trace_id) = parse_trace_id(&trace_id) else {
        return bad_trace_id();
    };
    let mut tree = match state.pipeline.explain(trace_id).await {
        Ok(Some(tree)) => tree,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "trace not in memory: neither waiting in the window nor among the last max_retained_traces analyzed",
            );
        }
        Err(_) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the daemon is shutting down",
            );
        }
    };
    let records = trace_findings(&state, trace_id);
    let mut citing: HashMap<String, Vec<String>> = HashMap::new();
    for r in &records {
        for span in r.finding.evidence.iter() {
            citing
                .entry(span.to_string())
                .or_default()
                .push(r.signature.clone());
        }
    }
    for span in &mut tree.spans {
        if let Some(signatures) = citing.remove(&span.span_id) {
            span.findings = signatures;
        }
    }
    let findings: Vec<serde_json::Value> = records
        .iter()
        .filter_map(|r| serde_json::from_str(&r.json).ok())
        .collect();
    let mut body = match serde_json::to_value(&tree) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    if let Some(obj) = body.as_object_mut() {
        obj.insert("findings".into(), serde_json::Value::Array(findings));
        obj.insert("start_time".into(), rfc3339(tree.start_ns).into());
    }
    json_response(StatusCode::OK, body.to_string())
}
