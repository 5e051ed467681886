"""Where the workspace's SQLite MLflow store keeps its artifacts, and whether it (or a sweep's SQLite study storage)
can be read at all, with sqlite3 alone (no MLflow import), so an entry script refuses a copied, moved or damaged
store in a fraction of a second, in one line, before anything loads or writes."""

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


def damaged(db: Path, reason: str, what: str = "the MLflow store") -> Exception:
    """The one error line for a SQLite file that cannot be read: which file, what is wrong, and how to recover it."""
    from src.utils.core.errors import WorkspaceError

    name = os.path.relpath(db, ROOT) if Path(db).resolve().is_relative_to(ROOT) else str(db)
    # .dump of a damaged file ends with ROLLBACK, which would undo the rows it could read: they are committed instead
    # (sqlite3's .recover does the same, where the CLI's version has a working one)
    return WorkspaceError(f"{name} ({what}) cannot be read: {reason}; nothing was written to it. Keep a copy first "
                          f"(cp {name} {name}.damaged), copy what SQLite can still read into a new file (sqlite3 "
                          f"{name}.damaged .dump | sed 's/^ROLLBACK; -- due to errors$/COMMIT;/' | sqlite3 "
                          f"{name}.recovered), check it (sqlite3 {name}.recovered 'PRAGMA integrity_check' prints ok), "
                          f"then mv {name}.recovered {name}")


QUICK_CHECK_BYTES = 256 * 2**20  # a store up to this size gets SQLite's quick_check of every page (~0.1 s a 20 MB)


def check_readable(db: Path, what: str = "the MLflow store") -> None:
    """Refuse an existing SQLite file that cannot be read: its header and schema, and, up to QUICK_CHECK_BYTES, every
    page (PRAGMA quick_check); sqlite3 alone."""
    import sqlite3

    if not Path(db).is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True,
                                                timeout=60)) as con:
            con.execute("SELECT name FROM sqlite_master").fetchall()
            if Path(db).stat().st_size <= QUICK_CHECK_BYTES:
                problems = [row[0] for row in con.execute("PRAGMA quick_check(3)")]
                if problems != ["ok"]:
                    raise damaged(db, " ".join("; ".join(problems).split())[:300], what)
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):  # busy with another writer is not damage
            raise damaged(db, str(exc), what) from exc
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        raise damaged(db, str(exc), what) from exc


def store_home(db: Path) -> Path | None:
    """The workspace root whose logs/mlruns/artifacts the SQLite store's experiments point at (None: no such)."""
    import sqlite3

    check_readable(db)
    with contextlib.closing(sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro", uri=True, timeout=60)) as con:
        try:
            rows = con.execute("SELECT artifact_location FROM experiments WHERE artifact_location LIKE ?",
                               (f"%{_ARTIFACTS_TAIL}%",)).fetchall()
        except sqlite3.OperationalError:  # no schema yet
            return None
        except sqlite3.DatabaseError as exc:
            raise damaged(db, str(exc)) from exc
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
    """Refuse a workspace store that cannot be read, or that names another workspace's artifacts (a copied or moved
    workspace)."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        check_store_home(MLRUNS_DIR / "mlflow.db")


def check_study_storage(url: str) -> None:
    """Refuse a sweep's SQLite study storage that cannot be read (a server's database is the server's to check)."""
    if url.startswith("sqlite:///"):
        check_readable(Path(url.removeprefix("sqlite:///")), "the Optuna study storage")


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
    except sqlite3.OperationalError:  # no file yet, or no tables yet
        pass
    except sqlite3.DatabaseError as exc:  # damaged: never shown as an empty store
        raise damaged(db, str(exc)) from exc
    return runs, latest


if __name__ == "__main__":  # scripts/mlflow_ui.sh: `python -S -m src.utils.track.store check|landing <db>`
    if sys.argv[1:2] == ["check"] and len(sys.argv) == 3:  # a damaged store: its one line, for the script to stop on
        try:
            check_readable(Path(sys.argv[2]))
        except Exception as exc:  # noqa: BLE001 (the WorkspaceError of damaged())
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
    if sys.argv[1:2] == ["landing"] and len(sys.argv) == 3:
        count, where = landing(Path(sys.argv[2]))
        print(count)
        if where:
            print(f"{where[0]}\t{where[1]}")
