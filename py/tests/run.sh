#!/usr/bin/env bash
# The Python binding's test suite, from a clean clone: installs what it needs (npm reference
# peers, a venv with maturin, pytest, mypy, python-socketio, uvicorn), builds one debug abi3
# wheel with maturin, installs it, then runs pytest (which also checks the stubs, type-checks,
# and installs the wheel into fresh venvs). Prints how long each step took; non-zero on failure.
# Uses $CARGO_TARGET_DIR if set, else <repo>/target. Needs: Rust, Python >= 3.9 (python3, or
# $PYTHON), Node 20 with npm.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
t_all=$SECONDS
source tests/lib.sh
stage "npm reference peers" install_node_peers
stage "Python reference peers for tests/run-server python-socketio" bash tests/python/setup.sh
# Sourced, so PY_VENV and POLYSIO_WHEEL reach pytest.
stage "python venv and debug wheel (maturin)" source py/tests/setup-env.sh
stage "pytest" "$PY_VENV/bin/python" -m pytest py/tests -q -p no:cacheprovider --timeout 300 --durations=10 "$@"
echo "=== py/tests/run.sh total: $((SECONDS - t_all)) s"
