"""src.utils.core: atomic writes and JSON, hashing, project paths, the .env reader, user errors, the collector,
redaction."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from src.utils.core import collector, env, paths
from src.utils.core.errors import WorkspaceError, exit_on_user_error, in_multirun
from src.utils.core.hashing import file_sha256, files_sha256, json_sha256, tree_sha256
from src.utils.core.io import atomic_dir, atomic_file, read_json, write_json
from src.utils.core.redaction import is_secret_name, redact, redact_uri


# --- io ---------------------------------------------------------------------------------------------------------------
def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_file_writes_the_file_only_when_the_block_succeeds(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "out.txt"
    with atomic_file(out) as f:
        f.write("hello")
        assert not out.exists()  # nothing under the final name while the block runs
    assert out.read_text() == "hello"
    assert leftovers(out.parent) == []


def test_atomic_file_leaves_nothing_when_the_block_raises(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_file(out) as f:
        f.write("half")
        raise RuntimeError("boom")
    assert not out.exists()
    assert leftovers(tmp_path) == []  # the temporary sibling is removed too


def test_atomic_file_keeps_the_old_file_when_the_block_raises(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_file(out) as f:
        f.write("new, half written")
        raise KeyboardInterrupt
    assert out.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_atomic_file_follows_the_umask_not_mkstemps_private_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "f.bin", "wb") as f:
            f.write(b"\x00\x01")
    finally:
        os.umask(old)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "f.bin").read_bytes() == b"\x00\x01"


def test_atomic_dir_replaces_the_folder_on_success_and_keeps_it_on_error(tmp_path: Path) -> None:
    final = tmp_path / "out"
    with atomic_dir(final) as tmp:
        (tmp / "a.txt").write_text("1")
    assert sorted(p.name for p in final.iterdir()) == ["a.txt"]
    with atomic_dir(final) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in final.iterdir()) == ["b.txt"]  # replaced, not merged
    with pytest.raises(ValueError), atomic_dir(final) as tmp:
        (tmp / "c.txt").write_text("3")
        raise ValueError
    assert sorted(p.name for p in final.iterdir()) == ["b.txt"]
    assert leftovers(tmp_path) == []


def test_write_json_round_trips_sorted_with_a_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    write_json(path, {"b": 1, "a": [1, 2], "p": Path("/x/y")})
    text = path.read_text()
    assert text.endswith("}\n")
    assert text.index('"a"') < text.index('"b"') < text.index('"p"')
    assert read_json(path) == {"a": [1, 2], "b": 1, "p": "/x/y"}  # default=str for what JSON lacks


def test_write_json_of_an_unserialisable_value_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    write_json(path, {"ok": True})

    class Bad:
        def __str__(self) -> str:
            raise TypeError("no")

    with pytest.raises(TypeError):
        write_json(path, {"bad": Bad()})
    assert read_json(path) == {"ok": True}
    assert leftovers(tmp_path) == []


# --- hashing ----------------------------------------------------------------------------------------------------------
def test_file_sha256_is_the_contents_sha256(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # more than one read chunk
    (tmp_path / "f").write_bytes(data)
    assert file_sha256(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_files_sha256_ignores_order_but_not_names_or_contents(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("A")
    b.write_text("B")
    h = files_sha256([a, b], tmp_path)
    assert files_sha256([b, a], tmp_path) == h
    assert files_sha256([a], tmp_path) != h
    b.write_text("B2")
    assert files_sha256([a, b], tmp_path) != h
    b.write_text("B")
    b.rename(tmp_path / "c.txt")
    assert files_sha256([a, tmp_path / "c.txt"], tmp_path) != h  # same bytes, another name


def test_tree_sha256_reads_python_sources_only_and_skips_caches(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("x = 1\n")
    h = tree_sha256(tmp_path)
    (tmp_path / "notes.txt").write_text("not code")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "m.py").write_text("cached")
    assert tree_sha256(tmp_path) == h
    (tmp_path / "pkg" / "m.py").write_text("x = 2\n")
    assert tree_sha256(tmp_path) != h
    assert tree_sha256(tmp_path, "**/*.txt") != tree_sha256(tmp_path)


def test_json_sha256_ignores_key_order() -> None:
    assert json_sha256({"a": 1, "b": {"c": 2, "d": 3}}) == json_sha256({"b": {"d": 3, "c": 2}, "a": 1})
    assert json_sha256({"a": 1}) != json_sha256({"a": 2})
    assert json_sha256([1, 2]) != json_sha256([2, 1])  # lists keep their order


# --- paths ------------------------------------------------------------------------------------------------------------
def test_resolve_is_relative_to_the_project_root_not_the_cwd(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert paths.resolve("_data/feature/f01") == paths.ROOT / "_data" / "feature" / "f01"
    assert paths.resolve(tmp_path / "abs") == tmp_path / "abs"
    assert paths.resolve("~/x") == Path.home() / "x"


def test_shown_is_relative_inside_the_root_and_as_given_outside() -> None:
    assert paths.shown(paths.ROOT / "config" / "x.yaml") == "config/x.yaml"
    assert paths.shown("/elsewhere/file") == "/elsewhere/file"
    assert paths.shown("relative/file") == "relative/file"


def test_folder_of_and_config_dir_mirror_the_experiment_folder() -> None:
    file = paths.ROOT / "src" / "model" / "model01" / "train.py"
    assert paths.folder_of(file) == ("model", "model01")
    assert paths.config_dir(file) == str(paths.ROOT / "config" / "model" / "model01")
    assert paths.folder_of("src/feature/feature02/build_features.py") == ("feature", "feature02")


def fake_workspace(root: Path) -> Path:
    (root / "src" / "utils").mkdir(parents=True)
    (root / "src" / "utils" / "paths.py").write_text("")
    (root / "src" / "model" / "m1").mkdir(parents=True)
    (root / "src" / "model" / "m1" / "train.py").write_text("")
    return root


def test_workspace_of_finds_the_root_that_holds_a_file(tmp_path: Path) -> None:
    other = fake_workspace(tmp_path / "ws")
    assert paths.workspace_of(other / "src" / "model" / "m1" / "train.py") == other
    assert paths.workspace_of(paths.ROOT / "src" / "utils" / "core" / "paths.py") == paths.ROOT
    assert paths.workspace_of(tmp_path / "loose.py") is None


def test_check_workspace_refuses_a_script_of_another_workspace(tmp_path: Path, monkeypatch) -> None:
    other = fake_workspace(tmp_path / "ws")
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "__file__", str(other / "src" / "model" / "m1" / "train.py"), raising=False)
    with pytest.raises(SystemExit, match="belongs to the workspace"):
        paths.check_workspace()
    monkeypatch.setattr(main, "__file__", str(paths.ROOT / "src" / "model" / "model01" / "train.py"))
    paths.check_workspace()  # this workspace's own script
    monkeypatch.setattr(main, "__file__", str(tmp_path / "loose.py"))
    paths.check_workspace()  # a file outside any workspace


# --- env --------------------------------------------------------------------------------------------------------------
@pytest.fixture
def dotenv(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / ".env"
    path.write_text("UNIT_DOTENV_A=from-file\nUNIT_DOTENV_B='two words'\nUNIT_DOTENV_SET=file\nUNIT_DOTENV_NOVALUE\n"
                    "# a comment\n")
    monkeypatch.setattr(env, "DOTENV", path)
    monkeypatch.delenv("WORKSPACE_DOTENV", raising=False)
    for name in ("UNIT_DOTENV_A", "UNIT_DOTENV_B", "UNIT_DOTENV_NOVALUE"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)  # absent now, and absent again after the test
    monkeypatch.setenv("UNIT_DOTENV_SET", "from-shell")
    return path


def test_dotenv_values_are_the_files_unset_variables(dotenv: Path) -> None:
    assert env.dotenv_values() == {"UNIT_DOTENV_A": "from-file", "UNIT_DOTENV_B": "two words"}


def test_dotenv_is_ignored_with_workspace_dotenv_0_or_when_absent(dotenv: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKSPACE_DOTENV", "0")
    assert env.dotenv_values() == {}
    monkeypatch.delenv("WORKSPACE_DOTENV")
    monkeypatch.setattr(env, "DOTENV", dotenv.parent / "missing.env")
    assert env.dotenv_values() == {}


def test_load_sets_the_files_variables_and_never_overrides_the_shell(dotenv: Path) -> None:
    env.load()
    assert os.environ["UNIT_DOTENV_A"] == "from-file"
    assert os.environ["UNIT_DOTENV_SET"] == "from-shell"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_main_prints_shell_quoted_export_lines(dotenv: Path, capsys) -> None:
    assert env.main() == 0
    assert capsys.readouterr().out.splitlines() == ["export UNIT_DOTENV_A=from-file",
                                                    "export UNIT_DOTENV_B='two words'"]


# --- errors -----------------------------------------------------------------------------------------------------------
def test_exit_on_user_error_prints_one_line_and_exits_2(capsys) -> None:
    @exit_on_user_error
    def entry() -> None:
        raise WorkspaceError("lr=-1 is not allowed: a number > 0")

    with pytest.raises(SystemExit) as exc:
        entry()
    assert exc.value.code == 2
    assert capsys.readouterr().err == "error: lr=-1 is not allowed: a number > 0\n"


def test_exit_on_user_error_passes_results_and_other_errors_through() -> None:
    assert exit_on_user_error(lambda x: x + 1)(1) == 2

    @exit_on_user_error
    def bug() -> None:
        raise KeyError("a bug keeps its traceback")

    with pytest.raises(KeyError):
        bug()
    assert in_multirun() is False  # no Hydra multirun in this process


# --- collector --------------------------------------------------------------------------------------------------------
def test_paused_turns_the_collector_off_for_the_block_only() -> None:
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), collector.paused():
        raise ValueError
    assert gc.isenabled()  # back on after an error too


def test_paused_leaves_a_collector_that_was_off_off() -> None:
    gc.disable()
    try:
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_pause_and_resume(monkeypatch) -> None:
    monkeypatch.setitem(collector._state, "paused", False)
    collector.pause()
    assert not gc.isenabled() and collector._state["paused"]
    collector.resume()
    assert gc.isenabled() and not collector._state["paused"]
    gc.disable()  # off already: pause() does not take it over, resume() does not turn it on
    try:
        collector.pause()
        assert not collector._state["paused"]
        collector.resume()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_json_sha256_matches_a_plain_sorted_dump() -> None:
    obj = {"b": [1, 2], "a": "x"}
    assert json_sha256(obj) == hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


# --- redaction ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "secret"), [
    ("api_key", True), ("KAGGLE_KEY", True), ("token", True), ("db_password", True), ("passwd", True),
    ("client_secret", True), ("credentials", True), ("aws_Secret_Access", True),
    ("lr", False), ("storage", False), ("batch_size", False),
    ("apiKey", True), ("GITHUB_TOKEN", True), ("mlflow.tracking-password", True),
    # a word of the name counts, not a word inside one: a tokenizer or a monkey is logged as it is
    ("monkey", False), ("keyword", False), ("tokenizer", False), ("max_tokens", False), ("keys_per_batch", False),
])
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_redact_hides_secret_values_at_every_depth_and_copies() -> None:
    cfg = {"lr": 0.1, "api_token": "abc", "db": {"url": "x", "password": "pw", "list": [{"secret": 1}, 2]},
           "tags": ("a", {"KEY": "k"})}
    out = redact(cfg)
    assert out == {"lr": 0.1, "api_token": "***", "db": {"url": "x", "password": "***", "list": [{"secret": "***"}, 2]},
                   "tags": ["a", {"KEY": "***"}]}
    assert cfg["db"]["password"] == "pw"  # the original is untouched
    assert redact("plain") == "plain"
    assert redact({"password": {"nested": "whole node hidden"}}) == {"password": "***"}


def test_redact_uri_hides_the_password_only() -> None:
    assert redact_uri("postgresql://user:pw@host:5432/db") == "postgresql://user:***@host:5432/db"
    assert redact_uri("postgresql://user@host/db") == "postgresql://user@host/db"
    assert redact_uri("postgresql://u:p@ss@host/db") == "postgresql://u:***@host/db"  # an @ in the password
    assert redact_uri("sqlite:////tmp/optuna.db") == "sqlite:////tmp/optuna.db"


def test_the_scripts_token_and_uri_come_from_one_helper() -> None:
    import subprocess

    from src.utils.core.paths import ROOT

    def helper(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-S", "-m", "src.utils.core.redaction", *args], cwd=ROOT,
                              capture_output=True, text=True)

    tokens = {helper("token").stdout.strip() for _ in range(2)}
    assert len(tokens) == 2 and all(len(t) == 32 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)
    assert helper("uri", "postgresql://u:pw@h/db").stdout == "postgresql://u:***@h/db\n"
    assert helper("nothing").returncode == 2
