"""Fill a competition's raw folder (its `raw_dir` in config/competition/<name>.yaml). Nothing is ever downloaded.

    bash scripts/prepare_data.sh                                     # every competition's offline sample
    bash scripts/prepare_data.sh --competition diabetes-sample       # one competition's offline sample
    bash scripts/prepare_data.sh --kaggle ~/Downloads/digit-recognizer.zip     # the files you downloaded
    bash scripts/prepare_data.sh --competition NAME --kaggle DIR_OR_ZIP        # (named when the zip is not <slug>.zip)
    bash scripts/prepare_data.sh --mnist DIR                         # another source a competition names (MNIST IDX)

--kaggle takes any competition's files as they are: every file of the zip or folder is kept under its own name,
the files the competition config names must be there, and SOURCE.json records where they came from with the
size and SHA-256 of each. Checking what is inside the files is the dataset stage's job (src/dataset/datasetNN).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from src.utils.competition import spec as competitions
from src.utils.core.errors import WorkspaceError, exit_on_user_error
from src.utils.core.hashing import file_sha256
from src.utils.core.io import atomic_file, read_json, write_json
from src.utils.core.paths import shown

log = logging.getLogger("prepare_data")


def read_source(raw_dir: Path) -> dict:
    path = raw_dir / "SOURCE.json"
    return read_json(path) if path.is_file() else {"source": "user-provided", "is_sample": False}


def count_rows(path: Path) -> int:
    """Data rows of a CSV (lines after the header), without parsing it."""
    with open(path, "rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        f.seek(-1, 2)
        last = f.read(1)
    return max(0, lines + (last != b"\n") - 1)


def import_kaggle(src: Path, competition: competitions.Competition, raw_dir: Path) -> dict:
    """Copy the competition's files as they are (from a zip or a folder) and record their hashes."""
    wanted = [str(competition.cfg.files[k]) for k in ("train", "test", "sample_submission")]
    raw_dir.mkdir(parents=True, exist_ok=True)
    if src.is_file() and zipfile.is_zipfile(src):
        with zipfile.ZipFile(src) as zf:
            members = [m for m in zf.infolist() if not m.is_dir() and not Path(m.filename).name.startswith(".")]
            names = {Path(m.filename).name for m in members}
            missing = [n for n in wanted if n not in names]
            if missing:
                raise WorkspaceError(f"{src} lacks {', '.join(missing)} (files of {competition.where}); download it "
                                     f"with `kaggle competitions download -c {competition.slug}`")
            (raw_dir / "SOURCE.json").unlink(missing_ok=True)
            for m in members:
                with zf.open(m) as fin, atomic_file(raw_dir / Path(m.filename).name, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
            copied = sorted({Path(m.filename).name for m in members})
    elif src.is_dir():
        missing = [n for n in wanted if not (src / n).is_file()]
        if missing:
            raise WorkspaceError(f"{src} lacks {', '.join(missing)} (files of {competition.where}); unzip the "
                                 f"Kaggle download there")
        (raw_dir / "SOURCE.json").unlink(missing_ok=True)
        copied = sorted(p.name for p in src.iterdir() if p.is_file() and not p.name.startswith("."))
        for name in copied:
            with open(src / name, "rb") as fin, atomic_file(raw_dir / name, "wb") as fout:
                shutil.copyfileobj(fin, fout)
    else:
        raise WorkspaceError(f"{src} is neither a folder nor a zip file; pass the unzipped competition folder or "
                             f"{competition.slug}.zip")
    files = {n: {"bytes": (raw_dir / n).stat().st_size, "sha256": file_sha256(raw_dir / n)} for n in copied}
    write_json(raw_dir / "SOURCE.json", {
        "source": f"kaggle:{competition.slug}", "is_sample": False, "from": str(src), "files": files,
        "train_rows": count_rows(raw_dir / wanted[0]),
        "test_rows": count_rows(raw_dir / wanted[1]),
        "created": datetime.now(UTC).isoformat(timespec="seconds")})
    return read_json(raw_dir / "SOURCE.json")


def pick_competition(name: str | None, kaggle: Path | None, source: str | None) -> list[competitions.Competition]:
    known = competitions.names()
    if not known:
        raise WorkspaceError("there is no competition yet: write config/competition/<name>.yaml (README, 'Start your "
                             "own competition')")
    if name:
        return [competitions.load(name)]
    if kaggle is not None:
        stem = kaggle.name.removesuffix(".zip")
        matches = [n for n in known if competitions.load(n).slug == stem]
        if len(matches) == 1 or len(known) == 1:
            return [competitions.load((matches or known)[0])]
        raise WorkspaceError(f"which competition are the files of {kaggle} for? pass --competition NAME "
                             f"(one of {', '.join(known)})")
    if source:
        having = [n for n in known if source in (competitions.load(n).cfg.get("sources") or {})]
        if len(having) != 1:
            raise WorkspaceError(f"--{source} is a source of {', '.join(having) or 'no competition'}; pass "
                                 f"--competition NAME")
        return [competitions.load(having[0])]
    return [competitions.load(n) for n in known]


def prepare(competition: competitions.Competition, args: argparse.Namespace, several: bool) -> None:
    raw_dir = args.raw_dir or competition.raw_dir
    source = "mnist" if args.mnist else "kaggle" if args.kaggle else "sample"
    sources = competition.cfg.get("sources") or {}
    if source not in ("kaggle",) and source not in sources:
        if several:
            log.info("%s: no offline %s source (config 'sources'); import its files with --kaggle", competition.name,
                     source)
            return
        raise WorkspaceError(f"{competition.where} names no '{source}' source; import the competition's files with "
                             f"--kaggle ZIP_OR_DIR")
    if (raw_dir / competition.cfg.files.train).is_file() and not args.force:
        current = read_source(raw_dir)
        if source == "sample" and current.get("is_sample"):
            log.info("%s: raw data already prepared: %s (%s rows) in %s", competition.name, current["source"],
                     current.get("train_rows", "?"), shown(raw_dir))
            return
        same = (source == "kaggle" and current["source"] == f"kaggle:{competition.slug}") or (
            source == "mnist" and current["source"] == "mnist-idx")
        if not same:
            raise WorkspaceError(f"{shown(raw_dir)} already holds raw data from {current['source']!r}; pass --force to "
                                 f"replace it with the {source} data (raw data is never overwritten silently)")
    if source == "kaggle":
        info = import_kaggle(args.kaggle, competition, raw_dir)
    else:
        from src.utils.config.targets import instantiate

        fill = instantiate(sources[source])
        info = fill(args.mnist, raw_dir) if source == "mnist" else fill(raw_dir, seed=args.seed)
    log.info("%s: raw data ready in %s: source=%s, train=%s rows, test=%s rows%s", competition.name, shown(raw_dir),
             info["source"], info.get("train_rows", "?"), info.get("test_rows", "?"),
             "  [SAMPLE DATA, not the competition data]" if info.get("is_sample") else "")


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bash scripts/prepare_data.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--sample", action="store_true", help="the competition's offline sample data (default)")
    group.add_argument("--mnist", type=Path, metavar="DIR", help="folder with the four MNIST IDX files")
    group.add_argument("--kaggle", type=Path, metavar="PATH", help="unzipped competition folder or its zip")
    parser.add_argument("--competition", metavar="NAME", help="config/competition/NAME.yaml (default: every "
                        "competition for the sample; the one whose slug names the zip for --kaggle)")
    parser.add_argument("--raw-dir", type=Path, help="target folder (default: the competition's raw_dir)")
    parser.add_argument("--force", action="store_true", help="replace raw data from another source")
    parser.add_argument("--seed", type=int, default=0, help="train/test split seed of the sample")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    chosen = pick_competition(args.competition, args.kaggle, "mnist" if args.mnist else None)
    if args.raw_dir and len(chosen) > 1:
        raise WorkspaceError("--raw-dir fills one competition's folder; pass --competition NAME with it")
    for competition in chosen:
        prepare(competition, args, several=len(chosen) > 1)
    folders = stage_folders("dataset", chosen)
    for folder in folders:
        log.info("next: poetry run python src/dataset/%s/make_dataset.py", folder)
    if not folders:
        log.info("next: a dataset folder for %s: bash scripts/new_experiment.sh dataset <the closest datasetNN>, "
                 "then competition: %s in its config (README: 'Start your own competition')",
                 chosen[0].name, chosen[0].name)
    return 0


def stage_folders(stage: str, chosen: list[competitions.Competition]) -> list[str]:
    """The stage folders (config/<stage>/*) that belong to the chosen competitions, by their config."""
    from omegaconf import OmegaConf

    from src.utils.core.paths import CONFIG_DIR

    names = {c.name for c in chosen}
    return [p.parent.name for p in sorted((CONFIG_DIR / stage).glob("*/config.yaml"))
            if OmegaConf.load(p).get("competition") in names][:3]


if __name__ == "__main__":
    from src.utils.cli.setup import setup

    setup()  # the environment, resolvers and plugins, before anything else runs
    sys.exit(main())
