#!/usr/bin/env bash
# Set up the workspace on a fresh machine: Poetry, the in-project .venv with exactly the locked
# packages, byte-compiled. Idempotent: a second run with an unchanged poetry.lock takes seconds.
#
#   bash scripts/setup.sh            # install (or confirm) the locked environment
#   bash scripts/setup.sh --force    # reinstall even if the lock has not changed
#
# Poetry installs straight from the index when the index answers Poetry's JSON API. Otherwise the lock
# is exported and installed with `pip install --require-hashes`, which honours pip's own configuration
# (mirrors, proxies, wheel folders), so the result is the same locked set either way.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

POETRY_VERSION="2.5.1"
POETRY_HOME_DIR="${POETRY_VENV:-$HOME/.local/share/kaggle-workspace-poetry}"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
start=$(date +%s)

# --- Python ------------------------------------------------------------------------------------
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || die "python3 not found; install Python 3.11, 3.12 or 3.13 (or set PYTHON=/path/to/python)"
pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case "$pyver" in
  3.11|3.12|3.13) ;;
  *) die "Python $pyver found at $(command -v "$PY"); this workspace needs 3.11, 3.12 or 3.13 (set PYTHON=/path/to/python3.11)";;
esac

# --- Poetry (with the export plugin) ------------------------------------------------------------
poetry_ok() { "$1" --version >/dev/null 2>&1 && "$1" export --help >/dev/null 2>&1; }
POETRY=""
if command -v poetry >/dev/null && poetry_ok poetry; then
  POETRY=$(command -v poetry)
elif [[ -x "$POETRY_HOME_DIR/bin/poetry" ]] && poetry_ok "$POETRY_HOME_DIR/bin/poetry"; then
  POETRY="$POETRY_HOME_DIR/bin/poetry"
else
  say "installing Poetry $POETRY_VERSION (+ export plugin) into $POETRY_HOME_DIR"
  "$PY" -m venv "$POETRY_HOME_DIR"
  "$POETRY_HOME_DIR/bin/pip" install -q --disable-pip-version-check \
    "poetry==$POETRY_VERSION" "poetry-plugin-export>=1.8" 2> >(grep -v '^WARNING: Location' >&2)
  POETRY="$POETRY_HOME_DIR/bin/poetry"
  mkdir -p "$HOME/.local/bin"
  [[ -e "$HOME/.local/bin/poetry" ]] || ln -s "$POETRY" "$HOME/.local/bin/poetry"
fi
say "poetry: $("$POETRY" --version) ($POETRY)"

# --- Is the environment already what the lock says? ---------------------------------------------
stamp=".venv/.locked-install"
want="$(sha256sum < poetry.lock | cut -c1-16)-py$pyver"
if [[ $FORCE == 0 && -x .venv/bin/python && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  say "environment is up to date with poetry.lock (.venv, Python $pyver) - nothing to do"
else
  if [[ -x .venv/bin/python ]] && ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "'"$pyver"'".split("."))))'; then
    say "removing .venv built for another Python"
    rm -rf .venv
  fi
  [[ -x .venv/bin/python ]] || { say "creating .venv (Python $pyver)"; "$PY" -m venv .venv; }

  # Poetry first; where it cannot read the index (some mirrors serve only pip's HTML pages), the
  # exported lock goes through pip, which installs the very same hashes.
  installed=0
  if [[ "${SETUP_INSTALLER:-auto}" != "pip" ]]; then
    say "installing the locked set with poetry sync"
    if "$POETRY" sync --with dev --compile --no-interaction >.venv/poetry-install.log 2>&1; then
      installed=1
    else
      say "poetry could not install from this index (see .venv/poetry-install.log); falling back to pip"
    fi
  fi
  if [[ $installed == 0 ]]; then
    say "installing the exported lock with pip --require-hashes"
    req=$(mktemp)
    trap 'rm -f "$req"' EXIT
    "$POETRY" export --with dev --format requirements.txt --output "$req"
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip>=24" \
      2> >(grep -v "^WARNING: Location" >&2)
    # pip's own warnings about unusable extra index folders are noise here; real errors still show.
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r "$req" \
      2> >(grep -v '^WARNING: Location' >&2)
    .venv/bin/python -m pip check >/dev/null || die "pip check found inconsistent packages in .venv; run: bash scripts/setup.sh --force"
  fi

  # Byte-compile once now; otherwise (e.g. with PYTHONDONTWRITEBYTECODE set) every start pays for it.
  say "byte-compiling .venv (one-off)"
  PYTHONDONTWRITEBYTECODE= .venv/bin/python -m compileall -q -j 0 \
    "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null 2>&1 || true
  .venv/bin/python -c 'import torch, pytorch_lightning, hydra, optuna, mlflow, src' \
    || die "the installed environment does not import; run: bash scripts/setup.sh --force"
  echo "$want" > "$stamp"
fi

# The project root on the venv's path, as `poetry install` does for the root package, but computed when Python
# starts (the folder holding .venv) instead of written down: a copied workspace (cp -r) imports its own src.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo 'import os, sys; _r = os.path.dirname(sys.prefix); _r in sys.path or sys.path.append(_r)' > "$site/kaggle_workspace.pth"
# A copied or moved workspace: its MLflow store still names the old folder's artifacts; point it here.
if [[ -f logs/mlruns/mlflow.db ]]; then
  .venv/bin/python -c 'from src.utils.track.store import relocate_store as r; o = r(); o and print(f"[setup] MLflow store moved from {o}")'
fi

mkdir -p _data/data/raw _data/feature logs/lightning logs/mlruns logs/optuna outputs multirun
say "done in $(( $(date +%s) - start )) s; .venv is $(du -sh .venv 2>/dev/null | cut -f1)"
say "next: bash scripts/demo.sh   (offline sample data through every stage)"
