"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.core.paths import CONFIG_DIR, RAW_DIR, ROOT, config_dir, resolve, shown

__all__ = ["CONFIG_DIR", "RAW_DIR", "ROOT", "config_dir", "resolve", "shown"]
