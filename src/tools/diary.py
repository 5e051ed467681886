"""The analysis diary: one Markdown file per day, diary/YYYY-MM-DD.md, prefilled with that day's MLflow runs.

    bash scripts/new_diary.sh [YYYY-MM-DD]        (default: today, local time)

A new day's file gets a title and one section from diary/template.md; an existing file gets one more section
appended under a time heading. Nothing already written is ever rewritten: notes are the point of the diary.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit

from src.utils.core.errors import WorkspaceError, exit_on_user_error
from src.utils.core.paths import ROOT

DIARY_DIR = ROOT / "diary"
TEMPLATE = DIARY_DIR / "template.md"
SHORT = 8  # run ids are shown like git hashes: enough to find the run in the MLflow UI's search box
# Shown when present, in this order; the first six are the model knobs, the rest say what a data stage did.
# `choice.<group>` params record a config option picked by name (optimizer=sgd) and are shown as such.
KEY_PARAMS = ("lr", "batch_size", "dropout", "choice.optimizer", "fold", "max_epochs", "n_folds",
              "normalization.method")
SWEEP_PARAMS = ("n_trials",)
SEARCH_SPACE_CHARS = 80
UI_DEFAULT = "http://127.0.0.1:5000"  # where bash scripts/mlflow_ui.sh serves the workspace store by default


@dataclass(frozen=True)
class DayRuns:
    day: date
    runs: list[Any]  # mlflow.entities.Run, oldest first
    experiments: dict[str, str]  # experiment id -> name
    store: str  # where we looked, without credentials
    store_empty: bool  # no runs at all yet, on any day


def parse_day(text: str | None) -> date:
    if text is None:
        return date.today()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise WorkspaceError(f"{text!r} is not a date; pass YYYY-MM-DD (e.g. {date.today():%Y-%m-%d}) or nothing "
                             f"for today")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise WorkspaceError(f"{text!r} is not a valid date ({exc}); pass YYYY-MM-DD") from None


def _day_bounds_ms(day: date) -> tuple[int, int]:
    """The local day [00:00, next 00:00) in epoch milliseconds, as MLflow stores start times."""
    start = datetime.combine(day, time.min).astimezone()
    end = datetime.combine(day + timedelta(days=1), time.min).astimezone()
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def fetch_day_runs(day: date) -> DayRuns:
    """Every active run of every experiment that started on `day`; an absent store means no runs, not an error."""
    from src.utils.core.redaction import redact_uri
    from src.utils.track.tracking import tracking_uri

    uri = tracking_uri()
    store = redact_uri(uri)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        # Opening the store would create an empty database as a side effect of merely writing a note.
        return DayRuns(day, [], {}, store, store_empty=True)

    import mlflow

    from src.utils.track.tracking import setup_mlflow

    setup_mlflow(uri)  # ends the runs whose process died first (src.utils.track.liveness): they are listed FAILED
    client = mlflow.MlflowClient()
    try:
        experiments = {e.experiment_id: e.name for e in client.search_experiments()}
        ids = list(experiments)
        if not ids:
            return DayRuns(day, [], {}, store, store_empty=True)
        start, end = _day_bounds_ms(day)
        query = f"attributes.start_time >= {start} and attributes.start_time < {end}"
        runs, token = [], None
        while True:
            page = client.search_runs(ids, query, order_by=["attributes.start_time ASC"], max_results=1000,
                                      page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                break
        store_empty = not runs and not client.search_runs(ids, max_results=1)
    except mlflow.exceptions.MlflowException as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkspaceError(f"cannot read the MLflow store {store}: {first_line}; check MLFLOW_TRACKING_URI "
                             f"(when unset, the store is logs/mlruns/mlflow.db)") from exc
    return DayRuns(day, runs, experiments, store, store_empty)


# --- Markdown --------------------------------------------------------------------------------------------


def cell(value: Any) -> str:
    """A value that cannot break a Markdown table row."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def short(run_id: str | None) -> str:
    if not run_id:
        return "-"
    # best_run_id can also be a sentence ("none (no trial completed)", "unknown"): keep those readable
    return run_id[:SHORT] if re.fullmatch(r"[0-9a-f]{32}", run_id) else run_id


def fmt_value(text: str) -> str:
    """Params come back as strings; sampled floats are cut to 4 significant digits (0.0054321...)."""
    try:
        int(text)
        return text
    except ValueError:
        pass
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


def fmt_params(params: dict[str, str], names: Iterable[str]) -> str:
    return " ".join(f"{k.removeprefix('choice.')}={fmt_value(params[k])}" for k in names if k in params) or "-"


def score(run: Any) -> str:
    """The run's own best monitored value and its competition metric on the OOF rows, where it has them."""
    metrics, shown = run.data.metrics, []
    names = [f"best_{run.data.params['monitor']}"] if "monitor" in run.data.params else []
    names += [f"oof_{run.data.tags['competition_metric']}"] if "competition_metric" in run.data.tags else []
    names += [f"nested_oof_{run.data.tags['competition_metric']}"] if is_ensemble(run) else []
    for name in names or ["objective"]:
        if name in metrics:
            shown.append(f"{name}={metrics[name]:.4f}")
    baseline = f"baseline_oof_{run.data.tags.get('competition_metric')}"
    if baseline in metrics:
        below = " (does not beat it)" if run.data.tags.get("beats_baseline") == "false" else ""
        shown.append(f"baseline={metrics[baseline]:.4f}{below}")
    return " ".join(shown) or "-"


def is_sweep_parent(run: Any) -> bool:
    return run.data.tags.get("sweep") == "parent"


def is_ensemble(run: Any) -> bool:
    return run.data.tags.get("stage") == "ensemble"


def kind(run: Any) -> str:
    if is_sweep_parent(run):
        return "sweep"
    if is_ensemble(run):
        return f"ensemble of {run.data.tags.get('n_members', '?')}"
    parent = run.data.tags.get("mlflow.parentRunId")
    if not parent:
        return "run"
    pruned = f", pruned at {run.data.tags.get('pruned_at', 'step ' + run.data.tags.get('pruned_at_step', '?'))}" \
        if run.data.tags.get("optuna_state") == "PRUNED" else ""
    return f"trial of {short(parent)}{pruned}"


def local_time(ms: int | None, fmt: str = "%H:%M:%S") -> str:
    return datetime.fromtimestamp(ms / 1000).strftime(fmt) if ms else "-"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def runs_table(day_runs: DayRuns) -> str:
    if not day_runs.runs:
        if day_runs.store_empty:
            return f"_No runs yet: the MLflow store ({day_runs.store}) has no runs at all._"
        return f"_No runs on {day_runs.day:%Y-%m-%d}._"
    rows = []
    for run in day_runs.runs:
        names = SWEEP_PARAMS if is_sweep_parent(run) else KEY_PARAMS
        rows.append([local_time(run.info.start_time), day_runs.experiments.get(run.info.experiment_id, "?"),
                     short(run.info.run_id), kind(run), run.info.status, fmt_params(run.data.params, names),
                     score(run), run.data.tags.get("mlflow.note.content", "")])
    return table(["start", "experiment", "run_id", "kind", "status", "key params", "metric", "note"], rows)


def sweeps_table(day_runs: DayRuns) -> str:
    parents = [r for r in day_runs.runs if is_sweep_parent(r)]
    if not parents:
        return "_No sweeps on this day._"
    parent_of = {r.info.run_id: r.data.tags.get("mlflow.parentRunId") for r in day_runs.runs}
    rows = []
    for run in parents:
        metrics, params = run.data.metrics, run.data.params
        best_run = run.data.tags.get("best_run_id")
        best_ref = short(best_run)
        if parent_of.get(best_run) not in (None, run.info.run_id):
            # a resumed study: its best trial may have run under an earlier sweep's parent run
            best_ref += f" (trial of sweep {short(parent_of[best_run])})"
        best_name = next((k for k in sorted(metrics) if k.startswith("best_")), None)
        best = f"{best_name}={metrics[best_name]:.4f}" if best_name else "-"
        done = f"{int(metrics['n_trials_complete'])}/{int(metrics['n_trials_total'])}" \
            if "n_trials_complete" in metrics and "n_trials_total" in metrics else "-"
        pruned = f"{int(metrics['n_trials_pruned'])} ({params.get('pruner', '?')})" \
            if "n_trials_pruned" in metrics else "-"
        space = params.get("search_space", "-")
        if len(space) > SEARCH_SPACE_CHARS:
            space = space[: SEARCH_SPACE_CHARS - 3] + "..."
        best_params = " ".join(f"{k.removeprefix('best.')}={fmt_value(v)}" for k, v in sorted(params.items())
                               if k.startswith("best.")) or "-"
        rows.append([day_runs.experiments.get(run.info.experiment_id, "?"), short(run.info.run_id),
                     run.info.status, done, pruned, f"`{space}`" if space != "-" else space, best,
                     best_ref, best_params])
    return table(["experiment", "sweep run_id", "status", "trials complete/total", "pruned (pruner)", "search space",
                  "best", "best_run_id", "best params"], rows)


def ensembles_table(day_runs: DayRuns) -> str:
    """Each ensemble of the day beside its best member: the blend's score in-sample (weights chosen on the rows it
    is scored on) and nested (chosen on the other folds), which is the one to trust."""
    ensembles = [r for r in day_runs.runs if is_ensemble(r)]
    if not ensembles:
        return "_No ensembles on this day._"
    rows = []
    for run in ensembles:
        metrics, tags = run.data.metrics, run.data.tags
        name = tags.get("competition_metric", "?")
        value = {k: f"{metrics[k]:.4f}" if k in metrics else "-" for k in
                 (f"best_member_oof_{name}", f"oof_{name}", f"nested_oof_{name}")}
        members = " ".join(short(m) for m in tags.get("ensemble_members", "").split(",") if m)
        rows.append([day_runs.experiments.get(run.info.experiment_id, "?"), short(run.info.run_id), run.info.status,
                     tags.get("method", "-").rsplit(".", 1)[-1], members, name, *value.values()])
    return table(["experiment", "run_id", "status", "method", "members", "metric", "best member", "blend (in-sample)",
                  "blend (nested CV)"], rows)


def ui_base(store: str) -> str:
    """The MLflow UI that shows `store`: a tracking server's own (no credentials), else scripts/mlflow_ui.sh's."""
    if not store.startswith(("http://", "https://")):
        return UI_DEFAULT
    parts = urlsplit(store)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


def ui_links(day_runs: DayRuns) -> str:
    """One line: the runs table of each experiment of the day in the MLflow UI's "Model training" view.

    `?workflowType=machine_learning` is what makes MLflow 3 show the runs rather than its GenAI pages.
    """
    base = ui_base(day_runs.store)
    where = "`bash scripts/mlflow_ui.sh`" if base == UI_DEFAULT else base
    ids = list(dict.fromkeys(run.info.experiment_id for run in day_runs.runs))  # in the order of the runs
    if not ids:
        return f"MLflow UI: {where}"
    links = [f"[{day_runs.experiments.get(i, i)}]({base}/#/experiments/{i}?workflowType=machine_learning)"
             for i in ids]
    return f"MLflow UI ({where}): " + " · ".join(links)


def render_section(day_runs: DayRuns, now: datetime, template: str) -> str:
    values = {"date": f"{day_runs.day:%Y-%m-%d}", "time": f"{now:%H:%M}", "runs": runs_table(day_runs),
              "sweeps": sweeps_table(day_runs),
              "ensembles": ensembles_table(day_runs), "n_runs": str(len(day_runs.runs)), "store": day_runs.store,
              "ui": ui_links(day_runs)}
    # safe_substitute: a `$` the user puts in the template (a formula, a price) is left alone
    return Template(template).safe_substitute(values).rstrip("\n") + "\n"


def read_template() -> str:
    if not TEMPLATE.is_file():
        raise WorkspaceError(f"{TEMPLATE.relative_to(ROOT)} is missing; restore it with "
                             f"`git checkout -- {TEMPLATE.relative_to(ROOT)}`")
    return TEMPLATE.read_text(encoding="utf-8")


def write_entry(day: date, section: str) -> tuple[Path, bool]:
    """Create diary/<day>.md with a title and `section`, or append `section`; never truncate. True = created."""
    path = DIARY_DIR / f"{day:%Y-%m-%d}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # "x" rather than an exists() check: two calls at once must not both create (and one clobber) the file
        with open(path, "x", encoding="utf-8") as f:
            f.write(f"# Diary {day:%Y-%m-%d} ({day:%A})\n\n{section}")
        return path, True
    except FileExistsError:
        pass
    with open(path, "a+b") as f:
        # the user may have saved the file without a final newline; the separator must start on its own line
        end = f.seek(0, 2)
        needs_newline = end > 0 and (f.seek(end - 1), f.read(1))[1] != b"\n"
        f.write((("\n" if needs_newline else "") + "\n---\n\n" + section).encode("utf-8"))
    return path, False


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise WorkspaceError(f"{message}; usage: bash scripts/new_diary.sh [YYYY-MM-DD]")


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="bash scripts/new_diary.sh", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("day", nargs="?", help="YYYY-MM-DD (default: today)")
    args = parser.parse_args(argv)
    day = parse_day(args.day)
    template = read_template()
    day_runs = fetch_day_runs(day)
    path, created = write_entry(day, render_section(day_runs, datetime.now(), template))
    sweeps = sum(is_sweep_parent(r) for r in day_runs.runs)
    print(f"{'created' if created else 'appended a section to'} {path.relative_to(ROOT)}: "
          f"{len(day_runs.runs)} run(s) of {day:%Y-%m-%d}, {sweeps} sweep(s)", file=sys.stderr)
    print(path)  # alone on stdout, so `$EDITOR "$(bash scripts/new_diary.sh)"` works
    return 0


if __name__ == "__main__":
    from src.utils.cli.setup import setup

    setup()  # the environment, resolvers and plugins, before anything else runs
    sys.exit(main())
