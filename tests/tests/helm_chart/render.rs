//! `helm template` of the chart, parsed: find a resource by kind, read its
//! pod spec, and lay the ConfigMap out as the pod sees it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

use super::tools::{chart_dir, helm, output, text};

pub const RELEASE: &str = "perf-sentinel";
pub const NAMESPACE: &str = "observability";

/// Rendered manifests.
pub struct Rendered {
    pub text: String,
    pub docs: Vec<Value>,
}

/// Values for one rendering: values files and `--set` pairs.
#[derive(Default, Clone)]
pub struct Values {
    files: Vec<PathBuf>,
    yaml: Vec<String>,
    sets: Vec<String>,
}

impl Values {
    pub fn new() -> Self {
        Self::default()
    }

    /// A values file of the repository (relative to the repo root).
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        self.files.push(super::tools::repo().join(path));
        self
    }

    /// Inline YAML values, applied after the files.
    pub fn yaml(mut self, yaml: &str) -> Self {
        self.yaml.push(yaml.to_owned());
        self
    }

    /// One `--set key=value`, applied last.
    pub fn set(mut self, pair: &str) -> Self {
        self.sets.push(pair.to_owned());
        self
    }

    pub fn kind(self, kind: &str) -> Self {
        let s = self.set(&format!("workload.kind={kind}"));
        if kind == "DaemonSet" {
            s.set("workload.daemonset.spanRoutingByTraceId=true")
        } else {
            s
        }
    }

    /// The helm arguments (writes the inline YAML into `dir`).
    pub fn to_args(&self, dir: &Path) -> Vec<String> {
        let mut args = Vec::new();
        for f in &self.files {
            args.push("-f".to_owned());
            args.push(f.display().to_string());
        }
        for (i, y) in self.yaml.iter().enumerate() {
            let path = dir.join(format!("inline-{i}.yaml"));
            std::fs::write(&path, y).unwrap();
            args.push("-f".to_owned());
            args.push(path.display().to_string());
        }
        for s in &self.sets {
            args.push("--set".to_owned());
            args.push(s.clone());
        }
        args
    }
}

fn scratch(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "perf-sentinel-e2e-helm-{tag}-{}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `helm template`; `Err(stderr)` when helm refuses.
pub fn try_render(values: &Values) -> Result<Rendered, String> {
    let dir = scratch("values");
    let out = output(
        helm()
            .args(["template", RELEASE])
            .arg(chart_dir())
            .args(["--namespace", NAMESPACE])
            .args(values.to_args(&dir)),
    );
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    let text = text(&out.stdout);
    let docs = parse_docs(&text);
    Ok(Rendered { text, docs })
}

/// `helm template`, failing the test when helm refuses.
pub fn render(values: &Values) -> Rendered {
    try_render(values).unwrap_or_else(|e| panic!("helm template failed:\n{e}"))
}

/// `helm template` is expected to refuse; returns its error output.
pub fn refused(values: &Values) -> String {
    match try_render(values) {
        Ok(r) => panic!(
            "helm template rendered values it should refuse:\n{}",
            r.text
        ),
        Err(e) => e,
    }
}

pub fn parse_docs(text: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    for de in serde_yaml_ng::Deserializer::from_str(text) {
        let v = <Value as serde::Deserialize>::deserialize(de)
            .unwrap_or_else(|e| panic!("rendered YAML does not parse ({e}):\n{text}"));
        if !v.is_null() {
            docs.push(v);
        }
    }
    docs
}

/// `v[a][b]...` or `Null`.
pub fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    static NULL: Value = Value::Null;
    path.iter().try_fold(v, |v, k| v.get(*k)).unwrap_or(&NULL)
}

pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string in {v:?}"))
}

pub fn seq_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path).as_sequence().map_or(&[], |s| s.as_slice())
}

/// The element of `seq` whose `name` is `name`.
pub fn named<'a>(seq: &'a [Value], name: &str) -> &'a Value {
    seq.iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no element named {name} in {seq:?}"))
}

impl Rendered {
    /// Every resource of `kind`.
    pub fn all(&self, kind: &str) -> Vec<&Value> {
        self.docs
            .iter()
            .filter(|d| d.get("kind").and_then(Value::as_str) == Some(kind))
            .collect()
    }

    /// The one resource of `kind`.
    pub fn one(&self, kind: &str) -> &Value {
        let all = self.all(kind);
        assert_eq!(
            all.len(),
            1,
            "expected one {kind}, got {}:\n{}",
            all.len(),
            self.text
        );
        all[0]
    }

    pub fn has(&self, kind: &str) -> bool {
        !self.all(kind).is_empty()
    }

    /// Kinds rendered, sorted.
    pub fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .docs
            .iter()
            .map(|d| str_at(d, &["kind"]).to_owned())
            .collect();
        k.sort();
        k
    }

    /// The workload (Deployment, DaemonSet or StatefulSet).
    pub fn workload(&self) -> &Value {
        let w: Vec<&Value> = ["Deployment", "DaemonSet", "StatefulSet"]
            .iter()
            .flat_map(|k| self.all(k))
            .collect();
        assert_eq!(w.len(), 1, "expected one workload:\n{}", self.text);
        w[0]
    }

    pub fn pod_spec(&self) -> &Value {
        at(self.workload(), &["spec", "template", "spec"])
    }

    /// The daemon's container.
    pub fn container(&self) -> &Value {
        named(seq_at(self.pod_spec(), &["containers"]), "perf-sentinel")
    }

    pub fn checksum(&self) -> String {
        str_at(
            self.workload(),
            &[
                "spec",
                "template",
                "metadata",
                "annotations",
                "checksum/config",
            ],
        )
        .to_owned()
    }

    /// The ConfigMap's files as the pod sees them: path (from the config
    /// volume's items) -> content.
    pub fn config_files(&self) -> BTreeMap<String, String> {
        let cm = self.one("ConfigMap");
        let volume = named(seq_at(self.pod_spec(), &["volumes"]), "config");
        seq_at(volume, &["configMap", "items"])
            .iter()
            .map(|item| {
                let key = str_at(item, &["key"]);
                let content = str_at(cm, &["data", key]);
                (str_at(item, &["path"]).to_owned(), content.to_owned())
            })
            .collect()
    }

    /// Writes the ConfigMap's files under the config volume's mount path,
    /// as the kubelet would, and returns that directory.
    pub fn lay_out_config(&self) -> PathBuf {
        let mount = named(seq_at(self.container(), &["volumeMounts"]), "config");
        let dir = PathBuf::from(str_at(mount, &["mountPath"]));
        for (path, content) in self.config_files() {
            let file = dir.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, content).unwrap();
        }
        dir
    }

    /// The daemon's arguments.
    pub fn args(&self) -> Vec<String> {
        seq_at(self.container(), &["args"])
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }

    /// Writes the manifests to a file for a tool.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.text).unwrap();
        path
    }
}
