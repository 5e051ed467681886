#!/usr/bin/env bash
# optuna-dashboard on this workspace's Optuna studies (logs/optuna/optuna.db, or $OPTUNA_STORAGE), from any directory.
#   bash scripts/optuna_dashboard.sh                 http://127.0.0.1:8080
#   bash scripts/optuna_dashboard.sh 8081            another port
# Ctrl-C stops it. From a laptop, use an SSH tunnel (ssh -L 8080:127.0.0.1:8080 host) rather than opening the port.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
require_venv

usage="usage: bash scripts/optuna_dashboard.sh [PORT]"
HOST=127.0.0.1
PORT=8080
port_argument "$usage" "$PORT" "$@"

require_free_port "$HOST" "$PORT" "Optuna dashboard" optuna_dashboard.sh

DB="$ROOT/logs/optuna/optuna.db"
STORAGE="${OPTUNA_STORAGE:-sqlite:///$DB}"
if [[ -z "${OPTUNA_STORAGE:-}" && ! -s "$DB" ]]; then
  echo "note: no Optuna study yet (${DB#"$ROOT"/} is empty); start one with:" \
    "poetry run python src/model/model01/train.py -m hparams_search=lr_dropout"
  mkdir -p "$(dirname "$DB")"
fi
shown=$(redact_uri "$STORAGE")
echo "Optuna dashboard: http://$HOST:$PORT  (storage: $shown; Ctrl-C to stop)"
cd "$ROOT"
# run the console script with this workspace's Python (its #! line names the folder the .venv was made in)
exec "$PY" "$ROOT/.venv/bin/optuna-dashboard" "$STORAGE" --quiet --host "$HOST" --port "$PORT"
