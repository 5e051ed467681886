"""Command-line checks that run before Hydra, so a typo gets one clear line instead of a stack of text."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from omegaconf import OmegaConf

from src.utils.paths import CONFIG_DIR

# Hydra's own flags whose next argument is not an override, and modes where overrides are not checked.
_FLAGS_WITH_VALUE = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun"}
_SKIP_MODES = {"-sc", "--shell-completion", "-h", "--help", "--hydra-help", "--info", "-i", "--cfg", "-c"}
_MISSING = object()


def unknown_override_keys(config_file: Path, argv: list[str]) -> list[tuple[str, list[str]]]:
    """(key, close matches) for each `key=value` override whose key is not in the config file."""
    if any(a in _SKIP_MODES or a.split("=")[0] in _SKIP_MODES for a in argv):
        return []
    cfg = OmegaConf.load(config_file)
    known = [k for k in cfg if k not in ("defaults", "hydra")]
    out, skip_next = [], False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg in _FLAGS_WITH_VALUE:
            skip_next = True
            continue
        if arg.startswith("-") or "=" not in arg:
            continue
        key = arg.split("=", 1)[0]
        # +key adds, ~key deletes, hydra.* and group/option overrides are Hydra's to check
        if key.startswith(("+", "~", "hydra.", "hydra/")) or "/" in key or "@" in key:
            continue
        if OmegaConf.select(cfg, key, default=_MISSING) is _MISSING:
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(cfg, parent, default=None) if parent else None
            siblings = [f"{parent}.{k}" for k in node] if OmegaConf.is_dict(node) else known
            out.append((key, difflib.get_close_matches(key, siblings, n=2)))
    return out


def check_overrides(stage: str, folder: str, config_name: str = "config", argv: list[str] | None = None) -> None:
    """Exit with one line if an override names a key the experiment's config does not have."""
    config_file = CONFIG_DIR / stage / folder / f"{config_name}.yaml"
    bad = unknown_override_keys(config_file, sys.argv[1:] if argv is None else argv)
    if bad:
        key, close = bad[0]
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        print(f"error: unknown config key '{key}'{hint} in {config_file.relative_to(CONFIG_DIR.parent)}; "
              f"fix the spelling, or add a new key with +{key}=...", file=sys.stderr)
        sys.exit(2)
