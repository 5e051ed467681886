"""The manifest.json every stage writes into its output folder: the stage's facts, the content hash of its files,
and the size and hash of each file (what loading checks a file against)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from src.utils.core.hashing import file_sha256, files_sha256
from src.utils.core.io import write_json


def seal(folder: Path, stage: str, facts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Write `folder`/manifest.json for the files in `folder` (the manifest itself excluded); returns it."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "manifest.json")
    manifest = {"stage": stage, **facts, "content_hash": files_sha256(files, folder), **extra,
                "files": {p.name: {"bytes": p.stat().st_size, "sha256": file_sha256(p)} for p in files}}
    write_json(folder / "manifest.json", manifest)
    return manifest


def first_change(folder: Path, manifest: dict[str, Any]) -> tuple[Path, str] | None:
    """The first file of `folder` that is not what its manifest says (path, what is wrong), or None: its size, and
    its hash where it was written after the manifest. A manifest that lists no files is taken at its word."""
    written = (folder / "manifest.json").stat().st_mtime
    for name, fact in (manifest.get("files") or {}).items():
        path = folder / name
        if not path.is_file():
            return path, "is missing from its folder"
        stat = path.stat()
        if stat.st_size != fact["bytes"]:
            return path, f"has {stat.st_size} bytes, the manifest says {fact['bytes']} (a truncated or edited file)"
        if stat.st_mtime > written and file_sha256(path) != fact["sha256"]:
            return path, "was edited after it was built (its hash differs from the manifest's)"
    return None
