//! The deployment examples: the Helm values render valid manifests, the
//! Collector configurations send to the Service and headless Service the
//! chart renders for them, and the Grafana dashboard's queries parse and
//! use metrics the daemon documents.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

use super::common::TempDir;
use super::render::{NAMESPACE, Rendered, Values, at, named, render, seq_at, str_at};
use super::tools::{chart_dir, helm, kubeconform, ok, output, repo, text, tool};

const EXAMPLE_VALUES: &str = "examples/helm/values-perf-sentinel.yaml";

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_example_values_lint_and_render_valid_manifests() {
    let dir = TempDir::new("helm-example");
    for values in [
        Values::new().file(EXAMPLE_VALUES),
        Values::new()
            .file(EXAMPLE_VALUES)
            .kind("StatefulSet")
            .set("workload.replicas=3")
            .set("workload.statefulset.persistence.enabled=true"),
    ] {
        let out = ok(helm()
            .args(["lint", "--strict", "--namespace", NAMESPACE])
            .arg(chart_dir())
            .args(values.to_args(&dir.0)));
        assert!(out.contains("0 chart(s) failed"), "{out}");
        let r = render(&values);
        let file = r.write(&dir.0, "example.yaml");
        kubeconform(&file, r.docs.len()).unwrap();
        for kind in [
            "ServiceMonitor",
            "PrometheusRule",
            "PodDisruptionBudget",
            "NetworkPolicy",
        ] {
            assert!(r.has(kind), "{kind} missing from the example");
        }
    }
}

/// `host:port` of the chart's Service (or headless Service) for the example
/// release, as a Collector in another namespace would write it.
fn service_endpoint(r: &Rendered, headless: bool) -> String {
    let svc = r
        .all("Service")
        .into_iter()
        .find(|s| (at(s, &["spec", "clusterIP"]).as_str() == Some("None")) == headless)
        .expect("the Service");
    let port = at(
        named(seq_at(svc, &["spec", "ports"]), "otlp-grpc"),
        &["port"],
    )
    .as_i64()
    .unwrap();
    format!(
        "{}.{}.svc.cluster.local:{port}",
        str_at(svc, &["metadata", "name"]),
        str_at(svc, &["metadata", "namespace"])
    )
}

/// The traces pipeline of a Collector configuration, checked for the shape
/// every example shares: OTLP and Zipkin in, every component used in the
/// pipeline defined, fan-out to Tempo and to `perf_sentinel_exporter`.
fn check_traces_pipeline(config: &Value, perf_sentinel_exporter: &str, what: &str) {
    let pipeline = at(config, &["service", "pipelines", "traces"]);
    let list = |key: &str| -> Vec<String> {
        seq_at(pipeline, &[key])
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(list("receivers"), ["otlp", "zipkin"], "{what}");
    for (section, key) in [
        ("receivers", "receivers"),
        ("processors", "processors"),
        ("exporters", "exporters"),
    ] {
        for name in list(key) {
            assert!(
                !at(config, &[section, &name]).is_null(),
                "{what}: {section}.{name} is used but not defined"
            );
        }
    }
    let exporters = list("exporters");
    assert!(
        exporters.iter().any(|e| e.starts_with("otlp/tempo")),
        "{what}"
    );
    assert!(
        exporters.iter().any(|e| e == perf_sentinel_exporter),
        "{what}"
    );
}

#[test]
fn the_collector_examples_send_every_trace_to_the_chart_service() {
    let r = render(&Values::new().file(EXAMPLE_VALUES));
    let endpoint = service_endpoint(&r, false);
    assert_eq!(
        endpoint,
        "perf-sentinel.observability.svc.cluster.local:4317"
    );

    let helm_values = yaml("examples/helm/values-otel-collector.yaml");
    let config = at(&helm_values, &["config"]);
    check_traces_pipeline(config, "otlp/perf-sentinel", "values-otel-collector.yaml");
    assert_eq!(
        str_at(config, &["exporters", "otlp/perf-sentinel", "endpoint"]),
        endpoint
    );
    assert_eq!(
        at(&helm_values, &["ports", "zipkin", "enabled"]).as_bool(),
        Some(true)
    );

    let standalone = yaml("examples/otel-collector-config.yaml");
    check_traces_pipeline(
        &standalone,
        "otlp/perf-sentinel",
        "otel-collector-config.yaml",
    );
    assert_eq!(
        str_at(
            &standalone,
            &["exporters", "otlp/perf-sentinel", "endpoint"]
        ),
        endpoint
    );
}

#[test]
fn the_sharded_collector_routes_by_trace_id_over_the_headless_service() {
    let r = render(
        &Values::new()
            .file(EXAMPLE_VALUES)
            .kind("StatefulSet")
            .set("workload.replicas=3"),
    );
    let headless = service_endpoint(&r, true);
    assert_eq!(
        headless,
        "perf-sentinel-headless.observability.svc.cluster.local:4317"
    );
    let config = yaml("examples/otel-collector-sharded.yaml");
    check_traces_pipeline(
        &config,
        "loadbalancing/perf-sentinel",
        "otel-collector-sharded.yaml",
    );
    let lb = at(&config, &["exporters", "loadbalancing/perf-sentinel"]);
    assert_eq!(str_at(lb, &["routing_key"]), "traceID");
    let dns = at(lb, &["resolver", "dns"]);
    let target = format!(
        "{}:{}",
        str_at(dns, &["hostname"]),
        at(dns, &["port"]).as_i64().unwrap()
    );
    assert_eq!(target, headless);
    // The StatefulSet's pods are the headless Service's endpoints.
    let sts = r.one("StatefulSet");
    assert!(headless.starts_with(&format!("{}.", str_at(sts, &["spec", "serviceName"]))));
}

/// Metric names (`perf_sentinel_*`, histogram suffixes removed) in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("perf_sentinel_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(base.to_owned());
        rest = &tail[end..];
    }
    names
}

fn documented_metrics() -> BTreeSet<String> {
    metric_names(&std::fs::read_to_string(repo().join("docs/METRICS.md")).unwrap())
}

#[test]
fn the_dashboard_queries_parse_and_use_documented_metrics() {
    let path = repo().join("examples/grafana/perf-sentinel-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    // Each query as a recording rule, with Grafana's variables filled in,
    // so that promtool parses the PromQL.
    let rules: Vec<serde_json::Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let e = e
                .replace("$__rate_interval", "5m")
                .replace("$namespace", "observability")
                .replace("$job", "perf-sentinel");
            serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": e})
        })
        .collect();
    let dir = TempDir::new("helm-dashboard");
    let file = dir.0.join("dashboard-rules.yml");
    std::fs::write(
        &file,
        serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string(),
    )
    .unwrap();
    let out = output(
        std::process::Command::new(tool("PERF_SENTINEL_PROMTOOL"))
            .args(["check", "rules"])
            .arg(&file),
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let documented = documented_metrics();
    let used = metric_names(&exprs.join("\n"));
    let unknown: Vec<&String> = used.difference(&documented).collect();
    assert!(unknown.is_empty(), "not in docs/METRICS.md: {unknown:?}");
}

#[test]
fn the_alerts_use_documented_metrics() {
    let r = render(&Values::new().set("prometheusRule.enabled=true"));
    let used = metric_names(&serde_yaml_ng::to_string(r.one("PrometheusRule")).unwrap());
    assert!(used.len() >= 8, "{used:?}");
    let documented = documented_metrics();
    let unknown: Vec<&String> = used.difference(&documented).collect();
    assert!(unknown.is_empty(), "not in docs/METRICS.md: {unknown:?}");
}
