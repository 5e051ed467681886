"""Content hashes for files, folders and configs (data lineage and code freezing)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def files_sha256(paths: Iterable[Path], base: Path) -> str:
    """One hash over several files; names (relative to `base`) are part of it, order is not."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(p.relative_to(base).as_posix().encode())
        h.update(b"\0")
        h.update(file_sha256(p).encode())
    return h.hexdigest()


def tree_sha256(folder: str | Path, pattern: str = "**/*.py") -> str:
    """Hash of the source files of a folder (caches and byte code excluded)."""
    folder = Path(folder)
    files = [p for p in folder.glob(pattern) if p.is_file() and "__pycache__" not in p.parts]
    return files_sha256(files, folder)


def json_sha256(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
