#!/usr/bin/env bash
# The official protocol test suites (tests/conformance, copied from socketio/socket.io) against
# every server host: the Engine.IO v4 suite against the raw Engine.IO server, the Socket.IO v5
# suite against each scenario server of tests/run-server, one at a time on port 3000 (the suites'
# fixed address). Hosts not available in this checkout (tests/run-server exits 77) are skipped.
# Prints a summary table; exits non-zero when any suite fails.
#
#   bash tests/conformance.sh                 every host
#   bash tests/conformance.sh rust python-asgi only these Socket.IO hosts (the EIO suite always runs)
#
# POLYSIO_PREBUILT=1 (tests/all.sh sets it after the matrix built everything) skips the builds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source tests/lib.sh
t_all=$SECONDS
logs=${CARGO_TARGET_DIR:-$root/target}/conformance
mkdir -p "$logs"
hosts=("$@")
[ ${#hosts[@]} -gt 0 ] || hosts=(rust rust-axum c c-host python python-asgi python-aiohttp node node-express node-express-stream)
# The suites connect to "localhost": make it 127.0.0.1, where the servers listen.
export NODE_OPTIONS="${NODE_OPTIONS:-} --dns-result-order=ipv4first"

install_suite() {
  local dir=tests/conformance/$1
  if [ ! -d "$dir/node_modules/mocha" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

port_free() { ! (exec 3<>/dev/tcp/127.0.0.1/3000) 2>/dev/null; }

server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM -- "-$server_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap stop_server EXIT

results=()
failed=0
# run_suite SUITE HOST: starts `tests/run-server HOST 3000` in a process group of its own, waits
# for the port, runs the suite, stops the group.
run_suite() {
  local suite=$1 host=$2 t0=$SECONDS log=$logs/$1-$2.log rc=0
  for _ in $(seq 100); do port_free && break; sleep 0.1; done
  port_free || { echo "port 3000 is taken" >&2; exit 1; }
  setsid tests/run-server "$host" 3000 >"$log.server" 2>&1 &
  server_pid=$!
  local up=""
  for _ in $(seq 1200); do
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    if ! port_free; then up=1; break; fi
    sleep 0.1
  done
  if [ -z "$up" ]; then
    wait "$server_pid" 2>/dev/null || rc=$?
    server_pid=""
    if [ "$rc" = 77 ]; then
      results+=("$(printf '%-14s %-16s %-6s %s' "$suite" "$host" skip "not available in this checkout")")
      return 0
    fi
    echo "--- $host did not start (exit $rc):"; tail -20 "$log.server"
    results+=("$(printf '%-14s %-16s %-6s %s' "$suite" "$host" FAIL "server did not start")")
    failed=1
    return 0
  fi
  (cd "tests/conformance/$suite" && timeout 300 npx mocha --exit --reporter dot test-suite.js) >"$log" 2>&1 || rc=$?
  stop_server
  local summary
  summary=$(grep -Eo '[0-9]+ (passing|failing|pending)' "$log" | paste -sd' ' -)
  if [ "$rc" = 0 ]; then
    results+=("$(printf '%-14s %-16s %-6s %s (%d s)' "$suite" "$host" ok "$summary" $((SECONDS - t0)))")
  else
    echo "--- $suite against $host failed (exit $rc); its log ($log):"; tail -60 "$log"
    echo "--- the server's log:"; tail -20 "$log.server"
    results+=("$(printf '%-14s %-16s %-6s %s (%d s)' "$suite" "$host" FAIL "${summary:-exit $rc}" $((SECONDS - t0)))")
    failed=1
  fi
}

install_suite engine.io-v4
install_suite socket.io-v5
run_suite engine.io-v4 rust-engineio
for h in "${hosts[@]}"; do run_suite socket.io-v5 "$h"; done

echo
printf '%-14s %-16s %-6s %s\n' suite server result tests
for r in "${results[@]}"; do echo "$r"; done
echo "conformance: $((SECONDS - t_all)) s"
exit "$failed"
