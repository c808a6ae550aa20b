//! The Helm chart (charts/perf-sentinel), checked with the real tools:
//! `helm lint` and `helm template` (Helm built from its Go module),
//! kubeconform in strict mode against the Kubernetes and Prometheus
//! Operator schemas, check-jsonschema for values.schema.json, promtool for
//! the alerts, and the real daemon for the configuration the chart renders.
//!
//! The tools come from `scripts/install-test-tools.sh`, which
//! `./scripts/test.sh` runs first; a test started without them fails and
//! says so.

mod common;

#[path = "helm_chart/alerts.rs"]
mod alerts;
#[path = "helm_chart/config.rs"]
mod config;
#[path = "helm_chart/examples.rs"]
mod examples;
#[path = "helm_chart/plugins.rs"]
mod plugins;
#[path = "helm_chart/release.rs"]
mod release;
#[path = "helm_chart/render.rs"]
mod render;
#[path = "helm_chart/tools.rs"]
mod tools;
#[path = "helm_chart/values_schema.rs"]
mod values_schema;
#[path = "helm_chart/workloads.rs"]
mod workloads;
