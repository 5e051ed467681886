#!/usr/bin/env bash
# What the workspace (Hydra + Optuna sweeper + Lightning + MLflow) costs over a bare PyTorch + Optuna loop on
# the same data, model, trials, epochs and seed; prints a table and writes it as JSON under outputs/bench/.
#   bash scripts/bench.sh                                   model01, offline digits, 5 trials x 3 epochs
#   bash scripts/bench.sh --experiment model02              another model folder: src/model/model02/train.py,
#                                                           config/model/model02/ and its features (feature_dir)
#   bash scripts/bench.sh --size mnist                      generated 60,000 + 10,000 images, 3 trials x 2 epochs
#   bash scripts/bench.sh --size mnist --trials 4 --epochs 1 --threads 1 --keep
#   bash scripts/bench.sh --help                            every option
# Runs in a throw-away copy under outputs/bench/ (kept with --keep); your logs/ and _data/ are not touched.
# Implemented by src/tools/bench.py, the floor by src/tools/bench_floor.py.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
require_venv
cd "$ROOT"
exec "$PY" -m src.tools.bench "$@"
