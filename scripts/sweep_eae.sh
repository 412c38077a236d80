#!/usr/bin/env bash
# The EAE sweep behind the digits default (issue: samples that beat every baseline). Each setting is
# trained with 3 seeds as queued DVC experiments (python -m pipelines.orchestration.table1 --prefix ...) and
# summarised in reports/sweeps/<name>.json; compare them with the Table 1 baselines (make table1).
#   bash scripts/sweep_eae.sh [NAME ...]        # default: every setting below
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-3}
declare -A SETTINGS=(
  [paper]=""
  [k3]="objectives.eae.entropy_k=3"
  [k10]="objectives.eae.entropy_k=10"
  [b005]="entropy_weight=0.05"
  [b05]="entropy_weight=0.5"
  [warmup]="objectives.eae.entropy_start_weight=0.0 objectives.eae.entropy_ramp_epochs=30"
  [cooldown]="entropy_weight=0.05 objectives.eae.entropy_start_weight=1.0 objectives.eae.entropy_ramp_epochs=40"
  [bic]="density.gmm_selection=bic density.gmm_components=30"
  [d16]="model.latent_dim=16"
  [batch200]="train.batch_size=200"
  [long]="train.epochs=150 train.lr_decay=0.98"
  [sn]="objectives.eae.spectral_norm=true"
  [l2]="objectives.eae.decoder_l2=2.56e-05"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(paper k3 k10 b005 b05 warmup cooldown bic d16 batch200 long sn l2)
mkdir -p reports/sweeps
for name in "${names[@]}"; do
  sets=()
  for kv in ${SETTINGS[$name]}; do sets+=(--set "$kv"); done
  python -m pipelines.orchestration.table1 --objectives eae --seeds "$SEEDS" --prefix "sw-$name" \
    --output "reports/sweeps/$name.json" --no-report "${sets[@]}"
done
