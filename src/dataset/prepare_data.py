"""Fill _data/data/raw/ in the Kaggle "Digit Recognizer" layout. Nothing is ever downloaded.

    bash scripts/prepare_data.sh                      # offline sample (scikit-learn digits), the default
    bash scripts/prepare_data.sh --mnist DIR          # MNIST IDX files (.gz or plain) found in DIR
    bash scripts/prepare_data.sh --kaggle DIR_OR_ZIP  # the competition files you downloaded
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from src.dataset import raw_data
from src.utils.errors import WorkspaceError, exit_on_user_error
from src.utils.paths import RAW_DIR

log = logging.getLogger("prepare_data")


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bash scripts/prepare_data.sh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--sample", action="store_true", help="offline sample data (default)")
    group.add_argument("--mnist", type=Path, metavar="DIR", help="folder with the four MNIST IDX files")
    group.add_argument("--kaggle", type=Path, metavar="PATH", help="unzipped competition folder or its zip")
    parser.add_argument("--raw-dir", type=Path, default=RAW_DIR, help=f"target folder (default {RAW_DIR})")
    parser.add_argument("--force", action="store_true", help="replace raw data from another source")
    parser.add_argument("--seed", type=int, default=0, help="train/test split seed of the sample")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    wanted = "mnist-idx" if args.mnist else "kaggle:digit-recognizer" if args.kaggle else raw_data.SAMPLE_SOURCE
    present = (args.raw_dir / "train.csv").is_file()
    if present:
        current = raw_data.read_source(args.raw_dir)
        if current["source"] == wanted == raw_data.SAMPLE_SOURCE and not args.force:
            log.info("raw data already prepared: %s (%s rows) in %s", current["source"],
                     current.get("train_rows", "?"), args.raw_dir)
            return 0
        if current["source"] != wanted and not args.force:
            raise WorkspaceError(
                f"{args.raw_dir} already holds raw data from {current['source']!r}; "
                f"pass --force to replace it with {wanted!r} (raw data is never overwritten silently)"
            )
    if args.mnist:
        info = raw_data.prepare_mnist(args.mnist, args.raw_dir)
    elif args.kaggle:
        info = raw_data.prepare_kaggle(args.kaggle, args.raw_dir)
    else:
        info = raw_data.prepare_sample(args.raw_dir, seed=args.seed)
    log.info("raw data ready in %s: source=%s, train=%s rows, test=%s rows%s", args.raw_dir, info["source"],
             info.get("train_rows", "?"), info.get("test_rows", "?"),
             "  [SAMPLE DATA, not the competition data]" if info.get("is_sample") else "")
    log.info("next: poetry run python src/dataset/dataset01/make_dataset.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
