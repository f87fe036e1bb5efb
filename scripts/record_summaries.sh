#!/usr/bin/env bash
# Record every analyzer's summary.json on world-base and world-wide at fixed seeds, for the
# behaviour-preserving check of a restructure: run it before and after, then compare with
#   python scripts/compare_summaries.py BEFORE AFTER
#   bash scripts/record_summaries.sh OUT            (INTERP overrides the command, e.g. "python -m interp.cli";
#                                                   MODELS the zoo models, default "world-base world-wide")
set -euo pipefail
OUT=${1:?usage: record_summaries.sh OUT}
INTERP=${INTERP:-interp}
run() { local dir=$1; shift; mkdir -p "$OUT/$(dirname "$dir")"; echo "== $dir: $*" >&2; $INTERP "$@" --out "$OUT/$dir" >"$OUT/$dir.log" 2>&1 || { echo "failed: $dir (see $OUT/$dir.log)" >&2; exit 1; }; }
mkdir -p "$OUT"
for m in ${MODELS:-world-base world-wide}; do
  run "$m/retrieval" retrieval "$m"
  run "$m/knowledge_conflict" conflict "$m"
  run "$m/factual_recall" recall "$m"
  run "$m/induction" induction "$m"
  run "$m/entity_tracking" entity "$m"
done
run "rep2l/induction_damage" induction-damage --family rep2l
