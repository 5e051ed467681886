"""Project paths, computed from the repository root, never from the current directory."""

from __future__ import annotations

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
LOGGING_DIR = LOGS_DIR / "logging_"
OUTPUTS_DIR = ROOT / "outputs"
MULTIRUN_DIR = ROOT / "multirun"


def resolve(path: str | Path) -> Path:
    """An absolute path: relative paths in configs are relative to the project root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else ROOT / p


def config_dir(stage: str, folder: str) -> str:
    """Absolute config folder of an experiment, e.g. config_dir("model", "model01")."""
    return str(CONFIG_DIR / stage / folder)


def _stable_id(items: object) -> str:
    """Short hash of a list of overrides: the same sweep command always maps to the same study."""
    import hashlib

    values = sorted(str(v) for v in (items or []))
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
        OmegaConf.register_new_resolver(_name, _fn)
