#!/usr/bin/env bash
# TensorBoard on the runs trained with tensorboard=true (logs/tensorboard/<experiment>/<run_id>), from any directory.
#   bash scripts/tensorboard.sh            http://127.0.0.1:6006
#   bash scripts/tensorboard.sh 6007       another port
# Ctrl-C stops it. From a laptop, use an SSH tunnel (ssh -L 6006:127.0.0.1:6006 host) rather than opening the port.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
require_venv

usage="usage: bash scripts/tensorboard.sh [PORT]"
HOST=127.0.0.1
PORT=6006
port_argument "$usage" "$PORT" "$@"

require_free_port "$HOST" "$PORT" "TensorBoard" tensorboard.sh

LOGDIR="$ROOT/logs/tensorboard"
mkdir -p "$LOGDIR"
if [[ -z "$(find "$LOGDIR" -name 'events.out.tfevents*' -print -quit)" ]]; then
  echo "note: no TensorBoard logs yet in ${LOGDIR#"$ROOT"/}; train with them: poetry run python src/model/model01/train.py tensorboard=true"
fi
echo "TensorBoard: http://$HOST:$PORT  (logs: ${LOGDIR#"$ROOT"/}; Ctrl-C to stop)"
cd "$ROOT"
# the console script run with this workspace's Python (its #! line names the folder the .venv was made in)
exec "$PY" "$ROOT/.venv/bin/tensorboard" --logdir "$LOGDIR" --host "$HOST" --port "$PORT"
