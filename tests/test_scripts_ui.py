"""scripts/mlflow_ui.sh, optuna_dashboard.sh, tensorboard.sh, jupyter.sh and run_bg.sh as real processes in a
throw-away workspace: their refusals, the empty store, Jupyter's token, background runs. What each UI shows on
real runs is checked in a real browser by tests/test_browser.py.

Servers run in their own process group, so teardown stops the script and everything it started.
"""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import Workspace


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str, headers: dict[str, str] | None = None) -> int:
    """Status code of a GET, without following redirects (a redirect to /login is an answer too)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@contextmanager
def serve(ws: Workspace, script: str, *args: str, log: Path, **env: str) -> Iterator[subprocess.Popen]:
    """Start a server script from outside the workspace; always stop its whole process group."""
    with open(log, "w") as out:
        proc = subprocess.Popen(["bash", str(ws.root / script), *args], cwd=ws.cwd, env=ws.env(**env),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=grace)
                # The script's own process exited; its children (uvicorn worker) may still be leaving.
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline:
                    os.killpg(proc.pid, 0)
                    time.sleep(0.1)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass


def wait_http(proc: subprocess.Popen, url: str, log: Path, timeout: float = 60) -> float:
    """Seconds until `url` answers at all; fails early, with the server's output, if the server exits."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode} before answering {url}:\n{log.read_text()}")
        try:
            http_status(url)
            return time.monotonic() - start
        except OSError:  # not listening yet
            time.sleep(0.1)
    pytest.fail(f"no answer from {url} within {timeout} s:\n{log.read_text()}")


def assert_one_error_line(res: subprocess.CompletedProcess, *fragments: str) -> None:
    lines = (res.stdout + res.stderr).strip().splitlines()
    assert res.returncode != 0 and len(lines) == 1 and lines[0].startswith("error:"), (res.returncode, lines)
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


# --- MLflow UI ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_mlflow_ui_on_an_empty_store_says_so_and_still_serves(workspace: Workspace, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "mlflow.log"
    with serve(workspace, "scripts/mlflow_ui.sh", str(port), log=log) as proc:
        wait_http(proc, f"http://127.0.0.1:{port}/health", log)
        out = log.read_text()
    assert "empty" in out and "bash scripts/demo.sh" in out and "Runs of" not in out, out
    # the server created the store in the workspace, not in the current directory
    assert (workspace.root / "logs/mlruns/mlflow.db").is_file() and not list(workspace.cwd.iterdir())


def add_runs(ws: Workspace, *runs: tuple[str, int]) -> None:
    """Finished runs (experiment name, start time in ms) in the workspace's MLflow store."""
    client = ws.client()
    for name, start in runs:
        exp = client.get_experiment_by_name(name)
        exp_id = exp.experiment_id if exp else client.create_experiment(
            name, artifact_location=(ws.root / "logs/mlruns/artifacts" / name).as_uri())
        run = client.create_run(exp_id, start_time=start)
        client.set_terminated(run.info.run_id, end_time=start + 1000)


def fake_desktop(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A desktop session whose xdg-open only writes down what it was asked to open."""
    (tmp_path / "bin").mkdir(parents=True)
    opened = tmp_path / "opened.txt"
    xdg = tmp_path / "bin/xdg-open"
    xdg.write_text(f'#!/bin/sh\necho "$@" >> {opened}\n')
    xdg.chmod(0o755)
    return {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "DISPLAY": ":99"}, opened


@pytest.mark.slow
def test_mlflow_ui_prints_the_latest_experiments_runs_table(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    now = int(time.time() * 1000)
    ids = {}
    # __debug__ is the landing page only while no other experiment has runs; then the latest run's experiment
    for name, start in (("__debug__", now - 5000), ("dataset01", now - 9000), ("model01", now - 7000)):
        add_runs(ws, (name, start))
        ids[name] = ws.client().get_experiment_by_name(name).experiment_id
        port, log = free_port(), tmp_path / f"{name}.log"
        desktop, opened = fake_desktop(tmp_path / name)
        with serve(ws, "scripts/mlflow_ui.sh", str(port), log=log, **desktop) as proc:
            deadline = time.monotonic() + 60  # the line is printed before the server starts
            while time.monotonic() < deadline and "\nRuns of " not in log.read_text() and proc.poll() is None:
                time.sleep(0.1)
            out = log.read_text()
        # each experiment added becomes the landing page: __debug__ alone, then dataset01 (older than the
        # __debug__ run), then model01 (newer than dataset01's run)
        url = f"http://127.0.0.1:{port}/#/experiments/{ids[name]}?workflowType=machine_learning"
        assert f"Runs of {name}: {url}\n" in out, out
        assert not opened.exists()  # not a terminal (the output goes to a file): nothing is opened


@pytest.mark.slow
def test_mlflow_ui_opens_the_runs_table_on_a_desktop(workspace: Workspace, tmp_path: Path) -> None:
    """In a terminal (a pty here) with a display, xdg-open gets the runs table once the server answers."""
    ws = workspace
    add_runs(ws, ("model01", int(time.time() * 1000)))
    exp_id = ws.client().get_experiment_by_name("model01").experiment_id
    for args in ((), ("--no-browser",)):
        desktop, opened = fake_desktop(tmp_path / f"run{len(args)}")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        master, slave = pty.openpty()
        proc = subprocess.Popen(["bash", str(ws.root / "scripts/mlflow_ui.sh"), str(port), *args], cwd=ws.cwd,
                                env=ws.env(**desktop), stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True)
        os.close(slave)
        output = bytearray()
        reader = threading.Thread(target=drain, args=(master, output), daemon=True)
        reader.start()
        try:
            if not args:
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline and not opened.exists() and proc.poll() is None:
                    time.sleep(0.1)
                assert opened.exists(), output.decode(errors="replace")
                assert http_status(f"{base}/health") == 200  # it was opened after the server answered
                assert opened.read_text() == f"{base}/#/experiments/{exp_id}?workflowType=machine_learning\n"
            else:
                (log := tmp_path / "no-browser.log").write_bytes(bytes(output))
                wait_http(proc, f"{base}/health", log)
                deadline = time.monotonic() + 2  # the opener polls every 0.3 s: time enough to have opened
                while time.monotonic() < deadline and not opened.exists():
                    time.sleep(0.1)
                assert not opened.exists(), opened.read_text()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
            reader.join(timeout=5)
            os.close(master)


def drain(fd: int, into: bytearray) -> None:
    """Read a pty until its other side is closed (a full pty would block the server)."""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        into.extend(chunk)


def test_mlflow_ui_refuses_a_busy_port(workspace: Workspace, busy_port: int) -> None:
    res = workspace.bash("scripts/mlflow_ui.sh", str(busy_port), timeout=30)
    assert_one_error_line(res, str(busy_port), "bash scripts/mlflow_ui.sh")
    # nothing started: no server ever created the store
    assert not (workspace.root / "logs/mlruns/mlflow.db").exists()


def test_mlflow_ui_rejects_a_bad_port(workspace: Workspace) -> None:
    assert_one_error_line(workspace.bash("scripts/mlflow_ui.sh", "50x0", timeout=30), "50x0")


# --- Optuna dashboard ---------------------------------------------------------------------------------


def test_optuna_dashboard_refuses_a_busy_port(workspace: Workspace, busy_port: int) -> None:
    res = workspace.bash("scripts/optuna_dashboard.sh", str(busy_port), timeout=30)
    assert_one_error_line(res, str(busy_port), "bash scripts/optuna_dashboard.sh")


# --- TensorBoard ---------------------------------------------------------------------------------------


def test_tensorboard_refuses_a_busy_port(workspace: Workspace, busy_port: int) -> None:
    res = workspace.bash("scripts/tensorboard.sh", str(busy_port), timeout=30)
    assert_one_error_line(res, str(busy_port), "bash scripts/tensorboard.sh")


# --- JupyterLab ---------------------------------------------------------------------------------------


def jupyter_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Keep Jupyter's runtime/config/data files in tmp, away from the user's home."""
    dirs = {name: tmp_path / name.lower() for name in ("JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR")}
    return {**{k: str(v) for k, v in dirs.items()}, **extra}


def test_jupyter_requires_its_token(workspace: Workspace, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "jupyter.log"
    with serve(workspace, "scripts/jupyter.sh", str(port), log=log, **jupyter_env(tmp_path)) as proc:
        wait_http(proc, f"http://127.0.0.1:{port}/api/status", log)
        match = re.search(rf"http://127\.0\.0\.1:{port}/lab\?token=(\S+)", log.read_text())
        assert match, log.read_text()
        token = match.group(1)
        api = f"http://127.0.0.1:{port}/api"
        assert http_status(f"{api}/status") == 403
        assert http_status(f"{api}/status", {"Authorization": "token wrong"}) == 403
        assert http_status(f"http://127.0.0.1:{port}/lab") == 302  # to the login page
        assert http_status(f"{api}/status", {"Authorization": f"token {token}"}) == 200
        specs = get_json(f"{api}/kernelspecs?token={token}")
        assert specs["default"] == "kaggle-workspace" and "kaggle-workspace" in specs["kernelspecs"]
        contents = get_json(f"{api}/contents?token={token}")  # rooted at the project root
        assert {"src", "scripts"} <= {item["name"] for item in contents["content"]}


@pytest.mark.parametrize("token", ["", "  "])
def test_jupyter_refuses_an_empty_token(workspace: Workspace, tmp_path: Path, token: str) -> None:
    port = free_port()
    res = workspace.bash("scripts/jupyter.sh", str(port), timeout=30, **jupyter_env(tmp_path, JUPYTER_TOKEN=token))
    assert_one_error_line(res, "JUPYTER_TOKEN")
    with pytest.raises(OSError):  # nothing listens
        http_status(f"http://127.0.0.1:{port}/api/status")


def test_jupyter_refuses_a_busy_port(workspace: Workspace, tmp_path: Path, busy_port: int) -> None:
    res = workspace.bash("scripts/jupyter.sh", str(busy_port), timeout=30, **jupyter_env(tmp_path))
    assert_one_error_line(res, str(busy_port), "bash scripts/jupyter.sh")


# --- background runs ----------------------------------------------------------------------------------


def test_run_bg_logs_a_background_command(workspace: Workspace) -> None:
    ws = workspace
    res = ws.bash("scripts/run_bg.sh", "bash", "-c", "echo hello; pwd; sleep 2; echo bye >&2", timeout=30)
    assert res.returncode == 0, res.stderr
    fields = dict(re.findall(r"^(pid|log):\s+(.+)$", res.stdout, re.M))
    pid, log = int(fields["pid"]), Path(fields["log"])
    try:
        assert log.parent == ws.root / "logs/background" and log.name.endswith(".log")
        assert Path(f"{log}.pid").read_text().strip() == str(pid)
        assert f"tail -f {log}" in res.stdout and f"kill {pid}" in res.stdout
        os.kill(pid, 0)  # still running after the script returned: it is in the background
        def output() -> list[str]:  # the log minus its "# started/# command" header
            return [line for line in log.read_text().splitlines() if not line.startswith("# ")]

        deadline = time.monotonic() + 20
        while "bye" not in output() and time.monotonic() < deadline:
            time.sleep(0.1)
        # stdout and stderr both land in the log, and the command ran from the project root
        assert output() == ["hello", str(ws.root), "bye"], log.read_text()
    finally:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def test_run_bg_without_a_command_prints_usage(workspace: Workspace) -> None:
    res = workspace.bash("scripts/run_bg.sh", timeout=30)
    assert res.returncode != 0 and res.stderr.startswith("usage: bash scripts/run_bg.sh <command...>")
    assert not (workspace.root / "logs/background").exists()
