#!/usr/bin/env bash
# What the workspace (Hydra + Optuna sweeper + Lightning + MLflow) costs over a bare PyTorch + Optuna loop on
# the same data, model, trials, epochs and seed; prints a table and writes it as JSON under outputs/bench/.
#   bash scripts/bench.sh                                   offline digits, 5 trials x 3 epochs
#   bash scripts/bench.sh --size mnist                      generated 60,000 + 10,000 images, 3 trials x 2 epochs
#   bash scripts/bench.sh --size mnist --trials 4 --epochs 1 --threads 1 --keep
# Runs in a throw-away copy under outputs/bench/ (kept with --keep); your logs/ and _data/ are not touched.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
require_venv
cd "$ROOT"
exec "$PY" -m src.utils.bench "$@"
