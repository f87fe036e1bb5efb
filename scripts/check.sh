#!/usr/bin/env bash
# Style and a basic type check, as CI runs them: ruff format (line length 100), ruff lint (pyflakes,
# pycodestyle, import order, the ban on importing interp.cli below the CLI) and mypy (undefined
# names and attributes, wrong call arguments; see [tool.mypy] in pyproject.toml for what is on).
# Fix formatting with: .venv/bin/ruff format . && .venv/bin/ruff check --fix .
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff format --check --quiet . || { echo "check: ruff format would change the files above" >&2; exit 1; }
.venv/bin/ruff check --quiet .
.venv/bin/mypy --no-error-summary
echo "check: ruff format, ruff lint and mypy pass"
