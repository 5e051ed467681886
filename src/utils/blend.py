"""An old import path of the frozen contract (src/utils/contract.py): re-exports only."""

from src.utils.ensemble.methods import HillClimbing, Mean, RankMean, Stacking

__all__ = ["HillClimbing", "Mean", "RankMean", "Stacking"]
