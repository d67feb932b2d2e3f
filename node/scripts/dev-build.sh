#!/usr/bin/env bash
# Builds the addon for use from this checkout: installs the napi CLI pinned in
# node/package-lock.json when missing or stale, then builds incrementally (profile
# $POLYSIO_BUILD_PROFILE, default debug). Progress goes to stderr.
set -euo pipefail
node_dir=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$node_dir/node_modules/@napi-rs/cli" ] || [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules" ]; then
  (cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
fi
POLYSIO_BUILD_PROFILE=${POLYSIO_BUILD_PROFILE:-debug} node "$node_dir/scripts/build.js" >&2
