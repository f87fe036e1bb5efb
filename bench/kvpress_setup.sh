#!/usr/bin/env bash
# Builds the side venv for bench/kvpress_generate.py: kvpress 0.5.5 needs transformers<5.3,>=4.56,
# which cannot live in our venv (transformers 5.23), so it gets its own. kvpress goes in with
# --no-deps, then only what `import kvpress` needs (requests, cachetools, datasets, fire: its
# __init__ imports DuoAttentionPress and ExpectedAttentionStatsPress) at its pinned ranges;
# peft and accelerate (RestoreKVPress, device maps) are not needed for the presses used here.
# Never installs anything into .venv. Reproduce the comparison: see bench/kvpress_compare.py.
#
#   bash bench/kvpress_setup.sh [VENV]        # default /tmp/kvpvenv
set -euo pipefail
VENV="${1:-/tmp/kvpvenv}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install torch==2.13.0 transformers==5.2.0
"$VENV/bin/pip" install --no-deps kvpress==0.5.5
"$VENV/bin/pip" install "cachetools>=5.5.2,<6" "fire>=0.6.0,<0.7" "requests>=2.32.3,<3" \
    "datasets>=2.21.0" "pandas>=2.2.2,<3" torch==2.13.0 transformers==5.2.0
"$VENV/bin/python" -c "import kvpress, transformers; print('kvpress ok, transformers', \
transformers.__version__)"
