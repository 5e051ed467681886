#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, slow tests included, plus the linter.
#   bash scripts/test.sh [pytest args]     e.g. bash scripts/test.sh -m "not slow" -x
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
bash scripts/setup.sh
echo "==> ruff check"
"$PY" -m ruff check src tests
echo "==> pytest"
exec "$PY" -m pytest "$@"
