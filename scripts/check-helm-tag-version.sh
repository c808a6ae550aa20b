#!/usr/bin/env bash
# Checks that a chart release tag names the chart's version:
#
#   scripts/check-helm-tag-version.sh TAG [CHART_YAML]
#
# TAG is `chart-v<version>` (or `refs/tags/chart-v<version>`, as in
# GITHUB_REF); <version> must be a semantic version and equal the `version:`
# of CHART_YAML (default charts/perf-sentinel/Chart.yaml), prerelease and
# build suffixes included. Prints `version=` and `prerelease=` (true for a
# prerelease suffix such as -rc.1, -beta.2, -alpha) on stdout and, when
# GITHUB_OUTPUT is set, appends them there for later workflow steps.
#
# Exit codes: 0 match, 1 mismatch, 2 bad usage, bad tag or unreadable chart.
set -euo pipefail

die() { echo "check-helm-tag-version: $2" >&2; exit "$1"; }

if [ $# -lt 1 ] || [ $# -gt 2 ]; then die 2 "usage: $0 TAG [CHART_YAML]"; fi
tag=${1#refs/tags/}
chart=${2:-$(dirname "$0")/../charts/perf-sentinel/Chart.yaml}

semver='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'

case $tag in
  chart-v*) tag_version=${tag#chart-v} ;;
  *) die 2 "tag '$tag' is not a chart release tag (expected chart-v<version>, e.g. chart-v1.2.0)" ;;
esac
[[ $tag_version =~ $semver ]] || die 2 "tag '$tag': '$tag_version' is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])"

[ -r "$chart" ] || die 2 "cannot read $chart"
# The top-level `version:` key (not appVersion, not an indented key), with
# optional quotes and a trailing comment.
chart_version=$(sed -n -E 's/^version:[[:space:]]*["'\'']?([^"'\''#[:space:]]+)["'\'']?[[:space:]]*(#.*)?$/\1/p' "$chart" | head -n 1)
[ -n "$chart_version" ] || die 2 "$chart has no top-level version:"

if [ "$tag_version" != "$chart_version" ]; then
  die 1 "tag '$tag' names version $tag_version but $chart says version $chart_version: bump the chart or fix the tag"
fi

prerelease=false
[[ $tag_version == *-* ]] && prerelease=true
echo "version=$tag_version"
echo "prerelease=$prerelease"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  { echo "version=$tag_version"; echo "prerelease=$prerelease"; } >> "$GITHUB_OUTPUT"
fi
echo "check-helm-tag-version: $tag matches $chart" >&2
