"""The data scripts/bench.sh trains on: the offline sample, or MNIST-size digit images generated on the fly.

`generated_digits` makes 28x28 digits of MNIST's size and shape from scikit-learn's bundled 8x8 digits (never a
download), deterministic by seed; `prepare_data` writes them into the throw-away copy's raw folder in the Digit
Recognizer layout (or has scripts/prepare_data.sh put the competition's offline sample there), then runs the
experiment's dataset and feature folders in the copy and returns the features' manifest.
"""

from __future__ import annotations

import json

from src.tools.bench_experiment import Experiment
from src.tools.bench_workspace import Copy

GENERATED = {"mnist": (60_000, 10_000), "tiny": (500, 100)}  # train, test images made on the fly
DIGITS = "digit-recognizer"  # the competition whose layout the generated images have


def generated_digits(n_train: int, n_test: int, seed: int = 0):
    """MNIST-sized 28x28 uint8 digits made on the fly (never downloaded), deterministic by `seed`.

    Each image is one of scikit-learn's 1,797 bundled 8x8 digits upscaled into MNIST's 20x20 box, shifted by
    up to 3 pixels, dimmed and noised, so the set has MNIST's size and shape and is not trivially repeated.
    """
    import numpy as np
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digits = load_digits()
    big = np.clip(zoom(digits.images.astype(np.float32) / 16.0, (1, 20 / 8, 20 / 8), order=1), 0.0, 1.0)
    base = np.zeros((len(big), 28, 28), np.float32)
    base[:, 4:24, 4:24] = big
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    pick = rng.integers(0, len(base), n)
    shifts = rng.integers(-3, 4, size=(n, 2))
    images = np.empty((n, 28, 28), np.float32)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            images[rows] = np.roll(base[pick[rows]], (dy, dx), axis=(1, 2))
    images *= rng.uniform(0.6, 1.0, size=(n, 1, 1)).astype(np.float32)
    images += rng.normal(0.0, 0.08, size=images.shape).astype(np.float32)
    images = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    labels = digits.target[pick]
    return images[:n_train], labels[:n_train], images[n_train:]


def prepare_data(ws: Copy, exp: Experiment, size: str, seed: int, n_train: int | None = None) -> dict:
    """Raw data, then the experiment's dataset and feature folders in the copy; the features' manifest.

    The generated sizes are digit images in the Digit Recognizer layout; another competition's `tiny` is its own
    offline sample (small already)."""
    if size == "digits" or exp.competition != DIGITS:
        ws.run(["bash", str(ws.root / "scripts/prepare_data.sh"), "--competition", exp.competition],
               "prepare_data.sh")
    else:
        from src.dataset.raw_data import write_layout

        n_train, n_test = (n_train or GENERATED[size][0]), GENERATED[size][1]
        train_x, train_y, test_x = generated_digits(n_train, n_test, seed)
        write_layout(ws.root / exp.raw_dir, train_x, train_y, test_x, {
            "source": f"generated:bench-{size}", "is_sample": True, "seed": seed,
            "note": "GENERATED for scripts/bench.sh: scikit-learn digits upscaled, shifted and noised"})
    ws.python(str(ws.root / "src/dataset" / exp.dataset / "make_dataset.py"), what=f"{exp.dataset}/make_dataset.py")
    ws.python(str(ws.root / "src/feature" / exp.feature / "build_features.py"),
              what=f"{exp.feature}/build_features.py")
    return json.loads((ws.root / exp.feature_dir / "manifest.json").read_text())
