#!/usr/bin/env bash
# The whole test suite in one cargo invocation: unit, property and
# end-to-end tests (the e2e tests build the daemon binary themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --workspace --locked "$@"
