#!/usr/bin/env bash
# Builds the addon for use from this checkout: installs the napi CLI pinned in
# node/package-lock.json when missing or stale, then builds incrementally (profile
# $POLYSIO_BUILD_PROFILE, default debug). Progress goes to stderr.
# With POLYSIO_PREBUILT=1 (tests/all.sh, once the matrix has built every host) a debug addon
# already in place is kept: the napi CLI rewrites polysio.<platform>.node in place even when
# nothing changed, and a process loading it meanwhile (the cluster checks run beside the chat
# demo and the benchmark smoke) fails in require() on a half-written file.
set -euo pipefail
node_dir=$(cd "$(dirname "$0")/.." && pwd)
profile=${POLYSIO_BUILD_PROFILE:-debug}
if [ -n "${POLYSIO_PREBUILT:-}" ] && [ "$profile" = debug ] && compgen -G "$node_dir/polysio.*.node" >/dev/null; then
  exit 0
fi
if [ ! -d "$node_dir/node_modules/@napi-rs/cli" ] || [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules" ]; then
  (cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
fi
POLYSIO_BUILD_PROFILE=$profile node "$node_dir/scripts/build.js" >&2
