#!/usr/bin/env bash
# Start a long run or sweep in the background (survives logout), from the project root, with its output in
# logs/background/<timestamp>_<name>.log and its PID in <that log>.pid.
#   bash scripts/run_bg.sh python src/model/model01/train.py fold=all
#   bash scripts/run_bg.sh python src/model/model01/train.py -m 'lr=interval(1e-4,1e-1)'
#   bash scripts/run_bg.sh bash scripts/demo.sh
# `python` is the project's .venv/bin/python. Stop a run with `kill <PID>` (SIGTERM).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

if (($# == 0)); then
  echo "usage: bash scripts/run_bg.sh <command...>   e.g. bash scripts/run_bg.sh python src/model/model01/train.py fold=all" >&2
  exit 2
fi

cd "$ROOT"
# The same interpreter as every other script here, whatever is (or is not) activated in this shell.
export PATH="$ROOT/.venv/bin:$PATH"
if ! type -P "$1" >/dev/null; then
  echo "error: '$1' is not an executable on PATH or a runnable file; for a script, name its interpreter:" \
    "bash scripts/run_bg.sh bash $1  (or python $1)" >&2
  exit 127
fi

# Short name for the log: the first word that is not an interpreter, an option or VAR=value, e.g.
# "python src/model/model01/train.py -m ..." -> model01_train, "python -m src.model.model01.train" -> model01_train.
name=""
for word in "$@"; do
  case "$(basename -- "$word")" in
    python|python3|python3.*|bash|sh|env|nohup|time|poetry|uv|run|exec|-*|*=*) continue ;;
  esac
  word=${word%.py}; word=${word%.sh}
  if [[ "$word" == */* ]]; then
    word="$(basename -- "$(dirname -- "$word")")_$(basename -- "$word")"
  elif [[ "$word" =~ ^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$ ]]; then
    rest=${word%.*}
    word="${rest##*.}_${word##*.}"
  fi
  name=$word
  break
done
name=$(tr -c 'A-Za-z0-9._-' '_' <<<"${name:-run}" | sed -E 's/_+/_/g; s/^[._]+//; s/_+$//' | cut -c1-40)

dir="$ROOT/logs/background"
mkdir -p "$dir"
stamp=$(date +%Y-%m-%d_%H-%M-%S)
log="$dir/${stamp}_${name:-run}.log"
n=2
while [[ -e "$log" ]]; do log="$dir/${stamp}_${name:-run}-$n.log"; n=$((n + 1)); done

{
  echo "# started $(date '+%Y-%m-%d %H:%M:%S %z') in $ROOT"
  printf '# command:'; printf ' %q' "$@"; echo
} > "$log"

# setsid: its own session and process group, so a closed terminal or a Ctrl-C here does not reach it, and
# `kill -- -PID` stops its children too (sweep workers, DataLoader workers). nohup: ignore SIGHUP as well.
# Started from a non-interactive shell, the background job is no group leader, so setsid does not fork
# and $! is the command's own PID. macOS has no setsid; nohup alone still survives the logout.
launcher=(nohup)
command -v setsid >/dev/null && launcher=(setsid nohup)
"${launcher[@]}" "$@" >>"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" > "$log.pid"

rel=${log#"$ROOT"/}
echo "started in the background: $*"
echo "pid:    $pid"
echo "log:    $log"
echo "follow: tail -f $log"
if [[ ${launcher[0]} == setsid ]]; then
  echo "stop:   kill $pid   (SIGTERM; with its child processes: kill -- -$pid)"
else
  echo "stop:   kill $pid   (SIGTERM)"
fi
echo "pid file: $rel.pid"
