"""The code a run logs (its `code/` artifact, and the code of its models): what it executes and what unpickles them."""

from __future__ import annotations

import shutil
from pathlib import Path

from src.utils.core.paths import ROOT


def code_snapshot(dest: Path, experiment_dir: Path) -> Path:
    """A minimal `src` package under `dest` (utils, tasks and the experiment folder, at its place in the workspace):
    what a run executes and what its model needs to unpickle."""
    src = dest / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src" / "utils", src / "utils", ignore=ignore)
    shutil.copytree(ROOT / "src" / "tasks", src / "tasks", ignore=ignore)  # the competition's task node builds these
    rel = experiment_dir.resolve().relative_to(ROOT)
    shutil.copytree(experiment_dir, dest / rel, ignore=ignore)
    for parent in [src, *(dest / p for p in rel.parents if str(p) != ".")]:
        (parent / "__init__.py").touch()
    return src


def packages(dest: Path) -> list[str]:
    """The top-level packages of a code snapshot (src, and the experiment's own when it lives elsewhere)."""
    return sorted(str(p) for p in dest.iterdir() if p.is_dir())
