#!/usr/bin/env bash
# Creates tests/python/venv with the pinned reference Python peers (idempotent).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$here/venv/bin/python" ] || [ "$here/requirements.txt" -nt "$here/venv/.installed" ]; then
  python3 -m venv "$here/venv"
  "$here/venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
  touch "$here/venv/.installed"
fi
