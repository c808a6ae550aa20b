//! Test harness: starts the real `perf-sentinel` binary on free loopback
//! ports with a given config, collects its stdout, and offers small clients.
#![allow(dead_code)]

pub mod formats;
pub mod golden;
pub mod otlp;
pub mod raw_grpc;

// Each test binary uses some of them.
#[allow(unused_imports)]
pub use otlp::{T0, hex, kv, n1_request, request};

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// The daemon binary. Built here once per test binary (a no-op when it is
/// up to date) because Cargo hands no other package's binary to a test.
pub fn binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Ok(p) = std::env::var("PERF_SENTINEL_BIN") {
                return PathBuf::from(p);
            }
            workspace_binary("perf-sentinel", "perf-sentinel")
        })
        .clone()
}

/// The load generator (`tools/otlp-load`), built like [`binary`].
pub fn loadgen_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| workspace_binary("otlp-load", "otlp-load"))
        .clone()
}

fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    let release = !cfg!(debug_assertions);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", package, "--bin", bin])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if release {
        cmd.arg("--release");
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {package}: {e}"));
    assert!(status.success(), "building {package} failed");
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let path = target
        .join(if release { "release" } else { "debug" })
        .join(bin);
    assert!(path.exists(), "{} missing after the build", path.display());
    path
}

/// The shared library of workspace package `package` (a plugin), built
/// here once per package and test binary.
pub fn plugin_library(package: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let release = !cfg!(debug_assertions);
    let mut built = BUILT.lock().unwrap();
    if !built.iter().any(|p| p == package) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", package])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cannot run cargo to build a plugin");
        assert!(status.success(), "building {package} failed");
        built.push(package.to_owned());
    }
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let file = format!("lib{}.so", package.replace('-', "_"));
    let lib = target
        .join(if release { "release" } else { "debug" })
        .join(file);
    assert!(lib.exists(), "{} missing after the build", lib.display());
    lib
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "perf-sentinel-e2e-{tag}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ (free_port() as u128)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How [`Daemon::launch`] starts the daemon; the default is what
/// [`Daemon::start`] does.
#[derive(Default)]
pub struct Launch<'a> {
    /// Extra command-line arguments after `watch --config FILE`.
    pub args: &'a [&'a str],
    /// Extra environment variables.
    pub env: &'a [(&'a str, &'a str)],
    /// `(grpc, http)` ports; fresh free ones when `None`.
    pub ports: Option<(u16, u16)>,
    /// A program (and its arguments) that runs the daemon's command line,
    /// e.g. `unshare -m sh -c '...; exec "$0" "$@"'`; it must `exec` the
    /// daemon so that the child's pid is the daemon's.
    pub wrapper: Vec<String>,
}

/// A running daemon.
pub struct Daemon {
    child: Child,
    pub grpc_port: u16,
    pub http_port: u16,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    _dir: TempDir,
}

/// Settings the tests usually want: fast completion, one shard so that
/// counters are easy to reason about unless a test says otherwise.
pub const FAST: &str = "trace_settle_ms = 200\ntrace_ttl_ms = 60000\n";

fn collect(reader: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            match line {
                Ok(l) => into.lock().unwrap().push(l),
                Err(_) => break,
            }
        }
    });
}

impl Daemon {
    /// Starts the daemon with `[daemon]` keys `daemon_keys` plus `extra`
    /// TOML, on fresh ports, and waits until `/health` answers.
    pub fn start(daemon_keys: &str, extra: &str) -> Daemon {
        Self::start_with_args(daemon_keys, extra, &[])
    }

    /// Like [`Daemon::start`], with extra command-line arguments.
    pub fn start_with_args(daemon_keys: &str, extra: &str, args: &[&str]) -> Daemon {
        Self::launch(
            daemon_keys,
            extra,
            &Launch {
                args,
                ..Launch::default()
            },
        )
    }

    /// Like [`Daemon::start`], with extra environment variables.
    pub fn start_with_env(daemon_keys: &str, extra: &str, env: &[(&str, &str)]) -> Daemon {
        Self::launch(
            daemon_keys,
            extra,
            &Launch {
                env,
                ..Launch::default()
            },
        )
    }

    /// Like [`Daemon::start`], on the given `(grpc, http)` ports: a restart
    /// where clients (and their retries) already point.
    pub fn start_on(ports: (u16, u16), daemon_keys: &str, extra: &str) -> Daemon {
        Self::launch(
            daemon_keys,
            extra,
            &Launch {
                ports: Some(ports),
                ..Launch::default()
            },
        )
    }

    /// Starts the daemon as described by `launch`.
    pub fn launch(daemon_keys: &str, extra: &str, launch: &Launch<'_>) -> Daemon {
        // reqwest is built without a bundled TLS provider (the host's CLI
        // client installs ring); the tests' clients need one too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = TempDir::new("daemon");
        let (grpc_port, http_port) = launch.ports.unwrap_or_else(|| (free_port(), free_port()));
        let config = format!(
            "[daemon]\nlisten_port_grpc = {grpc_port}\nlisten_port_http = {http_port}\n{daemon_keys}\n{extra}\n"
        );
        let path = dir.0.join("perf-sentinel.toml");
        std::fs::write(&path, config).unwrap();
        let mut command = match launch.wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut c = Command::new(program);
                c.args(wrapper_args).arg(binary());
                c
            }
            None => Command::new(binary()),
        };
        let mut child = command
            .arg("watch")
            .arg("--config")
            .arg(&path)
            .args(launch.args)
            .current_dir(&dir.0)
            .env("RUST_LOG", "info")
            // The default ack store lives under the data dir: one per daemon.
            .env("XDG_DATA_HOME", &dir.0)
            .envs(launch.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start perf-sentinel");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().unwrap(), stdout.clone());
        collect(child.stderr.take().unwrap(), stderr.clone());
        let mut daemon = Daemon {
            child,
            grpc_port,
            http_port,
            stdout,
            stderr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "perf-sentinel exited at startup ({status}):\n{}",
                    daemon.stderr_text()
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", http_port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", grpc_port)).is_ok()
            {
                return daemon;
            }
            assert!(
                Instant::now() < deadline,
                "perf-sentinel did not listen within 20 s:\n{}",
                daemon.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lines printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Starts the daemon expecting it to refuse to start; returns its exit
    /// code and stderr.
    pub fn refused(daemon_keys: &str, extra: &str) -> (Option<i32>, String) {
        Self::refused_with_env(daemon_keys, extra, &[])
    }

    /// [`Daemon::refused`] with extra environment variables.
    pub fn refused_with_env(
        daemon_keys: &str,
        extra: &str,
        env: &[(&str, &str)],
    ) -> (Option<i32>, String) {
        let dir = TempDir::new("refused");
        let (grpc_port, http_port) = (free_port(), free_port());
        let path = dir.0.join("perf-sentinel.toml");
        std::fs::write(
            &path,
            format!(
                "[daemon]\nlisten_port_grpc = {grpc_port}\nlisten_port_http = {http_port}\n{daemon_keys}\n{extra}\n"
            ),
        )
        .unwrap();
        let mut child = Command::new(binary())
            .arg("watch")
            .arg("--config")
            .arg(&path)
            .current_dir(&dir.0)
            .env("XDG_DATA_HOME", &dir.0)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run perf-sentinel");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect(child.stderr.take().unwrap(), stderr.clone());
        // Bounded: a daemon that starts after all must fail the test, not
        // hang it.
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "perf-sentinel started instead of refusing:\n{}",
                    stderr.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Let the reader thread take the last lines.
        std::thread::sleep(Duration::from_millis(100));
        let text = stderr.lock().unwrap().join("\n");
        (status.code(), text)
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Findings printed on stdout so far, parsed.
    pub fn stdout_findings(&self) -> Vec<serde_json::Value> {
        self.stdout_lines()
            .iter()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// SIGKILL, then waits for the exit (no chance to flush or clean up).
    pub fn kill(&mut self) -> ExitStatus {
        self.child.kill().expect("SIGKILL the daemon");
        let status = self.child.wait().unwrap();
        // Let the reader threads take the last lines.
        std::thread::sleep(Duration::from_millis(200));
        status
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends SIGTERM without waiting for the exit; see [`Daemon::wait_exit`].
    pub fn signal_term(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (at most 30 s) for the exit status after a signal.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                return s;
            }
            assert!(Instant::now() < deadline, "no exit 30 s after the signal");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits (at most 30 s) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                return s;
            }
            assert!(Instant::now() < deadline, "no exit 30 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET path` as text.
    pub async fn get(&self, path: &str) -> String {
        reqwest::get(self.http(path))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `POST /v1/traces` with `req` as protobuf.
    pub async fn post_otlp(&self, req: &ExportTraceServiceRequest) -> reqwest::Response {
        use prost::Message as _;
        reqwest::Client::new()
            .post(self.http("/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(req.encode_to_vec())
            .send()
            .await
            .expect("the daemon answers")
    }

    /// `GET /api/findings/{trace_id}`: every finding of one trace, unfolded.
    pub async fn trace_findings(&self, trace_id: &str) -> Vec<serde_json::Value> {
        let text = self.get(&format!("/api/findings/{trace_id}")).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad findings JSON ({e}): {text}"))
    }

    /// Waits (up to 10 s) for trace `trace_id`'s first finding of `kind`.
    pub async fn wait_trace_finding(&self, trace_id: &[u8; 16], kind: &str) -> serde_json::Value {
        let id = hex(trace_id);
        self.wait_for(
            Duration::from_secs(10),
            &format!("a {kind} finding of trace {id}"),
            || async {
                self.trace_findings(&id)
                    .await
                    .into_iter()
                    .find(|f| f["type"] == kind)
            },
        )
        .await
    }

    /// `GET /api/findings?query` parsed (folded by signature).
    pub async fn findings(&self, query: &str) -> Vec<serde_json::Value> {
        let text = self.get(&format!("/api/findings?{query}")).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad findings JSON ({e}): {text}"))
    }

    /// The value of one sample on `/metrics` (`name{labels}` exactly as
    /// printed), 0 when absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        metric_value(&self.get("/metrics").await, sample)
    }

    /// Polls `f` until it returns `Some` or `timeout` passes.
    pub async fn wait_for<T, F, Fut>(&self, timeout: Duration, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f().await {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\nstderr:\n{}",
                self.stderr_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one sample from Prometheus/OpenMetrics text.
pub fn metric_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

/// `/metrics` text read by the official Python parser (prometheus_client,
/// installed by scripts/test.sh): `format` is `prometheus` or `openmetrics`
/// (strict). Panics with the parser's message when it refuses the text.
pub fn parse_metrics_with_python(format: &str, body: &str) -> serde_json::Value {
    use std::io::Write;
    let python = std::env::var("PERF_SENTINEL_PYTHON").expect(
        "PERF_SENTINEL_PYTHON is not set: run the suite with ./scripts/test.sh, which prepares the Python tools",
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/parse_metrics.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(format)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run the Python parser");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the {format} parser refused /metrics: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
