"""src.utils.tune: the shared budget, trial grouping and quoting, sweep checks, pruners, trial titles and
PrunedTrial, the launch line filter, lost jobs, and the sweep parent's pure helpers."""

from __future__ import annotations

import logging
import pickle
import re
from types import SimpleNamespace

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from src.utils.core.errors import WorkspaceError
from src.utils.tune.checks import check_pruner, check_resources, check_settings, parse_space
from src.utils.tune.launch_lines import LaunchLine
from src.utils.tune.launchers import STATE_REASONS, LostJob, reason
from src.utils.tune.parent import pruner_name
from src.utils.tune.pruners import by_steps, job_pruner
from src.utils.tune.study import budget
from src.utils.tune.sweeper import consecutive, quoted
from src.utils.tune.trial import STUDY_ENV, TRIAL_ENV, PrunedTrial, TrialLink, short, trial_title


def trial(number: int, state: str, retry_of: list[int] | None = None) -> SimpleNamespace:
    attrs = {"retry_history": retry_of} if retry_of is not None else {}
    return SimpleNamespace(number=number, state=SimpleNamespace(name=state), system_attrs=attrs)


# --- budget -----------------------------------------------------------------------------------------------------------
def test_budget_counts_finished_running_and_waiting_trials() -> None:
    trials = [trial(0, "COMPLETE"), trial(1, "PRUNED"), trial(2, "FAIL"), trial(3, "RUNNING"), trial(4, "RUNNING"),
              trial(5, "WAITING")]
    assert budget(trials) == {"finished": 3, "running": 2, "waiting": 1}
    assert budget([]) == {"finished": 0, "running": 0, "waiting": 0}


def test_a_retried_fail_does_not_count() -> None:
    trials = [trial(0, "COMPLETE"), trial(1, "FAIL"), trial(2, "FAIL"), trial(3, "WAITING", retry_of=[1])]
    assert budget(trials) == {"finished": 2, "running": 0, "waiting": 1}  # 0 and 2; 1 is asked again as 3


def test_a_chain_of_retries_counts_only_the_last() -> None:
    trials = [trial(1, "FAIL"), trial(4, "FAIL", retry_of=[1]), trial(7, "COMPLETE", retry_of=[1, 4])]
    assert budget(trials) == {"finished": 1, "running": 0, "waiting": 0}


def test_only_fails_are_discounted_by_a_retry() -> None:
    # a retry history naming a finished trial (not something Optuna writes) does not un-count it
    trials = [trial(0, "COMPLETE"), trial(1, "PRUNED"), trial(2, "RUNNING", retry_of=[0, 1])]
    assert budget(trials) == {"finished": 2, "running": 1, "waiting": 0}


# --- sweeper helpers --------------------------------------------------------------------------------------------------
def numbers(groups: list[list]) -> list[list[int]]:
    return [[t.number for t in g] for g in groups]


def test_consecutive_groups_runs_of_trial_numbers_in_order() -> None:
    trials = [SimpleNamespace(number=n) for n in (5, 3, 4, 8, 9, 1, 11)]
    assert numbers(consecutive(trials)) == [[1], [3, 4, 5], [8, 9], [11]]
    assert consecutive([]) == []
    assert numbers(consecutive([SimpleNamespace(number=0)])) == [[0]]
    assert numbers(consecutive([SimpleNamespace(number=n) for n in range(4)])) == [[0, 1, 2, 3]]


@pytest.mark.parametrize("value", ["model01 lr", "it's", "x=y,z", "a b'c d", "back\\", "\\'", "", "'"])
def test_quoted_is_read_back_by_hydras_parser_as_the_value(value: str) -> None:
    text = quoted(value)
    assert text.startswith("'") and text.endswith("'")
    override = OverridesParser.create().parse_override(f"++hydra.job.env_set.X={text}")
    assert override.value() == value


def test_quoted_escapes_quotes_and_backslashes() -> None:
    assert quoted("it's") == "'it\\'s'"
    assert quoted("a\\b") == "'a\\b'"  # a backslash inside stays one
    assert quoted("a\\") == "'a\\\\'"  # one that ends the value is doubled


@pytest.mark.parametrize("value", ["a\\b", "a\\", "a'b", "a\\'b", "\\\\x\\\\", "it's a \\'q\\'", "", "''"])
def test_quoted_keeps_every_backslash_and_quote(value: str) -> None:
    override = OverridesParser.create().parse_override("x=" + quoted(value))
    assert override.value() == value


# --- checks -----------------------------------------------------------------------------------------------------------
def one_error(fn, *args) -> str:
    with pytest.raises(WorkspaceError) as exc:
        fn(*args)
    assert "\n" not in str(exc.value)
    return str(exc.value)


@pytest.mark.parametrize("n_trials", [0, -3, True, 2.5, "3", None])
def test_n_trials_must_be_a_whole_number_from_1(n_trials) -> None:
    assert one_error(check_settings, n_trials, {}, []).startswith(f"hydra.sweeper.n_trials={n_trials} is not allowed")


def test_an_empty_interval_names_the_override_as_given() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    check_settings(1, {"lr": FloatDistribution(1e-4, 1e-1, log=True), "c": CategoricalDistribution([1])}, [])
    message = one_error(check_settings, 5, {"lr": FloatDistribution(0.1, 0.1)}, ["+lr=interval(0.1,0.1)"])
    assert message == ("+lr=interval(0.1,0.1): the interval is empty; give a lower and a higher end, "
                       "e.g. lr=interval(0.1,1.0)")
    assert one_error(check_settings, 5, {"n": IntDistribution(0, 0)}, []).startswith("n: the interval is empty")
    assert "e.g. n=interval(0,1)" in one_error(check_settings, 5, {"n": IntDistribution(0, 0)}, [])


def test_parse_space_reads_the_official_syntax_and_refuses_an_inverted_interval() -> None:
    dists, fixed, _ = parse_space(["lr=interval(0.001,0.1)", "bs=choice(16,32)", "seed=3"])
    assert set(dists) == {"lr", "bs"} and (dists["lr"].low, dists["lr"].high) == (0.001, 0.1)
    assert fixed == {"seed": "3"}
    message = one_error(parse_space, ["lr=interval(0.2,0.1)"])
    assert message.startswith("the sweep lr=interval(0.2,0.1) cannot be run: ")
    assert message.endswith("give each interval(low,high) with low < high")


@pytest.mark.parametrize(("config", "message"), [
    ({"reduction_factor": 1}, "pruner.reduction_factor=1 is not allowed: a whole number >= 2"),
    ({"reduction_factor": True}, "pruner.reduction_factor=True is not allowed"),
    ({"reduction_factor": 2.5}, "pruner.reduction_factor=2.5 is not allowed"),
    ({"min_resource": 0}, "pruner.min_resource=0 is not allowed: whole numbers with 1 <= min_resource"),
    ({"max_resource": 0}, "pruner.max_resource=0 is not allowed"),
    ({"min_resource": 5, "max_resource": 3}, "pruner.min_resource=5 and pruner.max_resource=3 are not allowed"),
    ({"_target_": "optuna.pruners.PatientPruner", "patience": 1,
      "wrapped_pruner": {"_target_": "optuna.pruners.SuccessiveHalvingPruner", "reduction_factor": 1}},
     "pruner.wrapped_pruner.reduction_factor=1 is not allowed"),
])
def test_check_resources_errors_name_the_key(config: dict, message: str) -> None:
    assert one_error(check_resources, OmegaConf.create(config), "pruner").startswith(message)


def test_check_resources_accepts_good_and_auto_settings() -> None:
    check_resources({"reduction_factor": 3, "min_resource": 1, "max_resource": 9}, "pruner")
    check_resources({"min_resource": "auto", "max_resource": 3}, "pruner")
    check_resources({"min_resource": 2, "max_resource": 2}, "pruner")
    check_resources(OmegaConf.create({"n_startup_trials": 0}), "pruner")


@pytest.mark.parametrize(("config", "message"), [
    ("median", "pruner=median is not allowed: a node with the _target_ of an Optuna pruner"),
    ({"n_startup_trials": 1}, "is not allowed: a node with the _target_"),
    ({"_target_": "optuna.pruners.MedianPruner", "bogus": 1},
     "pruner._target_=optuna.pruners.MedianPruner cannot be built: "),
    ({"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": -1},
     "pruner._target_=optuna.pruners.MedianPruner cannot be built: Number of startup trials cannot be negative"),
    ({"_target_": "optuna.pruners.NoSuchPruner"}, "pruner._target_=optuna.pruners.NoSuchPruner cannot be built"),
    ({"_target_": "collections.OrderedDict"}, "cannot be built: Target 'collections.OrderedDict' is not in the Hydra"),
    ({"_target_": "src.utils.tune.pruners.by_steps", "fold": 0, "epochs": 1, "folds": 2},
     "pruner._target_=src.utils.tune.pruners.by_steps is not an Optuna pruner"),
    ({"_target_": "optuna.pruners.SuccessiveHalvingPruner", "reduction_factor": 0},
     "pruner.reduction_factor=0 is not allowed"),
])
def test_check_pruner_errors_are_one_line_naming_the_pruner_key(config, message: str) -> None:
    text = one_error(check_pruner, OmegaConf.create(config) if isinstance(config, dict) else config)
    assert text.startswith("pruner") and message in text
    if "reduction_factor" not in message:  # successive halving's own line names its rule instead
        assert text.endswith("(e.g. pruner=median, pruner=none, or '~pruner' "
                             "'+pruner={_target_:optuna.pruners.MedianPruner}')")


def test_check_pruner_accepts_optuna_pruners_and_by_steps() -> None:
    check_pruner({"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 2})
    check_pruner(OmegaConf.create({"_target_": "src.utils.tune.pruners.by_steps", "fold": "all",
                                   "epochs": {"_target_": "optuna.pruners.MedianPruner"},
                                   "folds": {"_target_": "optuna.pruners.WilcoxonPruner"}}))


# --- pruners ----------------------------------------------------------------------------------------------------------
def test_by_steps_picks_folds_for_fold_all_and_epochs_otherwise() -> None:
    assert by_steps("all", "E", "F") == "F"
    assert by_steps(0, "E", "F") == "E"
    assert by_steps(3, "E", "F") == "E"
    assert by_steps("3", "E", "F") == "E"


def test_job_pruner_builds_the_node_and_nop_for_none() -> None:
    import optuna

    assert isinstance(job_pruner(None), optuna.pruners.NopPruner)
    pruner = job_pruner({"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 7})
    assert isinstance(pruner, optuna.pruners.MedianPruner) and pruner._n_startup_trials == 7
    node = {"_target_": "src.utils.tune.pruners.by_steps", "epochs": {"_target_": "optuna.pruners.MedianPruner"},
            "folds": {"_target_": "optuna.pruners.WilcoxonPruner"}}
    assert isinstance(job_pruner({**node, "fold": "all"}), optuna.pruners.WilcoxonPruner)
    assert isinstance(job_pruner({**node, "fold": 2}), optuna.pruners.MedianPruner)
    with pytest.raises(Exception, match="whitelist"):
        job_pruner({"_target_": "sklearn.model_selection.KFold"})


def test_pruner_name_as_the_parent_shows_it() -> None:
    assert pruner_name(OmegaConf.create({"pruner": None})) == "none"
    assert pruner_name(OmegaConf.create({})) == "none"
    assert pruner_name(OmegaConf.create({"pruner": {"_target_": "optuna.pruners.MedianPruner"}})) == "MedianPruner"
    auto = {"_target_": "src.utils.tune.pruners.by_steps", "epochs": {"_target_": "optuna.pruners.MedianPruner"},
            "folds": {"_target_": "optuna.pruners.WilcoxonPruner"}}
    assert pruner_name(OmegaConf.create({"pruner": {**auto, "fold": "all"}})) == "WilcoxonPruner"
    assert pruner_name(OmegaConf.create({"pruner": {**auto, "fold": 0}})) == "MedianPruner"


# --- trial ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "text"), [(0.0037281234, "0.003728"), (0.32, "0.32"), (64, "64"),
                                              (1e-7, "1e-07"), (123456.7, "1.235e+05"), (True, "True"),
                                              ("adam", "adam"), (None, "None"), (2.0, "2")])
def test_short(value, text: str) -> None:
    assert short(value) == text


def test_trial_title() -> None:
    assert trial_title({"lr": 0.0037281234, "dropout": 0.32, "opt": "adam", "bs": 64}) == (
        "lr=0.003728 dropout=0.32 opt=adam bs=64")
    assert trial_title({}) == ""


def test_pruned_trial_is_a_float_with_its_step_and_pickles_as_one() -> None:
    pruned = PrunedTrial(0.8125, 3)
    assert isinstance(pruned, float) and pruned == 0.8125 and pruned.step == 3
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(pruned, protocol=protocol))
        assert type(back) is PrunedTrial and back == 0.8125 and back.step == 3
    nested = pickle.loads(pickle.dumps({"ret": [pruned]}))
    assert type(nested["ret"][0]) is PrunedTrial


def test_trial_link_is_none_outside_a_sweep_job(monkeypatch) -> None:
    hydra_cfg = OmegaConf.create({"sweeper": {"storage": "sqlite:////nonexistent/optuna.db"}})
    monkeypatch.delenv(TRIAL_ENV, raising=False)
    monkeypatch.delenv(STUDY_ENV, raising=False)
    assert TrialLink.current(hydra_cfg, None) is None
    monkeypatch.setenv(TRIAL_ENV, "4")
    assert TrialLink.current(hydra_cfg, None) is None  # no study name
    monkeypatch.setenv(STUDY_ENV, "s")
    assert TrialLink.current(OmegaConf.create({"sweeper": {}}), None) is None  # a sweeper without a storage
    assert TrialLink.current(OmegaConf.create({}), None) is None


# --- launch lines -----------------------------------------------------------------------------------------------------
def record(msg: str, args=()) -> logging.LogRecord:
    return logging.LogRecord("hydra", logging.INFO, __file__, 1, msg, args, None)


def test_launch_line_shows_the_trials_sampled_parameters() -> None:
    line = LaunchLine()
    line.titles[4] = "lr=0.003728 dropout=0.32"
    r = record("\t#4 : lr=0.0037281234 dropout=0.32 ++hydra.job.env_set.WORKSPACE_OPTUNA_TRIAL=17")
    assert line.filter(r) is True
    assert r.msg == "\t#4 : lr=0.003728 dropout=0.32"


def test_launch_line_leaves_other_lines_alone() -> None:
    line = LaunchLine()
    line.titles[4] = "lr=0.1"
    for msg in ("#5 : a=1", "Launching 2 jobs locally", "x #4 : a=1"):
        r = record(msg)
        assert line.filter(r) is True and r.msg == msg
    r = record("#%d : %s", (4, "a=1"))  # formatted lazily: not rewritten
    assert line.filter(r) and r.getMessage() == "#4 : a=1"


def test_launch_line_as_a_logger_filter(caplog) -> None:
    line = LaunchLine()
    line.titles[12] = "lr=0.5"
    logger = logging.getLogger("unit.launcher")
    logger.addFilter(line)
    try:
        with caplog.at_level(logging.INFO, logger="unit.launcher"):
            logger.info("\t#12 : lr=0.5 hydra.job.env_set.X=1")
    finally:
        logger.removeFilter(line)
    assert [r.getMessage() for r in caplog.records] == ["\t#12 : lr=0.5"]


# --- launchers --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("state", "words"), [
    ("CANCELLED by 0", "cancelled (scancel)"), ("cancelled", "cancelled (scancel)"),
    ("TIMEOUT", "killed at its time limit (hydra.launcher.timeout_min)"),
    ("OUT_OF_MEMORY", "killed for using more memory than it asked for (hydra.launcher.mem_gb)"),
    ("NODE_FAIL", "lost with its node"), ("", "ended without a result"), ("UNKNOWN", "ended without a result"),
    ("FAILED", "ended without a result"),
])
def test_reason(state: str, words: str) -> None:
    assert reason(state) == words


def test_lost_job_message_and_killed() -> None:
    lost = LostJob("1234_5", "CANCELLED by 1000")
    assert str(lost) == "job 1234_5 ended CANCELLED by 1000: cancelled (scancel)"
    assert isinstance(lost, RuntimeError) and (lost.job_id, lost.state) == ("1234_5", "CANCELLED by 1000")
    assert lost.killed
    assert LostJob("1", "TIMEOUT").killed and LostJob("1", "PREEMPTED").killed
    assert not LostJob("1", "OUT_OF_MEMORY").killed and not LostJob("1", "NODE_FAIL").killed
    assert str(LostJob("9", "BrokenProcessPool")) == "job 9 ended BrokenProcessPool: ended without a result"
    for state, words in STATE_REASONS.items():
        assert re.fullmatch(rf"job 2 ended {state}: {re.escape(words)}", str(LostJob("2", state)))


def test_lost_job_with_an_empty_state_is_not_killed() -> None:
    assert LostJob("1", "").killed is False
