//! `helm lint`, `helm template` and strict Kubernetes schema validation for
//! each workload kind, with and without every optional feature; what each
//! kind renders.

use serde_yaml_ng::Value;

use super::render::{NAMESPACE, Rendered, Values, at, named, render, seq_at, str_at, try_render};
use super::tools::{chart_dir, helm, kubeconform, ok};

pub const KINDS: [&str; 3] = ["Deployment", "DaemonSet", "StatefulSet"];
const ALL_FEATURES: &str = "charts/perf-sentinel/ci/all-features-values.yaml";
const FULLNAME: &str = "perf-sentinel";

/// The chart's values variants: none, each kind's CI file, every feature.
fn variants() -> Vec<(String, Values)> {
    let mut v = Vec::new();
    for kind in KINDS {
        v.push((format!("{kind}, defaults"), Values::new().kind(kind)));
        v.push((
            format!("{kind}, every optional feature"),
            Values::new().file(ALL_FEATURES).kind(kind),
        ));
    }
    for ci in ["deployment", "daemonset", "statefulset"] {
        v.push((
            format!("ci/{ci}-values.yaml"),
            Values::new().file(format!("charts/perf-sentinel/ci/{ci}-values.yaml")),
        ));
    }
    v
}

#[test]
fn helm_lint_passes_for_every_kind_with_and_without_every_optional_feature() {
    let dir = super::common::TempDir::new("helm-lint");
    for (name, values) in variants() {
        let out = ok(helm()
            .args(["lint", "--strict", "--namespace", NAMESPACE])
            .arg(chart_dir())
            .args(values.to_args(&dir.0)));
        assert!(
            out.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{name}: {out}"
        );
        assert!(
            !out.contains("[WARNING]") && !out.contains("[ERROR]"),
            "{name}: {out}"
        );
    }
}

#[test]
fn every_rendering_is_valid_kubernetes_in_strict_mode() {
    let dir = super::common::TempDir::new("helm-kubeconform");
    for (name, values) in variants() {
        let r = render(&values);
        let file = r.write(&dir.0, "rendered.yaml");
        kubeconform(&file, r.docs.len()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn strict_validation_catches_an_unknown_field_in_a_free_form_value() {
    // podSecurityContext is passed through as written (the values schema
    // cannot know every Kubernetes field): the strict schema check must
    // still catch a field Kubernetes does not have.
    let dir = super::common::TempDir::new("helm-kubeconform-neg");
    let r = render(&Values::new().set("podSecurityContext.runAsUserr=65534"));
    let file = r.write(&dir.0, "rendered.yaml");
    let err = kubeconform(&file, r.docs.len()).expect_err("kubeconform accepted runAsUserr");
    assert!(err.contains("runAsUserr"), "{err}");
}

fn app_version() -> String {
    let chart: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap())
            .unwrap();
    let app = str_at(&chart, &["appVersion"]).to_owned();
    let version = str_at(&chart, &["version"]);
    assert!(!version.is_empty() && !app.is_empty());
    app
}

fn i64_at(v: &Value, path: &[&str]) -> i64 {
    at(v, path)
        .as_i64()
        .unwrap_or_else(|| panic!("{path:?} is not an integer in {v:?}"))
}

fn assert_secure_pod(r: &Rendered) {
    let pod = r.pod_spec();
    assert_eq!(
        at(pod, &["automountServiceAccountToken"]).as_bool(),
        Some(false)
    );
    assert_eq!(i64_at(pod, &["securityContext", "runAsUser"]), 65534);
    assert_eq!(
        at(pod, &["securityContext", "runAsNonRoot"]).as_bool(),
        Some(true)
    );
    assert_eq!(
        str_at(pod, &["securityContext", "seccompProfile", "type"]),
        "RuntimeDefault"
    );
    let c = r.container();
    let sc = at(c, &["securityContext"]);
    assert_eq!(at(sc, &["readOnlyRootFilesystem"]).as_bool(), Some(true));
    assert_eq!(at(sc, &["allowPrivilegeEscalation"]).as_bool(), Some(false));
    assert_eq!(seq_at(sc, &["capabilities", "drop"]), [Value::from("ALL")]);
    assert_eq!(str_at(sc, &["seccompProfile", "type"]), "RuntimeDefault");
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(str_at(c, &[probe, "httpGet", "path"]), "/health", "{probe}");
        assert_eq!(
            str_at(c, &[probe, "httpGet", "port"]),
            "otlp-http",
            "{probe}"
        );
    }
}

fn assert_service(r: &Rendered) {
    let services = r.all("Service");
    let main = services
        .iter()
        .find(|s| str_at(s, &["metadata", "name"]) == FULLNAME)
        .expect("the main Service");
    assert_eq!(str_at(main, &["spec", "type"]), "ClusterIP");
    let ports = seq_at(main, &["spec", "ports"]);
    let grpc = named(ports, "otlp-grpc");
    assert_eq!(i64_at(grpc, &["port"]), 4317);
    assert_eq!(str_at(grpc, &["appProtocol"]), "grpc");
    assert_eq!(i64_at(named(ports, "otlp-http"), &["port"]), 4318);
    // The Service's selector picks the workload's pods.
    let selector = at(main, &["spec", "selector"]).as_mapping().unwrap();
    let pod_labels = at(r.workload(), &["spec", "template", "metadata", "labels"]);
    for (k, v) in selector {
        assert_eq!(
            pod_labels.get(k.as_str().unwrap()),
            Some(v),
            "selector {k:?}"
        );
    }
    let cports = seq_at(r.container(), &["ports"]);
    assert_eq!(i64_at(named(cports, "otlp-grpc"), &["containerPort"]), 4317);
    assert_eq!(i64_at(named(cports, "otlp-http"), &["containerPort"]), 4318);
}

#[test]
fn the_default_install_is_one_deployment_replica_rolling_without_downtime() {
    let r = render(&Values::new());
    assert_eq!(
        r.kinds(),
        [
            "ConfigMap",
            "Deployment",
            "Pod",
            "Service",
            "ServiceAccount"
        ],
        "{}",
        r.text
    );
    let d = r.one("Deployment");
    assert_eq!(i64_at(d, &["spec", "replicas"]), 1);
    assert_eq!(str_at(d, &["spec", "strategy", "type"]), "RollingUpdate");
    assert_eq!(
        i64_at(d, &["spec", "strategy", "rollingUpdate", "maxSurge"]),
        1
    );
    assert_eq!(
        i64_at(d, &["spec", "strategy", "rollingUpdate", "maxUnavailable"]),
        0
    );
    assert_eq!(
        str_at(r.container(), &["image"]),
        format!("ghcr.io/perf-sentinel/perf-sentinel:{}", app_version())
    );
    assert_eq!(
        r.args(),
        [
            "watch",
            "--config",
            "/etc/perf-sentinel/.perf-sentinel.toml"
        ]
    );
    assert_eq!(str_at(r.container(), &["workingDir"]), "/etc/perf-sentinel");
    assert_secure_pod(&r);
    assert_service(&r);
    let sa = r.one("ServiceAccount");
    assert_eq!(
        at(sa, &["automountServiceAccountToken"]).as_bool(),
        Some(false)
    );
    assert_eq!(
        str_at(r.pod_spec(), &["serviceAccountName"]),
        str_at(sa, &["metadata", "name"])
    );
    // The ack store lives in an emptyDir without persistence.
    let data = named(seq_at(r.pod_spec(), &["volumes"]), "data");
    assert!(at(data, &["emptyDir"]).is_mapping(), "{data:?}");
    // Off by default.
    for kind in [
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PrometheusRule",
        "NetworkPolicy",
        "Ingress",
        "StatefulSet",
        "DaemonSet",
    ] {
        assert!(!r.has(kind), "{kind} rendered by default");
    }
}

#[test]
fn helm_test_pod_asks_the_service_for_health() {
    let r = render(&Values::new());
    let pod = r.one("Pod");
    assert_eq!(
        str_at(pod, &["metadata", "annotations", "helm.sh/hook"]),
        "test"
    );
    let c = &seq_at(pod, &["spec", "containers"])[0];
    let url = str_at(named(seq_at(c, &["env"]), "URL"), &["value"]);
    assert_eq!(
        url,
        format!("http://{FULLNAME}.{NAMESPACE}.svc:4318/health")
    );
    let script = seq_at(c, &["command"])
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        script.contains("wget") && script.contains("\"status\":\"ok\""),
        "{script}"
    );
    // The test pod is not one of the daemon's pods for the Service.
    let main = r.all("Service")[0];
    let selector = at(main, &["spec", "selector"]).as_mapping().unwrap();
    let labels = at(pod, &["metadata", "labels"]);
    assert!(
        selector
            .iter()
            .any(|(k, v)| labels.get(k.as_str().unwrap()) != Some(v)),
        "the Service selects the test pod"
    );
    assert!(
        !try_render(&Values::new().set("tests.enabled=false"))
            .unwrap()
            .has("Pod")
    );
}

#[test]
fn a_daemonset_runs_one_daemon_per_node_when_routing_is_confirmed() {
    let r = render(&Values::new().kind("DaemonSet"));
    let ds = r.one("DaemonSet");
    assert!(at(ds, &["spec", "replicas"]).is_null());
    assert_eq!(
        str_at(ds, &["spec", "updateStrategy", "type"]),
        "RollingUpdate"
    );
    assert!(!r.has("Deployment") && !r.has("StatefulSet"));
    assert_secure_pod(&r);
    assert_service(&r);
}

#[test]
fn a_statefulset_with_persistence_keeps_the_ack_store_on_its_volume() {
    let r = render(&Values::new().yaml(
        "workload:\n  kind: StatefulSet\n  replicas: 3\n  statefulset:\n    persistence:\n      enabled: true\n      size: 5Gi\n      storageClass: fast-ssd\n      accessModes: [ReadWriteOncePod]\n      mountPath: /data/perf-sentinel\n",
    ));
    let sts = r.one("StatefulSet");
    assert_eq!(i64_at(sts, &["spec", "replicas"]), 3);
    let headless = r
        .all("Service")
        .into_iter()
        .find(|s| at(s, &["spec", "clusterIP"]).as_str() == Some("None"))
        .expect("a headless Service");
    assert_eq!(
        str_at(sts, &["spec", "serviceName"]),
        str_at(headless, &["metadata", "name"])
    );
    let claim = &seq_at(sts, &["spec", "volumeClaimTemplates"])[0];
    assert_eq!(str_at(claim, &["metadata", "name"]), "data");
    assert_eq!(str_at(claim, &["spec", "storageClassName"]), "fast-ssd");
    assert_eq!(
        str_at(claim, &["spec", "resources", "requests", "storage"]),
        "5Gi"
    );
    assert_eq!(
        seq_at(claim, &["spec", "accessModes"]),
        [Value::from("ReadWriteOncePod")]
    );
    // The claim, not an emptyDir, is mounted, and the store path is in it.
    assert!(
        seq_at(r.pod_spec(), &["volumes"])
            .iter()
            .all(|v| str_at(v, &["name"]) != "data"),
        "an emptyDir shadows the claim"
    );
    let mount = named(seq_at(r.container(), &["volumeMounts"]), "data");
    assert_eq!(str_at(mount, &["mountPath"]), "/data/perf-sentinel");
    let fragment: toml::Table = r.config_files()[".perf-sentinel.d/00-helm-chart.toml"]
        .parse()
        .unwrap();
    assert_eq!(
        fragment["daemon"]["ack"]["storage_path"].as_str(),
        Some("/data/perf-sentinel/acks.jsonl")
    );
    // Without persistence: no claim, the emptyDir again.
    let r = render(&Values::new().kind("StatefulSet"));
    assert!(at(r.one("StatefulSet"), &["spec", "volumeClaimTemplates"]).is_null());
    assert!(
        at(
            named(seq_at(r.pod_spec(), &["volumes"]), "data"),
            &["emptyDir"]
        )
        .is_mapping()
    );
}

#[test]
fn optional_features_render_as_configured() {
    let r = render(&Values::new().file(ALL_FEATURES));
    let pdb = r.one("PodDisruptionBudget");
    assert_eq!(i64_at(pdb, &["spec", "minAvailable"]), 1);
    assert!(at(pdb, &["spec", "maxUnavailable"]).is_null());
    let pdb_default = render(&Values::new().set("podDisruptionBudget.enabled=true"));
    let pdb_default = pdb_default.one("PodDisruptionBudget");
    assert_eq!(i64_at(pdb_default, &["spec", "maxUnavailable"]), 1);

    let sm = r.one("ServiceMonitor");
    assert_eq!(
        str_at(sm, &["metadata", "labels", "release"]),
        "kube-prometheus-stack"
    );
    let endpoint = &seq_at(sm, &["spec", "endpoints"])[0];
    assert_eq!(str_at(endpoint, &["port"]), "otlp-http");
    assert_eq!(str_at(endpoint, &["path"]), "/metrics");
    assert_eq!(str_at(endpoint, &["interval"]), "15s");
    assert_eq!(str_at(endpoint, &["scrapeTimeout"]), "5s");
    assert_eq!(str_at(endpoint, &["scheme"]), "https");
    // The ServiceMonitor selects the main Service only, not the headless
    // one (each pod would be scraped twice).
    let selector = at(sm, &["spec", "selector", "matchLabels"]);
    let selected: Vec<&str> =
        r.all("Service")
            .into_iter()
            .filter(|s| {
                selector.as_mapping().unwrap().iter().all(|(k, v)| {
                    at(s, &["metadata", "labels"]).get(k.as_str().unwrap()) == Some(v)
                })
            })
            .map(|s| str_at(s, &["metadata", "name"]))
            .collect();
    assert_eq!(selected, [FULLNAME]);

    let np = r.one("NetworkPolicy");
    let rules = seq_at(np, &["spec", "ingress"]);
    let port = |rule: &Value| str_at(&seq_at(rule, &["ports"])[0], &["port"]).to_owned();
    let peers = |rule: &Value| seq_at(rule, &["from"]).len();
    // gRPC: the Collectors only; HTTP: the Collectors and the scrapers.
    assert_eq!(port(&rules[0]), "otlp-grpc");
    assert_eq!(peers(&rules[0]), 1);
    assert_eq!(port(&rules[1]), "otlp-http");
    assert_eq!(peers(&rules[1]), 2);
    assert!(seq_at(np, &["spec", "policyTypes"]).contains(&Value::from("Egress")));
    // Without peers, any peer may connect (no `from`).
    let open = render(&Values::new().set("networkPolicy.enabled=true"));
    let open = open.one("NetworkPolicy");
    assert!(
        seq_at(open, &["spec", "ingress"])
            .iter()
            .all(|r| at(r, &["from"]).is_null())
    );
    assert_eq!(
        seq_at(open, &["spec", "policyTypes"]),
        [Value::from("Ingress")]
    );

    let ing = r.one("Ingress");
    let path = &seq_at(&seq_at(ing, &["spec", "rules"])[0], &["http", "paths"])[0];
    assert_eq!(str_at(path, &["backend", "service", "name"]), FULLNAME);
    assert_eq!(
        str_at(path, &["backend", "service", "port", "name"]),
        "otlp-http"
    );

    let c = r.container();
    let env = seq_at(c, &["env"]);
    let key = named(env, "PERF_SENTINEL_ACK_API_KEY");
    assert_eq!(
        str_at(key, &["valueFrom", "secretKeyRef", "name"]),
        "perf-sentinel-ack"
    );
    named(env, "RUST_LOG");
    named(env, "ELECTRICITY_MAPS_TOKEN");
    assert_eq!(
        str_at(&seq_at(c, &["envFrom"])[0], &["configMapRef", "name"]),
        "perf-sentinel-extra-env"
    );
    assert_eq!(&r.args()[3..], ["--environment", "production"]);
    named(seq_at(c, &["volumeMounts"]), "scratch");
    named(seq_at(r.pod_spec(), &["volumes"]), "scratch");
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(str_at(c, &[probe, "httpGet", "scheme"]), "HTTPS", "{probe}");
    }
    assert!(str_at(c, &["image"]).ends_with(
        ":0.1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    ));
}
