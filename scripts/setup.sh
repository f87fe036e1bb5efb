#!/usr/bin/env bash
# Set up interp in ./.venv on a fresh machine: CPU torch first (a plain `torch` would pull a
# multi-GB CUDA build), then the package with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
log=$(mktemp)
pip_install() {
  if ! .venv/bin/python -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    grep -v "is ignored" "$log" >&2; echo "setup: pip install $* failed" >&2; exit 1
  fi
}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip_install "torch==2.13.0"
pip_install -e ".[dev]"
.venv/bin/python -c "import interp, torch; print('interp', interp.__version__, '| torch', torch.__version__)"
