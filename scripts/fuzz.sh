#!/usr/bin/env bash
# Builds every cargo-fuzz target once (stable toolchain: RUSTC_BOOTSTRAP=1,
# no sanitizer) and runs each for a bounded time or number of inputs,
# starting from seeds made from the test fixtures. Prints the inputs each
# target ran; exits non-zero if any target crashed (the crashing input is
# kept under fuzz/artifacts/<target>/). See docs/FUZZING.md.
#
#   scripts/fuzz.sh                       # 15 s per target
#   FUZZ_SECONDS=300 scripts/fuzz.sh      # longer
#   FUZZ_RUNS=10000000 FUZZ_SECONDS=0 scripts/fuzz.sh otlp_json sql_normalize
#
# FUZZ_SECONDS (default 15; 0 = no time bound) and FUZZ_RUNS (default 0 = no
# input bound) bound each target; with both set, whichever comes first.
# Arguments name targets (default: all). The corpus each run grows is kept
# in fuzz/corpus/<target>/ (ignored by git) and reused by the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${FUZZ_SECONDS:-15}
runs=${FUZZ_RUNS:-0}
target_dir=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}
triple=$(rustc -vV | awk '/^host:/ {print $2}')
bin_dir=$target_dir/$triple/release

eval "$(./scripts/install-test-tools.sh cargo-fuzz)"
mapfile -t all < <("$PERF_SENTINEL_CARGO_FUZZ" list --fuzz-dir fuzz)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

echo "fuzz: building ${#all[@]} targets" >&2
# libFuzzer's instrumentation passes are unstable rustc flags: the stable
# compiler accepts them with RUSTC_BOOTSTRAP=1. `--sanitizer none`: the host
# forbids unsafe code, and ASan would halve the speed.
RUSTC_BOOTSTRAP=1 CARGO_INCREMENTAL=0 nice -n 10 "$PERF_SENTINEL_CARGO_FUZZ" build \
  --fuzz-dir fuzz --release --sanitizer none --target-dir "$target_dir"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 fuzz/seeds/make_seeds.py "$work/seeds"

failed=()
total=0
printf '%-16s %14s %10s %s\n' target executions exec/s result
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "$work/seeds/$t"
  args=(-print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -max_len=65536
    "-artifact_prefix=fuzz/artifacts/$t/")
  [ "$secs" -gt 0 ] && args+=("-max_total_time=$secs")
  [ "$runs" -gt 0 ] && args+=("-runs=$runs")
  start=$(date +%s%N)
  rc=0
  "$bin_dir/$t" "${args[@]}" "fuzz/corpus/$t" "$work/seeds/$t" >"$work/$t.log" 2>&1 || rc=$?
  case $rc in
    0) result=ok ;;
    # SIGINT to the target (`kill -INT <its pid>` by hand) ends
    # its run early, still counted.
    72) result="stopped early" ;;
    *)
      result="CRASH (see fuzz/artifacts/$t/ and the log below)"
      failed+=("$t")
      tail -n 40 "$work/$t.log" >&2
      ;;
  esac
  elapsed_ms=$((($(date +%s%N) - start) / 1000000 + 1))
  execs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$work/$t.log" | tail -n 1)
  execs=${execs:-0}
  total=$((total + execs))
  printf '%-16s %14s %10s %s\n' "$t" "$execs" $((execs * 1000 / elapsed_ms)) "$result"
done
echo "total executions: $total"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]}" >&2
  exit 1
fi
