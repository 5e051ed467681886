#!/usr/bin/env bash
# Browse this workspace's MLflow runs (logs/mlruns/mlflow.db + logs/mlruns/artifacts), from any directory.
#   bash scripts/mlflow_ui.sh                       http://127.0.0.1:5000
#   bash scripts/mlflow_ui.sh 5001                  another port
#   bash scripts/mlflow_ui.sh 5000 --host 0.0.0.0   reachable from other machines (no login: think twice)
#   bash scripts/mlflow_ui.sh --no-browser          do not open a browser
# It also prints the runs table of the experiment with the latest run (/#/experiments/<id>?workflowType=
# machine_learning: the "Model training" view, where MLflow alone would open on its GenAI pages) and, on a
# desktop (DISPLAY or WAYLAND_DISPLAY, xdg-open) in a terminal, opens it once the server answers.
# Ctrl-C stops it. From a laptop, prefer an SSH tunnel (ssh -L 5000:127.0.0.1:5000 host) to --host.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
require_venv

usage="usage: bash scripts/mlflow_ui.sh [PORT] [--host HOST] [--no-browser]"
PORT=5000
HOST=127.0.0.1
host_given=0
port_given=0
browser=1
while (($#)); do
  case "$1" in
    --host)
      [[ $# -ge 2 && -n "$2" ]] || { echo "error: --host needs an address, e.g. --host 0.0.0.0; $usage" >&2; exit 2; }
      HOST=$2; host_given=1; shift 2 ;;
    --host=*) HOST=${1#--host=}; host_given=1; shift ;;
    --no-browser) browser=0; shift ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *)
      if [[ $port_given == 0 && "$1" =~ ^[0-9]{1,5}$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535)); then
        PORT=$((10#$1)); port_given=1; shift
      else
        echo "error: unexpected argument '$1' (PORT must be a number 1-65535); $usage" >&2; exit 2
      fi ;;
  esac
done

DB="$ROOT/logs/mlruns/mlflow.db"
ARTIFACTS="$ROOT/logs/mlruns/artifacts"

require_free_port "$HOST" "$PORT" "MLflow UI" mlflow_ui.sh

mkdir -p "$ARTIFACTS"
# A damaged store is one error line (which file, what is wrong, how to recover it), never an empty UI or a traceback.
(cd "$ROOT" && "$PY" -S -m src.utils.track.store check "$DB") || exit 2
# Runs whose process died (kill -9, out of memory) would show RUNNING forever: end them FAILED (src/utils/track/liveness.py).
(cd "$ROOT" && "$PY" -m src.utils.track.liveness --tracking-uri "sqlite:///$DB" --found-by scripts/mlflow_ui.sh)

# Counting active runs straight from SQLite takes milliseconds (src/utils/track/store.py); importing mlflow for it
# would take seconds. Second line: the id and name of the experiment to land on.
{ read -r runs; IFS=$'\t' read -r landing_id landing_name || true; } < <(cd "$ROOT" && "$PY" -S -m src.utils.track.store landing "$DB")
if [[ "$runs" == 0 ]]; then
  echo "note: the MLflow store is empty (no runs in ${DB#"$ROOT"/} yet); create some with: bash scripts/demo.sh"
fi
if [[ -n "${MLFLOW_TRACKING_URI:-}" ]]; then
  echo "note: MLFLOW_TRACKING_URI=$MLFLOW_TRACKING_URI is ignored here; this UI shows the workspace store"
fi
if [[ $host_given == 1 && "$HOST" != 127.0.0.1 && "$HOST" != localhost && "$HOST" != ::1 ]]; then
  echo "warning: binding to $HOST: anyone who can reach this machine on port $PORT can read, change and delete" \
    "your runs (MLflow has no login here); prefer an SSH tunnel to the default 127.0.0.1" >&2
fi

case "$HOST" in 0.0.0.0|::|"[::]") url_host=127.0.0.1 ;; *:*) url_host="[$HOST]" ;; *) url_host=$HOST ;; esac
echo "MLflow UI: http://$url_host:$PORT  (store: ${DB#"$ROOT"/}, artifacts: ${ARTIFACTS#"$ROOT"/}; Ctrl-C to stop)"
if [[ -n "${landing_id:-}" ]]; then
  landing="http://$url_host:$PORT/#/experiments/$landing_id?workflowType=machine_learning"
  echo "Runs of ${landing_name}: $landing"
  # On a desktop, in a terminal, open it once the server answers: a waiter beside the server, which replaces
  # this shell below (the waiter gives up when the server exits or after 2 minutes).
  if [[ $browser == 1 && ( -n "${DISPLAY:-}" || -n "${WAYLAND_DISPLAY:-}" ) && -t 1 ]] \
      && command -v xdg-open >/dev/null; then
    ( wait_http "http://$url_host:$PORT/health" 120 "$$" && xdg-open "$landing" >/dev/null 2>&1 ) &
  fi
fi

# Runs keep file:// artifact URIs, which the server reads directly. --default-artifact-root and
# --artifacts-destination only matter for experiments created through the UI/REST API, and keep their
# artifacts in the same folder instead of ./mlruns or ./mlartifacts of whatever the current directory is.
# The job runner serves MLflow's GenAI jobs, which this workspace does not use; off, it saves a process
# (~250 MB).
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
# MLflow's own import of a deprecated Starlette module warns on every start; nothing for the user to do.
export PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:starlette.middleware.wsgi is deprecated"
unset MLFLOW_TRACKING_URI
cd "$ROOT"
artifacts_uri=$("$PY" -S -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).as_uri())' "$ARTIFACTS")
exec "$PY" -m mlflow server \
  --backend-store-uri "sqlite:///$DB" \
  --default-artifact-root "$artifacts_uri" \
  --artifacts-destination "$artifacts_uri" \
  --host "$HOST" --port "$PORT" --workers 1
