#!/usr/bin/env bash
# The whole test suite. Installs what a fresh machine lacks (npm and PyPI reference peers, Debian's
# Chromium), then runs formatting and lint checks, the Rust tests, each binding's suite (C, Node,
# Python), the cross-language conformance matrix, the official protocol suites and the chat demo
# in headless Chromium. Prints how long each stage took.
set -euo pipefail
t_all=$SECONDS
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source tests/lib.sh
stage "install npm reference peers" install_node_peers
stage "install Python reference peers" bash tests/python/setup.sh
# Debian packages: Chromium (the chat demo) and redis-server (the Redis adapter tests start their
# own on free ports).
install_debian_packages() {
  local missing=() sudo=""
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v redis-server >/dev/null || missing+=(redis-server)
  [ ${#missing[@]} = 0 ] && return 0
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
stage "install Chromium and redis-server (Debian)" install_debian_packages
stage "cargo fmt --check" cargo fmt --all -- --check
stage "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
stage "cargo test" cargo test --workspace
stage "fuzz smoke (tests/fuzz.sh)" bash tests/fuzz.sh
stage "C binding (ffi-c/tests/run.sh)" bash ffi-c/tests/run.sh
stage "Node binding (node/test/run.sh)" bash node/test/run.sh
stage "Python binding (py/tests/run.sh)" bash py/tests/run.sh
stage "conformance matrix" python3 tests/matrix
# The same cells over https/wss, for every LANG with the TLS hook (tests/run-server, run-client).
stage "conformance matrix over TLS" python3 tests/matrix --tls \
  --servers rust,c,python,python-asgi,python-aiohttp,python-socketio,node,node-express,node-express-stream,socketio \
  --clients rust,c,python,node,socketio-client,python-socketio
# Scenario servers of two LANGs in one Redis cluster (tests/SCENARIOS.md, "Cluster mode"): every
# LANG with an adapter beside an npm socket.io node and beside itself, a redis-server restart
# included; LANGs without one are n/a.
stage "cluster checks (tests/cluster)" python3 tests/cluster
# The official Engine.IO v4 / Socket.IO v5 suites against every server host (port 3000, one at a
# time; the matrix built every host already).
stage "official protocol suites (tests/conformance.sh)" env POLYSIO_PREBUILT=1 bash tests/conformance.sh
browser_tests() {
  local lang rc
  for lang in rust node python; do
    rc=0
    node tests/node/chat-browser.js "$lang" || rc=$?
    if [ "$rc" = 77 ]; then echo "chat ($lang): not available in this checkout"; elif [ "$rc" != 0 ]; then return "$rc"; fi
  done
}
stage "chat demo in Chromium" browser_tests
# Every benchmarked server answers real load correctly (debug builds, seconds; figures: bench/run).
stage "benchmark smoke (bench/run --smoke)" env BENCH_PROFILE=debug bench/run --smoke
echo "=== all tests passed in $((SECONDS - t_all)) s"
