# shellcheck shell=bash
# Shell helpers shared by scripts that run the daemon under load
# (scripts/measure-daemon.sh, scripts/soak.sh). Sourced, not run.
#
#   daemon_start BIN WORKDIR [watch flags...]
#     starts `BIN watch` with the embedded defaults (acks kept in WORKDIR,
#     findings to $FINDINGS_OUT, default WORKDIR/findings.ndjson, log to
#     WORKDIR/daemon.log), waits
#     for /health on $DAEMON_HTTP (default http://127.0.0.1:4318); sets
#     DAEMON_PID.
#   daemon_stop              SIGTERM, then wait
#   daemon_rss_kb            VmRSS of the daemon, in kB
#   daemon_memory            VmRSS, RssAnon and RssFile in MB, one line
#   daemon_metric NAME       sum of every sample of metric NAME (all labels)
#   free_port                a free TCP port on the loopback

DAEMON_HTTP=${DAEMON_HTTP:-http://127.0.0.1:4318}
DAEMON_PID=

daemon_start() {
  local bin=$1 dir=$2
  shift 2
  XDG_DATA_HOME=$dir "$bin" watch "$@" >"${FINDINGS_OUT:-$dir/findings.ndjson}" 2>"$dir/daemon.log" &
  DAEMON_PID=$!
  for _ in $(seq 100); do
    curl -fsS "$DAEMON_HTTP/health" >/dev/null 2>&1 && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "the daemon did not answer on $DAEMON_HTTP/health; its log:" >&2
  cat "$dir/daemon.log" >&2
  return 1
}

daemon_stop() {
  [ -n "$DAEMON_PID" ] || return 0
  kill "$DAEMON_PID" 2>/dev/null || true
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=
}

daemon_rss_kb() {
  awk '/^VmRSS:/ {print $2}' "/proc/$DAEMON_PID/status"
}

daemon_memory() {
  awk '/^(VmRSS|RssAnon|RssFile):/ {printf "%s %.1f MB  ", $1, $2/1024}' "/proc/$DAEMON_PID/status"
  echo
}

daemon_metric() {
  curl -fsS "$DAEMON_HTTP/metrics" |
    awk -v m="$1" '$1 == m || index($1, m "{") == 1 {s += $2; n++} END {if (n) printf "%.0f\n", s; else print 0}'
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
