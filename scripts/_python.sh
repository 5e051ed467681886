#!/usr/bin/env bash
# The one wrapper behind the Python tools: scripts/prepare_data.sh, new_experiment.sh, new_diary.sh, bench.sh,
# kaggle_pack.sh and rerun.sh are links to this file. It runs the workspace's Python from the project root on the module named
# for the link, with your arguments. Each tool's usage: bash scripts/<tool>.sh --help
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
require_venv
cd "$ROOT"
tool=$(basename "$0" .sh)
case "$tool" in
  prepare_data) module=src.dataset.prepare_data ;;    # raw data in the Kaggle layout (never downloads)
  new_experiment) module=src.tools.new_experiment ;;  # copy an experiment folder to the next number
  new_diary) module=src.tools.diary ;;                # today's diary entry with today's runs
  bench) module=src.tools.bench ;;                    # the workspace's cost over a bare PyTorch + Optuna loop
  kaggle_pack) module=src.tools.kaggle_pack ;;        # a run as a Kaggle dataset + offline inference notebook
  rerun) module=src.tools.rerun ;;                    # re-run a finished run from what MLflow holds, compare
  *) echo "error: scripts/$tool.sh is not a tool of scripts/_python.sh; link one of prepare_data.sh," \
       "new_experiment.sh, new_diary.sh, bench.sh, kaggle_pack.sh, rerun.sh to it" >&2; exit 2 ;;
esac
exec "$PY" -m "$module" "$@"
