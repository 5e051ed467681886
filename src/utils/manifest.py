"""The manifest.json every stage writes into its output folder: the stage's facts, the content hash of its files,
and the size and hash of each file (what loading checks a file against)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from src.utils.hashing import file_sha256, files_sha256
from src.utils.io import write_json


def seal(folder: Path, stage: str, facts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Write `folder`/manifest.json for the files in `folder` (the manifest itself excluded); returns it."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "manifest.json")
    manifest = {"stage": stage, **facts, "content_hash": files_sha256(files, folder), **extra,
                "files": {p.name: {"bytes": p.stat().st_size, "sha256": file_sha256(p)} for p in files}}
    write_json(folder / "manifest.json", manifest)
    return manifest
