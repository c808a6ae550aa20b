#!/usr/bin/env bash
# Fails when the chart changed since BASE without a version bump:
#
#   scripts/check-chart-version-bump.sh BASE [CHART_DIR]
#
# BASE is a git revision (the pull request's base, e.g. origin/main);
# CHART_DIR defaults to charts/perf-sentinel. Run from inside the
# repository. A changed chart must carry a Chart.yaml `version` that differs
# from BASE's and is not lower in MAJOR.MINOR.PATCH. A chart that is new
# since BASE, or unchanged, passes.
#
# Exit codes: 0 fine, 1 changed without a bump, 2 bad usage.
set -euo pipefail

die() { echo "check-chart-version-bump: $2" >&2; exit "$1"; }

if [ $# -lt 1 ] || [ $# -gt 2 ]; then die 2 "usage: $0 BASE [CHART_DIR]"; fi
base=$1
chart_dir=${2:-charts/perf-sentinel}
git rev-parse --verify --quiet "$base^{commit}" >/dev/null || die 2 "'$base' is not a git revision here"

version_of() {
  sed -n -E 's/^version:[[:space:]]*["'\'']?([^"'\''#[:space:]]+)["'\'']?[[:space:]]*(#.*)?$/\1/p' | head -n 1
}

if ! git cat-file -e "$base:$chart_dir/Chart.yaml" 2>/dev/null; then
  echo "check-chart-version-bump: $chart_dir is new since $base" >&2
  exit 0
fi
if git diff --quiet "$base" -- "$chart_dir"; then
  echo "check-chart-version-bump: $chart_dir unchanged since $base" >&2
  exit 0
fi

old=$(git show "$base:$chart_dir/Chart.yaml" | version_of)
new=$(version_of < "$chart_dir/Chart.yaml")
[ -n "$new" ] || die 2 "$chart_dir/Chart.yaml has no top-level version:"

changed=$(git diff --name-only "$base" -- "$chart_dir" | sed 's/^/  /')
if [ "$old" = "$new" ]; then
  die 1 "$chart_dir changed since $base but its version is still $new: bump version in $chart_dir/Chart.yaml (and add a CHANGELOG.md entry). Changed:
$changed"
fi

core() { local v=${1%%[-+]*}; echo "${v//./ }"; }
read -r o1 o2 o3 <<<"$(core "$old")"
read -r n1 n2 n3 <<<"$(core "$new")"
if (( n1 < o1 || (n1 == o1 && (n2 < o2 || (n2 == o2 && n3 < o3))) )); then
  die 1 "$chart_dir version went from $old down to $new"
fi
echo "check-chart-version-bump: $chart_dir version $old -> $new" >&2
