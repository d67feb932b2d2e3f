#!/usr/bin/env bash
# The Node binding's test suite, from a clean clone: installs the npm dependencies (pinned by the
# lockfiles), builds the addon once (debug) into $CARGO_TARGET_DIR (default <repo>/target),
# checks that the generated native.d.ts / native.js are the committed ones, then runs every
# node:test suite. Prints how long each step took; exits non-zero on any failure.
set -euo pipefail
node_dir=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$node_dir/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
export POLYSIO_BUILD_PROFILE=debug
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

t_all=$SECONDS
source "$root/tests/lib.sh"

need() { command -v "$1" >/dev/null || { echo "$1 is required ($2)" >&2; exit 1; }; }
need node "Node >= 20 with npm (the tests run NestJS 12; the package itself needs 18)"
need npm "Node >= 18 with npm"
need cargo "Rust >= 1.88"
need redis-server "Debian's redis-server package, 7.0 or later: test/redis.test.js starts its own on a free port"

install_deps() {
  # The addon's build tools and the npm peers of the interop tests (node/package-lock.json), and
  # the reference peers of the repository (tests/node, for the chat page's browser client).
  (cd "$node_dir" && npm ci --ignore-scripts)
  (cd "$root/tests/node" && npm ci)
}

saved=$(mktemp -d)
trap 'rm -rf "$saved"' EXIT
cp "$node_dir/native.d.ts" "$node_dir/native.js" "$saved/"

build() {
  (cd "$node_dir" && node scripts/build.js)
}

check_generated() {
  local ok=0
  for f in native.d.ts native.js; do
    if ! diff -u "$saved/$f" "$node_dir/$f"; then
      echo "node/$f is out of date: the build regenerated it; commit the new one" >&2
      ok=1
    fi
  done
  return $ok
}

run_tests() {
  (cd "$node_dir" && node --test --test-reporter=spec --test-timeout=180000 test/*.test.js)
}

stage "npm ci (node/, tests/node/)" install_deps
stage "build the addon (debug, napi build)" build
stage "generated native.d.ts / native.js are up to date" check_generated
stage "node --test" run_tests
echo "node tests total: $((SECONDS - t_all)) s"
