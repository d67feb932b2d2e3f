#!/usr/bin/env bash
# Runs the chat demo (installs the npm socket.io package for its browser client if missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
[ -d tests/node/node_modules/socket.io ] || (cd tests/node && npm ci --no-audit --no-fund)
exec cargo run -q -p polysio --example chat -- "${1:-3000}"
