"""Loaders of the raw formats (Kaggle CSV, MNIST IDX gz/plain, the offline sample) and CSV validation."""

from __future__ import annotations

import gzip
import os
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from src.dataset import raw_data
from src.utils.core.errors import WorkspaceError
from src.utils.core.io import atomic_dir
from tests.conftest import PIXELS, random_digits, write_kaggle_csvs


def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def write_mnist(folder: Path, gz: bool, n_train: int = 50, n_test: int = 20) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, stem in raw_data.IDX_NAMES.items():
        write_idx(folder / stem, arrays[key], gz)
    return arrays


def test_sample_is_mnist_shaped_and_labelled_as_sample(tmp_path: Path) -> None:
    info = raw_data.prepare_sample(tmp_path)
    assert info["is_sample"] is True and "SAMPLE" in info["note"]
    labels, pixels = raw_data.load_train_csv(tmp_path / "train.csv")
    test = raw_data.load_test_csv(tmp_path / "test.csv")
    assert len(labels) + len(test) == 1797
    assert pixels.shape[1] == 784 and pixels.max() == 255 and pixels.min() == 0
    assert set(np.unique(labels)) == set(range(10))
    # digits sit in the central 20x20 box, as in MNIST
    assert pixels.reshape(-1, 28, 28)[:, :4, :].max() == 0
    sub = pd.read_csv(tmp_path / "sample_submission.csv")
    assert list(sub.columns) == ["ImageId", "Label"] and sub["ImageId"].tolist() == list(range(1, len(test) + 1))


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
def test_mnist_idx_converted_to_kaggle_layout(tmp_path: Path, gz: bool) -> None:
    arrays = write_mnist(tmp_path / "mnist", gz)
    raw = tmp_path / "raw"
    info = raw_data.prepare_mnist(tmp_path / "mnist", raw)
    assert info["source"] == "mnist-idx" and info["train_rows"] == 50 and info["test_rows"] == 20
    labels, pixels = raw_data.load_train_csv(raw / "train.csv")
    np.testing.assert_array_equal(labels, arrays["train_labels"])
    np.testing.assert_array_equal(pixels, arrays["train_images"].reshape(50, -1))
    np.testing.assert_array_equal(raw_data.load_test_csv(raw / "test.csv"), arrays["test_images"].reshape(20, -1))


def test_truncated_gzip_idx_is_reported(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(WorkspaceError, match="train-images-idx3-ubyte.gz.*(damaged|truncated)"):
        raw_data.prepare_mnist(tmp_path, tmp_path / "raw")
    assert not (tmp_path / "raw" / "train.csv").exists()


def test_short_plain_idx_and_wrong_magic_are_reported(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(WorkspaceError, match="t10k-images.*truncated"):
        raw_data.read_idx(path)
    path.write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 20)
    with pytest.raises(WorkspaceError, match="not an unsigned-byte IDX"):
        raw_data.read_idx(path)


def test_missing_mnist_file_names_it(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(WorkspaceError, match="t10k-labels-idx1-ubyte"):
        raw_data.prepare_mnist(tmp_path, tmp_path / "raw")


def test_kaggle_files_from_folder_and_zip_are_kept_as_they_are(tmp_path: Path) -> None:
    from src.dataset.prepare_data import import_kaggle
    from src.utils.competition.spec import load
    from src.utils.core.hashing import file_sha256

    competition = load("digit-recognizer")
    src = write_kaggle_csvs(tmp_path / "download", n_train=40, n_test=10)
    (src / "extra_notes.txt").write_text("any other file of the competition is kept too\n")
    info = import_kaggle(src, competition, tmp_path / "raw1")
    assert (tmp_path / "raw1" / "train.csv").read_bytes() == (src / "train.csv").read_bytes()
    assert (tmp_path / "raw1" / "extra_notes.txt").is_file()
    assert info["files"]["train.csv"]["sha256"] == file_sha256(src / "train.csv")
    assert (info["train_rows"], info["test_rows"]) == (40, 10)  # counted, never "?"
    zpath = tmp_path / "digit-recognizer.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for name in raw_data.RAW_FILES:
            zf.write(src / name, f"digit-recognizer/{name}")
    info = import_kaggle(zpath, competition, tmp_path / "raw2")
    assert info["source"] == "kaggle:digit-recognizer"
    labels, _ = raw_data.load_train_csv(tmp_path / "raw2" / "train.csv")  # dataset01's own check reads them
    assert len(labels) == 40
    # any competition's files are taken as they are: the content is the dataset stage's business
    (src / "train.csv").write_text("id,whatever\n1,2\n")
    import_kaggle(src, competition, tmp_path / "raw3")
    with pytest.raises(WorkspaceError, match="missing column"):
        raw_data.load_train_csv(tmp_path / "raw3" / "train.csv")
    (src / "test.csv").unlink()
    with pytest.raises(WorkspaceError, match="lacks test.csv"):
        import_kaggle(src, competition, tmp_path / "raw4")


def _train_csv(tmp_path: Path, mutate) -> Path:
    labels, images = random_digits(12)
    df = pd.DataFrame(images, columns=PIXELS).astype(object)
    df.insert(0, "label", labels)
    df = mutate(df)
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    return path


def _set(row: int, col: str, value):
    def mutate(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[row, col] = value
        return df
    return mutate


# (case id, how to break train.csv, what the one-line error must say)
BAD_TRAIN = [
    ("missing-column", lambda df: df.drop(columns=["pixel5"]), r"missing column\(s\) pixel5"),
    ("extra-column", lambda df: df.assign(extra=1), r"unexpected column\(s\) 'extra'"),
    ("non-numeric", _set(3, "pixel10", "abc"), r"line 5, column pixel10: 'abc' is not a number"),
    ("pixel-300", _set(0, "pixel100", 300), r"line 2, column pixel100: pixel value 300 is outside 0-255"),
    ("pixel-negative", _set(7, "pixel0", -1), r"line 9, column pixel0: pixel value -1 is outside 0-255"),
    ("label-10", _set(2, "label", 10), r"line 4, column label: label 10 is not a digit 0-9"),
    ("float", _set(1, "pixel3", 1.5), r"line 3, column pixel3: '1.5' is not an integer"),
    ("missing-value", _set(4, "pixel783", None), r"line 6, column pixel783: missing value"),
    ("no-rows", lambda df: df.iloc[:0], r"header but no data rows"),
]


@pytest.mark.parametrize(("mutate", "message"), [c[1:] for c in BAD_TRAIN], ids=[c[0] for c in BAD_TRAIN])
def test_bad_train_csv_gives_one_line_error(tmp_path: Path, mutate, message: str) -> None:
    path = _train_csv(tmp_path, mutate)
    with pytest.raises(WorkspaceError, match=message) as err:
        raw_data.load_train_csv(path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text and "prepare_data.sh" in text


def test_empty_file_and_ragged_row(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("")
    with pytest.raises(WorkspaceError, match="is empty"):
        raw_data.load_train_csv(path)
    _train_csv(tmp_path, lambda df: df)
    lines = path.read_text().splitlines()
    lines[3] += ",7"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(WorkspaceError, match="malformed row .*line 4"):
        raw_data.load_train_csv(path)


def test_test_csv_with_a_label_column_is_rejected(tmp_path: Path) -> None:
    path = _train_csv(tmp_path, lambda df: df)
    with pytest.raises(WorkspaceError, match=r"unexpected column\(s\) 'label'"):
        raw_data.load_test_csv(path)


def test_a_byte_order_mark_is_read_as_it_should_be(tmp_path: Path) -> None:
    """Excel saves CSVs with a UTF-8 BOM; it is not part of the first column's name."""
    raw = write_kaggle_csvs(tmp_path, n_train=20, n_test=5)
    plain = raw_data.load_train_csv(raw / "train.csv")
    (raw / "train.csv").write_bytes(b"\xef\xbb\xbf" + (raw / "train.csv").read_bytes())
    labels, pixels = raw_data.load_train_csv(raw / "train.csv")
    np.testing.assert_array_equal(labels, plain[0])
    np.testing.assert_array_equal(pixels, plain[1])


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        raw_data.prepare_sample(tmp_path / "raw")
        with atomic_dir(tmp_path / "out") as out:
            (out / "x").write_text("x")
    finally:
        os.umask(old)
    for path in [*(tmp_path / "raw").iterdir(), tmp_path / "out", tmp_path / "out" / "x"]:
        expected = 0o755 if path.is_dir() else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
