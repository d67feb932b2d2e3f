#!/usr/bin/env bash
# Prepares the Python test environment; source it (it sets PY_VENV and POLYSIO_WHEEL) or run it.
#  - a venv at $CARGO_TARGET_DIR/py-venv (default <repo>/target) with py/tests/requirements.txt,
#    re-created when that file changes;
#  - a debug abi3 wheel of py/ built by maturin into $CARGO_TARGET_DIR/py-wheels, installed into
#    the venv when it changed (skipped with PY_ENV_NO_WHEEL=1).
# Progress goes to stderr. Concurrent callers (several scenario servers) wait on a lock.
set -euo pipefail
_py_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$_py_root/target}
PY_VENV=$CARGO_TARGET_DIR/py-venv
_py_wheels=$CARGO_TARGET_DIR/py-wheels
mkdir -p "$CARGO_TARGET_DIR" "$_py_wheels"
exec 9>"$CARGO_TARGET_DIR/py-env.lock"
flock 9
_py_req=$_py_root/py/tests/requirements.txt
_py_stamp=$(sha256sum "$_py_req" | cut -c1-16)
if [ "$(cat "$PY_VENV/.requirements" 2>/dev/null)" != "$_py_stamp" ]; then
  echo "py: creating $PY_VENV" >&2
  rm -rf "$PY_VENV"
  "${PYTHON:-python3}" -m venv "$PY_VENV"
  "$PY_VENV/bin/pip" install -q --disable-pip-version-check -r "$_py_req" >&2
  echo "$_py_stamp" >"$PY_VENV/.requirements"
fi
POLYSIO_WHEEL=
if [ -z "${PY_ENV_NO_WHEEL:-}" ]; then
  echo "py: maturin build (debug)" >&2
  (cd "$_py_root/py" && "$PY_VENV/bin/maturin" build -q -o "$_py_wheels" >&2)
  POLYSIO_WHEEL=$(ls -t "$_py_wheels"/polysio-*.whl | head -1)
  _py_sum=$(sha256sum "$POLYSIO_WHEEL" | cut -c1-16)
  if [ "$(cat "$PY_VENV/.polysio-wheel" 2>/dev/null)" != "$_py_sum" ]; then
    "$PY_VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$POLYSIO_WHEEL" >&2
    echo "$_py_sum" >"$PY_VENV/.polysio-wheel"
  fi
fi
flock -u 9
exec 9>&-
export PY_VENV POLYSIO_WHEEL
