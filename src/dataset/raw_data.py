"""Raw data of the Digit Recognizer competition: its layout, its checks (used by dataset01) and its offline
sources (config/competition/digit-recognizer.yaml `sources`: the sample and MNIST IDX files).

_data/data/raw/
    train.csv              label,pixel0..pixel783   (uint8 pixels 0-255, labels 0-9)
    test.csv               pixel0..pixel783
    sample_submission.csv  ImageId,Label
    SOURCE.json            where the files came from (written by scripts/prepare_data.sh)
"""

from __future__ import annotations

import gzip
import struct
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from src.utils.core.errors import WorkspaceError
from src.utils.core.io import atomic_file, read_json, write_json

N_PIXELS = 28 * 28
PIXEL_COLUMNS = [f"pixel{i}" for i in range(N_PIXELS)]
TRAIN_COLUMNS = ["label", *PIXEL_COLUMNS]
RAW_FILES = ("train.csv", "test.csv", "sample_submission.csv")
SAMPLE_SOURCE = "sample:sklearn-digits-8x8-upscaled"
FIX_HINT = "re-create the raw files with `bash scripts/prepare_data.sh` (see README)"


# --------------------------------------------------------------------------------------------------
# Writing the layout
# --------------------------------------------------------------------------------------------------
def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_file(path) as f:
        df.to_csv(f, index=False)


def write_layout(
    raw_dir: Path, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, source: dict
) -> None:
    """Write train/test/sample_submission CSVs (each atomically) and SOURCE.json last."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    (raw_dir / "SOURCE.json").unlink(missing_ok=True)
    train = pd.DataFrame(train_x.reshape(len(train_x), -1).astype(np.uint8), columns=PIXEL_COLUMNS)
    train.insert(0, "label", train_y.astype(np.int64))
    _write_csv(train, raw_dir / "train.csv")
    test = pd.DataFrame(test_x.reshape(len(test_x), -1).astype(np.uint8), columns=PIXEL_COLUMNS)
    _write_csv(test, raw_dir / "test.csv")
    sub = pd.DataFrame({"ImageId": np.arange(1, len(test) + 1), "Label": 0})
    _write_csv(sub, raw_dir / "sample_submission.csv")
    source = {**source, "train_rows": len(train), "test_rows": len(test),
              "created": datetime.now(UTC).isoformat(timespec="seconds")}
    write_json(raw_dir / "SOURCE.json", source)


def sample_digits(test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, ...]:
    """scikit-learn's bundled 8x8 digits (1,797 images, no download) as 28x28 uint8 MNIST look-alikes.

    Each 0-16 image is upscaled to the 20x20 box MNIST digits occupy and centred in 28x28, as in MNIST.
    """
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    small = digits.images.astype(np.float32) / 16.0
    big = np.clip(zoom(small, (1, 20 / 8, 20 / 8), order=1), 0.0, 1.0)
    images = np.zeros((len(big), 28, 28), dtype=np.uint8)
    images[:, 4:24, 4:24] = np.round(big * 255).astype(np.uint8)
    x_train, x_test, y_train, _ = train_test_split(
        images, digits.target, test_size=test_fraction, random_state=seed, stratify=digits.target
    )
    return x_train, y_train, x_test


def prepare_sample(raw_dir: Path, test_fraction: float = 0.2, seed: int = 0) -> dict:
    x_train, y_train, x_test = sample_digits(test_fraction, seed)
    source = {
        "source": SAMPLE_SOURCE,
        "is_sample": True,
        "note": "SAMPLE DATA: scikit-learn 8x8 digits upscaled to 28x28, not the Kaggle/MNIST data",
        "seed": seed,
        "test_fraction": test_fraction,
    }
    write_layout(raw_dir, x_train, y_train, x_test, source)
    return read_json(raw_dir / "SOURCE.json")


# --------------------------------------------------------------------------------------------------
# MNIST IDX files
# --------------------------------------------------------------------------------------------------
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def find_idx(folder: Path, stem: str) -> Path:
    """The IDX file `stem` in `folder`, gzipped or plain (also the `stem.idx3-ubyte` spelling)."""
    candidates = [stem, f"{stem}.gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"]
    for name in candidates:
        if (folder / name).is_file():
            return folder / name
    raise WorkspaceError(
        f"MNIST file {stem}[.gz] not found in {folder}; put the four MNIST IDX files there "
        f"(train-images, train-labels, t10k-images, t10k-labels)"
    )


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or plain) into a uint8 array, checking magic number and size."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise WorkspaceError(f"{path}: cannot read ({exc}); the file is damaged or truncated, "
                             f"copy it again from the original MNIST download") from exc
    if len(data) < 4:
        raise WorkspaceError(f"{path}: {len(data)} bytes is too short for an IDX file; copy it again")
    zero, dtype_code, ndim = data[0] * 256 + data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise WorkspaceError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()}); "
                             f"expected MNIST images (0x00000803) or labels (0x00000801)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise WorkspaceError(f"{path}: truncated header; copy the file again")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise WorkspaceError(f"{path}: header says {shape} = {expected} bytes of data, file has "
                             f"{len(data) - header}; the file is truncated or damaged, copy it again")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def prepare_mnist(src_dir: Path, raw_dir: Path) -> dict:
    arrays = {key: read_idx(find_idx(src_dir, stem)) for key, stem in IDX_NAMES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise WorkspaceError(f"{split} images in {src_dir} have shape {images.shape}, expected (N, 28, 28)")
        if labels.ndim != 1 or len(labels) != len(images):
            raise WorkspaceError(f"{split}: {len(labels)} labels for {len(images)} images in {src_dir}")
        if labels.max(initial=0) > 9:
            raise WorkspaceError(f"{split} labels in {src_dir} contain {labels.max()}; MNIST labels are 0-9")
    source = {"source": "mnist-idx", "is_sample": False, "from": str(src_dir)}
    write_layout(raw_dir, arrays["train_images"], arrays["train_labels"], arrays["test_images"], source)
    return read_json(raw_dir / "SOURCE.json")


def read_source(raw_dir: Path) -> dict:
    path = raw_dir / "SOURCE.json"
    if path.is_file():
        return read_json(path)
    return {"source": "user-provided", "is_sample": False}


# --------------------------------------------------------------------------------------------------
# Reading and validating the CSVs
# --------------------------------------------------------------------------------------------------
def _read_validated(path: Path, columns: list[str], label: bool) -> pd.DataFrame:
    if not path.is_file():
        raise WorkspaceError(f"{path} not found; {FIX_HINT}")
    if path.stat().st_size == 0:
        raise WorkspaceError(f"{path} is empty (0 bytes); {FIX_HINT}")
    with open(path, encoding="utf-8-sig", errors="replace") as f:  # -sig: a BOM (Excel) is not part of the name
        header = f.readline().rstrip("\r\n").split(",")
    header = [h.strip().strip('"') for h in header]
    if header != columns:
        missing = [c for c in columns if c not in header]
        extra = [c for c in header if c not in columns]
        if missing or extra:
            detail = (f"missing column(s) {', '.join(missing[:5])}" if missing else "") + \
                     ("; " if missing and extra else "") + \
                     (f"unexpected column(s) {', '.join(map(repr, extra[:5]))}" if extra else "")
        else:
            first = next(i for i, (a, b) in enumerate(zip(header, columns, strict=True)) if a != b)
            detail = f"columns out of order from column {first + 1} ({header[first]!r}, expected {columns[first]!r})"
        raise WorkspaceError(f"{path} line 1 (header): {detail}; expected {len(columns)} columns "
                             f"{columns[0]},{columns[1]},...,{columns[-1]}; {FIX_HINT}")
    try:
        fast = pd.read_csv(path, engine="c", encoding="utf-8-sig")
    except pd.errors.ParserError as exc:
        msg = str(exc).strip().splitlines()[-1]
        raise WorkspaceError(f"{path}: malformed row ({msg}); every row needs {len(columns)} values; "
                             f"{FIX_HINT}") from exc
    if fast.empty:
        raise WorkspaceError(f"{path} has a header but no data rows; {FIX_HINT}")
    if all(pd.api.types.is_integer_dtype(t) for t in fast.dtypes):
        # A clean file parses straight to integers; only the range checks are left.
        numeric = fast.to_numpy()
        values = numeric
    else:
        # Something is not an integer: read it again as text to say exactly which cell.
        values, numeric = _diagnose_cells(path, columns)
    first_pixel = 1 if label else 0
    pixels = numeric[:, first_pixel:]
    out = (pixels < 0) | (pixels > 255)
    if out.any():
        r, c = np.argwhere(out)[0]
        raise WorkspaceError(f"{path} line {r + 2}, column {columns[c + first_pixel]}: pixel value "
                             f"{values[r, c + first_pixel]} is outside 0-255; {FIX_HINT}")
    if label:
        labels = numeric[:, 0]
        out = (labels < 0) | (labels > 9)
        if out.any():
            r = int(np.argwhere(out)[0][0])
            raise WorkspaceError(f"{path} line {r + 2}, column label: label {values[r, 0]} is not a digit "
                                 f"0-9; {FIX_HINT}")
    return pd.DataFrame(numeric.astype(np.uint8), columns=columns)


def _diagnose_cells(path: Path, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Find the first missing, non-numeric or fractional cell (raises); else the text and float values."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], engine="c", encoding="utf-8-sig")
    values = df.to_numpy()
    missing_mask = pd.isna(values)
    if missing_mask.any():
        r, c = np.argwhere(missing_mask)[0]
        raise WorkspaceError(f"{path} line {r + 2}, column {columns[c]}: missing value; "
                             f"every row needs {len(columns)} values; {FIX_HINT}")
    numeric = df.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(numeric)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise WorkspaceError(f"{path} line {r + 2}, column {columns[c]}: {values[r, c]!r} is not a number; "
                             f"{FIX_HINT}")
    frac = numeric != np.round(numeric)
    if frac.any():
        r, c = np.argwhere(frac)[0]
        raise WorkspaceError(f"{path} line {r + 2}, column {columns[c]}: {values[r, c]!r} is not an integer; "
                             f"{FIX_HINT}")
    return values, numeric


def load_train_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Validated (labels int64 [N], pixels uint8 [N, 784]) from a Kaggle-layout train.csv."""
    df = _read_validated(path, TRAIN_COLUMNS, label=True)
    return df["label"].to_numpy(np.int64), df[PIXEL_COLUMNS].to_numpy(np.uint8)


def load_test_csv(path: Path) -> np.ndarray:
    """Validated pixels uint8 [N, 784] from a Kaggle-layout test.csv."""
    return _read_validated(path, PIXEL_COLUMNS, label=False).to_numpy(np.uint8)
