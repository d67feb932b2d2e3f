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
# After the matrix built every host (POLYSIO_PREBUILT=1 from here on), the stages that share no
# port run at once: the matrix over TLS, the cluster checks (their own redis-servers on free
# ports), and in a row the official suites (port 3000), the chat demo and the benchmark smoke.
export POLYSIO_PREBUILT=1
browser_tests() {
  local lang rc
  for lang in rust node python; do
    rc=0
    node tests/node/chat-browser.js "$lang" || rc=$?
    if [ "$rc" = 77 ]; then echo "chat ($lang): not available in this checkout"; elif [ "$rc" != 0 ]; then return "$rc"; fi
  done
}
export -f browser_tests stage
parallel_stages \
  "conformance matrix over TLS (every LANG with the TLS hook in tests/run-server, run-client)|python3 tests/matrix --tls \
    --servers rust,c,python,python-asgi,python-aiohttp,python-socketio,node,node-express,node-express-stream,socketio \
    --clients rust,c,python,node,socketio-client,python-socketio" \
  "cluster checks (tests/cluster: scenario servers of two LANGs in one Redis cluster, a restart included)|python3 tests/cluster" \
  "official suites, chat demo, benchmark smoke|stage 'official protocol suites (tests/conformance.sh)' bash tests/conformance.sh; \
    stage 'chat demo in Chromium' browser_tests; \
    stage 'benchmark smoke (bench/run --smoke)' env BENCH_PROFILE=debug bench/run --smoke"
echo "=== all tests passed in $((SECONDS - t_all)) s"
