"""Sweep settings checked before any trial starts (and again by the sweeper): `n_trials`, the search space as the
official plugin reads it, and the `pruner` node (built, and successive halving's resources). One `error:` line each."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from src.utils.core.errors import WorkspaceError
from src.utils.tune.pruners import job_pruner


def check_settings(n_trials: Any, distributions: dict[str, Any], overrides: list[str]) -> None:
    """Bad sweep settings, before any trial starts: one line each."""
    from optuna.distributions import FloatDistribution, IntDistribution

    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise WorkspaceError(f"hydra.sweeper.n_trials={n_trials} is not allowed: a whole number >= 1")
    for name, dist in distributions.items():
        if isinstance(dist, FloatDistribution | IntDistribution) and not dist.low < dist.high:
            given = next((o for o in overrides if o.split("=", 1)[0].lstrip("+~") == name), name)
            raise WorkspaceError(f"{given}: the interval is empty; give a lower and a higher end, "
                                 f"e.g. {name}=interval({dist.low},{dist.low * 10 or 1})")


def check_pruner(config: Any) -> None:
    """The `pruner` node builds an Optuna pruner, or one error line says what to write instead."""
    import optuna

    example = "e.g. pruner=median, pruner=none, or '~pruner' '+pruner={_target_:optuna.pruners.MedianPruner}'"
    target = config.get("_target_") if isinstance(config, dict | DictConfig) else None
    if not target:
        raise WorkspaceError(f"pruner={config} is not allowed: a node with the _target_ of an Optuna pruner "
                             f"({example})")
    check_resources(config, "pruner")
    try:
        pruner = job_pruner(config)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkspaceError(f"pruner._target_={target} cannot be built: {reason} ({example})") from exc
    if not isinstance(pruner, optuna.pruners.BasePruner):
        raise WorkspaceError(f"pruner._target_={target} is not an Optuna pruner ({example})")


def check_resources(config: Any, path: str) -> None:
    """Successive halving's settings, which Optuna checks only when the first trial asks (a ZeroDivisionError
    in the middle of a sweep): reduction_factor >= 2, 1 <= min_resource <= max_resource."""
    rf, low, high = (config.get(k) for k in ("reduction_factor", "min_resource", "max_resource"))
    if rf is not None and (not isinstance(rf, int) or isinstance(rf, bool) or rf < 2):
        raise WorkspaceError(f"{path}.reduction_factor={rf} is not allowed: a whole number >= 2 (3 keeps 1 trial in "
                             f"3 at each rung)")
    ints = {k: v for k, v in (("min_resource", low), ("max_resource", high)) if isinstance(v, int)}
    if any(v < 1 for v in ints.values()) or len(ints) == 2 and low > high:
        given = " and ".join(f"{path}.{k}={v}" for k, v in ints.items())
        raise WorkspaceError(f"{given} {'are' if len(ints) == 2 else 'is'} not allowed: whole numbers with "
                             f"1 <= min_resource <= max_resource (steps: epochs, or folds with fold=all)")
    for key, node in config.items():  # PatientPruner's wrapped_pruner, by_steps' epochs and folds
        if isinstance(node, dict | DictConfig) and "_target_" in node:
            check_resources(node, f"{path}.{key}")


def parse_space(arguments: list[str]) -> tuple[dict, dict, list]:
    """The official plugin's reading of the search space: distributions, fixed params, fixed overrides."""
    from hydra.errors import HydraException
    from hydra_plugins.hydra_optuna_sweeper import _impl

    try:
        dists, fixed, fixed_overrides = _impl.create_params_from_overrides(arguments)
    except (ValueError, HydraException) as exc:  # e.g. an inverted interval: Optuna refuses low > high
        raise WorkspaceError(f"the sweep {' '.join(arguments)} cannot be run: {str(exc).splitlines()[0]}; "
                             f"give each interval(low,high) with low < high") from exc
    for name in fixed:
        dists.pop(name, None)
    return dists, fixed, fixed_overrides
