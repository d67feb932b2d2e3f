#!/usr/bin/env bash
# Runs the chat demo on http://127.0.0.1:PORT/ (default 3000) with the server of your choice:
#   bash examples/chat/run.sh [rust|node|python] [PORT]
# Installs what it needs on first use (the npm socket.io package for the browser client; the
# Node addon or the Python wheel for those servers).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
lang=rust
case "${1:-}" in rust|node|python) lang=$1; shift ;; esac
port=${1:-3000}
[ -d tests/node/node_modules/socket.io ] || (cd tests/node && npm ci --no-audit --no-fund)
case "$lang" in
  rust) exec cargo run -q -p polysio --example chat -- "$port" ;;
  node)
    bash node/scripts/dev-build.sh
    exec node examples/chat/chat.js "$port" ;;
  python)
    source py/tests/setup-env.sh
    exec "$PY_VENV/bin/python" examples/chat/chat.py "$port" ;;
esac
