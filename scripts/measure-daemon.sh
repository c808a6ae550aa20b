#!/usr/bin/env bash
# Measures the release daemon end to end with otlp-load on this machine:
# idle memory, saturating ingest over gRPC and HTTP, export latency at half
# of each saturating rate (with the finding-latency probe), 10,000 active
# traces of 50 spans, and memory after the load. Prints one line per step;
# the daemon's stdout findings go to a file, as they would to a log.
#
#   cargo build --release -p perf-sentinel -p otlp-load
#   scripts/measure-daemon.sh            # SECONDS_PER_RUN=15 by default
#
# Run it on a quiet machine (check `uptime`): the daemon and the generator
# share the cores, which is the point, but nothing else should.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}/release
daemon_bin=$target/perf-sentinel
load_bin=$target/otlp-load
secs=${SECONDS_PER_RUN:-15}
work=$(mktemp -d)
# shellcheck source=scripts/lib/daemon.sh
. scripts/lib/daemon.sh
trap 'daemon_stop; rm -rf "$work"' EXIT

for b in "$daemon_bin" "$load_bin"; do
  [ -x "$b" ] || { echo "missing $b: cargo build --release -p perf-sentinel -p otlp-load" >&2; exit 2; }
done

# Embedded defaults, except acks kept out of the user's data dir.
daemon_start "$daemon_bin" "$work"
pid=$DAEMON_PID
rss() { daemon_memory; }
metric() { daemon_metric "$1"; }
load() { # NAME otlp-load-args...: runs, keeps the JSON report, prints its figures
  local name=$1; shift
  "$load_bin" --json "$@" >"$work/$name.json"
  python3 - "$work/$name.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r.get("finding_latency")
probe = "" if not p else " | findings %d/%d, root end to finding p50 %.0f ms p99 %.0f ms" % (
    p["found"], p["probes"], p["p50_ms"], p["p99_ms"])
print("%-16s %.0f spans/s accepted, p50 %.2f ms p90 %.2f ms p99 %.2f ms, refused %s%s" % (
    sys.argv[2] + ":", r["accepted_spans_per_second"], r["latency_ms"]["p50"],
    r["latency_ms"]["p90"], r["latency_ms"]["p99"], r["errors"] or "none", probe))
PY
}
rate_of() { python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["accepted_spans_per_second"]))' "$work/$1.json"; }

sleep 3
echo "idle:            $(rss)"
load grpc-max --endpoint http://127.0.0.1:4317 --duration "$secs" --concurrency 8
echo "after gRPC run:  $(rss)"
load http-max --protocol http --endpoint http://127.0.0.1:4318 --duration "$secs" --concurrency 8
echo "after HTTP run:  $(rss)"
load grpc-half --endpoint http://127.0.0.1:4317 --duration "$secs" --concurrency 8 \
  --rate $(($(rate_of grpc-max) / 2)) --probe http://127.0.0.1:4318
load http-half --protocol http --endpoint http://127.0.0.1:4318 --duration "$secs" --concurrency 8 \
  --rate $(($(rate_of http-max) / 2)) --probe http://127.0.0.1:4318
# 50-span traces at 5,000 traces/s stay ~2 s each (the settle delay):
# about 10,000 active at once.
"$load_bin" --endpoint http://127.0.0.1:4317 --duration "$secs" --concurrency 8 \
  --spans-per-trace 50 --mix clean=1 --rate 250000 --json >"$work/active.json" &
lp=$!
peak=0; peak_traces=0
while kill -0 "$lp" 2>/dev/null; do
  now=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  traces=$(metric perf_sentinel_active_traces || echo 0)
  [ "$now" -gt "$peak" ] && peak=$now
  [ "${traces%.*}" -gt "$peak_traces" ] && peak_traces=${traces%.*}
  sleep 0.5
done
echo "10k active:      peak VmRSS $((peak / 1024)) MB with up to $peak_traces active traces"
sleep 5
echo "5 s after load:  $(rss)"
sleep 25
echo "30 s after load: $(rss)"
echo "received $(metric perf_sentinel_spans_received_total) spans, analyzed $(metric perf_sentinel_spans_analyzed_total), shed $(metric perf_sentinel_analysis_shed_spans_total)"
