//! The configuration the chart renders, checked by the real daemon: the
//! ConfigMap laid out as the kubelet mounts it passes `perf-sentinel config
//! check`, the container's own command starts a daemon that answers its
//! probes with the chart's ack store and baseline; a config edit changes
//! the checksum that rolls the pods; unworkable values are refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{TempDir, binary, free_port, plugin_library};
use super::render::{Rendered, Values, at, named, refused, render, seq_at, str_at};
use super::tools::text;

const ALL_FEATURES: &str = "charts/perf-sentinel/ci/all-features-values.yaml";
const API_KEY: &str = "helm-chart-test-key-0123456789";
const BASELINE_SIG: &str =
    "n_plus_one_sql:order-svc:GET__orders_{id}:47d20447a0856dad12d82980aec7ff16";

/// Values that move every path the pod uses under `dir`, so the rendered
/// pod can be reproduced on this machine.
fn local_paths(dir: &Path) -> Values {
    Values::new().yaml(&local_yaml(dir))
}

fn local_yaml(dir: &Path) -> String {
    format!(
        "config:\n  mountPath: {0}/etc\nacks:\n  dataDir: {0}/data\ntls:\n  mountPath: {0}/tls\nplugins:\n  mountPath: {0}/plugins\nworkload:\n  statefulset:\n    persistence:\n      mountPath: {0}/volume\n",
        dir.display()
    )
}

/// The container's environment as the kubelet would give it: literal
/// values, and every Secret reference filled with [`API_KEY`].
fn container_env(r: &Rendered) -> Vec<(String, String)> {
    seq_at(r.container(), &["env"])
        .iter()
        .map(|e| {
            let name = str_at(e, &["name"]).to_owned();
            let value = at(e, &["value"])
                .as_str()
                .map_or_else(|| API_KEY.to_owned(), str::to_owned);
            (name, value)
        })
        .collect()
}

/// Does what the kubelet does before the daemon starts: the ConfigMap files
/// under the config mount, the data directory, and whatever the init
/// containers would copy (the workspace's plugin libraries) and the TLS
/// Secret would hold (a fresh self-signed certificate).
fn prepare_pod(r: &Rendered, dir: &Path) {
    r.lay_out_config();
    let data = named(seq_at(r.container(), &["volumeMounts"]), "data");
    std::fs::create_dir_all(str_at(data, &["mountPath"])).unwrap();
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    std::fs::create_dir_all(dir.join("tls")).unwrap();
}

fn copy_plugins(dir: &Path) {
    for package in [
        "perf-sentinel-plugin-select-star",
        "perf-sentinel-plugin-error-spike",
    ] {
        let lib = plugin_library(package);
        std::fs::copy(&lib, dir.join("plugins").join(lib.file_name().unwrap())).unwrap();
    }
}

fn write_certificate(dir: &Path) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("tls/tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("tls/tls.key"), cert.signing_key.serialize_pem()).unwrap();
}

/// `perf-sentinel config check` with the container's `--config` and extra
/// global flags, from its working directory, with its environment.
fn config_check(r: &Rendered) -> std::process::Output {
    let args = r.args();
    assert_eq!(args[..2], ["watch".to_owned(), "--config".to_owned()]);
    Command::new(binary())
        .args(["config", "check", "--config", &args[2]])
        .args(&args[3..])
        .current_dir(str_at(r.container(), &["workingDir"]))
        .envs(container_env(r))
        .output()
        .unwrap()
}

#[test]
fn the_rendered_configuration_passes_config_check_for_every_kind() {
    for kind in super::workloads::KINDS {
        let dir = TempDir::new("helm-config-check");
        let r = render(&local_paths(&dir.0).kind(kind));
        prepare_pod(&r, &dir.0);
        let out = config_check(&r);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{kind}: {}{}",
            stdout,
            text(&out.stderr)
        );
        assert!(stdout.starts_with("configuration OK"), "{stdout}");
        // The chart's default config.toml says production.
        assert!(stdout.contains("environment `production`"), "{stdout}");
    }
}

#[test]
fn every_optional_feature_gives_a_configuration_the_daemon_accepts() {
    let dir = TempDir::new("helm-config-all");
    // The feature file first, then the local paths, so these win.
    let mut values = Values::new().file(ALL_FEATURES);
    values = values.yaml(&local_yaml(&dir.0));
    let r = render(&values);
    prepare_pod(&r, &dir.0);
    copy_plugins(&dir.0);
    write_certificate(&dir.0);
    let files = r.config_files();
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            ".perf-sentinel-acknowledgments.toml",
            ".perf-sentinel.d/00-helm-chart.toml",
            ".perf-sentinel.d/10-detectors.toml",
            ".perf-sentinel.d/20-production.toml",
            ".perf-sentinel.toml",
        ]
    );
    let out = config_check(&r);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    // The plugins the chart delivered to its plugin directory are loaded
    // through the `[plugins] paths` it wrote.
    assert!(stdout.contains("select_star_without_limit"), "{stdout}");
    assert!(stdout.contains("downstream_error_spike"), "{stdout}");

    // The same configuration without the Secret's key is refused: the
    // chart wired `api_key = "env:PERF_SENTINEL_ACK_API_KEY"`.
    let args = r.args();
    let out = Command::new(binary())
        .args(["config", "check", "--config", &args[2]])
        .current_dir(str_at(r.container(), &["workingDir"]))
        .env_remove("PERF_SENTINEL_ACK_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("PERF_SENTINEL_ACK_API_KEY"),
        "{}",
        text(&out.stderr)
    );
}

/// The daemon started with the rendered container's command.
struct Pod {
    child: Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Pod {
    fn start(r: &Rendered) -> Pod {
        let mut child = Command::new(binary())
            .args(r.args())
            .current_dir(str_at(r.container(), &["workingDir"]))
            .envs(container_env(r))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut pipe, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Pod { child, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The URL of a probe of the rendered container: its path on the port its
/// named port resolves to.
fn probe_url(r: &Rendered, probe: &str) -> String {
    let c = r.container();
    let port_name = str_at(c, &[probe, "httpGet", "port"]);
    let port = at(named(seq_at(c, &["ports"]), port_name), &["containerPort"])
        .as_i64()
        .unwrap();
    assert_eq!(str_at(c, &[probe, "httpGet", "scheme"]), "HTTP");
    format!(
        "http://127.0.0.1:{port}{}",
        str_at(c, &[probe, "httpGet", "path"])
    )
}

async fn pod_answers_as_rendered(kind_values: &str, store_dir: &str) {
    let dir = TempDir::new("helm-pod");
    let (grpc, http) = (free_port(), free_port());
    let values = local_paths(&dir.0)
        .yaml(kind_values)
        .yaml(&format!(
            "service:\n  ports:\n    grpc: {grpc}\n    http: {http}\nacks:\n  apiKey:\n    existingSecret: perf-sentinel-ack\n  baseline: |\n    [[acknowledged]]\n    signature = \"{BASELINE_SIG}\"\n    acknowledged_by = \"team-orders\"\n    acknowledged_at = 2026-01-10\n    reason = \"legacy endpoint\"\n"
        ));
    let r = render(&values);
    prepare_pod(&r, &dir.0);
    let mut pod = Pod::start(&r);
    // reqwest is built without a bundled TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();

    // The readiness probe, as the kubelet would send it.
    let ready = probe_url(&r, "readinessProbe");
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        if let Ok(Some(status)) = pod.child.try_wait() {
            panic!("the daemon exited ({status}):\n{}", pod.stderr());
        }
        if let Ok(resp) = client.get(&ready).send().await {
            break resp.text().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no answer on {ready}:\n{}",
            pod.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(health, r#"{"status":"ok"}"#);
    // The gRPC port of the Service is open too.
    std::net::TcpStream::connect(("127.0.0.1", grpc)).expect("OTLP gRPC port");

    let base = format!("http://127.0.0.1:{http}");
    let config: serde_json::Value = client
        .get(format!("{base}/api/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["daemon"]["listen_address"], "0.0.0.0", "{config}");
    let store = format!("{}/{store_dir}/acks.jsonl", dir.0.display());
    assert_eq!(
        config["daemon"]["ack"]["storage_path"],
        store.as_str(),
        "{config}"
    );

    // The baseline from the ConfigMap is read from the working directory:
    // its signature is already acknowledged.
    let ack = |sig: &str| {
        client
            .post(format!("{base}/api/findings/{sig}/ack"))
            .header("x-api-key", API_KEY)
            .json(&serde_json::json!({"by": "helm-test", "reason": "chart test"}))
            .send()
    };
    let resp = ack(BASELINE_SIG).await.unwrap();
    assert_eq!(
        resp.status().as_u16(),
        409,
        "{}",
        resp.text().await.unwrap()
    );
    // A new acknowledgment lands in the store on the data volume, private.
    let sig = "redundant_sql:cart:GET__cart:6f540be5517aaffe1774bebe9a2c0eba";
    let resp = ack(sig).await.unwrap();
    assert_eq!(
        resp.status().as_u16(),
        201,
        "{}",
        resp.text().await.unwrap()
    );
    let meta = std::fs::metadata(&store).expect("the ack store file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&store).unwrap().contains(sig));
    // Without the key from the Secret, acknowledging is refused.
    let resp = client
        .post(format!("{base}/api/findings/{sig}x/ack"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // SIGTERM: the daemon drains and exits 0 within the grace period the
    // pod gives it.
    let grace = at(r.pod_spec(), &["terminationGracePeriodSeconds"])
        .as_u64()
        .unwrap();
    let started = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pod.child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(s) = pod.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(grace),
            "still running {grace} s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}:\n{}", pod.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deployment_pod_command_serves_probes_acks_and_the_baseline() {
    pod_answers_as_rendered("workload:\n  kind: Deployment\n", "data").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_statefulset_pod_keeps_its_ack_store_on_the_persistent_volume() {
    pod_answers_as_rendered(
        "workload:\n  kind: StatefulSet\n  statefulset:\n    persistence:\n      enabled: true\n",
        "volume",
    )
    .await;
}

#[test]
fn any_configuration_edit_changes_the_checksum_that_rolls_the_pods() {
    let base = Values::new()
        .yaml("config:\n  fragments:\n    10-a.toml: \"[detection]\\nmax_fanout = 20\\n\"\n");
    let sum = |v: &Values| render(v).checksum();
    let original = sum(&base);
    assert_eq!(original.len(), 64, "{original}");
    // Deterministic.
    assert_eq!(sum(&base), original);
    let edits: BTreeMap<&str, Values> = BTreeMap::from([
        (
            "config.toml",
            base.clone()
                .yaml("config:\n  toml: \"[daemon]\\nenvironment = \\\"staging\\\"\\n\"\n"),
        ),
        (
            "a fragment",
            base.clone().yaml(
                "config:\n  fragments:\n    10-a.toml: \"[detection]\\nmax_fanout = 30\\n\"\n",
            ),
        ),
        ("the baseline", base.clone().set("acks.baseline=# none")),
        (
            "a port (the chart's fragment)",
            base.clone().set("service.ports.http=9318"),
        ),
    ]);
    for (what, values) in edits {
        assert_ne!(
            sum(&values),
            original,
            "editing {what} left the checksum unchanged"
        );
    }
    // A value outside the configuration does not roll the pods.
    assert_eq!(
        sum(&base.clone().set("resources.limits.memory=2Gi")),
        original
    );
}

#[test]
fn unworkable_values_are_refused_with_a_clear_message() {
    let toml_values = |toml: &str| {
        Values::new().yaml(&format!(
            "config:\n  toml: |\n{}",
            toml.lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        ))
    };
    let cases: Vec<(&str, Values, &[&str])> = vec![
        (
            "DaemonSet without trace-ID routing",
            Values::new().set("workload.kind=DaemonSet"),
            &["workload.daemonset.spanRoutingByTraceId=true", "routing_key: traceID"],
        ),
        (
            "persistence without StatefulSet",
            Values::new().set("workload.statefulset.persistence.enabled=true"),
            &["persistence.enabled=true needs workload.kind=StatefulSet (got Deployment)"],
        ),
        (
            "a gRPC port in the TOML that is not the Service's",
            toml_values("[daemon]\nlisten_port_grpc = 9999\n"),
            &["config.toml sets daemon.listen_port_grpc = 9999 but the Service sends to 4317", "service.ports.grpc"],
        ),
        (
            "an HTTP port in a fragment that is not the Service's",
            Values::new().yaml("config:\n  fragments:\n    30-ports.toml: \"[daemon]\\nlisten_port_http = 8080\\n\"\n"),
            &["config.fragments.30-ports.toml sets daemon.listen_port_http = 8080"],
        ),
        (
            "a loopback listen address",
            toml_values("[daemon]\nlisten_address = \"127.0.0.1\"\n"),
            &["loopback"],
        ),
        (
            "TLS files in the TOML instead of tls.existingSecret",
            toml_values("[daemon]\ntls_cert_path = \"/x.pem\"\ntls_key_path = \"/y.pem\"\n"),
            &["tls.enabled and tls.existingSecret"],
        ),
        (
            "an ack store outside the persistent volume",
            toml_values("[daemon.ack]\nstorage_path = \"/tmp/acks.jsonl\"\n")
                .set("workload.kind=StatefulSet")
                .set("workload.statefulset.persistence.enabled=true"),
            &["outside the persistent volume mounted at /var/lib/perf-sentinel"],
        ),
        (
            "plugin paths that drop the delivered plugins",
            toml_values("[plugins]\npaths = [\"/elsewhere\"]\n").yaml(
                "plugins:\n  images:\n    - name: acme\n      image: acme/rules:1\n      files: [/plugins/libacme.so]\n",
            ),
            &["plugins.paths", "/opt/perf-sentinel/plugins"],
        ),
        (
            "a grace period shorter than the daemon's drain",
            Values::new().set("workload.terminationGracePeriodSeconds=20"),
            &["terminationGracePeriodSeconds=20", "25000 ms"],
        ),
        (
            "TOML that does not parse",
            toml_values("[daemon\n"),
            &["config.toml is not valid TOML"],
        ),
        (
            "the chart's own fragment name",
            Values::new().yaml("config:\n  fragments:\n    00-helm-chart.toml: \"\"\n"),
            &["00-helm-chart.toml is the chart's own fragment"],
        ),
        (
            "TLS without a Secret",
            Values::new().set("tls.enabled=true"),
            &["tls.enabled=true needs tls.existingSecret"],
        ),
    ];
    for (what, values, expected) in cases {
        let err = refused(&values);
        for e in expected {
            assert!(err.contains(e), "{what}: expected `{e}` in:\n{err}");
        }
    }
}

#[test]
fn the_pod_mounts_the_main_file_and_fragments_where_the_daemon_looks() {
    let r =
        render(&Values::new().yaml(
            "config:\n  fragments:\n    10-team.toml: \"[detection]\\nmax_fanout = 30\\n\"\n",
        ));
    let mount = named(seq_at(r.container(), &["volumeMounts"]), "config");
    assert_eq!(str_at(mount, &["mountPath"]), "/etc/perf-sentinel");
    assert_eq!(at(mount, &["readOnly"]).as_bool(), Some(true));
    let files = r.config_files();
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            ".perf-sentinel.d/00-helm-chart.toml",
            ".perf-sentinel.d/10-team.toml",
            ".perf-sentinel.toml",
        ]
    );
    assert_eq!(
        files[".perf-sentinel.d/10-team.toml"],
        "[detection]\nmax_fanout = 30\n"
    );
    let fragment: toml::Table = files[".perf-sentinel.d/00-helm-chart.toml"]
        .parse()
        .unwrap();
    assert_eq!(
        fragment["daemon"]["listen_address"].as_str(),
        Some("0.0.0.0")
    );
    assert_eq!(
        fragment["daemon"]["listen_port_grpc"].as_integer(),
        Some(4317)
    );
    assert_eq!(
        fragment["daemon"]["listen_port_http"].as_integer(),
        Some(4318)
    );
}
