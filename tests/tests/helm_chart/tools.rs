//! The third-party tools the chart tests run, found through the variables
//! `scripts/install-test-tools.sh` exports (via `./scripts/test.sh`), and
//! small helpers to run them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The chart directory.
pub fn chart_dir() -> PathBuf {
    repo().join("charts/perf-sentinel")
}

/// The path in `var`. A missing variable fails the test: these tests are
/// run through `./scripts/test.sh`, which installs the tools.
pub fn tool(var: &str) -> PathBuf {
    let path = std::env::var_os(var).unwrap_or_else(|| {
        panic!(
            "{var} is not set: run the suite with ./scripts/test.sh, which installs the chart \
             test tools (scripts/install-test-tools.sh) and exports their paths"
        )
    });
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "{var} names {}, which does not exist: run ./scripts/test.sh again",
        path.display()
    );
    path
}

pub fn helm() -> Command {
    let mut cmd = Command::new(tool("PERF_SENTINEL_HELM"));
    // Helm's own state (repositories, cache, plugins) stays out of the
    // user's home: the tests only use the local chart.
    let home = std::env::temp_dir().join(format!("perf-sentinel-e2e-helm-{}", std::process::id()));
    cmd.env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    cmd
}

/// Runs `cmd`, returning its output (never panics on a non-zero exit).
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd` and fails the test unless it exits 0; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{:?} failed ({}):\n{}\n{}",
        cmd,
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The Kubernetes versions the manifests are validated against.
pub fn kube_versions() -> Vec<String> {
    let list = std::env::var("PERF_SENTINEL_KUBE_VERSIONS").unwrap_or_else(|_| {
        panic!("PERF_SENTINEL_KUBE_VERSIONS is not set: run the suite with ./scripts/test.sh")
    });
    list.split_whitespace().map(str::to_owned).collect()
}

/// Validates the manifests in `file` with kubeconform in strict mode
/// (unknown fields and duplicate keys refused, every kind must have a
/// schema) against each Kubernetes version. Returns kubeconform's report
/// on failure.
pub fn kubeconform(file: &Path, expected_resources: usize) -> Result<(), String> {
    let schemas = tool("PERF_SENTINEL_KUBE_SCHEMAS");
    let crds = repo().join("tests/fixtures/kube-schemas");
    for version in kube_versions() {
        let out = output(
            Command::new(tool("PERF_SENTINEL_KUBECONFORM"))
                .args(["-strict", "-summary", "-kubernetes-version", &version])
                .arg("-schema-location")
                .arg(format!(
                    "{}/{{{{ .NormalizedKubernetesVersion }}}}-standalone{{{{ .StrictSuffix }}}}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
                    schemas.display()
                ))
                .arg("-schema-location")
                .arg(format!(
                    "{}/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
                    crds.display()
                ))
                .arg(file),
        );
        let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
        if !out.status.success() {
            return Err(format!("Kubernetes {version}:\n{report}"));
        }
        let want = format!(
            "{expected_resources} resources found in 1 file - Valid: {expected_resources}, Invalid: 0, Errors: 0, Skipped: 0"
        );
        if !report.contains(&want) {
            return Err(format!(
                "Kubernetes {version}: expected `{want}`, got:\n{report}"
            ));
        }
    }
    Ok(())
}
