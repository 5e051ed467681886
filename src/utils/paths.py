"""Project paths, computed from the repository root, never from the current directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from omegaconf import OmegaConf

ROOT: Path = Path(__file__).resolve().parents[2]
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


def _load_dotenv() -> None:
    """.env (git-ignored; see .env.example): credentials and settings; a variable already set wins.
    WORKSPACE_DOTENV=0 ignores it (the test suite sets it, so a developer's credentials never reach a test)."""
    if (ROOT / ".env").is_file() and os.environ.get("WORKSPACE_DOTENV") != "0":
        from dotenv import load_dotenv

        load_dotenv(ROOT / ".env", override=False)


_load_dotenv()


def resolve(path: str | Path) -> Path:
    """An absolute path: relative paths in configs are relative to the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else ROOT / p


def shown(path: str | Path) -> str:
    """A path for messages: relative to the project root when inside it."""
    p = Path(path)
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def experiment_of(file: str | Path) -> tuple[str, str]:
    """(stage, folder) of a file inside an experiment folder: src/model/model01/train.py -> ("model", "model01")."""
    parts = Path(file).resolve().parts
    return parts[-3], parts[-2]


def config_dir(file: str | Path) -> str:
    """The config folder mirroring the experiment folder that holds `file` (config/<stage>/<folder>)."""
    return str(CONFIG_DIR.joinpath(*experiment_of(file)))


def workspace_of(file: str | Path) -> Path | None:
    """The workspace root that holds `file` under its src/ (None for files outside any workspace)."""
    parts = Path(file).resolve().parts
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] == "src" and Path(*parts[:i], "src", "utils", "paths.py").is_file():
            return Path(*parts[:i])
    return None


def _refuse_foreign_workspace() -> None:
    """A script of workspace B run with code imported from workspace A would read and write A's _data/ and logs/
    (a copied folder, or B run with A's .venv whose path file names A): stop before anything is touched."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    other = workspace_of(main_file) if main_file else None
    if other is not None and other != ROOT:
        raise SystemExit(
            f"error: {main_file} belongs to the workspace {other}, but Python imported the workspace code from {ROOT} "
            f"(the .venv in use points there); run it with {other}/.venv/bin/python (after `bash scripts/setup.sh` "
            f"in {other}) or with PYTHONPATH={other}")


_refuse_foreign_workspace()


def _stable_id(items: object, space: object = None) -> str:
    """Short hash of a list of overrides (and a search space): the same sweep command always maps to the same
    study; a search space from config (hydra.sweeper.params) counts with its content, not only its name."""
    import hashlib

    values = sorted(str(v) for v in (items or []))
    if space:
        values.append(str(sorted((str(k), str(v)) for k, v in dict(space).items())))
    return hashlib.sha256("\n".join(values).encode()).hexdigest()[:10]


def _direction(mode: str) -> str:
    if mode not in ("max", "min"):
        raise ValueError(f"monitor_mode must be max or min, not {mode!r}")
    return "maximize" if mode == "max" else "minimize"


# Config resolvers, registered before Hydra composes any config:
#   ${root:}            the project root, so output dirs and stores never depend on the cwd
#   ${stable_id:LIST}   short hash of a list (sweep overrides -> Optuna study name)
#   ${direction:max}    Optuna direction for a monitor mode
for _name, _fn in (("root", lambda: str(ROOT)), ("stable_id", _stable_id), ("direction", _direction)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_resolver(_name, _fn)
