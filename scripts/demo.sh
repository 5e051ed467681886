#!/usr/bin/env bash
# The main job on the offline default data, from a fresh clone: set-up, raw data, every stage, and a
# short Optuna sweep of model01 (DEMO_TRIALS=5 trials). Ends with the best run_id and its metric.
#   bash scripts/demo.sh
#   bash scripts/demo.sh max_epochs=3     arguments go to the sweep's command line (any key of model01)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
t0=$(date +%s)
step() { printf '\n==> %s\n' "$*"; }

step "set-up (bash scripts/setup.sh)"
bash scripts/setup.sh
step "raw data (bash scripts/prepare_data.sh: offline sample unless raw data is already there)"
if [[ -f _data/data/raw/train.csv ]]; then
  echo "using the raw data already in _data/data/raw ($(head -c 300 _data/data/raw/SOURCE.json 2>/dev/null | tr -d '\n' || echo 'user-provided'))"
else
  bash scripts/prepare_data.sh
fi
step "dataset01 (src/dataset/dataset01/make_dataset.py)"
"$PY" src/dataset/dataset01/make_dataset.py
step "feature01 (src/feature/feature01/build_features.py)"
"$PY" src/feature/feature01/build_features.py

step "model01: Optuna sweep of ${DEMO_TRIALS:-5} trials over config/model/model01/hparams_search/lr_dropout.yaml"
# Re-running this script resumes the same study: it only runs what is missing to reach n_trials.
"$PY" src/model/model01/train.py -m hparams_search=lr_dropout "hydra.sweeper.n_trials=${DEMO_TRIALS:-5}" "$@"

printf '\n==> done in %d s. Browse every run: bash scripts/mlflow_ui.sh  (it prints the address of the runs table)\n' \
  "$(( $(date +%s) - t0 ))"
