"""The process environment a workspace command runs with: `.env` and the MLflow defaults, set by `load()`.

`.env` (git-ignored; see .env.example) holds credentials and settings; a variable already set wins, and
WORKSPACE_DOTENV=0 ignores the file (the test suite sets it, so a developer's credentials never reach a test).
The shell scripts read it through this module too (`python -m src.utils.core.env` prints the `export` lines).
"""

from __future__ import annotations

import os
import shlex
import sys

from src.utils.core.paths import ROOT

DOTENV = ROOT / ".env"
# MLflow reads these when it is imported: telemetry off, no progress bars, no URL lines (ours name the run and UI)
MLFLOW_DEFAULTS = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
                   "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def dotenv_values() -> dict[str, str]:
    """The variables `.env` sets that the environment does not already hold (empty when ignored or absent)."""
    if not DOTENV.is_file() or os.environ.get("WORKSPACE_DOTENV") == "0":
        return {}
    from dotenv import dotenv_values as parse

    return {k: v for k, v in parse(DOTENV).items() if v is not None and k not in os.environ}


def load() -> None:
    """`.env` and the MLflow defaults into os.environ (a variable already set wins); idempotent."""
    for key, value in {**MLFLOW_DEFAULTS, **dotenv_values()}.items():
        os.environ.setdefault(key, value)


def main() -> int:
    """The `export` lines a shell script evaluates (scripts/_env.sh)."""
    for key, value in dotenv_values().items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
