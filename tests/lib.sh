# Shell helpers shared by the test scripts (tests/all.sh, ffi-c/tests/run.sh, node/test/run.sh,
# py/tests/run.sh). Source it after `cd` to the repository root.

# stage NAME CMD...: runs CMD between two `=== NAME` lines, the second with the seconds it took.
stage() {
  local name=$1; shift
  local t0=$SECONDS
  echo "=== $name"
  "$@"
  echo "=== $name: $((SECONDS - t0)) s"
}

# The npm reference peers (tests/node, pinned by its lockfile), installed when missing or stale.
install_node_peers() {
  command -v node >/dev/null || { echo "node is required (Node 20)" >&2; exit 1; }
  if [ ! -d tests/node/node_modules/socket.io ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
    (cd tests/node && npm ci --no-audit --no-fund)
  fi
}
