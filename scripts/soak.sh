#!/usr/bin/env bash
# Soak test: the daemon (embedded defaults, loopback) under otlp-load at 70 %
# of its measured capacity for DURATION seconds. Samples the daemon's
# resident memory every second into a CSV, reads its counters at the end,
# prints a summary, and fails on any of: a load-generator error or refused
# span, any shed or rejected span or request, spans received != spans the
# generator had accepted, or memory not flat (see below). docs/PERFORMANCE.md
# has a 10-minute result.
#
#   scripts/soak.sh                          # release build, 600 s
#   DURATION=60 PROFILE=debug scripts/soak.sh
#
# Environment:
#   DURATION        seconds of load (default 600)
#   LOAD_PCT        percent of capacity to send (default 70)
#   CAPACITY        spans/s; default: measured with otlp-load for
#                   CAPACITY_SECONDS (default 15) at full speed
#   PROFILE         cargo profile to build and run (default release); set
#                   DAEMON_BIN and LOAD_BIN to use given binaries instead
#   WARMUP          seconds of samples ignored for the band (default
#                   DURATION/5, at most 60)
#   RSS_BAND_PCT    memory band (default 10): the highest VmRSS of the
#                   second half of the samples after warm-up may exceed the
#                   highest of the first half by at most this percent
#   DRAIN_SECONDS   pause after the capacity run and after the load, for the
#                   queue and trace window to empty (default 10)
#   SOAK_OUT        folder for rss.csv, the reports and logs (default: a
#                   new temporary folder, printed and kept)
#   FINDINGS_OUT    where the daemon's stdout goes: default the folder's
#                   findings.ndjson for runs up to 120 s, /dev/null beyond
#                   (a 10-minute run at 300k spans/s prints over 20 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/daemon.sh
. scripts/lib/daemon.sh

duration=${DURATION:-600}
load_pct=${LOAD_PCT:-70}
band_pct=${RSS_BAND_PCT:-10}
warmup=${WARMUP:-$((duration / 5 < 60 ? duration / 5 : 60))}
profile=${PROFILE:-release}
drain=${DRAIN_SECONDS:-10}
out=${SOAK_OUT:-$(mktemp -d -t perf-sentinel-soak.XXXXXX)}
mkdir -p "$out"

if [ -z "${DAEMON_BIN:-}" ] || [ -z "${LOAD_BIN:-}" ]; then
  echo "soak: building perf-sentinel and otlp-load ($profile)" >&2
  case $profile in
    dev | debug) profile=dev dir=debug ;;
    *) dir=$profile ;;
  esac
  # One package per build, as the end-to-end tests build them: the same
  # features, so after the tests this is a no-op.
  cargo build --locked --profile "$profile" -p perf-sentinel --bin perf-sentinel >&2
  cargo build --locked --profile "$profile" -p otlp-load --bin otlp-load >&2
  DAEMON_BIN=${CARGO_TARGET_DIR:-target}/$dir/perf-sentinel
  LOAD_BIN=${CARGO_TARGET_DIR:-target}/$dir/otlp-load
fi

grpc_port=$(free_port)
http_port=$(free_port)
DAEMON_HTTP=http://127.0.0.1:$http_port
grpc=http://127.0.0.1:$grpc_port
load_pid=
trap '[ -z "$load_pid" ] || kill "$load_pid" 2>/dev/null || true; daemon_stop' EXIT
if [ -z "${FINDINGS_OUT:-}" ] && [ "$duration" -gt 120 ]; then
  export FINDINGS_OUT=/dev/null
fi
daemon_start "$DAEMON_BIN" "$out" --listen-port-grpc "$grpc_port" --listen-port-http "$http_port"

json_field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

if [ -z "${CAPACITY:-}" ]; then
  "$LOAD_BIN" --endpoint "$grpc" --duration "${CAPACITY_SECONDS:-15}" --concurrency 8 --json \
    >"$out/capacity.json"
  CAPACITY=$(python3 -c 'import json, sys; print(int(json.load(open(sys.argv[1]))["accepted_spans_per_second"]))' "$out/capacity.json")
  # Let the queue and window drain what the full-speed run left.
  sleep "$drain"
fi
rate=$((CAPACITY * load_pct / 100))
echo "soak: capacity $CAPACITY spans/s, sending $rate spans/s ($load_pct %) for $duration s" >&2

counters=(spans_received_total spans_analyzed_total traces_analyzed_total findings_total
  analysis_shed_spans_total analysis_shed_batches_total analysis_shed_traces_total
  otlp_rejected_total spans_rejected_total spans_dropped_total findings_stdout_dropped_total
  late_spans_total connections_refused_total)
snapshot() { # FILE: one `name value` line per counter
  for c in "${counters[@]}"; do echo "$c $(daemon_metric "perf_sentinel_$c")"; done >"$1"
}
snapshot "$out/before.txt"
findings_lines() { # stdout lines so far; -1 when they go to /dev/null
  if [ -f "$out/findings.ndjson" ]; then wc -l <"$out/findings.ndjson"; else echo -1; fi
}
findings_before=$(findings_lines)

"$LOAD_BIN" --endpoint "$grpc" --duration "$duration" --concurrency 8 --rate "$rate" --json \
  >"$out/load.json" &
load_pid=$!
echo "second,vmrss_kb,active_traces,spans_received_total" >"$out/rss.csv"
start=$SECONDS
while kill -0 "$load_pid" 2>/dev/null; do
  # The tick runs while the sample is taken: one sample a second.
  sleep 1 &
  tick=$!
  echo "$((SECONDS - start)),$(daemon_rss_kb),$(daemon_metric perf_sentinel_active_traces),$(daemon_metric perf_sentinel_spans_received_total)" >>"$out/rss.csv"
  wait "$tick"
done
load_rc=0
wait "$load_pid" || load_rc=$?
load_pid=
# Traces still in the window are analyzed after their settle delay.
sleep "$drain"
snapshot "$out/after.txt"
findings_lines=$(($(findings_lines) - findings_before))
[ "$findings_before" -ge 0 ] || findings_lines=-1

python3 - "$out" "$warmup" "$band_pct" "$load_rc" "$findings_lines" <<'PY'
import csv, json, sys
out, warmup, band, load_rc, findings_lines = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

def counters(name):
    return {k: int(v) for k, v in (line.split() for line in open(f"{out}/{name}"))}

before, after = counters("before.txt"), counters("after.txt")
d = {k: after[k] - before[k] for k in after}
load = json.load(open(f"{out}/load.json"))
rss = [int(r["vmrss_kb"]) for r in csv.DictReader(open(f"{out}/rss.csv"))]
steady = rss[warmup:]
problems = []
if load_rc != 0:
    problems.append(f"otlp-load exited with {load_rc}")
if load["errors"] or load["rejected_spans"]:
    problems.append(f"load generator errors {load['errors']}, refused spans {load['rejected_spans']}")
for k in ("analysis_shed_spans_total", "analysis_shed_batches_total", "otlp_rejected_total",
          "spans_rejected_total", "findings_stdout_dropped_total"):
    if d[k]:
        problems.append(f"{k} rose by {d[k]}")
if d["spans_received_total"] != load["accepted_spans"]:
    problems.append(f"the daemon received {d['spans_received_total']} spans, the generator had {load['accepted_spans']} accepted")
if len(steady) < 4:
    problems.append(f"only {len(steady)} memory samples after a {warmup} s warm-up")
    first_max = second_max = 0
else:
    half = len(steady) // 2
    first_max, second_max = max(steady[:half]), max(steady[half:])
    growth = 100.0 * (second_max - first_max) / first_max
    if growth > band:
        problems.append(f"memory grew {growth:.1f} % (band {band:g} %)")

mb = lambda kb: kb / 1024
print(f"soak: {load['seconds']:.0f} s at {load['target_spans_per_second']} spans/s target, "
      f"{load['accepted_spans_per_second']:.0f} accepted/s, latency p50 {load['latency_ms']['p50']:.2f} ms "
      f"p99 {load['latency_ms']['p99']:.2f} ms max {load['latency_ms']['max']:.2f} ms")
print(f"  generator: {load['accepted_spans']} spans accepted, {load['rejected_spans']} refused, errors {load['errors'] or 'none'}")
print(f"  daemon: received {d['spans_received_total']}, analyzed {d['spans_analyzed_total']} spans in "
      f"{d['traces_analyzed_total']} traces, findings {d['findings_total']} "
      + (f"({findings_lines} stdout lines)" if findings_lines >= 0 else "(stdout to /dev/null)"))
print(f"  shed spans {d['analysis_shed_spans_total']} batches {d['analysis_shed_batches_total']} "
      f"traces {d['analysis_shed_traces_total']}; rejected requests {d['otlp_rejected_total']} "
      f"spans {d['spans_rejected_total']}; dropped spans {d['spans_dropped_total']}, "
      f"stdout findings {d['findings_stdout_dropped_total']}; late spans {d['late_spans_total']}; "
      f"refused connections {d['connections_refused_total']}")
if steady:
    print(f"  VmRSS after {warmup} s warm-up: min {mb(min(steady)):.1f} MB, max {mb(max(steady)):.1f} MB; "
          f"max first half {mb(first_max):.1f} MB, second half {mb(second_max):.1f} MB (band {band:g} %)")
print(f"  samples: {out}/rss.csv")
for p in problems:
    print(f"soak: FAIL: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
