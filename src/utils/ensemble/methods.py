"""How an ensemble combines its members' predictions: the `method` node of config/ensemble/<folder>/.

Every method sees the members' out-of-fold scores as one array `oof` (members x rows x width, the task's scores:
probabilities or values), the truth `y` and a `metric(y, scores) -> float` with its direction (`sign`: +1 when
higher is better), learns what it needs in `fit` and combines any rows of the members' scores in `predict` (the
OOF rows, or the test rows). A method of your own is a class with these two methods, named by `_target_`.

    Mean()                       the members' mean
    RankMean()                   the mean of each member's ranks (per score column, scaled to [0, 1]): for metrics
                                 that read only the order (ROC-AUC); its scores are not probabilities
    HillClimbing(steps)          Caruana's ensemble selection: start from the best member, add (with replacement)
                                 the member that helps the metric most, `steps` times; the weights are the
                                 selection counts of the best prefix
    Stacking(model)              a scikit-learn estimator (`_target_`) trained on the members' OOF scores

`nested_oof` scores a method honestly: for each fold, fitted on the other folds' OOF rows only and applied to the
held-out fold's, so choosing weights (or a stacker) never sees the rows it is scored on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from src.utils.core.errors import WorkspaceError

Metric = Callable[[np.ndarray, np.ndarray], float]


class Method:
    """The members' scores -> one set of scores; `weights` (one per member) where the method has them."""

    weights: np.ndarray | None = None

    def fit(self, oof: np.ndarray, y: np.ndarray, metric: Metric, sign: float) -> Method:
        self.weights = np.full(len(oof), 1 / len(oof))
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        return np.tensordot(self.weights, scores, axes=1)

    def describe(self) -> dict[str, Any]:
        """What the fitted method learned, for the run's records."""
        return {}


class Mean(Method):
    pass


def ranks(scores: np.ndarray) -> np.ndarray:
    """Each score column's ranks over the rows (ties averaged), scaled to [0, 1]."""
    from scipy.stats import rankdata

    n = scores.shape[-2]
    return (rankdata(scores, axis=-2) - 1) / max(n - 1, 1)


class RankMean(Method):
    def predict(self, scores: np.ndarray) -> np.ndarray:
        return np.tensordot(self.weights, ranks(scores), axes=1)


class HillClimbing(Method):
    """Caruana et al. (2004), ensemble selection with replacement, initialised with the best single member."""

    def __init__(self, steps: int = 30) -> None:
        if int(steps) < 1:
            raise WorkspaceError(f"method.steps={steps} is not allowed: a whole number >= 1")
        self.steps = int(steps)
        self.history: list[tuple[int, float]] = []

    def fit(self, oof: np.ndarray, y: np.ndarray, metric: Metric, sign: float) -> HillClimbing:
        m = len(oof)
        alone = np.array([metric(y, s) for s in oof])
        first = int(np.argmax(sign * alone))
        counts = np.zeros(m, dtype=np.int64)
        counts[first] = 1
        total = oof[first].copy()
        best, best_counts = alone[first], counts.copy()
        self.history = [(first, float(alone[first]))]
        candidate = np.empty_like(total)
        for step in range(1, self.steps):
            values = np.empty(m)
            for j in range(m):  # the blend with member j added once more
                np.add(total, oof[j], out=candidate)
                candidate /= step + 1
                values[j] = metric(y, candidate)
            pick = int(np.argmax(sign * values))
            counts[pick] += 1
            total += oof[pick]
            self.history.append((pick, float(values[pick])))
            if sign * values[pick] > sign * best:
                best, best_counts = values[pick], counts.copy()
        self.weights = best_counts / best_counts.sum()
        return self

    def describe(self) -> dict[str, Any]:
        return {"steps": [{"member": k, "value": v} for k, v in self.history]}


class Stacking(Method):
    """A meta-model on the members' scores side by side (rows x members*width): a classifier's predict_proba
    gives class probabilities (the task's classes, by index), a regressor's predict gives values."""

    def __init__(self, model: Any) -> None:
        if not hasattr(model, "fit") or not hasattr(model, "predict"):
            raise WorkspaceError(f"method.model must be a scikit-learn estimator (fit/predict), not {type(model)}")
        self.model = model
        self.width = 0

    @staticmethod
    def inputs(scores: np.ndarray) -> np.ndarray:
        return np.concatenate(list(scores), axis=1)

    def fit(self, oof: np.ndarray, y: np.ndarray, metric: Metric, sign: float) -> Stacking:
        from sklearn.base import clone

        self.width = oof.shape[2]
        target = np.asarray(y)
        if target.ndim == 2 and target.shape[1] == 1:
            target = target[:, 0]
        self.model = clone(self.model).fit(self.inputs(oof), target)
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        x = self.inputs(scores)
        if not hasattr(self.model, "predict_proba"):
            return np.asarray(self.model.predict(x), dtype=np.float64).reshape(len(x), -1)
        proba = self.model.predict_proba(x)
        classes = np.asarray(self.model.classes_).astype(np.int64)
        if self.width == 1:  # binary: the score is the probability of class 1
            return proba[:, list(classes).index(1)][:, None] if 1 in classes else np.zeros((len(x), 1))
        out = np.zeros((len(x), self.width))
        out[:, classes] = proba  # a class absent from the training rows keeps probability 0
        return out

    def describe(self) -> dict[str, Any]:
        return {"model": repr(self.model)}


def nested_oof(method: Method, oof: np.ndarray, y: np.ndarray, folds: np.ndarray, metric: Metric,
               sign: float, n_jobs: int = -1) -> tuple[np.ndarray, list[Method]]:
    """The method's predictions on every OOF row, each fold's from a copy fitted on the other folds' rows only;
    with the fitted copies. The folds are fitted in threads (`n_jobs`, -1: one per CPU): NumPy and scikit-learn
    release the GIL in their loops (1.6x on 2 cores for hill climbing on 20 MNIST-size members)."""
    from joblib import Parallel, delayed

    def one(k: int) -> tuple[np.ndarray, Method]:
        held = folds == k
        m = copy.deepcopy(method).fit(oof[:, ~held], y[~held], metric, sign)
        return held, m

    out = np.zeros(oof.shape[1:])
    done = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(one)(k) for k in np.unique(folds))
    for held, m in done:
        out[held] = m.predict(oof[:, held])
    return out, [m for _, m in done]
