"""The documented commands that run in workspaces of their own: README's "Start your own competition" walkthrough
(in order, with the edits its text asks for), the data commands and the demo (each in a fresh copy), run as written
by the documented-commands test's own machinery (tests/test_documented_commands.py), in a module of their own so
that they run beside the others on another worker of the suite."""

from __future__ import annotations

import pytest

from tests import test_documented_commands as documented
from tests.docs import Command
from tests.test_documented_commands import COMMANDS, ELSEWHERE_KINDS, Session, kind, run_documented

session = documented.session  # the same module-scoped fixture: a prepared workspace of this module's own
FRESH = [c for c in COMMANDS if ELSEWHERE_KINDS.get(kind(c.text)) == "fresh"]


@pytest.mark.slow
@pytest.mark.parametrize("command", FRESH, ids=[c.text[:90] for c in FRESH])
def test_documented_command_in_its_own_workspace_runs_as_written(command: Command, session: Session,
                                                                 prepared_template, tmp_path_factory) -> None:
    run_documented(command, session, prepared_template, tmp_path_factory)


def test_the_walkthrough_the_data_commands_and_the_demo_are_here() -> None:
    kinds = {kind(c.text) for c in FRESH}
    assert kinds == {"walkthrough", "data", "demo"}, kinds
