#!/usr/bin/env bash
# The whole test suite in one cargo invocation: unit, property and
# end-to-end tests (the e2e tests build the daemon and plugin libraries
# themselves). First prepares the Python tools some e2e tests use as real
# third-party clients and parsers (a venv from PyPI, made once), then the
# tools of the Helm chart, sharding and dashboard tests
# (scripts/install-test-tools.sh: helm, kubeconform, actionlint, an
# OpenTelemetry Collector, promtool, Chromium, playwright-core; built or
# installed once, cached).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-tools
want=(
  prometheus-client==0.26.0
  opentelemetry-sdk==1.45.1
  opentelemetry-exporter-zipkin-json==1.45.1
  check-jsonschema==0.39.0
  kubernetes-validate==1.37.0
)
# Every wanted package installed at its pinned version?
have_all() {
  "$venv/bin/python" - "${want[@]}" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (w.split("==") for w in sys.argv[1:])))
PY
}
if [ ! -x "$venv/bin/python" ] || ! have_all; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${want[@]}"
fi
export PERF_SENTINEL_PYTHON="$PWD/$venv/bin/python"

tool_env=$(./scripts/install-test-tools.sh)
eval "$tool_env"

exec cargo test --workspace --locked "$@"
