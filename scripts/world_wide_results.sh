#!/usr/bin/env bash
# The analyzers' "must show" runs on the zoo's wide model `world-wide` (96 heads), CPU.
# Each writes figures (HTML) and summary.json under OUT/<analyzer>; the summaries are committed in
# results/world-wide/ (the HTML is not: regenerate it with this script).
#   bash scripts/world_wide_results.sh [OUT] [analyzer ...]      (default OUT: results/world-wide)
set -euo pipefail
OUT=${1:-results/world-wide}
shift || true
WHICH=${*:-"knowledge_conflict factual_recall induction entity_tracking"}
INTERP=${INTERP:-interp}
for a in $WHICH; do
  case $a in
    knowledge_conflict) $INTERP conflict world-wide --n-random 20 --out "$OUT/knowledge_conflict" ;;
    factual_recall)     $INTERP recall world-wide --n-random 20 --out "$OUT/factual_recall" ;;
    induction)          $INTERP induction world-wide --out "$OUT/induction" ;;
    # p(correct) saturates in a model that is sure of every box: path patching on the logit difference;
    # the box prompts share one layout, so an ablated head takes its mean at each position
    entity_tracking)    $INTERP entity world-wide --metric logit_diff --ablation position-mean --learned --out "$OUT/entity_tracking" ;;
    *) echo "unknown analyzer $a" >&2; exit 2 ;;
  esac
done
