"""The reference pages' documented commands (docs/*.md) and the tools' `--help` examples, run as written by the
documented-commands test's own machinery (tests/test_documented_commands.py: the tiny settings, the checks, the
placeholders), in a workspace of this module's own, in a module of their own, so that they run beside the READMEs'
commands on another worker of the suite. Each page's commands run in the page's order, as its reader runs them."""

from __future__ import annotations

import pytest

from tests import test_documented_commands as documented
from tests.docs import Command
from tests.test_documented_commands import COMMANDS, Session, module_of, run_documented

session = documented.session  # the same module-scoped fixture: a prepared workspace of this module's own
PAGES = [c for c in COMMANDS if module_of(c) == "pages"]


@pytest.mark.slow
@pytest.mark.parametrize("command", PAGES, ids=[c.text[:90] for c in PAGES])
def test_documented_page_command_runs_as_written(command: Command, session: Session, prepared_template,
                                                 tmp_path_factory) -> None:
    run_documented(command, session, prepared_template, tmp_path_factory)


def test_every_page_command_is_here() -> None:
    assert PAGES and all(not c.places[0].startswith("README") for c in PAGES)
    assert {c.places[0].split(":")[0] for c in PAGES} >= {"docs/configuration.md", "docs/ensembling.md"}
