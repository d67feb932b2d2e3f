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

# parallel_stages "NAME|CMD" ...: runs each CMD (a shell command line) as a stage in the
# background, all at once, each one's output kept in a file and printed as a block once it ends
# (so that blocks never interleave); fails after all ended if any failed. CMD runs under
# `set -e`: chain stages in it with `;`, not `&&` (a function on the left of && ignores errexit). For stages that share no
# ports and no build step.
parallel_stages() {
  local dir spec name pids=() names=() i rc=0 one t0=$SECONDS
  dir=$(mktemp -d)
  for spec in "$@"; do
    name=${spec%%|*}
    names+=("$name")
    ( set -e; stage "$name" bash -c "set -e; ${spec#*|}" ) >"$dir/${#pids[@]}.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    one=0
    wait "${pids[$i]}" || one=$?
    cat "$dir/$i.log"
    if [ "$one" != 0 ]; then echo "=== ${names[$i]}: FAILED (exit $one)"; rc=$one; fi
  done
  rm -rf "$dir"
  echo "=== parallel stages: $((SECONDS - t0)) s"
  return "$rc"
}

# The npm reference peers (tests/node, pinned by its lockfile), installed when missing or stale.
install_node_peers() {
  command -v node >/dev/null || { echo "node is required (Node 20)" >&2; exit 1; }
  if [ ! -d tests/node/node_modules/socket.io ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
    (cd tests/node && npm ci --no-audit --no-fund)
  fi
}
