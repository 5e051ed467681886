"""The frozen contract (src/utils/contract.py): every old import path imports, re-exports exactly its names, and is
thin; the experiment folders and configs use no old path the contract does not list."""

from __future__ import annotations

import ast
import importlib
import re

import pytest

from src.utils.contract import CONTRACT, PACKAGES, names
from tests.conftest import REPO
from tests.unit.test_layout import LAYERS


@pytest.mark.parametrize("path", sorted(CONTRACT))
def test_every_listed_name_imports_from_its_old_path(path: str) -> None:
    module = importlib.import_module(path)
    for name in names(path):
        assert getattr(module, name) is not None, f"{path}.{name}"
    assert sorted(module.__all__) == names(path)
    for new_module, group in CONTRACT[path].items():
        moved = importlib.import_module(new_module)
        for name in group:
            assert getattr(module, name) is getattr(moved, name), f"{path}.{name} is not {new_module}.{name}"


@pytest.mark.parametrize("path", sorted(set(CONTRACT) - set(PACKAGES)))
def test_an_old_path_is_a_thin_re_export(path: str) -> None:
    tree = ast.parse((REPO / (path.replace(".", "/") + ".py")).read_text())
    kinds = {type(node).__name__ for node in tree.body[1:]}
    assert kinds <= {"ImportFrom", "Assign"}, kinds


def test_frozen_folders_use_only_listed_paths_and_names() -> None:
    """Experiment folders, configs and notebooks: every `src.utils` path and name they use is in the contract."""
    used: set[tuple[str, str]] = set()
    for stage in ("dataset", "feature", "model", "ensemble"):
        for path in (REPO / "src" / stage).glob(f"{stage}[0-9]*/*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("src.utils"):
                    used |= {(node.module, a.name) for a in node.names}
    for path in [*(REPO / "config").rglob("*.yaml"), *(REPO / "notebooks").glob("*.ipynb")]:
        for module, name in re.findall(r"(src\.utils\.[a-z_]+)\.([A-Za-z_]+)\b", path.read_text()):
            used.add((module, name))
    # a notebook may use the new packages too (it calls the set-up); an old path must be listed, with the name
    new = {f"src.utils.{p}" for p in LAYERS} - set(CONTRACT)
    missing = sorted(f"{m}.{n}" for m, n in used if not m.startswith(tuple(new))
                     and (m not in CONTRACT or n not in names(m)))
    assert missing == []
