"""scripts/mlflow_ui.sh, optuna_dashboard.sh, tensorboard.sh, jupyter.sh and run_bg.sh as real processes in a
throw-away workspace.

Servers run in their own process group, so teardown stops the script and everything it started.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
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
def test_mlflow_ui_serves_runs_and_their_artifacts(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    for res in (ws.bash("scripts/prepare_data.sh"), ws.script("src/dataset/dataset01/make_dataset.py")):
        assert res.returncode == 0, res.stderr
    client = ws.client()
    (run,) = client.search_runs([client.get_experiment_by_name("dataset01").experiment_id])
    assert run.info.artifact_uri.startswith((ws.root / "logs/mlruns/artifacts").as_uri())

    port, log = free_port(), tmp_path / "mlflow.log"
    base = f"http://127.0.0.1:{port}"
    with serve(ws, "scripts/mlflow_ui.sh", str(port), log=log) as proc:
        wait_http(proc, f"{base}/health", log)
        assert http_status(f"{base}/") == 200
        out = log.read_text()
        assert f"MLflow UI: {base}" in out and "empty" not in out

        # What the UI calls to list and show a run's artifacts: they must resolve to the workspace's files.
        listing = get_json(f"{base}/api/2.0/mlflow/artifacts/list?run_id={run.info.run_id}")
        assert {f["path"] for f in listing["files"]} >= {"manifest.json", "logs"}, listing
        manifest = get_json(f"{base}/get-artifact?path=manifest.json&run_uuid={run.info.run_id}")
        assert manifest["mlflow_run_id"] == run.info.run_id


@pytest.mark.slow
def test_mlflow_ui_on_an_empty_store_says_so_and_still_serves(workspace: Workspace, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "mlflow.log"
    with serve(workspace, "scripts/mlflow_ui.sh", str(port), log=log) as proc:
        wait_http(proc, f"http://127.0.0.1:{port}/health", log)
        out = log.read_text()
    assert "empty" in out and "bash scripts/demo.sh" in out, out
    # the server created the store in the workspace, not in the current directory
    assert (workspace.root / "logs/mlruns/mlflow.db").is_file() and not list(workspace.cwd.iterdir())


def test_mlflow_ui_refuses_a_busy_port(workspace: Workspace, busy_port: int) -> None:
    res = workspace.bash("scripts/mlflow_ui.sh", str(busy_port), timeout=30)
    assert_one_error_line(res, str(busy_port), "bash scripts/mlflow_ui.sh")
    # nothing started: no server ever created the store
    assert not (workspace.root / "logs/mlruns/mlflow.db").exists()


def test_mlflow_ui_rejects_a_bad_port(workspace: Workspace) -> None:
    assert_one_error_line(workspace.bash("scripts/mlflow_ui.sh", "50x0", timeout=30), "50x0")


# --- Optuna dashboard ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_optuna_dashboard_serves_the_workspace_studies(workspace: Workspace, tmp_path: Path) -> None:
    import optuna

    storage = f"sqlite:///{workspace.root / 'logs/optuna/optuna.db'}"
    (workspace.root / "logs/optuna").mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name="dash", storage=storage, direction="maximize")
    study.add_trial(optuna.trial.create_trial(params={"lr": 0.01}, value=0.9,
                                              distributions={"lr": optuna.distributions.FloatDistribution(1e-4, 1)}))
    port, log = free_port(), tmp_path / "dashboard.log"
    base = f"http://127.0.0.1:{port}"
    with serve(workspace, "scripts/optuna_dashboard.sh", str(port), log=log) as proc:
        wait_http(proc, f"{base}/api/studies", log)
        assert http_status(f"{base}/dashboard") == 200
        names = [s["study_name"] for s in get_json(f"{base}/api/studies")["study_summaries"]]
        assert names == ["dash"] and f"Optuna dashboard: {base}" in log.read_text()


def test_optuna_dashboard_refuses_a_busy_port(workspace: Workspace, busy_port: int) -> None:
    res = workspace.bash("scripts/optuna_dashboard.sh", str(busy_port), timeout=30)
    assert_one_error_line(res, str(busy_port), "bash scripts/optuna_dashboard.sh")


# --- TensorBoard ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_tensorboard_serves_the_logs_of_tensorboard_runs(workspace: Workspace, tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    logdir = workspace.root / "logs/tensorboard/model01/run1"
    with SummaryWriter(str(logdir)) as writer:
        for step in range(3):
            writer.add_scalar("val_acc", 0.5 + step / 10, step)
    port, log = free_port(), tmp_path / "tensorboard.log"
    base = f"http://127.0.0.1:{port}"
    with serve(workspace, "scripts/tensorboard.sh", str(port), log=log) as proc:
        wait_http(proc, f"{base}/data/runs", log, timeout=120)
        deadline = time.monotonic() + 60
        while "model01/run1" not in (runs := get_json(f"{base}/data/runs")) and time.monotonic() < deadline:
            time.sleep(0.5)  # TensorBoard reads the folder in the background
        assert "model01/run1" in runs and f"TensorBoard: {base}" in log.read_text()


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
