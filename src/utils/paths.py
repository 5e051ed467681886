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


# `${root:}` in any YAML resolves to the project root, so Hydra's output dirs never depend on the cwd.
if not OmegaConf.has_resolver("root"):
    OmegaConf.register_new_resolver("root", lambda: str(ROOT))
