"""Every UI the README names, opened in a real browser (headless Chromium driven by Selenium) on real runs.

One module-scoped set of runs in a prepared workspace copy: a single model01 run with `tensorboard=true` and a
2-trial sweep. Each UI is started through the workspace's own script, opened in the browser, and checked for
what a person looks for: MLflow's training runs table (the sweep expands to its trials, a trial's page shows
its metrics and artifacts), the sweep's study in optuna-dashboard, the run's scalar curves in TensorBoard and
notebooks/load_model.ipynb in JupyterLab. A full-window screenshot of each lands in outputs/screenshots/ of
this repository (git-ignored; CI keeps it as an artifact).

Needs Debian's `chromium` and `chromium-driver` packages (`bash scripts/test.sh` installs them when run as
root); without them these tests skip, saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import REPO, Workspace
from tests.test_scripts_ui import free_port, get_json, http_status, jupyter_env, serve, wait_http

SCREENSHOTS = REPO / "outputs" / "screenshots"
WIDTH, HEIGHT = 1600, 1000  # the browser's viewport, so every screenshot is 1600x1000
WAIT = 60  # seconds for a page to show what is asserted (the first MLflow page load compiles its bundle)
BROWSERS = ("chromium", "chromium-browser")
MISSING = ("the browser tests need Debian's chromium and chromium-driver packages: bash scripts/test.sh installs "
           "them when run as root, otherwise: sudo apt-get install chromium chromium-driver")
CHROMIUM = next((path for name in BROWSERS if (path := shutil.which(name))), None)
CHROMEDRIVER = shutil.which("chromedriver")
# skipped before any fixture runs (the prepared workspace and the runs take minutes)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=MISSING)]


# --- the browser --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # with both paths given, Selenium Manager (which downloads) is skipped
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run",
                f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        # the viewport itself, not the window around it: screenshots are exactly WIDTH x HEIGHT
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
        yield driver
    finally:
        driver.quit()


def body_text(driver: WebDriver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def screenshot(driver: WebDriver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    width, height = struct.unpack(">II", path.read_bytes()[16:24])  # the PNG header's IHDR
    assert width >= 1400 and height >= 900, (path, width, height)
    print(f"screenshot: {path}")
    return path


def wait_until(driver: WebDriver, what: str, condition: Callable[[WebDriver], object], timeout: float = WAIT):
    """WebDriverWait on `condition`; on a timeout, fail with the page's text and a screenshot to look at."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        shot = screenshot(driver, "failed")
        pytest.fail(f"{what}: not shown within {timeout} s at {driver.current_url} (screenshot {shot}); "
                    f"the page reads:\n{body_text(driver)[:3000]}")


def wait_text(driver: WebDriver, *texts: str, timeout: float = WAIT) -> str:
    """Wait until the page shows every one of `texts`; returns the page's text."""
    wait_until(driver, f"text {texts}", lambda d: all(t in body_text(d) for t in texts), timeout)
    return body_text(driver)


def click_text(driver: WebDriver, text: str) -> None:
    """Click the element that reads `text`, once it is there."""
    xpath = f"//*[normalize-space(text())='{text}']"
    wait_until(driver, f"{text!r} to click", EC.element_to_be_clickable((By.XPATH, xpath))).click()


def click_if_shown(driver: WebDriver, by: str, value: str) -> None:
    """Dismiss a pop-up a first visit shows (MLflow's assistant panel), if shown."""
    for element in driver.find_elements(by, value):
        if element.is_displayed():
            element.click()
            # gone, not just re-rendered: a toast slides out before it leaves the page
            wait_until(driver, f"{value} to go away",
                       lambda d: not any(e.is_displayed() for e in d.find_elements(by, value)), timeout=10)


# --- the runs -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runs:
    ws: Workspace
    experiment_id: str
    single: object  # mlflow.entities.Run of `tensorboard=true`
    parent: object  # the sweep's parent run
    trials: list  # its two trial runs, by Optuna trial number

    @property
    def study(self) -> str:
        return self.parent.data.tags["optuna_study"]


@pytest.fixture(scope="module")
def runs(prepared: Workspace) -> Runs:
    ws = prepared
    # side by side: each spends much of its time starting up and recording, not training
    procs = [subprocess.Popen([sys.executable, str(ws.root / "src/model/model01/train.py"), *args], cwd=ws.cwd,
                              env=ws.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for args in (("max_epochs=1", "tensorboard=true"),
                          ("-m", "lr=interval(1e-4,1e-1)", "hydra.sweeper.n_trials=2", "max_epochs=1"))]
    try:
        errors = [proc.communicate(timeout=900)[1] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, err in zip(procs, errors, strict=True):
        assert proc.returncode == 0, err[-3000:]
    client = ws.client()
    experiment_id = client.get_experiment_by_name("model01").experiment_id
    found = client.search_runs([experiment_id])
    (parent,) = [r for r in found if r.data.tags.get("sweep") == "parent"]
    trials = sorted((r for r in found if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id),
                    key=lambda r: int(r.data.tags["optuna_trial"]))
    (single,) = [r for r in found if r.data.tags.get("mlflow.parentRunId") is None and r is not parent]
    assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in found), found
    return Runs(ws, experiment_id, single, parent, trials)


# --- MLflow ---------------------------------------------------------------------------------------------


def run_row(run_id: str) -> tuple[str, str]:
    return By.CSS_SELECTOR, f"[role=row][row-id='{run_id}']"


def sidebar(driver: WebDriver) -> str:
    return driver.find_element(By.TAG_NAME, "aside").text


def assert_model_training_chrome(driver: WebDriver) -> None:
    """The "Model training" side of MLflow's GenAI / Model training switch: Runs and Models, no GenAI pages."""
    assert "workflowType=machine_learning" in driver.current_url, driver.current_url
    nav = sidebar(driver).splitlines()
    assert {"Model training", "Runs", "Models"} <= set(nav), nav
    assert not {"Overview", "Training runs", "Prompts", "Sessions"} & set(nav), nav


def test_mlflow_ui_lands_on_the_training_runs_table(browser: WebDriver, runs: Runs, tmp_path: Path) -> None:
    ws, driver = runs.ws, browser
    # the best trial: a sweep draws the task plots (the confusion matrix) for it when it ends
    (trial,) = [t for t in runs.trials if t.info.run_id == runs.parent.data.tags["best_run_id"]]
    assert trial.info.artifact_uri.startswith((ws.root / "logs/mlruns/artifacts").as_uri())
    port, log = free_port(), tmp_path / "mlflow.log"
    base = f"http://127.0.0.1:{port}"
    with serve(ws, "scripts/mlflow_ui.sh", str(port), log=log) as proc:
        wait_http(proc, f"{base}/health", log)
        out = log.read_text()
        assert f"MLflow UI: {base}" in out and "empty" not in out and http_status(f"{base}/") == 200, out
        # the URL the script prints: the experiment with the latest run, on its runs table
        landing = re.search(r"^Runs of (\S+): (\S+)$", out, re.M)
        assert landing, out
        assert landing.groups() == ("model01", f"{base}/#/experiments/{runs.experiment_id}"
                                               "?workflowType=machine_learning"), out

        driver.get(landing.group(2))
        wait_until(driver, "the runs table's rows", lambda d: d.find_elements(*run_row(runs.parent.info.run_id))
                   and d.find_elements(*run_row(runs.single.info.run_id)))
        click_if_shown(driver, By.CSS_SELECTOR, "button[data-component-id='mlflow.assistant.chat_panel.close']")
        text = wait_text(driver, runs.parent.info.run_name, runs.single.info.run_name)
        assert re.search(rf"/#/experiments/{runs.experiment_id}/runs\?", driver.current_url), driver.current_url
        assert "Run Name" in text and "matching runs" in text, text
        assert_model_training_chrome(driver)

        # the sweep's row is collapsed; its expander shows exactly its two trials
        trial_ids = {r.info.run_id for r in runs.trials}
        def shown_runs(d: WebDriver) -> set[str]:
            return {row.get_attribute("row-id") for row in d.find_elements(By.CSS_SELECTOR, "[role=row][row-id]")}
        assert not shown_runs(driver) & trial_ids
        driver.find_element(*run_row(runs.parent.info.run_id)).find_element(
            By.CSS_SELECTOR, "button[data-component-id*='runnamecellrenderer']").click()
        wait_until(driver, "the sweep's trials", lambda d: trial_ids <= shown_runs(d))
        assert shown_runs(driver) == trial_ids | {runs.parent.info.run_id, runs.single.info.run_id}
        wait_text(driver, *(r.info.run_name for r in runs.trials))
        screenshot(driver, "mlflow")

        # a trial's own page: its metrics, with the values it logged
        driver.get(f"{base}/#/experiments/{runs.experiment_id}/runs/{trial.info.run_id}"
                   "?workflowType=machine_learning")
        text = wait_text(driver, trial.info.run_name, "Model metrics", "val_acc", "best_val_acc")
        for name in ("val_acc", "best_val_acc", "oof_accuracy"):
            assert repr(trial.data.metrics[name]) in text, (name, trial.data.metrics[name])
        assert_model_training_chrome(driver)
        screenshot(driver, "mlflow_run")

        # ... and its artifacts, served from the workspace's files: the listing and a file's content
        driver.find_element(By.XPATH, "//*[@role='tab' or self::a or self::button][normalize-space()='Artifacts']"
                            ).click()
        wait_text(driver, "config.yaml", "checkpoints", "oof_predictions.csv", "confusion_matrix.png")
        for folder in ("checkpoints", "fold0"):
            click_text(driver, folder)
        wait_until(driver, "the best checkpoint", lambda d: re.search(r"best-epoch=\d+\.ckpt", body_text(d)))
        click_text(driver, "config.yaml")
        wait_text(driver, "experiment_name: model01", f"lr: {trial.data.params['lr']}")
        screenshot(driver, "mlflow_artifacts")


# --- optuna-dashboard -----------------------------------------------------------------------------------


def test_optuna_dashboard_shows_the_sweeps_study(browser: WebDriver, runs: Runs, tmp_path: Path) -> None:
    driver = browser
    port, log = free_port(), tmp_path / "dashboard.log"
    base = f"http://127.0.0.1:{port}"
    with serve(runs.ws, "scripts/optuna_dashboard.sh", str(port), log=log) as proc:
        wait_http(proc, f"{base}/api/studies", log)
        assert f"Optuna dashboard: {base}" in log.read_text() and http_status(f"{base}/dashboard") == 200
        # the workspace's studies and nothing else: this sweep's study alone
        assert [s["study_name"] for s in get_json(f"{base}/api/studies")["study_summaries"]] == [runs.study]

        driver.get(f"{base}/dashboard")
        wait_text(driver, runs.study)
        driver.find_element(By.XPATH, f"//a[contains(., '{runs.study}')]").click()
        wait_text(driver, runs.study, "History", "Best Trial")
        driver.get(driver.current_url.split("?")[0].rstrip("/") + "/trials")
        # the trial list, and the first trial's link to its MLflow run
        text = wait_text(driver, "2 Trials", "Trial 0", "Trial 1", "mlflow_run_id")
        assert runs.trials[0].info.run_id in text, text
        screenshot(driver, "optuna_dashboard")


# --- TensorBoard ----------------------------------------------------------------------------------------


def test_tensorboard_shows_the_runs_scalar_curves(browser: WebDriver, runs: Runs, tmp_path: Path) -> None:
    driver = browser
    port, log = free_port(), tmp_path / "tensorboard.log"
    base = f"http://127.0.0.1:{port}"
    tb_run = f"model01/{runs.single.info.run_id}"
    with serve(runs.ws, "scripts/tensorboard.sh", str(port), log=log) as proc:
        wait_http(proc, f"{base}/data/runs", log, timeout=120)
        assert f"TensorBoard: {base}" in log.read_text()
        driver.get(f"{base}/#timeseries")
        wait_text(driver, tb_run, "val_acc", "val_loss", "train_loss")  # TensorBoard reads the folder in the background
        tags = driver.find_element(By.CSS_SELECTOR, "input[placeholder='Filter tags (regex)']")
        tags.send_keys("^val_acc$", Keys.ENTER)

        def val_acc_chart(d: WebDriver) -> bool:
            cards = [c for c in d.find_elements(By.CSS_SELECTOR, "scalar-card")
                     if c.text.split("\n", 1)[0] == "val_acc"]
            return bool(cards) and bool(cards[0].find_elements(By.CSS_SELECTOR, "canvas, svg path"))
        wait_until(driver, "the val_acc chart", val_acc_chart)
        text = body_text(driver)
        assert "train_loss" not in text and tb_run in text, text  # the filter left the val_acc card alone
        screenshot(driver, "tensorboard")


# --- JupyterLab -----------------------------------------------------------------------------------------


def test_jupyterlab_opens_the_load_model_notebook(browser: WebDriver, runs: Runs, tmp_path: Path) -> None:
    driver = browser
    notebook = json.loads((runs.ws.root / "notebooks/load_model.ipynb").read_text())
    heading = "".join(notebook["cells"][0]["source"]).splitlines()[0].lstrip("# ").strip()
    env = jupyter_env(tmp_path)
    # the answer a person gives to JupyterLab's first question ("get notified about official Jupyter news?"): no
    settings = Path(env["JUPYTER_CONFIG_DIR"]) / "lab/user-settings/@jupyterlab/apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    port, log = free_port(), tmp_path / "jupyter.log"
    base = f"http://127.0.0.1:{port}"
    with serve(runs.ws, "scripts/jupyter.sh", str(port), log=log, **env) as proc:
        wait_http(proc, f"{base}/api/status", log)
        printed = re.search(rf"{re.escape(base)}/lab\?token=(\S+)", log.read_text())
        assert printed, log.read_text()
        driver.get(f"{base}/lab/tree/notebooks/load_model.ipynb?token={printed.group(1)}")
        wait_text(driver, heading, "load_model.ipynb", "best_run_id(EXPERIMENT)")
        # every cell of the notebook is there, and its kernel (the workspace's .venv) has started
        wait_until(driver, "all the notebook's cells",
                   lambda d: len(d.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")) == len(notebook["cells"]))
        wait_until(driver, "the kernel, idle", lambda d: "| Idle" in d.find_element(By.ID, "jp-main-statusbar").text)
        assert not driver.find_elements(By.CSS_SELECTOR, ".Toastify__toast"), body_text(driver)  # nothing covers it
        screenshot(driver, "jupyterlab")
