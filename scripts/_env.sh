# Sourced by the scripts in this folder: project root, the project's Python, MLflow defaults.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
require_venv() {
  if [[ ! -x "$PY" ]]; then
    echo "error: the workspace environment is missing ($PY); run: bash scripts/setup.sh" >&2
    exit 1
  fi
}
