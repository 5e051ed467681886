"""Start a new experiment folder as a copy of an existing one: the frozen original stays as it is.

    bash scripts/new_experiment.sh model model01            # -> src/model/modelNN + config/model/modelNN
    bash scripts/new_experiment.sh model model01 model07    # an explicit name (never an existing one)
    bash scripts/new_experiment.sh ensemble ensemble01      # -> src/ensemble/ensembleNN + config/ensemble/ensembleNN

Inside the copy, only the source folder's own name changes (`model01` -> `model02`: MLflow experiment name,
imports, `_target_`s, output and Hydra dirs). Names of other stages (`feature01`, `dataset01`) stay, so the
copy reads the same inputs as its source. Both folders appear at once or not at all.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from src.utils.core.errors import WorkspaceError, exit_on_user_error
from src.utils.core.paths import CONFIG_DIR, ROOT

STAGES = ("dataset", "feature", "model", "ensemble")
ENTRY_SCRIPTS = {"dataset": "make_dataset.py", "feature": "build_features.py", "model": "train.py",
                 "ensemble": "blend.py"}
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo")
USAGE = "bash scripts/new_experiment.sh <dataset|feature|model|ensemble> <source_folder> [target_folder]"


@dataclass(frozen=True)
class Copy:
    stage: str
    source: str
    target: str
    files: int
    replacements: int

    @property
    def folders(self) -> tuple[Path, Path]:
        return ROOT / "src" / self.stage / self.target, CONFIG_DIR / self.stage / self.target


def experiment_folders(stage: str) -> dict[str, int]:
    """Experiment folder names of a stage (in src/ or config/) -> their number."""
    pattern = re.compile(rf"{stage}(\d+)")
    found = {}
    for parent in (ROOT / "src" / stage, CONFIG_DIR / stage):
        if parent.is_dir():
            for p in parent.iterdir():
                if p.is_dir() and (m := pattern.fullmatch(p.name)):
                    found[p.name] = int(m.group(1))
    return found


def next_name(stage: str, source: str) -> str:
    """One past the highest number in use, not the lowest gap: a number once used may still own an MLflow
    experiment, outputs and Lightning checkpoints under that name, and a new folder must not mix into them."""
    numbers = experiment_folders(stage)
    width = max(2, len(source) - len(stage))
    return f"{stage}{max(numbers.values(), default=0) + 1:0{width}d}"


def check_request(stage: str, source: str, target: str | None) -> str:
    """Validate the request; return the target name. Raises before anything is written."""
    if stage not in STAGES:
        raise WorkspaceError(f"unknown stage {stage!r}: use one of {', '.join(STAGES)}; usage: {USAGE}")
    existing = sorted(experiment_folders(stage))
    listing = ", ".join(existing) or "none"
    src_dir, cfg_dir = ROOT / "src" / stage / source, CONFIG_DIR / stage / source
    if not re.fullmatch(rf"{stage}\d+", source) or not src_dir.is_dir():
        raise WorkspaceError(f"no experiment folder src/{stage}/{source}; existing {stage} folders: {listing}")
    if not cfg_dir.is_dir():
        raise WorkspaceError(f"src/{stage}/{source} has no config folder config/{stage}/{source}; "
                             f"restore it (git checkout -- config/{stage}/{source}) before copying")
    if target is None:
        target = next_name(stage, source)
    elif not re.fullmatch(rf"{stage}\d+", target):
        raise WorkspaceError(f"target {target!r} must be {stage} followed by a number (e.g. {next_name(stage, source)})"
                             f" so that the name stays an importable module and sorts with the others")
    for p in (ROOT / "src" / stage / target, CONFIG_DIR / stage / target):
        if p.exists():
            raise WorkspaceError(f"{p.relative_to(ROOT)} already exists and is never overwritten; pick a free name "
                                 f"(e.g. {next_name(stage, source)}) or leave the target out")
    return target


def copy_tree(src: Path, dest: Path, rename: re.Pattern[str], new: str) -> tuple[int, int]:
    """Copy `src` into the existing folder `dest`, renaming in text files and file names; (files, replacements)."""
    files = replacements = 0
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        rel_dir = Path(dirpath).relative_to(src)
        out_dir = dest / rename.sub(new, str(rel_dir))
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copymode(dirpath, out_dir)
        for name in sorted(filenames):
            if name.endswith(SKIP_SUFFIXES):
                continue
            src_file, out_file = Path(dirpath) / name, out_dir / rename.sub(new, name)
            data = src_file.read_bytes()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                out_file.write_bytes(data)  # binary (e.g. a small fixture): copied as it is
            else:
                text, n = rename.subn(new, text)
                replacements += n
                out_file.write_bytes(text.encode("utf-8"))
            shutil.copymode(src_file, out_file)
            files += 1
    return files, replacements


def create(stage: str, source: str, target: str | None = None) -> Copy:
    target = check_request(stage, source, target)
    # `model01` as a whole word only: `model010` or `feature01_hash` are other names
    rename = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(source)}(?![A-Za-z0-9_])")
    pairs = [(ROOT / "src" / stage / source, ROOT / "src" / stage / target),
             (CONFIG_DIR / stage / source, CONFIG_DIR / stage / target)]
    temps: list[Path] = []
    moved: list[tuple[Path, Path]] = []
    files = replacements = 0
    try:
        for src_dir, final in pairs:
            # A sibling of the final folder (same file system, so the rename is atomic); the dot keeps it out of
            # the experiment listings, and mkdtemp's private 0700 mode is replaced by the source folder's.
            tmp = Path(tempfile.mkdtemp(prefix=f".{target}.tmp-", dir=final.parent))
            temps.append(tmp)
            n_files, n_repl = copy_tree(src_dir, tmp, rename, target)
            files, replacements = files + n_files, replacements + n_repl
        for tmp, (_, final) in zip(temps, pairs, strict=True):
            if final.exists():  # created by someone else meanwhile; os.rename would replace an empty folder
                raise WorkspaceError(f"{final.relative_to(ROOT)} appeared while copying; nothing was created")
            os.rename(tmp, final)
            moved.append((final, tmp))
    except BaseException:
        for final, tmp in reversed(moved):  # the first folder is in place but not the second: take it back
            os.rename(final, tmp)
        raise
    finally:
        for tmp in temps:
            shutil.rmtree(tmp, ignore_errors=True)
    return Copy(stage, source, target, files, replacements)


def next_steps(c: Copy) -> list[str]:
    entry = f"src/{c.stage}/{c.target}/{ENTRY_SCRIPTS[c.stage]}"
    spaces = sorted((CONFIG_DIR / c.stage / c.target / "hparams_search").glob("*.yaml"))  # the copy's own
    lines = [f"next: .venv/bin/python {entry}" + (f"   (add -m hparams_search={spaces[0].stem} for its sweep)"
                                                  if c.stage == "model" and spaces else "")]
    if c.stage == "feature":
        lines.append(f"      models still read their own feature folder; point a model copy at this one with "
                     f"feature_dir: _data/feature/{c.target}")
    elif c.stage == "ensemble":
        lines[0] = f"next: .venv/bin/python {entry} members.sweeps=[<sweep run_id>]   (or members.runs=[...])"
    elif c.stage == "dataset":
        lines.append(f"      feature folders still read their own dataset folder; point a feature copy at this one "
                     f"with dataset_dir: _data/data/{c.target}")
    return lines


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise WorkspaceError(f"{message}; usage: {USAGE}")


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="bash scripts/new_experiment.sh", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", help="dataset | feature | model | ensemble")
    parser.add_argument("source", help="the folder to copy, e.g. model01")
    parser.add_argument("target", nargs="?", help="the new folder's name (default: the next free number)")
    args = parser.parse_args(argv)
    c = create(args.stage, args.source, args.target)
    src_dir, cfg_dir = c.folders
    print(f"created {src_dir.relative_to(ROOT)}/ and {cfg_dir.relative_to(ROOT)}/ from {c.source} "
          f"({c.files} files; {c.source} -> {c.target} in {c.replacements} places; src/{c.stage}/{c.source} "
          f"is unchanged)")
    print("\n".join(next_steps(c)))
    return 0


if __name__ == "__main__":
    from src.utils.cli.setup import setup

    setup()  # the environment, resolvers and plugins, before anything else runs
    sys.exit(main())
