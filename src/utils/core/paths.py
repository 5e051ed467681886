"""Project paths, computed from the repository root, never from the current directory.

Imports nothing of src; nothing happens at import (`check_workspace` is called by the entry points' set-up)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT: Path = Path(__file__).resolve().parents[3]
CONFIG_DIR = ROOT / "config"
DATA_DIR = ROOT / "_data" / "data"
RAW_DIR = DATA_DIR / "raw"
FEATURE_DIR = ROOT / "_data" / "feature"
LOGS_DIR = ROOT / "logs"
MLRUNS_DIR = LOGS_DIR / "mlruns"
LIGHTNING_DIR = LOGS_DIR / "lightning"
TENSORBOARD_DIR = LOGS_DIR / "tensorboard"
OUTPUTS_DIR = ROOT / "outputs"
MULTIRUN_DIR = ROOT / "multirun"


def resolve(path: str | Path) -> Path:
    """An absolute path: relative paths in configs are relative to the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else ROOT / p


def shown(path: str | Path) -> str:
    """A path for messages: relative to the project root when inside it."""
    p = Path(path)
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def folder_of(file: str | Path) -> tuple[str, str]:
    """(stage, folder) of a file inside an experiment folder: src/model/model01/train.py -> ("model", "model01")."""
    parts = Path(file).resolve().parts
    return parts[-3], parts[-2]


def config_dir(file: str | Path) -> str:
    """The config folder mirroring the experiment folder that holds `file` (config/<stage>/<folder>)."""
    return str(CONFIG_DIR.joinpath(*folder_of(file)))


def workspace_of(file: str | Path) -> Path | None:
    """The workspace root that holds `file` under its src/ (None for files outside any workspace)."""
    parts = Path(file).resolve().parts
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] == "src" and Path(*parts[:i], "src", "utils", "paths.py").is_file():
            return Path(*parts[:i])
    return None


def check_workspace() -> None:
    """A script of workspace B run with code imported from workspace A would read and write A's _data/ and logs/
    (a copied folder, or B run with A's .venv whose path file names A): stop before anything is touched."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    other = workspace_of(main_file) if main_file else None
    if other is not None and other != ROOT:
        raise SystemExit(
            f"error: {main_file} belongs to the workspace {other}, but Python imported the workspace code from {ROOT} "
            f"(the .venv in use points there); run it with {other}/.venv/bin/python (after `bash scripts/setup.sh` "
            f"in {other}) or with PYTHONPATH={other}")
