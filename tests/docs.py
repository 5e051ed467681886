"""The shell commands the documentation shows: the code blocks of README.md, README.ja.md and the reference pages
docs/*.md (DOCS), and the tools' `--help`.

A command is one logical line of a ```bash / ```sh block (continuation lines joined, the trailing `# comment`
dropped), or a `$ `-prompted line of any other block together with the output printed under it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the READMEs, then the reference pages in name order: a page added to docs/ is covered without editing this file
DOCS = ("README.md", "README.ja.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")))
TOOLS = ("prepare_data", "new_experiment", "new_diary", "bench", "kaggle_pack", "rerun")  # argparse tools
_COMMENT = re.compile(r"\s{2,}#.*$")
_SHOWN = re.compile(r"^\s+((?:bash scripts/|poetry run |\.venv/bin/python ).*)$")


@dataclass
class Command:
    text: str
    places: list[str] = field(default_factory=list)  # file:line where the documentation shows it
    output: list[str] = field(default_factory=list)  # the lines printed under a `$ ` prompt


def _logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    out, buf, first = [], "", 0
    for number, line in lines:
        text = line.strip()
        if not buf and (not text or text.startswith("#")):
            continue
        if not buf:
            first = number
        text = _COMMENT.sub("", text).rstrip()
        if text.endswith("\\"):
            buf += text[:-1].strip() + " "
            continue
        out.append((first, (buf + text).strip()))
        buf = ""
    return out


def readme_commands(name: str) -> list[Command]:
    """The commands of one Markdown file of DOCS (a path relative to the repository), in order."""
    commands: list[Command] = []
    block: str | None = None
    lines: list[tuple[int, str]] = []
    for number, line in enumerate((REPO / name).read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):  # fences of a list item are indented
            if block is None:
                block, lines = line.lstrip()[3:].strip() or "text", []
                continue
            if block in ("bash", "sh", "shell"):
                commands += [Command(text, [f"{name}:{n}"]) for n, text in _logical_lines(lines)]
            else:
                prompted: Command | None = None
                for n, text in lines:
                    if text.startswith("$ "):
                        prompted = Command(text[2:].strip(), [f"{name}:{n}"])
                        commands.append(prompted)
                    elif prompted is not None and text.strip():
                        prompted.output.append(text)
            block = None
            continue
        if block is not None:
            lines.append((number, line))
    return commands


def help_commands(tool: str) -> list[Command]:
    """The example lines `bash scripts/<tool>.sh --help` prints."""
    res = subprocess.run(["bash", str(REPO / "scripts" / f"{tool}.sh"), "--help"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, f"bash scripts/{tool}.sh --help failed: {res.stderr[-2000:]}"
    found = [_COMMENT.sub("", m.group(1)).strip() for line in res.stdout.splitlines() if (m := _SHOWN.match(line))]
    return [Command(text, [f"bash scripts/{tool}.sh --help"]) for text in found]


def documented_commands() -> list[Command]:
    """Every documented command once, in the order first shown, with every place that shows it."""
    by_text: dict[str, Command] = {}
    for command in [c for doc in DOCS for c in readme_commands(doc)] + [c for t in TOOLS for c in help_commands(t)]:
        if command.text in by_text:
            by_text[command.text].places += command.places
            by_text[command.text].output = by_text[command.text].output or command.output
        else:
            by_text[command.text] = command
    return list(by_text.values())


def block_after(doc: str, heading_text: str) -> list[str]:
    """The commands of the first ```bash block after the line containing `heading_text` (for tests that run a
    documented sequence where it belongs, e.g. the services)."""
    text = (REPO / doc).read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(text) if heading_text in line)
    begin = next(i for i in range(start, len(text)) if text[i].startswith("```bash"))
    end = next(i for i in range(begin + 1, len(text)) if text[i].startswith("```"))
    return [t for _, t in _logical_lines(list(enumerate(text[begin + 1 : end], begin + 2)))]


BACK_LINK = "[← Back to the README](../README.md)"  # the first line of every page of docs/
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _prose(name: str) -> list[tuple[int, str]]:
    """The lines of a Markdown file outside its code blocks, numbered."""
    out, fenced = [], False
    for number, line in enumerate((REPO / name).read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            out.append((number, line))
    return out


def anchors(name: str) -> set[str]:
    """The #anchors of a Markdown file's headings, as GitHub makes them (lower case, punctuation dropped)."""
    return {re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            for _, line in _prose(name) if (m := _HEADING.match(line))}


def broken_links(name: str) -> list[str]:
    """The links of a Markdown file to a file or #anchor of this repository that does not exist."""
    broken = []
    for number, line in _prose(name):
        for target in _LINK.findall(line):
            if re.match(r"^[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = ((REPO / name).parent / file).resolve() if file else REPO / name
            if not path.exists() or (anchor and path.is_file()
                                     and anchor not in anchors(path.relative_to(REPO).as_posix())):
                broken.append(f"{name}:{number}: {target}")
    return broken


def poetry_bin() -> Path:
    """The folder of the `poetry` that scripts/setup.sh installed (documented commands start with `poetry run`)."""
    for candidate in (shutil.which("poetry"), Path.home() / ".local/bin/poetry",
                      Path(os.environ.get("POETRY_VENV", Path.home() / ".local/share/kaggle-workspace-poetry"))
                      / "bin/poetry"):
        if candidate and Path(candidate).exists():
            return Path(candidate).resolve().parent
    raise AssertionError("poetry is not installed: run bash scripts/setup.sh (it installs Poetry)")


if __name__ == "__main__":  # list them: python -m tests.docs
    for c in documented_commands():
        print(f"{c.text}\n    {', '.join(c.places)}" + "".join(f"\n    > {o}" for o in c.output), file=sys.stdout)
