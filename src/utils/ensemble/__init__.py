"""Ensembles: members (finished fold=all runs) and their checks, the blend methods (mean, rank mean, hill climbing,
stacking) and the ensemble run. Imports the packages below it (core ... predict).

`src.utils.ensemble` is also an old import path of ensemble folders (src/utils/contract.py): `blend` stays; it is
read on first use, so importing the methods does not load MLflow.
"""

from typing import Any

__all__ = ["blend"]


def __getattr__(name: str) -> Any:
    if name == "blend":
        from src.utils.ensemble.run import blend

        return blend
    raise AttributeError(name)
