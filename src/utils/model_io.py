"""Saving models into MLflow so that `mlflow.pytorch.load_model("runs:/<id>/model")` gives the class back."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import mlflow
import torch

from src.utils.paths import ROOT


def code_snapshot(dest: Path, experiment_dir: Path) -> Path:
    """A minimal `src` package under `dest` (utils + the experiment folder): what a run executes and what its
    model needs to unpickle."""
    src = dest / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src" / "utils", src / "utils", ignore=ignore)
    rel = experiment_dir.resolve().relative_to(ROOT / "src")
    shutil.copytree(experiment_dir, src / rel, ignore=ignore)
    for parent in [src, *(src / p for p in rel.parents if str(p) != ".")]:
        (parent / "__init__.py").touch()
    return src


def log_torch_model(model: torch.nn.Module, name: str, experiment_dir: Path) -> None:
    """Log `model` pickled (not the pt2 export, which reloads as a GraphModule) with the code it needs."""
    import pytorch_lightning

    with tempfile.TemporaryDirectory() as tmp:
        code = code_snapshot(Path(tmp), experiment_dir)
        mlflow.pytorch.log_model(
            model.cpu().eval(),
            name=name,
            serialization_format="pickle",
            code_paths=[str(code)],
            # explicit, so MLflow does not spend seconds inferring them in a subprocess
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}",
                              f"pytorch-lightning=={pytorch_lightning.__version__}",
                              f"mlflow=={mlflow.__version__}"],
        )
