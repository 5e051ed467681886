"""Where the workspace's SQLite MLflow store keeps its artifacts, read with sqlite3 alone (no MLflow import), so an
entry script refuses a copied or moved workspace's store in a fraction of a second, before anything loads."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from src.utils.core.paths import MLRUNS_DIR, ROOT

DEFAULT_TRACKING_URI = f"sqlite:///{MLRUNS_DIR / 'mlflow.db'}"
_ARTIFACTS_TAIL = "/logs/mlruns/artifacts/"
_PATH_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"), ("logged_models", "artifact_location"),
                 ("model_versions", "source"), ("model_versions", "storage_location"), ("datasets", "dataset_source"))


def store_home(db: Path) -> Path | None:
    """The workspace root whose logs/mlruns/artifacts the SQLite store's experiments point at (None: no such)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True, timeout=60)) as con:
        try:
            rows = con.execute("SELECT artifact_location FROM experiments WHERE artifact_location LIKE ?",
                               (f"%{_ARTIFACTS_TAIL}%",)).fetchall()
        except sqlite3.OperationalError:  # no schema yet
            return None
    for (location,) in rows:
        path = location.removeprefix("file://")
        return Path(path[: path.index(_ARTIFACTS_TAIL)])
    return None


def relocate_store(root: Path = ROOT) -> Path | None:
    """Point a copied or moved workspace's SQLite store at its own logs/mlruns/artifacts (MLflow keeps absolute
    artifact locations); returns the root it pointed at before, or None when there was nothing to change."""
    import sqlite3

    db = root / "logs" / "mlruns" / "mlflow.db"
    if not db.is_file() or (old := store_home(db)) is None or old == root:
        return None
    with contextlib.closing(sqlite3.connect(db, timeout=60)) as con, con:
        tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table, column in _PATH_COLUMNS:
            if table in tables:
                con.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)",  # noqa: S608 (fixed names)
                            (str(old) + "/", str(root) + "/"))
    return old


def tracking_uri() -> str:
    """The store runs go to: MLFLOW_TRACKING_URI (a server, PostgreSQL), else the workspace's SQLite file."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def check_store() -> None:
    """Refuse a workspace store that names another workspace's artifacts (a copied or moved workspace)."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        check_store_home(MLRUNS_DIR / "mlflow.db")


def check_store_home(db: Path) -> None:
    home = store_home(db) if db.is_file() else None
    if home is not None and home != ROOT:
        from src.utils.core.errors import WorkspaceError

        raise WorkspaceError(f"{db.relative_to(ROOT)} keeps its artifacts in {home} (this workspace was copied or "
                             f"moved from there); run `bash scripts/setup.sh` in {ROOT} to point it at {ROOT}")


def landing(db: Path) -> tuple[int, tuple[str, str] | None]:
    """How many active runs the store holds, and the (id, name) of the experiment to land the UI on: the one with
    the most recent run (__debug__ only when it is the only one with runs). Milliseconds: sqlite3, no MLflow."""
    import sqlite3

    runs, latest = 0, None
    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=5)) as con:
            runs = con.execute("SELECT COUNT(*) FROM runs WHERE lifecycle_stage = 'active'").fetchone()[0]
            latest = con.execute(
                "SELECT e.experiment_id, e.name FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id"
                " WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' GROUP BY e.experiment_id"
                " ORDER BY e.name = '__debug__', MAX(r.start_time) DESC LIMIT 1").fetchone()
    except sqlite3.Error:  # no file yet, or no tables yet
        pass
    return runs, latest


if __name__ == "__main__":  # scripts/mlflow_ui.sh: `python -S -m src.utils.track.store landing <db>`
    if sys.argv[1:2] == ["landing"] and len(sys.argv) == 3:
        count, where = landing(Path(sys.argv[2]))
        print(count)
        if where:
            print(f"{where[0]}\t{where[1]}")
