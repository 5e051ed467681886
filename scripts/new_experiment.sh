#!/usr/bin/env bash
# Start a new experiment folder as a copy of an existing one (src/<stage>/<name>/ and config/<stage>/<name>/),
# with the folder's own name replaced inside. The source stays frozen; an existing folder is never overwritten.
#   bash scripts/new_experiment.sh model model01            next free number: model02, model03, ...
#   bash scripts/new_experiment.sh feature feature01
#   bash scripts/new_experiment.sh model model01 model07    an explicit name
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
require_venv
cd "$ROOT"
exec "$PY" -m src.utils.new_experiment "$@"
