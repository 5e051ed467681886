"""The benchmark's documented commands (`bash scripts/bench.sh ...`, docs/performance.md), run as written by the
documented-commands test's own machinery (tests/test_documented_commands.py: the tiny options, the report checks),
in a module of their own, so that their throw-away workspace copies run beside the other documented commands on
another worker of the suite."""

from __future__ import annotations

import pytest

from tests import test_documented_commands as documented
from tests.docs import Command
from tests.test_documented_commands import COMMANDS, ELSEWHERE_KINDS, Session, kind, run_documented

session = documented.session  # the same module-scoped fixture: a prepared workspace of this module's own
BENCH = [c for c in COMMANDS if ELSEWHERE_KINDS.get(kind(c.text)) == "bench"]


@pytest.mark.slow
@pytest.mark.parametrize("command", BENCH, ids=[c.text[:90] for c in BENCH])
def test_documented_benchmark_runs_as_written(command: Command, session: Session, prepared_template,
                                             tmp_path_factory) -> None:
    run_documented(command, session, prepared_template, tmp_path_factory)


def test_every_benchmark_command_is_here() -> None:
    assert BENCH and all(c.text.startswith("bash scripts/bench.sh") for c in BENCH)
