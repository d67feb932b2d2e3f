#!/usr/bin/env bash
# The C ABI's test suite: header drift check, the library built and installed (staging prefix)
# with its pkg-config file, C and C++ test programs compiled against it by gcc and g++, run
# natively and under valgrind, interop with the npm socket.io server and client, the scenario
# server of tests/run-server, and the examples built as the README says.
#
#   bash ffi-c/tests/run.sh            (CI=true: installs missing C tools with apt-get)
#
# Uses CARGO_TARGET_DIR if set, else <repo>/target. Prints how long each step took; exits
# non-zero on the first failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
build=$CARGO_TARGET_DIR/ffi-c
bin=$build/tests
logs=$build/logs
# Two library threads are plenty for the tests and keep valgrind fast.
export POLYSIO_WORKER_THREADS=${POLYSIO_WORKER_THREADS:-2}
t_all=$SECONDS

source tests/lib.sh

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

install_tools() {
  local missing=()
  command -v gcc >/dev/null || missing+=(gcc)
  command -v g++ >/dev/null || missing+=(g++)
  command -v make >/dev/null || missing+=(make)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v valgrind >/dev/null || missing+=(valgrind)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "${CI:-}" = true ] && command -v apt-get >/dev/null; then
      local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get update < /dev/null
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" < /dev/null
    else
      echo "missing tools: ${missing[*]} (install them, or run with CI=true to use apt-get)" >&2
      exit 1
    fi
  fi
  install_microhttpd
  install_node_peers
  mkdir -p "$logs"
}

# libmicrohttpd, for examples/mhd_server.c and tests/run-server c-host (installed like Chromium
# in tests/all.sh: whenever it is missing, without a prompt).
install_microhttpd() {
  pkg-config --exists libmicrohttpd && return 0
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq < /dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libmicrohttpd-dev < /dev/null > /dev/null
}

build_all() {
  make -s -C ffi-c tests examples
  echo "installed to $build/prefix:"; (cd "$build/prefix" && find . -type f -o -type l | sort)
  echo "pkg-config: $(PKG_CONFIG_PATH=$build/prefix/lib/pkgconfig pkg-config --cflags --libs polysio)"
}

native() {
  "$bin/test_payload"
  "$bin/test_misuse"
  "$bin/test_misuse_static"
  "$bin/test_options"
  "$bin/test_cpp"
  "$bin/test_loopback" threads
  "$bin/test_loopback" poll
  # Backpressure into a program that polls slowly: bounded queue and RSS, nothing lost.
  "$bin/test_flood" websocket
  "$bin/test_flood" polling
  "$bin/test_flood" client
  "$bin/test_sigpipe"
  "$bin/test_host"
  # https/wss with a throwaway CA.
  bash "$root/tests/tls-certs.sh" "$build/tls"
  "$bin/test_tls" "$build/tls"
}

# Starts a background command that prints `listening PORT` (or $READY) when ready; sets $port
# and $server_pid. Its stdout goes to $logs/NAME.log, its stdin comes from $STDIN.
start_server() {
  local name=$1; shift
  local log=$logs/$name.log
  : > "$log"
  "$@" > "$log" < "${STDIN:-/dev/null}" &
  pids+=($!)
  server_pid=$!
  local t0=$SECONDS
  until grep -q "${READY:-^listening }" "$log"; do
    kill -0 "$server_pid" 2>/dev/null || { echo "$name exited before listening" >&2; cat "$log" >&2; exit 1; }
    [ $((SECONDS - t0)) -lt 60 ] || { echo "$name did not start" >&2; exit 1; }
    sleep 0.1
  done
  port=$(sed -n 's/^listening \([0-9]*\).*/\1/p' "$log" | head -1)
}

# Stops the last started server with SIGTERM and returns its exit status.
stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  local rc=0
  wait "$server_pid" || rc=$?
  return $rc
}

# The reference npm server (exits when its stdin closes: keep a pipe open).
start_ref_server() {
  local fifo=$build/ref-stdin
  rm -f "$fifo"; mkfifo "$fifo"
  sleep 1000000 > "$fifo" &
  pids+=($!)
  STDIN=$fifo start_server ref-server node tests/node/ref-server.js '{}'
}

client_vs_reference_server() {
  start_ref_server
  "$bin/test_client_ref" "$port" threads
  "$bin/test_client_ref" "$port" poll
  "$bin/test_client_ref" "$port" threads polling
  "$bin/test_client_ref" "$port" poll websocket
  stop_server || true
}

# Runs server-scenarios.js scenarios over the three transport settings against the C server.
scenarios() {
  local url=$1; shift
  for sc in "$@"; do
    for t in polling websocket polling,websocket; do
      (cd tests/node && node server-scenarios.js "$url" "$sc" "$t")
    done
  done
}

expect_log() { # name, count, line
  local n; n=$(grep -cxF "$3" "$logs/$1.log" || true)
  [ "$n" -ge "$2" ] || { echo "$1: expected $2 x '$3', got $n" >&2; cat "$logs/$1.log" >&2; exit 1; }
}

npm_client_vs_c_server() {
  start_server scenarios "$bin/scenario_server" 0 --full --ping 25000,20000
  scenarios "http://127.0.0.1:$port" basic rooms middleware server-disconnect
  stop_server
  expect_log scenarios 3 "disconnect server namespace disconnect"

  start_server scenarios-poll "$bin/scenario_server" 0 --full --poll --ping 25000,20000
  scenarios "http://127.0.0.1:$port" basic rooms
  stop_server

  # The same scenarios mounted in libmicrohttpd through the host API (tests/run-server c-host).
  start_server host "$bin/host_server" 0 --full --ping 25000,20000
  scenarios "http://127.0.0.1:$port" basic rooms middleware server-disconnect
  node -e "require('http').get('http://127.0.0.1:$port/health',r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>process.exit(r.statusCode===200&&b==='ok'?0:1))})"
  stop_server
  expect_log host 3 "disconnect server namespace disconnect"

  start_server host-poll "$bin/host_server" 0 --full --poll --ping 25000,20000
  scenarios "http://127.0.0.1:$port" basic rooms
  stop_server

  start_server recovery "$bin/scenario_server" 0 --full --recovery --ping 25000,20000
  scenarios "http://127.0.0.1:$port" recovery
  stop_server
  expect_log recovery 3 "disconnect transport close"

  start_server no-pong "$bin/scenario_server" 0 --full --ping 200,200
  for t in polling websocket; do (cd tests/node && node server-scenarios.js "http://127.0.0.1:$port" no-pong "$t"); done
  stop_server
  expect_log no-pong 2 "disconnect ping timeout"
}

run_server_c() {
  # tests/run-server c PORT, exactly as the cross-language matrix starts it.
  port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  tests/run-server c "$port" > "$logs/run-server.log" &
  pids+=($!); server_pid=$!
  local t0=$SECONDS
  until grep -q '^listening ' "$logs/run-server.log"; do
    [ $((SECONDS - t0)) -lt 120 ] || { echo "tests/run-server c did not start" >&2; exit 1; }
    sleep 0.1
  done
  # The default mode pings every 300 ms and drops a client that takes 200 ms to answer: on a
  # machine busy with other builds that can happen, so a failed check gets one more try.
  for t in polling websocket polling,websocket; do
    node ffi-c/tests/scenario-check.js "http://127.0.0.1:$port" "$t" ||
      { echo "retrying scenario-check $t once"; node ffi-c/tests/scenario-check.js "http://127.0.0.1:$port" "$t"; }
  done
  stop_server
}

# "still reachable" is allowed: process-wide statics of tokio (its signal registry) and
# parking_lot (its bucket table), made once. Lost memory of any kind is an error.
vg=(valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible
  --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99)
vg() { "${vg[@]}" "$@"; }

under_valgrind() {
  vg "$bin/test_payload"
  vg "$bin/test_misuse"
  vg "$bin/test_options"
  vg "$bin/test_cpp"
  vg "$bin/test_loopback" threads
  vg "$bin/test_loopback" poll
  vg "$bin/test_host"
  # ring's assembly ciphers are opaque to memcheck (see valgrind-ring.supp).
  vg --suppressions="$root/ffi-c/tests/valgrind-ring.supp" "$bin/test_tls" "$build/tls"
  vg "$bin/test_flood" websocket 3000
  vg "$bin/test_flood" polling 3000
  vg "$bin/test_flood" client 2000
  start_ref_server
  vg "$bin/test_client_ref" "$port" threads
  stop_server || true
  # The C server under valgrind, with real npm clients; SIGTERM makes it free everything.
  start_server vg-scenarios "${vg[@]}" "$bin/scenario_server" 0 --full --ping 25000,20000
  scenarios "http://127.0.0.1:$port" basic middleware
  stop_server
  start_server vg-host "${vg[@]}" "$bin/host_server" 0 --full --ping 25000,20000
  scenarios "http://127.0.0.1:$port" basic middleware
  stop_server
  start_server vg-scenarios-poll "${vg[@]}" "$bin/scenario_server" 0 --full --poll --ping 25000,20000
  scenarios "http://127.0.0.1:$port" basic
  stop_server
  # The matrix's C client harness (tests/run-client c; the matrix runs it natively against every
  # server) under valgrind, against the C scenario server with a relaxed heartbeat: valgrind is
  # too slow to answer the scenario server's 300/200 ms pings.
  start_server vg-matrix "$bin/scenario_server" 0 --ping 25000,20000
  for sc in binary acks rooms-broadcast middleware-refusal oversized-payload; do
    vg "$bin/matrix_client" "http://127.0.0.1:$port" "$sc" tests/scenarios.json
  done
  stop_server
}

# Scale-out over Redis: a real redis-server on a free port, an npm socket.io node with
# @socket.io/redis-adapter beside the C server of test_redis (broadcasts both ways, serverCount,
# serverSideEmit and serverSideEmitWithAck both ways), in the classic format (createAdapter) then
# the sharded one (createShardedAdapter), natively and under valgrind; then the emitter.
redis_cluster() {
  command -v redis-server >/dev/null || { echo "redis-server missing (apt-get install redis-server)" >&2; exit 1; }
  local rport
  rport=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no > "$logs/redis.log" 2>&1 &
  pids+=($!)
  local t0=$SECONDS
  until redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG; do
    [ $((SECONDS - t0)) -lt 30 ] || { echo "redis-server did not start" >&2; cat "$logs/redis.log" >&2; exit 1; }
    sleep 0.1
  done
  local format
  for format in classic sharded; do
    start_server "redis-node-$format" node tests/node/redis-cluster-node.js 0 "redis://127.0.0.1:$rport" "$format"
    "$bin/test_redis" "redis://127.0.0.1:$rport" "$port" "$format"
    vg "$bin/test_redis" "redis://127.0.0.1:$rport" "$port" "$format"
    stop_server || true
  done
  # The emitter (test_emitter): an npm socket.io node of each format it writes (and, classic, a
  # C server node) reached by a C program that is not a server.
  for format in classic streams; do
    start_server "emitter-node-$format" node tests/node/redis-emitter-node.js "redis://127.0.0.1:$rport" "$format"
    "$bin/test_emitter" "redis://127.0.0.1:$rport" "$port" "$format"
    [ "$format" = streams ] || POLYSIO_TEST_VALGRIND=1 vg "$bin/test_emitter" "redis://127.0.0.1:$rport" "$port" "$format"
    stop_server || true
  done
}

# The C scenario server in cluster mode (tests/SCENARIOS.md): two C nodes, and a C node beside
# npm socket.io, in both formats, checked by tests/node/cluster-client.js.
cluster_scenarios() {
  python3 tests/cluster --langs c --adapters classic,sharded --clients socket.io-client
}

examples() {
  READY='chat demo running' start_server chat "$build/examples/chat_server" 0 \
    examples/chat/index.html tests/node/node_modules/socket.io/client-dist/socket.io.min.js
  port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$logs/chat.log" | head -1)
  # the page and the browser client are served next to Socket.IO
  for path in / /client/socket.io.min.js; do
    node -e "require('http').get('http://127.0.0.1:$port$path',r=>process.exit(r.statusCode===200?0:1))"
  done
  "$build/examples/chat_client" "http://127.0.0.1:$port" bob lobby --once "hello from C++"
  stop_server
  # Socket.IO inside libmicrohttpd: the npm client (polling, then the upgrade), a chat echoed and acked.
  start_server mhd "$build/examples/mhd_server" 0
  (cd tests/node && node -e '
    const s = require("socket.io-client").io(process.argv[1], {reconnection: false});
    const t = setTimeout(() => { console.error("mhd_server: no answer"); process.exit(1); }, 10000);
    let acked = false, echoed = false;
    const done = () => { if (acked && echoed) { clearTimeout(t); s.close(); } };
    s.on("chat", (m) => { echoed = m === "hi"; done(); });
    s.on("connect", () => s.emit("chat", "hi", () => { acked = true; done(); }));
  ' "http://127.0.0.1:$port")
  stop_server
}

stage "tools and npm peers" install_tools
stage "cargo test -p polysio-ffi (header drift, unit tests)" cargo test -q -p polysio-ffi
stage "build, install, compile C/C++ tests and examples (pkg-config)" build_all
stage "C/C++ tests" native
stage "C client vs npm socket.io server" client_vs_reference_server
stage "npm socket.io-client vs C server (server-scenarios.js)" npm_client_vs_c_server
stage "tests/run-server c + npm client" run_server_c
stage "C server in a Redis cluster with an npm socket.io node; the C emitter" redis_cluster
stage "tests/cluster --langs c (classic, sharded)" cluster_scenarios
stage "valgrind (no leaks, no errors)" under_valgrind
stage "examples (chat server in C, client in C++)" examples
echo "ffi-c tests: all passed in $((SECONDS - t_all)) s"
