#!/usr/bin/env bash
# Runs the registry benchmark: builds drydock and the harness, starts
# `drydock serve --create-on-push` and Debian's docker-registry (the CNCF
# distribution registry 2.8) on free loopback ports with temporary data
# directories, logs in to Drydock with a login password, runs
# bench/registry against both, and stops both.
#
#   bench/run-registry.sh [harness flags, e.g. -repeat 3 -only push-big]
#
# BASELINE_CMD overrides the baseline binary (any distribution-compatible
# `registry serve CONFIG` program, e.g. distribution v3's registry).
# DRYDOCK_BIN runs a drydock binary built elsewhere (an older commit, to
# compare) instead of building the working tree; DRYDOCK_ENV adds
# environment variables to its command line (e.g. "GOGC=200").
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
baseline_cmd="${BASELINE_CMD:-/usr/bin/docker-registry}"
[ -x "$baseline_cmd" ] || { echo "baseline $baseline_cmd missing: apt-get install docker-registry" >&2; exit 1; }

work="$(mktemp -d /tmp/drydock-bench.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { # a port nothing listens on
  local p
  while :; do
    p=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}

wait_http() { # URL: wait until anything answers
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

echo "== building drydock and the harness" >&2
if [ -n "${DRYDOCK_BIN:-}" ]; then
  cp "$DRYDOCK_BIN" "$work/drydock"
else
  (cd "$root" && go build -o "$work/drydock" ./cmd/drydock)
fi
(cd "$root" && go build -o "$work/bench" ./bench/registry)

dd_port=$(free_port)
# shellcheck disable=SC2086 # DRYDOCK_ENV is a list of NAME=VALUE words
env ${DRYDOCK_ENV:-} "$work/drydock" serve --addr "127.0.0.1:$dd_port" --data-dir "$work/drydock-data" --create-on-push \
  >"$work/drydock.log" 2>&1 &
pids+=($!)
dd_pid=$!

reg_port=$(free_port)
while [ "$reg_port" = "$dd_port" ]; do reg_port=$(free_port); done
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry-data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$reg_port
YML
# The registry reads every REGISTRY_* variable as configuration: start it
# with a clean environment.
env -i PATH=/usr/bin:/bin OTEL_TRACES_EXPORTER=none "$baseline_cmd" serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
reg_pid=$!

wait_http "http://127.0.0.1:$dd_port/v2/"
wait_http "http://127.0.0.1:$reg_port/v2/"
password="$("$work/drydock" login-password --data-dir "$work/drydock-data")"

echo "== drydock pid $dd_pid on 127.0.0.1:$dd_port; baseline $(basename "$baseline_cmd") pid $reg_pid on 127.0.0.1:$reg_port" >&2
BENCH_TARGET_PASSWORD="$password" "$work/bench" \
  -target "http://127.0.0.1:$dd_port" -target-user AWS -target-pid "$dd_pid" \
  -baseline "http://127.0.0.1:$reg_port" -baseline-pid "$reg_pid" "$@"
