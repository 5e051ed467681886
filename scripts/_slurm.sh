#!/usr/bin/env bash
# A one-node SLURM cluster on this machine (127.0.0.1 only), for trying the cluster commands and for the tests:
# munge, MariaDB (the accounting database), slurmdbd, slurmctld and slurmd, all from Debian's packages, configured
# for this machine's cores and memory, one partition. Its configuration, state, databases and logs live in
# logs/slurm/; nothing else is written outside the system packages. Needs root (slurmd starts the jobs' processes).
#
#   bash scripts/services.sh slurm up       install the packages if missing (apt, as root), start the cluster
#   bash scripts/services.sh slurm status   the daemons, the node, the queue
#   bash scripts/services.sh slurm down     cancel every job, stop the daemons (the configuration and accounting stay)
#
# The client commands (sbatch, squeue, sacct, scancel) find this cluster through SLURM_CONF, which
# `eval "$(bash scripts/services.sh env)"` exports while it is up. Ports: WORKSPACE_SLURM_PORT (6817: slurmctld;
# +1 slurmd, +2 slurmdbd, +3 MariaDB). Partition: WORKSPACE_SLURM_PARTITION (main).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

usage="usage: bash scripts/services.sh slurm up|down|status"
DIR="$ROOT/logs/slurm"
ETC="$DIR/etc"
CONF="$ETC/slurm.conf"
RUN="$DIR/run"
LOGDIR="$DIR/log"
PORT="${WORKSPACE_SLURM_PORT:-6817}"
PARTITION="${WORKSPACE_SLURM_PARTITION:-main}"
DB_PORT=$((PORT + 3))
MUNGE_SOCKET="$RUN/munge/munge.socket"
DB_SOCKET="$RUN/mariadb.sock"
HOST=127.0.0.1
export SLURM_CONF="$CONF"

die() { echo "error: $*" >&2; exit 1; }
say() { echo "[slurm] $*"; }

ensure_packages() {
  local missing=() cmd
  for cmd in munged slurmctld slurmd slurmdbd sbatch mariadbd; do
    command -v "$cmd" >/dev/null || PATH="$PATH:/usr/sbin" command -v "$cmd" >/dev/null || missing+=("$cmd")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing SLURM (Debian packages slurm-wlm, slurmdbd, munge, mariadb-server)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # the packages' own services stay off (no init system here, or one we must not touch): we start ours
    apt-get install -y -qq slurm-wlm slurmdbd munge mariadb-server >/dev/null 2>&1 \
      || die "apt-get install slurm-wlm slurmdbd munge mariadb-server failed; run it by hand to see why"
    return 0
  fi
  die "SLURM is not installed (missing: ${missing[*]}); install it as root: apt-get install slurm-wlm slurmdbd munge mariadb-server"
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {  # SECONDS WHAT COMMAND...
  local limit=$1 what=$2 end
  shift 2
  end=$((SECONDS + limit))
  while ((SECONDS < end)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  die "$what did not come up within $limit s; see ${LOGDIR#"$ROOT"/}/"
}

# --- configuration: written on the first `up`, from this machine's own figures -------------------------------------
configure() {
  mkdir -p "$ROOT/logs/jobs" "$ETC" "$RUN/munge" "$LOGDIR" "$DIR/state" "$DIR/spool" "$DIR/munge" "$DIR/mariadb"
  chmod 700 "$DIR/munge" "$RUN/munge"
  chmod 755 "$RUN"
  if [[ ! -s "$DIR/munge/munge.key" ]]; then
    (umask 077; head -c 1024 /dev/urandom > "$DIR/munge/munge.key")
  fi
  chmod 400 "$DIR/munge/munge.key"
  if [[ ! -s "$DIR/mariadb/password" ]]; then
    (umask 077; token > "$DIR/mariadb/password")
  fi
  local node cpus sockets cores threads mem
  node=$(hostname -s)
  # slurmd -C: this machine as slurmd sees it; the node is declared with the same layout (else it is drained)
  read -r cpus sockets cores threads mem < <(slurmd -C | "$PY" -S -c '
import re, sys
f = dict(re.findall(r"(\w+)=(\S+)", sys.stdin.read()))
print(f["CPUs"], f.get("SocketsPerBoard", 1), f.get("CoresPerSocket", 1), f.get("ThreadsPerCore", 1), f["RealMemory"])')
  mem=$((mem * 9 / 10))  # what jobs may ask for; the rest stays for the system and the daemons
  cat > "$CONF" <<EOF
# Written by bash scripts/services.sh slurm up for this machine; rewritten on every up.
ClusterName=workspace
SlurmctldHost=$node($HOST)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
# no cgroups: this works in containers and on any kernel; processes are tracked by their parents
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
# a job past its time limit or cancelled gets SIGTERM, then SIGKILL $((10)) s later
KillWait=10
OverTimeLimit=0
MinJobAge=600
InactiveLimit=0
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$HOST
AccountingStoragePort=$((PORT + 2))
# the munge socket for the accounting daemon's connections (AuthInfo is for the rest)
AccountingStoragePass=$MUNGE_SOCKET
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
NodeName=$node NodeAddr=$HOST CPUs=$cpus SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
  (umask 077; cat > "$ETC/slurmdbd.conf" <<EOF
# Written by bash scripts/services.sh slurm up; the accounting daemon (sacct) on the MariaDB below.
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=$(hostname -s)
DbdAddr=$HOST
DbdPort=$((PORT + 2))
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOGDIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=$HOST
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$DIR/mariadb/password")
StorageLoc=slurm_acct_db
EOF
  )
  chmod 600 "$ETC/slurmdbd.conf"
}

# --- the daemons -----------------------------------------------------------------------------------------------------
munge_up() {
  pid_alive "$RUN/munged.pid" && return 0
  munged --key-file="$DIR/munge/munge.key" --socket="$MUNGE_SOCKET" --pid-file="$RUN/munged.pid" \
    --log-file="$LOGDIR/munged.log" --seed-file="$DIR/munge/munge.seed" --force 2>>"$LOGDIR/munged.log" \
    || die "munged did not start; see ${LOGDIR#"$ROOT"/}/munged.log"
  wait_for 10 munged munge --socket="$MUNGE_SOCKET" -n
}

db() { mariadb --no-defaults --socket="$DB_SOCKET" -u root "$@"; }

mariadb_up() {
  local data="$DIR/mariadb/data"
  if [[ ! -d "$data/mysql" ]]; then
    mariadb-install-db --no-defaults --user=root --datadir="$data" --auth-root-authentication-method=socket \
      --skip-test-db >"$LOGDIR/mariadb-install.log" 2>&1 \
      || die "mariadb-install-db failed; see ${LOGDIR#"$ROOT"/}/mariadb-install.log"
  fi
  if ! pid_alive "$RUN/mariadb.pid"; then
    port_free "$HOST" "$DB_PORT" || die "port $DB_PORT on $HOST is already in use; choose other ports: WORKSPACE_SLURM_PORT=$((PORT + 10)) bash scripts/services.sh slurm up"
    setsid mariadbd --no-defaults --user=root --datadir="$data" --socket="$DB_SOCKET" --port="$DB_PORT" \
      --bind-address="$HOST" --pid-file="$RUN/mariadb.pid" --log-error="$LOGDIR/mariadb.log" \
      --innodb-buffer-pool-size=256M --innodb-log-file-size=64M --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
    wait_for 60 MariaDB db -e "SELECT 1"
  fi
  local pw
  pw=$(cat "$DIR/mariadb/password")
  db -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
         CREATE USER IF NOT EXISTS 'slurm'@'$HOST' IDENTIFIED BY '$pw';
         ALTER USER 'slurm'@'$HOST' IDENTIFIED BY '$pw';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'$HOST';"
}

slurm_daemons_up() {
  local p
  for p in "$PORT" $((PORT + 1)) $((PORT + 2)); do
    port_free "$HOST" "$p" || die "port $p on $HOST is already in use; choose other ports: WORKSPACE_SLURM_PORT=$((PORT + 10)) bash scripts/services.sh slurm up"
  done
  slurmdbd 2>>"$LOGDIR/slurmdbd.log" || die "slurmdbd did not start; see ${LOGDIR#"$ROOT"/}/slurmdbd.log"
  wait_for 60 slurmdbd timeout 10 sacctmgr -n list cluster
  sacctmgr -n list cluster format=cluster | grep -qw workspace || sacctmgr -i add cluster workspace >/dev/null
  slurmctld -f "$CONF" 2>>"$LOGDIR/slurmctld.log" || die "slurmctld did not start; see ${LOGDIR#"$ROOT"/}/slurmctld.log"
  wait_for 60 slurmctld timeout 10 scontrol ping
  slurmd -f "$CONF" 2>>"$LOGDIR/slurmd.log" || die "slurmd did not start; see ${LOGDIR#"$ROOT"/}/slurmd.log"
  wait_for 60 "the node" node_idle
}

node_idle() { timeout 10 sinfo -h -N -o '%T' | grep -qE '^(idle|mixed|allocated)'; }

running() { pid_alive "$RUN/slurmctld.pid" && pid_alive "$RUN/slurmd.pid"; }

up() {
  [[ $(id -u) == 0 ]] || die "the one-node cluster needs root (slurmd starts jobs as their users); run: sudo bash scripts/services.sh slurm up"
  require_venv
  ensure_packages
  local start
  start=$(date +%s.%N)
  if running && pid_alive "$RUN/slurmdbd.pid"; then
    say "already running (partition $PARTITION); see: bash scripts/services.sh slurm status"
    return 0
  fi
  configure
  munge_up
  mariadb_up
  slurm_daemons_up
  say "up in $("$PY" -S -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.1f}")' "$start") s:" \
    "node $(hostname -s) ($(sinfo -h -N -o '%c CPUs, %m MB')), partition $PARTITION, slurmctld $HOST:$PORT"
  say "use it in this shell: eval \"\$(bash scripts/services.sh env)\"  (exports SLURM_CONF)"
}

stop_pidfile() {  # PIDFILE: TERM, wait up to 20 s, then KILL
  local f=$1 pid i
  [[ -f "$f" ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 80; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

down() {
  if [[ ! -f "$CONF" ]]; then say "not configured (nothing to stop)"; return 0; fi
  if running; then
    # every job first: slurmd's job steps (slurmstepd) would outlive the daemons
    scancel --full --signal=TERM --partition="$PARTITION" 2>/dev/null || true
    scancel --partition="$PARTITION" 2>/dev/null || true
    local i
    for ((i = 0; i < 120; i++)); do
      [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
      sleep 0.5
    done
  fi
  stop_pidfile "$RUN/slurmd.pid"
  stop_pidfile "$RUN/slurmctld.pid"
  stop_pidfile "$RUN/slurmdbd.pid"
  stop_pidfile "$RUN/mariadb.pid"
  stop_pidfile "$RUN/munged.pid"
  say "stopped (configuration, state and accounting kept in ${DIR#"$ROOT"/})"
}

status() {
  local name f
  for name in munged mariadb slurmdbd slurmctld slurmd; do
    f="$RUN/$name.pid"
    if pid_alive "$f"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: not running"; fi
  done
  if running; then
    sinfo -N -o '%N %P %T %c %m'
    squeue -o '%.12i %.9P %.24j %.8T %.10M %R'
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  -h|--help) echo "$usage" ;;
  *) echo "error: unknown command 'slurm ${1:-}'; $usage" >&2; exit 2 ;;
esac
