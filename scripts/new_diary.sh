#!/usr/bin/env bash
# Open the analysis diary for a day: creates diary/YYYY-MM-DD.md from diary/template.md with a table of that
# day's MLflow runs (every experiment) and the sweeps' best trials, or appends a new section if the file exists.
#   bash scripts/new_diary.sh               today
#   bash scripts/new_diary.sh 2024-05-01    another day
# Prints the file's path, so: ${EDITOR:-vi} "$(bash scripts/new_diary.sh)"
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
require_venv
cd "$ROOT"
exec "$PY" -m src.utils.diary "$@"
