#!/usr/bin/env bash
# Installs the third-party tools the Helm chart tests run, once, and prints
# `export NAME=path` lines for them on stdout (progress goes to stderr):
#
#   tool_env=$(./scripts/install-test-tools.sh) && eval "$tool_env"
#
# `./scripts/install-test-tools.sh cargo-fuzz` installs and exports only
# cargo-fuzz (for scripts/fuzz.sh), into .tools/cargo-fuzz-<version>/.
#
# - helm, kubeconform and actionlint are built from their Go modules into
#   .tools/bin/<tool>-<version>/ (ignored by git). A folder that already
#   holds the binary is reused, so only the first run pays for the build.
# - A minimal OpenTelemetry Collector (for the sharding test) is built the
#   same way, by the Collector's builder (ocb), into
#   .tools/bin/otelcol-<version>-<manifest hash>/.
# - promtool (Debian's `prometheus` package), shellcheck and Chromium (the
#   dashboard's browser test) come from apt-get (as root; elsewhere install
#   them first); Node.js (>= 20) too when it is missing.
# - playwright-core, which drives Chromium, is installed with `npm ci` from
#   tests/browser/package-lock.json into tests/browser/node_modules (ignored).
# - The JSON Schema checker and the bundled Kubernetes schemas come from the
#   Python venv that scripts/test.sh prepares ($PERF_SENTINEL_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
ACTIONLINT_VERSION=v1.7.12
# The OpenTelemetry Collector of the sharding test, built by the Collector's
# own builder (ocb) of the same release as the components it lists (core and
# contrib release together; the stable core modules follow from it).
OTELCOL_VERSION=v0.161.0
# Kubernetes versions the rendered manifests are validated against: the
# chart's kubeVersion floor and the newest kubernetes-validate knows.
KUBE_VERSIONS=(1.25.0 1.37.0)

say() { echo "install-test-tools: $*" >&2; }

CARGO_FUZZ_VERSION=0.13.2
if [ "${1:-}" = cargo-fuzz ]; then
  root="$PWD/.tools/cargo-fuzz-$CARGO_FUZZ_VERSION"
  if [ ! -x "$root/bin/cargo-fuzz" ]; then
    say "building cargo-fuzz $CARGO_FUZZ_VERSION (first run only)"
    # Into a scratch root then moved, like the Go tools below.
    mkdir -p .tools
    tmp=$(mktemp -d "$PWD/.tools/build.XXXXXX")
    CARGO_TARGET_DIR="$tmp/target" nice -n 10 cargo install --quiet --locked \
      cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$tmp/root" >&2
    rm -rf "$root"
    mv "$tmp/root" "$root"
    rm -rf "$tmp"
  fi
  echo "export PERF_SENTINEL_CARGO_FUZZ='$root/bin/cargo-fuzz'"
  exit 0
fi

# go_tool NAME MODULE/PATH VERSION [KEY [GO INSTALL FLAGS...]] -> path of the
# binary, built if missing. KEY names the build recipe in the folder name, so
# a change of flags builds again.
go_tool() {
  local name=$1 pkg=$2 version=$3 key=${4:-}
  shift $(($# < 4 ? $# : 4))
  local dir="$PWD/.tools/bin/$name-$version${key:+-$key}"
  if [ ! -x "$dir/$name" ]; then
    command -v go >/dev/null || { say "go is required to build $name"; exit 1; }
    say "building $name $version from its Go module (first run only)"
    mkdir -p "$dir"
    # Built into a scratch folder then moved, so an interrupted build never
    # leaves a half-written binary that a later run would take as done.
    local tmp
    tmp=$(mktemp -d "$PWD/.tools/build.XXXXXX")
    GOBIN="$tmp" GOFLAGS=-buildvcs=false nice -n 10 go install "$@" "$pkg@$version" >&2
    mv "$tmp/$name" "$dir/$name"
    rmdir "$tmp"
  fi
  echo "$dir/$name"
}

mkdir -p .tools/bin
# The flags Helm's own release build sets: its version, and the Kubernetes
# version `helm template` and `helm lint` assume (that of its client-go,
# v0.37 -> 1.37); without them it assumes 1.20 and refuses the chart's
# kubeVersion.
helm_k8s_minor=37
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in chartutil lint/rules; do
  helm_ldflags+=" -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMinor=$helm_k8s_minor"
done
helm=$(go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "k8s1.$helm_k8s_minor" -trimpath -ldflags "$helm_ldflags")
kubeconform=$(go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION")
actionlint=$(go_tool actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION")

# A minimal OpenTelemetry Collector: the OTLP receiver, the OTLP exporter and
# the contrib loadbalancing exporter (trace-ID routing in front of several
# daemons, tests/tests/sharded_collector.rs), plus the batch and memory
# limiter processors the example configurations use (validated with it). The builder writes a Go module
# from the manifest and compiles it; the folder name carries the version and
# a hash of the manifest, so a changed manifest builds again.
#
# The loadbalancing exporter imports the AWS Cloud Map SDK for a resolver
# the tests do not use; the Go module proxy these machines reach does not
# serve the SDK version it asks for, so the manifest pins one it serves
# (same API for the calls the resolver makes).
otelcol_manifest() {
  cat <<EOF
dist:
  name: otelcol-perf-sentinel
  description: Minimal OpenTelemetry Collector for the perf-sentinel sharding test
  output_path: $1
receivers:
  - gomod: go.opentelemetry.io/collector/receiver/otlpreceiver $OTELCOL_VERSION
processors:
  - gomod: go.opentelemetry.io/collector/processor/batchprocessor $OTELCOL_VERSION
  - gomod: go.opentelemetry.io/collector/processor/memorylimiterprocessor $OTELCOL_VERSION
exporters:
  - gomod: go.opentelemetry.io/collector/exporter/otlpexporter $OTELCOL_VERSION
  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/exporter/loadbalancingexporter $OTELCOL_VERSION
replaces:
  - github.com/aws/aws-sdk-go-v2/service/servicediscovery => github.com/aws/aws-sdk-go-v2/service/servicediscovery v1.40.2
EOF
}
ocb=$(go_tool builder go.opentelemetry.io/collector/cmd/builder "$OTELCOL_VERSION")
otelcol_key=$(otelcol_manifest OUT | sha256sum | cut -c1-12)
otelcol_dir="$PWD/.tools/bin/otelcol-$OTELCOL_VERSION-$otelcol_key"
otelcol="$otelcol_dir/otelcol-perf-sentinel"
if [ ! -x "$otelcol" ]; then
  say "building the OpenTelemetry Collector $OTELCOL_VERSION with ocb (first run only, a few minutes)"
  # Generated and compiled in a scratch folder, then moved: an interrupted
  # build never leaves a binary that a later run would take as done.
  otelcol_tmp=$(mktemp -d "$PWD/.tools/build.XXXXXX")
  otelcol_manifest "$otelcol_tmp/dist" >"$otelcol_tmp/manifest.yaml"
  GOFLAGS=-buildvcs=false nice -n 10 "$ocb" --config "$otelcol_tmp/manifest.yaml" >&2
  mkdir -p "$otelcol_dir"
  mv "$otelcol_tmp/dist/otelcol-perf-sentinel" "$otelcol"
  rm -rf "$otelcol_tmp"
fi

# promtool (Debian's prometheus package), shellcheck (actionlint runs it
# on the workflows' scripts; the tests run it on scripts/), Chromium and
# Node.js (the dashboard's browser test).
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]} (Debian packages)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    say "missing Debian packages: ${missing[*]} (promtool comes with 'prometheus'); install them as root"
    exit 1
  fi
fi
promtool=$(command -v promtool)
shellcheck=$(command -v shellcheck)
chromium=$(command -v chromium)
node=$(command -v node)

# playwright-core at the version the lock file pins, installed once.
node_major=$("$node" -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  say "playwright-core needs Node.js 20 or later; $node is $("$node" --version)"
  exit 1
fi
browser_dir="$PWD/tests/browser"
want_pw=$("$node" -p 'require(process.argv[1]).packages["node_modules/playwright-core"].version' "$browser_dir/package-lock.json")
have_pw=$("$node" -p 'try { require(process.argv[1]).version } catch { "" }' "$browser_dir/node_modules/playwright-core/package.json")
if [ "$want_pw" != "$have_pw" ]; then
  say "installing playwright-core $want_pw (npm ci in tests/browser)"
  (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

python=${PERF_SENTINEL_PYTHON:-$PWD/.venv-tools/bin/python}
[ -x "$python" ] || { say "no Python venv at $python: run ./scripts/test.sh"; exit 1; }
venv_bin=$(dirname "$python")
[ -x "$venv_bin/check-jsonschema" ] || { say "check-jsonschema missing from $venv_bin: run ./scripts/test.sh"; exit 1; }
# kubernetes-validate ships the Kubernetes JSON schemas (strict variants:
# no unknown field). kubeconform reads them offline once their references
# point at the file beside them instead of kubernetes.io: done once per
# kubernetes-validate version into .tools/kube-schemas/.
kv_version=$("$python" -c 'from importlib.metadata import version; print(version("kubernetes-validate"))')
kube_schemas="$PWD/.tools/kube-schemas/kubernetes-validate-$kv_version"
if [ ! -e "$kube_schemas/.complete" ]; then
  say "preparing the Kubernetes schemas for kubeconform (kubernetes-validate $kv_version)"
  rm -rf "$kube_schemas"
  "$python" - "$kube_schemas" "${KUBE_VERSIONS[@]}" <<'PY'
import json, os, sys
import kubernetes_validate

out, versions = sys.argv[1], sys.argv[2:]
root = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")

def local(node):
    if isinstance(node, dict):
        node.pop("$id", None)
        return {k: (v.replace("/api/_definitions.json#", "_definitions.json#")
                    if k == "$ref" and isinstance(v, str) else local(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [local(v) for v in node]
    return node

for v in versions:
    src = os.path.join(root, f"v{v}-local-strict")
    dst = os.path.join(out, f"v{v}-standalone-strict")
    os.makedirs(dst)
    for name in os.listdir(src):
        if name.endswith(".json"):
            with open(os.path.join(src, name)) as f:
                schema = json.load(f)
            with open(os.path.join(dst, name), "w") as f:
                json.dump(local(schema), f)
PY
  touch "$kube_schemas/.complete"
fi

cat <<EOF
export PERF_SENTINEL_HELM='$helm'
export PERF_SENTINEL_KUBECONFORM='$kubeconform'
export PERF_SENTINEL_ACTIONLINT='$actionlint'
export PERF_SENTINEL_OTELCOL='$otelcol'
export PERF_SENTINEL_PROMTOOL='$promtool'
export PERF_SENTINEL_SHELLCHECK='$shellcheck'
export PERF_SENTINEL_CHECK_JSONSCHEMA='$venv_bin/check-jsonschema'
export PERF_SENTINEL_KUBE_SCHEMAS='$kube_schemas'
export PERF_SENTINEL_KUBE_VERSIONS='${KUBE_VERSIONS[*]}'
export PERF_SENTINEL_CHROMIUM='$chromium'
export PERF_SENTINEL_NODE='$node'
export PERF_SENTINEL_BROWSER_TESTS='$browser_dir'
EOF
