#!/usr/bin/env bash
# The whole test suite in one cargo invocation: unit, property and
# end-to-end tests (the e2e tests build the daemon and plugin libraries
# themselves). First prepares the Python tools some e2e tests use as real
# third-party clients and parsers (a venv from PyPI, made once).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-tools
want="prometheus-client==0.26.0"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import prometheus_client' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$want"
fi
export PERF_SENTINEL_PYTHON="$PWD/$venv/bin/python"

exec cargo test --workspace --locked "$@"
