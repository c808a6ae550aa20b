//! The golden fixtures (OTLP JSON) re-encoded in the other trace formats
//! `perf-sentinel analyze` reads, the way each system's own exporter or UI
//! writes them: Zipkin v2 JSON (the OpenTelemetry Zipkin exporter's mapping:
//! tags as strings, the scope in `otel.scope.*` tags, times in µs), Jaeger
//! JSON (the UI's "Download JSON": typed tags, processes, references) and
//! the Collector file exporter's NDJSON (one request per line).

use serde_json::{Map, Value, json};

/// Every span of an OTLP JSON request with its resource's service, its
/// resource attributes and its scope.
struct Flat<'a> {
    service: String,
    resource: Vec<&'a Value>,
    scope: (String, String),
    span: &'a Value,
}

fn flatten(request: &Value) -> Vec<Flat<'_>> {
    let mut out = Vec::new();
    for rs in request["resourceSpans"].as_array().into_iter().flatten() {
        let attrs: Vec<&Value> = rs["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let service = attrs
            .iter()
            .find(|a| a["key"] == "service.name")
            .map(|a| text(&a["value"]))
            .unwrap_or_default();
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            let scope = (
                ss["scope"]["name"].as_str().unwrap_or("").to_owned(),
                ss["scope"]["version"].as_str().unwrap_or("").to_owned(),
            );
            for span in ss["spans"].as_array().into_iter().flatten() {
                out.push(Flat {
                    service: service.clone(),
                    resource: attrs
                        .iter()
                        .copied()
                        .filter(|a| a["key"] != "service.name")
                        .collect(),
                    scope: scope.clone(),
                    span,
                });
            }
        }
    }
    out
}

/// An OTLP `AnyValue` as text (what Zipkin tags hold).
fn text(v: &Value) -> String {
    if let Some(s) = v["stringValue"].as_str() {
        return s.to_owned();
    }
    for key in ["intValue", "doubleValue"] {
        match &v[key] {
            Value::String(s) => return s.clone(),
            Value::Number(n) => return n.to_string(),
            _ => {}
        }
    }
    if let Some(b) = v["boolValue"].as_bool() {
        return b.to_string();
    }
    v.to_string()
}

/// An OTLP `AnyValue` as a Jaeger tag (`type` and `value`).
fn typed(key: &str, v: &Value) -> Value {
    let (kind, value) = if let Some(s) = v["stringValue"].as_str() {
        ("string", json!(s))
    } else if let Some(i) = v.get("intValue") {
        let n: i64 = match i {
            Value::String(s) => s.parse().unwrap(),
            other => other.as_i64().unwrap(),
        };
        ("int64", json!(n))
    } else if let Some(d) = v.get("doubleValue") {
        ("float64", d.clone())
    } else if let Some(b) = v["boolValue"].as_bool() {
        ("bool", json!(b))
    } else {
        ("string", json!(v.to_string()))
    };
    json!({"key": key, "type": kind, "value": value})
}

fn nanos(span: &Value, key: &str) -> u64 {
    match &span[key] {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_u64().unwrap_or(0),
    }
}

fn hex(span: &Value, key: &str) -> String {
    span[key].as_str().unwrap_or("").to_ascii_lowercase()
}

fn is_error(span: &Value) -> bool {
    span["status"]["code"] == 2 || span["status"]["code"] == "STATUS_CODE_ERROR"
}

fn kind_name(span: &Value) -> Option<&'static str> {
    match span["kind"].as_u64() {
        Some(2) => Some("SERVER"),
        Some(3) => Some("CLIENT"),
        Some(4) => Some("PRODUCER"),
        Some(5) => Some("CONSUMER"),
        _ => None,
    }
}

/// The request as a Zipkin v2 JSON array of spans.
pub fn zipkin(request: &Value) -> Value {
    let spans: Vec<Value> = flatten(request)
        .into_iter()
        .map(|f| {
            let s = f.span;
            let mut tags = Map::new();
            for a in s["attributes"].as_array().into_iter().flatten() {
                tags.insert(
                    a["key"].as_str().unwrap().to_owned(),
                    json!(text(&a["value"])),
                );
            }
            if !f.scope.0.is_empty() {
                tags.insert("otel.scope.name".into(), json!(f.scope.0));
                if !f.scope.1.is_empty() {
                    tags.insert("otel.scope.version".into(), json!(f.scope.1));
                }
            }
            if is_error(s) {
                tags.insert("otel.status_code".into(), json!("ERROR"));
                tags.insert(
                    "error".into(),
                    json!(s["status"]["message"].as_str().unwrap_or("")),
                );
            }
            let start = nanos(s, "startTimeUnixNano");
            let end = nanos(s, "endTimeUnixNano");
            let mut z = json!({
                "traceId": hex(s, "traceId"),
                "id": hex(s, "spanId"),
                "name": s["name"],
                "timestamp": start / 1000,
                "duration": (end.saturating_sub(start) / 1000).max(1),
                "localEndpoint": {"serviceName": f.service},
                "tags": tags,
            });
            let parent = hex(s, "parentSpanId");
            if !parent.is_empty() {
                z["parentId"] = json!(parent);
            }
            if let Some(kind) = kind_name(s) {
                z["kind"] = json!(kind);
            }
            z
        })
        .collect();
    Value::Array(spans)
}

/// The request as a Jaeger JSON export: one `data` item per trace, one
/// process per service.
pub fn jaeger(request: &Value) -> Value {
    let mut traces: Vec<(String, Vec<Value>, Map<String, Value>)> = Vec::new();
    for f in flatten(request) {
        let s = f.span;
        let trace_id = hex(s, "traceId");
        let at = match traces.iter().position(|t| t.0 == trace_id) {
            Some(i) => i,
            None => {
                traces.push((trace_id.clone(), Vec::new(), Map::new()));
                traces.len() - 1
            }
        };
        let (_, spans, processes) = &mut traces[at];
        let process_id = match processes
            .iter()
            .find(|(_, p)| p["serviceName"] == f.service.as_str())
        {
            Some((id, _)) => id.clone(),
            None => {
                let id = format!("p{}", processes.len() + 1);
                let tags: Vec<Value> = f
                    .resource
                    .iter()
                    .map(|a| typed(a["key"].as_str().unwrap(), &a["value"]))
                    .collect();
                processes.insert(id.clone(), json!({"serviceName": f.service, "tags": tags}));
                id
            }
        };
        let mut tags: Vec<Value> = s["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| typed(a["key"].as_str().unwrap(), &a["value"]))
            .collect();
        let kind = kind_name(s).map_or("internal", |k| match k {
            "SERVER" => "server",
            "CLIENT" => "client",
            "PRODUCER" => "producer",
            _ => "consumer",
        });
        tags.push(json!({"key": "span.kind", "type": "string", "value": kind}));
        if !f.scope.0.is_empty() {
            tags.push(json!({"key": "otel.scope.name", "type": "string", "value": f.scope.0}));
        }
        if is_error(s) {
            tags.push(json!({"key": "error", "type": "bool", "value": true}));
        }
        let parent = hex(s, "parentSpanId");
        let references = if parent.is_empty() {
            json!([])
        } else {
            json!([{"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent}])
        };
        let start = nanos(s, "startTimeUnixNano");
        let end = nanos(s, "endTimeUnixNano");
        spans.push(json!({
            "traceID": trace_id,
            "spanID": hex(s, "spanId"),
            "operationName": s["name"],
            "references": references,
            "startTime": start / 1000,
            "duration": (end.saturating_sub(start) / 1000).max(1),
            "tags": tags,
            "logs": [],
            "processID": process_id,
            "warnings": null,
        }));
    }
    let data: Vec<Value> = traces
        .into_iter()
        .map(|(id, spans, processes)| {
            json!({"traceID": id, "spans": spans, "processes": processes, "warnings": null})
        })
        .collect();
    json!({"data": data, "total": 0, "limit": 0, "offset": 0, "errors": null})
}

/// The request as NDJSON, one span per line (its resource and scope
/// repeated) and the lines in reverse order: a trace's spans spread over
/// requests, its root last, as a Collector's file exporter can leave them.
pub fn ndjson(request: &Value) -> String {
    let mut lines = Vec::new();
    for rs in request["resourceSpans"].as_array().into_iter().flatten() {
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for span in ss["spans"].as_array().into_iter().flatten() {
                let mut scope = ss.clone();
                scope["spans"] = json!([span]);
                let mut resource = rs.clone();
                resource["scopeSpans"] = json!([scope]);
                lines.push(json!({ "resourceSpans": [resource] }).to_string());
            }
        }
    }
    lines.reverse();
    let mut out = lines.join("\n");
    out.push('\n');
    out
}
