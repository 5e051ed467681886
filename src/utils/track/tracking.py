"""MLflow setup shared by every stage: one store under logs/mlruns, whatever the current directory.

The tracking URI defaults to `sqlite:///<root>/logs/mlruns/mlflow.db` with artifacts under
`logs/mlruns/artifacts/<experiment>`. Set MLFLOW_TRACKING_URI (e.g. an MLflow server or PostgreSQL) to
scale out; nothing else changes.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow  # the entry point's set-up (src/utils/cli/setup.py) has turned MLflow's telemetry off before this

from src.utils.core.paths import MLRUNS_DIR, ROOT
from src.utils.core.redaction import redact
from src.utils.track.liveness import end_dead_runs_of
from src.utils.track.store import check_store_home as _check_store_home
from src.utils.track.store import tracking_uri

ARTIFACTS_DIR = MLRUNS_DIR / "artifacts"
# The UI opens a model-training experiment on its runs (not on the GenAI overview of traces and tokens).
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
def browse_hint() -> str:
    """Where a person looks at the runs: this workspace's UI script, or the tracking server."""
    uri = tracking_uri()
    return f"browse: {uri}" if uri.startswith(("http://", "https://")) else "browse: bash scripts/mlflow_ui.sh"


_READY: set[str] = set()


def setup_mlflow(uri: str | None = None) -> str:
    """Point MLflow at the workspace store (creating it if needed) and return the URI."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///") and uri not in _READY:
        db = Path(uri.removeprefix("sqlite:///"))
        if db == MLRUNS_DIR / "mlflow.db":
            _check_store_home(db)  # a copied workspace must not write into the original's artifacts
        _init_sqlite_store(uri, db)
        _READY.add(uri)
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    if uri not in _REAPED:  # once per process: end the runs whose process died (kill -9, out of memory)
        _REAPED.add(uri)
        end_dead_runs_of(uri, command_line()[:300])
    return uri


_REAPED: set[str] = set()


def _init_sqlite_store(uri: str, db: Path) -> None:
    """Create the SQLite store once, under a file lock, in WAL mode.

    Two processes that start on a missing database otherwise both run MLflow's schema migrations and one
    of them fails; WAL lets readers (the UI, a notebook) work while sweeps write.
    """
    import sqlite3

    from filelock import FileLock

    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(db) + ".lock", timeout=300):
        mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # creates/migrates the schema
        with contextlib.closing(sqlite3.connect(db, timeout=60)) as con:
            if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                con.execute("PRAGMA journal_mode=WAL")


def get_or_create_experiment(name: str) -> str:
    """Experiment id for `name`; new experiments keep their artifacts under logs/mlruns/artifacts."""
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        location = os.environ.get("MLFLOW_ARTIFACT_ROOT")
        if location:
            location = f"{location.rstrip('/')}/{name}"
        elif not mlflow.get_tracking_uri().startswith(("http://", "https://")):
            location = (ARTIFACTS_DIR / name).as_uri()
        # else: an MLflow server keeps the artifacts where it is configured to (proxied: mlflow-artifacts:/)
        try:
            return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS)
        except mlflow.exceptions.MlflowException:
            # Another process created it between our look-up and our create.
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    for key, value in EXPERIMENT_TAGS.items():  # an experiment made elsewhere (the UI, a notebook) lacks them
        if exp.tags.get(key) != value:
            client.set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id


def log_data_input(name: str, path: Path, digest: str, context: str, tags: dict[str, str] | None = None) -> None:
    """Record the data folder a run read as the run's input (the UI's Dataset column: name and digest)."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():  # "can be interpreted in multiple ways": both are the local-files source
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(path))
    dataset = MetaDataset(source, name=name, digest=digest[:20])
    for attempt in range(3):
        try:
            mlflow.log_input(dataset, context=context, tags=tags)
            return
        except mlflow.exceptions.MlflowException as exc:
            # Two runs logging the same new dataset at once on a server's SQL store: one insert loses the race on
            # the dataset's key and its whole request is rolled back; again, the dataset exists and is only linked.
            if "already exists" not in str(exc) or attempt == 2:
                raise
            time.sleep(0.2 * (attempt + 1))


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested mapping → ("a.b.c", value) pairs, for MLflow params."""
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, f"{name}.")
        else:
            yield name, value


def log_params_flat(cfg: Mapping[str, Any]) -> None:
    """Log a (resolved) config as flattened params, secrets redacted, cut to MLflow's length limit."""
    params = {k: str(v)[:6000] for k, v in flatten(redact(cfg))}
    items = list(params.items())
    for i in range(0, len(items), 100):
        mlflow.log_params(dict(items[i : i + 100]))


def git_info() -> dict[str, str]:
    """Commit and dirty flag of the workspace (empty values outside a git checkout)."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
            )
            return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit or "unknown", "git_dirty": str(bool(dirty)).lower() if commit else "unknown"}


def command_line() -> str:
    return " ".join([Path(sys.executable).name, *sys.argv])


def standard_tags(stage: str, folder: str, path: str | None = None) -> dict[str, str]:
    """Tags every run carries: where its code lives (`path`, default src/<stage>/<folder>), which commit, how it
    was started."""
    from src.utils.core.hashing import tree_sha256

    path = path or f"src/{stage}/{folder}"
    return {
        **git_info(),
        "stage": stage,
        "experiment_folder": path,
        "code_hash": tree_sha256(ROOT / path),
        "utils_hash": tree_sha256(ROOT / "src" / "utils"),
        "command": command_line(),
        "mlflow.source.name": path,
    }
