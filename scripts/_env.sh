# Sourced by the scripts in this folder: project root, the project's Python, MLflow defaults.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true

# .env (git-ignored; see .env.example): credentials and settings for every script, read by the same code as the
# Python entry points (src/utils/core/env.py): a variable already set wins; WORKSPACE_DOTENV=0 ignores it. Before
# the environment exists (the first `bash scripts/setup.sh`) there is nothing to read it with, and nothing needs it.
if [[ -f "$ROOT/.env" && "${WORKSPACE_DOTENV:-1}" != 0 && -x "$PY" ]]; then
  eval "$(cd "$ROOT" && "$PY" -m src.utils.core.env)"
fi
# The Python helpers the scripts share (standard library only, hence -S; run from the root, where `src` is):
# `token` prints a new random token (a server's password, Jupyter's token); `redact_uri URI` prints URI with its
# password as ***; `wait_http URL SECONDS [PID]` returns 0 once URL answers, 1 after SECONDS or once PID is gone.
ws_helper() { (cd "$ROOT" && "$PY" -S -m "src.utils.core.$1" "${@:2}"); }
token() { ws_helper redaction token; }
redact_uri() { ws_helper redaction uri "$1"; }
wait_http() { ws_helper servers "$@"; }

require_venv() {
  if [[ ! -x "$PY" ]]; then
    echo "error: the workspace environment is missing ($PY); run: bash scripts/setup.sh" >&2
    exit 1
  fi
}

# Binding (not connecting) is the test the server itself will face: it also catches a listener on another
# interface (e.g. 0.0.0.0). SO_REUSEADDR as servers use it, so a port in TIME_WAIT does not count as busy.
port_free() {
  "$PY" -S - "$1" "$2" <<'PYEOF'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
    except OSError:
        sys.exit(1)
PYEOF
}

# Exit with one line if HOST:PORT is taken, naming a free port and the command to use it.
require_free_port() {  # HOST PORT WHAT SCRIPT
  local host=$1 port=$2 what=$3 script=$4 alt
  port_free "$host" "$port" && return 0
  alt=$((port + 1))
  while ((alt < port + 50 && alt <= 65535)) && ! port_free "$host" "$alt"; do alt=$((alt + 1)); done
  echo "error: port $port on $host is already in use (another $what?); choose another port: bash scripts/$script $alt" >&2
  exit 1
}

# The one optional argument of the UI scripts: a port number (sets PORT, else keeps the default); -h: usage.
port_argument() {  # USAGE DEFAULT_PORT [ARG...]
  local usage=$1
  PORT=$2
  shift 2
  case "${1:-}" in
    "") ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *)
      if [[ $# -eq 1 && "$1" =~ ^[0-9]{1,5}$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535)); then
        PORT=$((10#$1))
      else
        echo "error: unexpected argument(s) '$*' (PORT must be a number 1-65535); $usage" >&2; exit 2
      fi ;;
  esac
}
