"""Python's cyclic collector around the heavy imports: one definition, used by the set-up and by reloading.

Importing torch, Lightning and MLflow creates ~0.6 M objects that live as long as the process; the collector would
walk them again and again while they load (~20% of a training script's start-up, ~1.5 s of a first `load_run`).
`pause()` stops it until `resume()`, which also freezes what exists by then out of every later collection (a full
one otherwise walks them again, ~0.2 s, several times per sweep); they are unfrozen at exit so the final
collection still frees them.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
from collections.abc import Iterator

_state = {"paused": False, "frozen": False}


def pause() -> None:
    """Stop the collector until `resume()` (nothing if it is off already)."""
    if gc.isenabled():
        gc.disable()
        _state["paused"] = True


def resume() -> None:
    """Freeze what the imports made and turn the collector back on, if `pause()` turned it off; idempotent."""
    gc.freeze()
    if not _state["frozen"]:
        atexit.register(gc.unfreeze)
        _state["frozen"] = True
    if _state["paused"]:
        _state["paused"] = False
        gc.enable()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The collector off for the block (e.g. unpickling a model, which imports torch and Lightning)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
