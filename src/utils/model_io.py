"""Saving models into MLflow so that `mlflow.pytorch.load_model("runs:/<id>/model")` gives the class back."""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mlflow
import torch

from src.utils.paths import ROOT


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


@contextlib.contextmanager
def plain_partials(model: torch.nn.Module) -> Iterator[None]:
    """Hydra 1.4's `_partial_` factories refuse to be pickled; while a model is saved, its factory attributes (the
    optimizer and scheduler of the config) are plain `functools.partial`s of the same call."""
    swapped = [(m, name, value) for m in model.modules() for name, value in vars(m).items()
               if isinstance(value, functools.partial) and type(value) is not functools.partial]
    for m, name, value in swapped:
        setattr(m, name, functools.partial(value.func, *value.args, **value.keywords))
    try:
        yield
    finally:
        for m, name, value in swapped:
            setattr(m, name, value)


def log_torch_model(model: torch.nn.Module, name: str, experiment_dir: Path) -> None:
    """Log `model` pickled (not the pt2 export, which reloads as a GraphModule) with the code it needs."""
    import pytorch_lightning

    with tempfile.TemporaryDirectory() as tmp, plain_partials(model):
        code_snapshot(Path(tmp), experiment_dir)
        mlflow.pytorch.log_model(
            model.cpu().eval(),
            name=name,
            serialization_format="pickle",
            code_paths=packages(Path(tmp)),
            # explicit, so MLflow does not spend seconds inferring them in a subprocess
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}",
                              f"pytorch-lightning=={pytorch_lightning.__version__}",
                              f"mlflow=={mlflow.__version__}"],
        )
