#!/usr/bin/env bash
# Re-take the two README images from the demo's HTML (after `interp demo --out figures/`).
set -euo pipefail
cd "$(dirname "$0")/.."
shot() { chromium --headless --disable-gpu --no-sandbox --hide-scrollbars --window-size="$3" \
           --virtual-time-budget=5000 --screenshot="$2" "file://$PWD/$1" 2>/dev/null; }
shot figures/atlas.html figures/atlas.png 1100,900
shot figures/knowledge_conflict/conflict_heads.html figures/knowledge_conflict.png 900,600
