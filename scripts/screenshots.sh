#!/usr/bin/env bash
# Re-take the two README images from the demo's HTML (after `interp demo --out figures/`).
set -euo pipefail
cd "$(dirname "$0")/.."
shot() { chromium --headless --disable-gpu --no-sandbox --hide-scrollbars --window-size="$3" \
           --virtual-time-budget=5000 --screenshot="$2" "file://$PWD/$1" 2>/dev/null; }
shot figures/atlas.html figures/atlas.png 1100,900
shot figures/knowledge_conflict/conflict_heads.html figures/knowledge_conflict.png 900,600
# The KV curve of the README, redrawn from the committed SmolLM2 summary (no rerun).
kv=$(mktemp -d -p . .kv-shot.XXXX)
.venv/bin/python -c "
import sys; from circuits import kv_compression as K
K.from_summary('results/smollm2-135m/kv_compression/summary.json').figures()['kv_compression']\
.write_html(sys.argv[1] + '/kv.html', include_plotlyjs=True)" "$kv"
shot "${kv#./}/kv.html" figures/kv_compression_smollm2.png 900,560
rm -rf "$kv"
