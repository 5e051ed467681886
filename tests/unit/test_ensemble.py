"""src.utils.ensemble: the blend methods fitted on small synthetic OOF scores, nested OOF, and the member checks."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error

import src.utils.ensemble as ensemble
from src.utils.core.errors import WorkspaceError
from src.utils.ensemble.methods import HillClimbing, Mean, RankMean, Stacking, nested_oof, ranks

ROWS, CLASSES = 120, 3


def rmse(y: np.ndarray, scores: np.ndarray) -> float:
    return float(np.sqrt(mean_squared_error(y, scores[:, 0])))


def acc(y: np.ndarray, scores: np.ndarray) -> float:
    return float(accuracy_score(y, scores.argmax(1)))


def nll(y: np.ndarray, scores: np.ndarray) -> float:
    return float(log_loss(y, np.clip(scores, 1e-9, 1), labels=list(range(CLASSES))))


@pytest.fixture
def regression() -> tuple[np.ndarray, np.ndarray]:
    """Four members (members x rows x 1): the truth plus noise of different sizes."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=ROWS)
    oof = np.stack([y + rng.normal(scale=s, size=ROWS) for s in (0.3, 0.5, 0.8, 2.0)])[:, :, None]
    return oof, y


@pytest.fixture
def multiclass() -> tuple[np.ndarray, np.ndarray]:
    """Three members of class probabilities, right on 80%, 65% and 50% of the rows."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, CLASSES, ROWS)
    members = []
    for right in (0.8, 0.65, 0.5):
        guess = np.where(rng.random(ROWS) < right, y, rng.integers(0, CLASSES, ROWS))
        p = rng.dirichlet(np.ones(CLASSES), ROWS) * 0.4
        p[np.arange(ROWS), guess] += 0.6
        members.append(p / p.sum(1, keepdims=True))
    return np.stack(members), y


# --- mean and rank mean -----------------------------------------------------------------------------------------------
def test_mean_of_identical_members_is_the_member(multiclass) -> None:
    oof, y = multiclass
    same = np.stack([oof[0]] * 4)
    method = Mean().fit(same, y, acc, 1.0)
    np.testing.assert_allclose(method.weights, [0.25] * 4)
    np.testing.assert_allclose(method.predict(same), oof[0])


def test_mean_is_the_elementwise_mean_on_any_rows(multiclass) -> None:
    oof, y = multiclass
    method = Mean().fit(oof, y, acc, 1.0)
    np.testing.assert_allclose(method.predict(oof), oof.mean(axis=0))
    test = oof[:, :7] ** 2  # other rows (the test rows): the same weights
    np.testing.assert_allclose(method.predict(test), test.mean(axis=0))
    assert method.describe() == {}


def test_ranks_are_per_column_scaled_to_0_1_with_ties_averaged() -> None:
    scores = np.array([[[0.1, 5.0], [0.4, 5.0], [0.2, 1.0], [0.9, 3.0]]])  # 1 member x 4 rows x 2 columns
    r = ranks(scores)
    np.testing.assert_allclose(r[0, :, 0], [0, 2 / 3, 1 / 3, 1])
    np.testing.assert_allclose(r[0, :, 1], [5 / 6, 5 / 6, 0, 1 / 3])  # the two 5.0 share ranks 3 and 4
    np.testing.assert_allclose(ranks(np.array([[[7.0]]])), [[[0.0]]])  # one row: no division by zero


def test_rank_mean_reads_only_the_order(regression) -> None:
    oof, y = regression
    method = RankMean().fit(oof, y, rmse, -1.0)
    out = method.predict(oof)
    assert out.shape == (ROWS, 1) and out.min() >= 0 and out.max() <= 1
    monotone = np.stack([oof[0], np.exp(oof[0]), oof[0] * 100 + 3])  # the same order three ways
    np.testing.assert_allclose(RankMean().fit(monotone, y, rmse, -1.0).predict(monotone), ranks(oof[:1])[0])


# --- hill climbing ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [1, 2, 5, 30])
def test_hill_climbing_never_does_worse_than_the_best_member_on_what_it_fitted(regression, steps: int) -> None:
    oof, y = regression
    method = HillClimbing(steps).fit(oof, y, rmse, -1.0)
    best_single = min(rmse(y, s) for s in oof)
    assert rmse(y, method.predict(oof)) <= best_single + 1e-12
    assert method.weights.sum() == pytest.approx(1.0) and (method.weights >= 0).all()
    assert len(method.history) == steps and method.history[0] == (0, pytest.approx(best_single))


def test_hill_climbing_with_a_higher_is_better_metric(multiclass) -> None:
    oof, y = multiclass
    method = HillClimbing(20).fit(oof, y, acc, 1.0)
    assert acc(y, method.predict(oof)) >= max(acc(y, s) for s in oof)
    assert method.history[0][0] == int(np.argmax([acc(y, s) for s in oof]))
    nll_method = HillClimbing(20).fit(oof, y, nll, -1.0)
    assert nll(y, nll_method.predict(oof)) <= min(nll(y, s) for s in oof) + 1e-12


def test_hill_climbing_weights_are_the_selection_counts_of_the_best_prefix(regression) -> None:
    oof, y = regression
    method = HillClimbing(12).fit(oof, y, rmse, -1.0)
    picks = [k for k, _ in method.history]
    values = [v for _, v in method.history]
    best = int(np.argmin(values))  # the first best prefix (ties keep the earlier one)
    counts = np.bincount(picks[: best + 1], minlength=len(oof))
    np.testing.assert_allclose(method.weights, counts / counts.sum())
    np.testing.assert_allclose(method.predict(oof), np.tensordot(counts / counts.sum(), oof, axes=1))
    assert method.describe() == {"steps": [{"member": k, "value": v} for k, v in method.history]}


def test_hill_climbing_keeps_the_best_member_alone_when_others_only_hurt() -> None:
    y = np.linspace(-1, 1, 50)
    oof = np.stack([y, y + 5.0, y - 5.0])[:, :, None]  # member 0 is exact; adding any other makes it worse
    method = HillClimbing(10).fit(oof, y, rmse, -1.0)
    np.testing.assert_allclose(method.weights, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(method.predict(oof)[:, 0], y)


def test_hill_climbing_refuses_fewer_than_one_step() -> None:
    with pytest.raises(WorkspaceError, match=r"^method.steps=0 is not allowed: a whole number >= 1$"):
        HillClimbing(0)


def test_a_fitted_method_pickles_with_its_weights(regression) -> None:
    oof, y = regression
    method = HillClimbing(5).fit(oof, y, rmse, -1.0)
    back = pickle.loads(pickle.dumps(method))  # blend/method.pkl, applied by the Kaggle pack
    np.testing.assert_allclose(back.predict(oof), method.predict(oof))


# --- stacking ---------------------------------------------------------------------------------------------------------
def test_stacking_a_regressor_recovers_a_linear_blend(regression) -> None:
    oof, _ = regression
    y = 0.7 * oof[0, :, 0] + 0.3 * oof[1, :, 0] + 0.5
    method = Stacking(LinearRegression()).fit(oof, y, rmse, -1.0)
    out = method.predict(oof)
    assert out.shape == (ROWS, 1)
    np.testing.assert_allclose(out[:, 0], y, atol=1e-8)
    np.testing.assert_allclose(method.model.coef_, [0.7, 0.3, 0, 0], atol=1e-8)


def test_stacking_a_classifier_gives_probabilities_of_every_class(multiclass) -> None:
    oof, y = multiclass
    method = Stacking(LogisticRegression(max_iter=500)).fit(oof, y, acc, 1.0)
    out = method.predict(oof)
    assert out.shape == (ROWS, CLASSES)
    np.testing.assert_allclose(out.sum(1), 1.0)
    assert acc(y, out) >= acc(y, oof[2])  # better than the weakest member
    assert "LogisticRegression" in method.describe()["model"]


def test_stacking_leaves_a_class_absent_from_training_at_probability_0(multiclass) -> None:
    oof, y = multiclass
    keep = y != 2
    method = Stacking(LogisticRegression(max_iter=500)).fit(oof[:, keep], y[keep], acc, 1.0)
    out = method.predict(oof)
    assert out.shape == (ROWS, CLASSES)
    assert (out[:, 2] == 0).all()
    np.testing.assert_allclose(out.sum(1), 1.0)


def test_stacking_a_binary_task_scores_class_1() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 80)
    oof = np.stack([np.clip(y + rng.normal(scale=s, size=80), 0, 1) for s in (0.3, 0.6)])[:, :, None]
    method = Stacking(LogisticRegression()).fit(oof, y[:, None], acc, 1.0)  # a (rows, 1) target is flattened
    out = method.predict(oof)
    assert out.shape == (80, 1)
    np.testing.assert_allclose(out[:, 0], method.model.predict_proba(Stacking.inputs(oof))[:, 1])


def test_stacking_refuses_what_is_not_an_estimator() -> None:
    with pytest.raises(WorkspaceError, match="method.model must be a scikit-learn estimator"):
        Stacking(model=3)


def test_stacking_fits_a_clone_not_the_configured_estimator(regression) -> None:
    oof, y = regression
    model = LinearRegression()
    method = Stacking(model).fit(oof, y, rmse, -1.0)
    assert method.model is not model and not hasattr(model, "coef_")


# --- nested OOF -------------------------------------------------------------------------------------------------------
def test_nested_oof_of_mean_is_the_mean(multiclass) -> None:
    oof, y = multiclass
    folds = np.arange(ROWS) % 4
    out, fitted = nested_oof(Mean(), oof, y, folds, acc, 1.0, n_jobs=1)
    np.testing.assert_allclose(out, oof.mean(0))
    assert len(fitted) == 4


def test_nested_oof_fits_each_fold_on_the_other_folds_only(regression) -> None:
    oof, y = regression
    folds = np.arange(ROWS) % 3
    out, fitted = nested_oof(Stacking(LinearRegression()), oof, y, folds, rmse, -1.0, n_jobs=1)
    assert out.shape == (ROWS, 1)
    for k, method in enumerate(fitted):
        held = folds == k
        alone = Stacking(LinearRegression()).fit(oof[:, ~held], y[~held], rmse, -1.0)
        np.testing.assert_allclose(method.model.coef_, alone.model.coef_)
        np.testing.assert_allclose(out[held], alone.predict(oof[:, held]))


def test_nested_oof_leaves_the_method_unfitted(regression) -> None:
    oof, y = regression
    method = HillClimbing(3)
    nested_oof(method, oof, y, np.arange(ROWS) % 2, rmse, -1.0, n_jobs=1)
    assert method.weights is None and method.history == []


# --- the package ------------------------------------------------------------------------------------------------------
def test_the_package_has_blend_and_nothing_else_by_attribute() -> None:
    assert ensemble.__all__ == ["blend"]
    with pytest.raises(AttributeError):
        _ = ensemble.no_such_name


# --- member checks ----------------------------------------------------------------------------------------------------
def run(run_id: str = "abcdef1234567890", status: str = "FINISHED", fold: str = "all", **tags: str):
    base = {"stage": "model", "competition": "digit-recognizer", "task": "multiclass", "folds_hash": "f" * 64}
    return SimpleNamespace(info=SimpleNamespace(run_id=run_id, run_name="model01 #3", status=status),
                           data=SimpleNamespace(tags={**base, **tags}, params={"fold": fold}))


@pytest.fixture
def members():
    from src.utils.competition.spec import load
    from src.utils.ensemble.members import Member, check_member

    return Member, check_member, load("digit-recognizer")


@pytest.mark.parametrize(("kw", "message"), [
    ({"sweep": "parent"}, "is a sweep's parent run; name it under members.sweeps"),
    ({"stage": "feature"}, "is not a training run (stage feature)"),
    ({"optuna_state": "PRUNED", "pruned_at": "epoch 2"}, "was pruned at epoch 2"),
    ({"status": "FAILED"}, "ended FAILED; only FINISHED runs can be members"),
    ({"fold": "0"}, "was trained on fold 0 only"),
    ({"competition": "diabetes-sample"}, "belongs to competition diabetes-sample, this ensemble to digit-recognizer"),
])
def test_check_member_is_one_error_line_naming_the_member(members, kw: dict, message: str) -> None:
    Member, check_member, competition = members
    status, fold = kw.pop("status", "FINISHED"), kw.pop("fold", "all")
    m = Member(run(status=status, fold=fold, **kw), "run")
    with pytest.raises(WorkspaceError) as exc:
        check_member(m, competition, None)
    assert str(exc.value).startswith("member abcdef12 (model01 #3, from run) ")
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_a_member_older_than_the_oldest_run_format_is_refused(members) -> None:
    Member, check_member, competition = members
    with pytest.raises(WorkspaceError, match=r"^run abcdef12 was logged by an older version of this workspace \(it "
                                             r"records no tag folds_hash\); .* commit 686a27a"):
        check_member(Member(run(folds_hash=""), "run"), competition, None)


def test_check_member_compares_the_folds_with_the_first_member(members) -> None:
    Member, check_member, competition = members
    first = Member(run("1111111111"), "run")
    check_member(first, competition, None)
    check_member(Member(run("2222222222"), "run"), competition, first)
    with pytest.raises(WorkspaceError, match=r"was trained on other folds \(folds_hash eeeeeeeeeeee\) than member "
                                             r"11111111"):
        check_member(Member(run("3333333333", folds_hash="e" * 64), "run"), competition, first)
