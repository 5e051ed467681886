#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, slow tests included, plus the linter.
#   bash scripts/test.sh [pytest args]     e.g. bash scripts/test.sh -m "not slow" -x
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
bash scripts/setup.sh

# The browser tests (tests/test_browser.py) drive Debian's Chromium through chromium-driver: installed here when
# missing and run as root (as scripts/services.sh installs PostgreSQL); without them those tests skip. A run of
# the fast tests alone (-m "not slow") does not need them.
have_chromium() {
  command -v chromedriver >/dev/null && { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }
}
if [[ " $* " != *"not slow"* ]] && ! have_chromium; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "==> installing Chromium for the browser tests (Debian packages chromium chromium-driver)"
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq chromium chromium-driver; } >/dev/null \
      || echo "warning: installing chromium chromium-driver failed; the browser tests (tests/test_browser.py)" \
        "will skip" >&2
  else
    echo "note: chromium and chromium-driver are not installed, so the browser tests (tests/test_browser.py)" \
      "skip; install them (sudo apt-get install chromium chromium-driver) to run them"
  fi
fi
echo "==> ruff check"
"$PY" -m ruff check src tests
echo "==> pytest"
# On every core (pytest-xdist), one test module per worker at a time: a module's tests share its workspace and run in
# order, the longest modules first (tests/conftest.py). PYTEST_WORKERS=1 (or -n 0 among the arguments) runs them in
# this process.
exec "$PY" -m pytest -n "${PYTEST_WORKERS:-auto}" --dist loadfile --no-loadscope-reorder "$@"
