#!/usr/bin/env bash
# Shared services for sweeps that outgrow SQLite: a PostgreSQL server (Optuna studies, MLflow's store) and an MLflow
# tracking server on it that proxies the artifacts. Both listen on 127.0.0.1 only; data under logs/services/.
#
#   bash scripts/services.sh up        install PostgreSQL if missing (Debian package, as root), start both
#   bash scripts/services.sh env       the exports for this shell:  eval "$(bash scripts/services.sh env)"
#   bash scripts/services.sh status    what runs where
#   bash scripts/services.sh down      stop both; nothing is left running (the data stays)
#   bash scripts/services.sh import    copy the runs of the local store (logs/mlruns) to the MLflow server
#   bash scripts/services.sh slurm up|down|status   a one-node SLURM cluster on this machine (scripts/_slurm.sh)
#
# Ports: WORKSPACE_PG_PORT (54329) and WORKSPACE_MLFLOW_PORT (5055). The database password is generated on the
# first `up` and kept in logs/services/postgres/password (mode 0600); it is printed only by `env`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

usage="usage: bash scripts/services.sh up|down|status|env|import [--experiment NAME ...] | slurm up|down|status"
SERVICES="$ROOT/logs/services"
PG_DIR="$SERVICES/postgres"          # the password and logs; the server's own files are in $PG_DIR/server
PWFILE="$PG_DIR/password"
PG_PORT="${WORKSPACE_PG_PORT:-54329}"
MLFLOW_PORT="${WORKSPACE_MLFLOW_PORT:-5055}"
MLFLOW_PID="$SERVICES/mlflow.pid"
MLFLOW_LOG="$SERVICES/mlflow.log"
ARTIFACTS="$SERVICES/mlflow-artifacts"
HOST=127.0.0.1
DB_USER=workspace

die() { echo "error: $*" >&2; exit 1; }

# --- PostgreSQL: where its programs are, and who runs them ------------------------------------------------------
pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x "$d/pg_ctl" && -x "$d/initdb" ]] && { echo "$d"; return 0; }
  done
  d=$(command -v pg_ctl 2>/dev/null) && [[ -x "$(dirname "$d")/initdb" ]] && { dirname "$d"; return 0; }
  return 1
}

ensure_postgres() {
  PG_BIN=$(pg_bindir) && return 0
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "[services] installing PostgreSQL (Debian package postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
    PG_BIN=$(pg_bindir) || die "PostgreSQL was installed but pg_ctl/initdb were not found under /usr/lib/postgresql"
    return 0
  fi
  die "PostgreSQL is not installed; install it (sudo apt-get install postgresql) and run bash scripts/services.sh up again"
}

# PostgreSQL refuses to run as root: as root its programs run as the `postgres` user (made by the Debian package).
as_pg() {
  if [[ $(id -u) == 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# The server's folder (data, socket, log) must be reachable by the user it runs as. As root that is `postgres`,
# which cannot enter a workspace below a closed folder (/root, a 0700 home): its files then go to postgres's own
# home (/var/lib/postgresql), and logs/services/postgres/server points there.
server_dir() {
  local link="$PG_DIR/server"
  if [[ -L "$link" ]]; then readlink -f "$link"; return 0; fi
  if [[ -d "$link" || $(id -u) != 0 ]]; then echo "$link"; return 0; fi
  mkdir -p "$PG_DIR"
  if runuser -u postgres -- test -x "$PG_DIR" 2>/dev/null; then echo "$link"; return 0; fi
  local home key
  home=$(getent passwd postgres | cut -d: -f6)
  key=$("$PY" -S -c 'import hashlib, sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest()[:12])' "$ROOT")
  mkdir -p "$home/kaggle-workspace-$key"
  chown postgres: "$home/kaggle-workspace-$key"
  ln -sfn "$home/kaggle-workspace-$key" "$link"
  echo "$home/kaggle-workspace-$key"
}

locate_server() { SERVER=$(server_dir); PGDATA="$SERVER/data"; PG_SOCKETS="$SERVER/run"; }

pg_running() { [[ -n "${PG_BIN:-}" && -f "$PGDATA/PG_VERSION" ]] && as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }
mlflow_running() { [[ -f "$MLFLOW_PID" ]] && kill -0 "$(cat "$MLFLOW_PID")" 2>/dev/null; }
password() { cat "$PWFILE"; }

pg_up() {
  ensure_postgres
  mkdir -p "$PG_DIR"
  if [[ ! -f "$PWFILE" ]]; then
    (umask 077; token > "$PWFILE")
  fi
  chmod 600 "$PWFILE"
  if [[ $(id -u) == 0 ]]; then id postgres >/dev/null 2>&1 || as_pg true; fi
  locate_server
  if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
    echo "[services] creating the PostgreSQL cluster in ${PGDATA#"$ROOT"/}"
    mkdir -p "$PGDATA" "$PG_SOCKETS"
    local pw
    pw=$(mktemp)
    password > "$pw"
    if [[ $(id -u) == 0 ]]; then chown -R postgres: "$SERVER/" && chown postgres "$pw"; fi
    chmod 700 "$PGDATA" "$PG_SOCKETS"
    # the socket (trust) is reachable only by the server's own user; TCP on 127.0.0.1 needs the password
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U "$DB_USER" --pwfile="$pw" --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
      || { rm -f "$pw"; die "initdb failed; see ${PG_DIR#"$ROOT"/}/initdb.log"; }
    rm -f "$pw"
  fi
  if pg_running; then
    echo "[services] PostgreSQL already running on $HOST:$PG_PORT"
  else
    port_free "$HOST" "$PG_PORT" || die "port $PG_PORT on $HOST is already in use; choose another: WORKSPACE_PG_PORT=$((PG_PORT + 1)) bash scripts/services.sh up"
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$SERVER/postgres.log" -w -t 60 \
      -o "-c listen_addresses=$HOST -p $PG_PORT -k $PG_SOCKETS" start >/dev/null \
      || die "PostgreSQL did not start; see $SERVER/postgres.log"
  fi
  local db
  for db in optuna mlflow; do
    if [[ -z $(as_pg "$PG_BIN/psql" -h "$PG_SOCKETS" -p "$PG_PORT" -U "$DB_USER" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'") ]]; then
      as_pg "$PG_BIN/psql" -h "$PG_SOCKETS" -p "$PG_PORT" -U "$DB_USER" -d postgres -qc "CREATE DATABASE $db" >/dev/null
    fi
  done
}

mlflow_up() {
  if mlflow_running; then
    echo "[services] MLflow server already running on http://$HOST:$MLFLOW_PORT"
    return 0
  fi
  port_free "$HOST" "$MLFLOW_PORT" || die "port $MLFLOW_PORT on $HOST is already in use; choose another: WORKSPACE_MLFLOW_PORT=$((MLFLOW_PORT + 1)) bash scripts/services.sh up"
  mkdir -p "$ARTIFACTS"
  # The store URI (with its password) goes through the environment, not the command line `ps` shows.
  MLFLOW_BACKEND_STORE_URI="postgresql://$DB_USER:$(password)@$HOST:$PG_PORT/mlflow" \
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
  PYTHONWARNINGS="ignore:starlette.middleware.wsgi is deprecated" \
    setsid "$PY" -m mlflow server --serve-artifacts \
      --artifacts-destination "$("$PY" -S -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).as_uri())' "$ARTIFACTS")" \
      --host "$HOST" --port "$MLFLOW_PORT" --workers 1 >"$MLFLOW_LOG" 2>&1 < /dev/null &
  echo $! > "$MLFLOW_PID"
  wait_http "http://$HOST:$MLFLOW_PORT/health" 60 "$(cat "$MLFLOW_PID")" && return 0
  mlflow_running || die "the MLflow server exited; see ${MLFLOW_LOG#"$ROOT"/}"
  die "the MLflow server did not answer within 60 s; see ${MLFLOW_LOG#"$ROOT"/}"
}

mlflow_down() {
  mlflow_running || { rm -f "$MLFLOW_PID"; return 0; }
  local pid i
  pid=$(cat "$MLFLOW_PID")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  # its workers, if any outlived it
  for i in $(seq 1 20); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.25; done
  rm -f "$MLFLOW_PID"
}

status() {
  PG_BIN=$(pg_bindir || true)
  locate_server
  if pg_running; then
    echo "PostgreSQL: running on $HOST:$PG_PORT (data ${PGDATA#"$ROOT"/}, databases optuna and mlflow, user $DB_USER)"
  else
    echo "PostgreSQL: not running"
  fi
  if mlflow_running; then
    echo "MLflow server: running on http://$HOST:$MLFLOW_PORT (pid $(cat "$MLFLOW_PID"), artifacts ${ARTIFACTS#"$ROOT"/})"
  else
    echo "MLflow server: not running"
  fi
  if [[ -f "$ROOT/logs/slurm/run/slurmctld.pid" ]] && kill -0 "$(cat "$ROOT/logs/slurm/run/slurmctld.pid")" 2>/dev/null; then
    echo "SLURM cluster: running (bash scripts/services.sh slurm status)"
  fi
}

case "${1:-}" in
  up)
    require_venv
    start=$(date +%s.%N)
    pg_up
    mlflow_up
    echo "[services] up in $("$PY" -S -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.1f}")' "$start") s:" \
      "PostgreSQL $HOST:$PG_PORT, MLflow http://$HOST:$MLFLOW_PORT"
    echo "[services] use them in this shell: eval \"\$(bash scripts/services.sh env)\""
    ;;
  env)
    [[ -f "$PWFILE" ]] || die "no services yet; start them with: bash scripts/services.sh up"
    echo "export OPTUNA_STORAGE='postgresql://$DB_USER:$(password)@$HOST:$PG_PORT/optuna'"
    echo "export MLFLOW_TRACKING_URI='http://$HOST:$MLFLOW_PORT'"
    # the one-node SLURM cluster, while it runs: sbatch, squeue, sacct and scancel find it through SLURM_CONF
    if [[ -f "$ROOT/logs/slurm/run/slurmctld.pid" ]] && kill -0 "$(cat "$ROOT/logs/slurm/run/slurmctld.pid")" 2>/dev/null; then
      echo "export SLURM_CONF='$ROOT/logs/slurm/etc/slurm.conf'"
    fi
    ;;
  status) status ;;
  slurm) shift; exec bash "$ROOT/scripts/_slurm.sh" "$@" ;;
  import)
    require_venv
    mlflow_running || die "the MLflow server is not running; start it with: bash scripts/services.sh up"
    shift
    cd "$ROOT"
    exec "$PY" -m src.tools.move_runs --to "http://$HOST:$MLFLOW_PORT" "$@"
    ;;
  down)
    mlflow_down
    PG_BIN=$(pg_bindir || true)
    locate_server
    if pg_running; then as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null; fi
    echo "[services] stopped (data kept in ${SERVICES#"$ROOT"/})"
    ;;
  -h|--help) echo "$usage" ;;
  *) echo "error: unknown command '${1:-}'; $usage" >&2; exit 2 ;;
esac
