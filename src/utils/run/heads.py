"""A network's head from the competition's task, so that a network folder copied to a competition of another task
trains the right loss unedited: its output width, its loss, and what the task reads from its outputs.

    multiclass   one logit per class      cross-entropy over the classes
    binary       one logit                binary cross-entropy (with logits)
    multilabel   one logit per label      binary cross-entropy per label
    regression   one value per target     mean squared error on the standardised target

`head_of(task, y)` is what a folder's `build` passes to its network (plain values: they are hyper-parameters and
go into checkpoints); `loss`, `scores`, `error` and `accuracy` are the torch side. A network that overrides its
own loss keeps it. Imports the tasks (src.tasks) and, in the torch functions only, torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from src.utils.core.errors import WorkspaceError

KINDS = ("multiclass", "binary", "multilabel", "regression")


def head_of(task: Any, y: np.ndarray) -> dict[str, Any]:
    """`task`, `n_outputs`, `target_mean`, `target_std` for a network of this task, from a fold's training targets
    (the mean and spread of a regression's target: its network learns the standardised target)."""
    kind = getattr(task, "kind", None)
    if kind not in KINDS:
        raise WorkspaceError(f"the network's head knows the tasks {', '.join(KINDS)}, not {task!r}; give the model "
                             f"a loss of its own (override its `loss`)")
    mean, std = 0.0, 1.0
    if kind == "regression":
        values = np.asarray(y, dtype=np.float64)
        mean, std = float(values.mean()), float(values.std() or 1.0)
    return {"task": kind, "n_outputs": int(task.width), "target_mean": mean, "target_std": std}


def _target(kind: str, y: Any, like: Any) -> Any:
    return y.long().view(-1) if kind == "multiclass" else y.to(like.dtype).view_as(like)


def loss(kind: str, out: Any, y: Any, mean: Any = 0.0, std: Any = 1.0) -> Any:
    """The task's training loss of the network's outputs (logits; values in the target's units for a regression)."""
    from torch.nn import functional as F

    if kind == "multiclass":
        return F.cross_entropy(out, _target(kind, y, out))
    if kind in ("binary", "multilabel"):
        return F.binary_cross_entropy_with_logits(out, _target(kind, y, out))
    return F.mse_loss((out - mean) / std, (_target(kind, y, out) - mean) / std)


def scores(kind: str, out: Any) -> Any:
    """Probabilities (classes, labels) or values (regression) of the outputs."""
    if kind == "multiclass":
        return out.softmax(dim=1)
    return out.sigmoid() if kind in ("binary", "multilabel") else out


def error(kind: str, out: Any, y: Any) -> Any:
    """The root mean squared error of the scores against the targets (one-hot for classes): the target's units for
    a regression, the root of the Brier score for classes; lower is better for every task."""
    import torch

    p = scores(kind, out)
    truth = (torch.nn.functional.one_hot(_target(kind, y, out), p.shape[1]).to(p.dtype) if kind == "multiclass"
             else _target(kind, y, out))
    return torch.sqrt(torch.mean((p - truth) ** 2))


def accuracy(kind: str, out: Any, y: Any) -> Any:
    """The share of right decisions (classes and labels); nan for a regression."""
    import torch

    if kind == "multiclass":
        return (out.argmax(dim=1) == _target(kind, y, out)).float().mean()
    if kind in ("binary", "multilabel"):
        return ((out >= 0).to(out.dtype) == _target(kind, y, out)).float().mean()
    return torch.tensor(float("nan"))
