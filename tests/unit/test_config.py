"""src.utils.config: `validate` against typed configs, `require`, the resolvers and the instantiate allow-list."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hydra.errors import InstantiationException
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from src.utils.config.resolvers import direction, stable_id
from src.utils.config.schema import EnsembleConfig, Members, PredictConfig, StageConfig, TrainConfig, require, validate
from src.utils.config.targets import BUILD, PRUNERS, instantiate
from src.utils.core.errors import WorkspaceError
from src.utils.core.paths import ROOT

TRAIN = dict(experiment_name="unit", feature_dir="_data/feature/feature01", lr=0.01, batch_size=32, max_epochs=3,
             monitor="val_acc", model={"_target_": "x.M"}, data={}, optimizer={}, trainer={})


@dataclass
class Small:
    name: str = MISSING
    rate: float = 0.5
    count: int = 1
    flag: bool = False
    maybe: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require(0 <= self.rate < 1, "rate", self.rate, "a number in [0, 1)")


def error(cfg: Any, schema: type = TrainConfig, **kw: Any) -> str:
    with pytest.raises(WorkspaceError) as exc:
        validate(cfg, schema, **kw)
    return str(exc.value)


def test_a_valid_config_becomes_the_dataclass_with_its_defaults() -> None:
    obj = validate(OmegaConf.create(TRAIN), TrainConfig)
    assert isinstance(obj, TrainConfig)
    assert (obj.lr, obj.batch_size, obj.fold, obj.seed, obj.monitor_mode) == (0.01, 32, 0, 42, "max")
    assert obj.mlflow.log_model is True


def test_a_plain_dict_validates_too_and_hydra_and_undeclared_keys_are_left_alone() -> None:
    obj = validate({**TRAIN, "hydra": {"anything": 1}, "dropout": "not typed here"}, TrainConfig)
    assert not hasattr(obj, "dropout") and not hasattr(obj, "hydra")


@pytest.mark.parametrize(("key", "value", "kind"), [
    ("lr", "abc", "a number"),
    ("batch_size", 1.5, "a whole number"),
    ("debug", "maybe", "true or false"),
])
def test_a_wrong_type_is_one_error_naming_the_key_the_value_and_the_kind(key: str, value: Any, kind: str) -> None:
    message = error(OmegaConf.create({**TRAIN, key: value}))
    assert message.startswith(f"{key}={value!r} is not {kind} ")
    assert "TrainConfig in src/utils/config/schema.py" in message
    assert "\n" not in message


def test_a_wrong_type_in_a_nested_dataclass_names_the_dotted_key() -> None:
    message = error({**TRAIN, "mlflow": {"log_model": "perhaps"}})
    assert message.startswith("mlflow.log_model='perhaps' is not true or false")


def test_an_optional_key_says_or_null() -> None:
    assert error({"name": "x", "maybe": [1]}, Small).startswith("maybe=[1] is not a string or null (declared in Small")


def test_a_missing_value_is_one_error_naming_the_key() -> None:
    cfg = {k: v for k, v in TRAIN.items() if k != "monitor"}
    message = error(cfg)
    assert message.startswith("config key 'monitor' has no value; TrainConfig")
    assert "(monitor=...)" in message
    assert error({}, Small).startswith("config key 'name' has no value; Small in ")


@pytest.mark.parametrize(("update", "start"), [
    ({"lr": 0}, "lr=0.0 is not allowed: a number > 0"),
    ({"batch_size": 0}, "batch_size=0 is not allowed"),
    ({"max_epochs": 0}, "max_epochs=0 is not allowed"),
    ({"weight_decay": -0.1}, "weight_decay=-0.1 is not allowed"),
    ({"fold": -1}, "fold=-1 is not allowed: a fold number (0, 1, ...) or all"),
    ({"fold": "first"}, "fold=first is not allowed"),
    ({"monitor_mode": "up"}, "monitor_mode=up is not allowed: max or min"),
    ({"objective": "loss"}, "objective=loss is not allowed"),
    ({"fold": "all", "ckpt_path": "x.ckpt"}, "ckpt_path=x.ckpt is not allowed: it resumes a single fold"),
])
def test_the_train_configs_own_checks(update: dict, start: str) -> None:
    assert error({**TRAIN, **update}).startswith(start)


def test_fold_all_is_allowed() -> None:
    assert validate({**TRAIN, "fold": "all"}, TrainConfig).fold == "all"


def test_a_subclass_adds_keys_and_checks() -> None:
    @dataclass
    class Model01(TrainConfig):
        dropout: float = 0.25

        def check(self) -> None:
            super().check()
            require(0 <= self.dropout < 1, "dropout", self.dropout, "a number in [0, 1)")

    assert validate({**TRAIN, "dropout": 0.5}, Model01).dropout == 0.5
    assert error({**TRAIN, "dropout": 1.5}, Model01) == "dropout=1.5 is not allowed: a number in [0, 1)"
    assert error({**TRAIN, "dropout": 0.5, "lr": -1}, Model01).startswith("lr=-1.0 is not allowed")


def test_extra_checks_run_on_the_validated_object_in_order() -> None:
    seen: list[Any] = []

    def first(obj: Small) -> None:
        seen.append(("first", obj.name))

    def second(obj: Small) -> None:
        seen.append(("second", obj.count))
        require(obj.count < 3, "count", obj.count, "fewer than 3")

    validate({"name": "a", "count": 2}, Small, checks=(first, second))
    assert seen == [("first", "a"), ("second", 2)]
    assert error({"name": "a", "count": 5}, Small, checks=(first, second)) == "count=5 is not allowed: fewer than 3"


def test_checks_do_not_run_when_the_types_are_wrong() -> None:
    ran = []
    error({"name": "a", "count": "many"}, Small, checks=(ran.append,))
    assert ran == []


def test_the_dataclass_post_init_checks_run() -> None:
    assert error({"name": "a", "rate": 1.0}, Small) == "rate=1.0 is not allowed: a number in [0, 1)"


def test_interpolations_are_resolved_before_validation() -> None:
    cfg = OmegaConf.create({**TRAIN, "base_lr": 0.2, "lr": "${base_lr}"})
    assert validate(cfg, TrainConfig).lr == 0.2


def test_require() -> None:
    require(True, "k", 1, "anything")
    with pytest.raises(WorkspaceError, match=r"^dropout=1.5 is not allowed: a number in \[0, 1\)$"):
        require(False, "dropout", 1.5, "a number in [0, 1)")


def test_the_other_schemas_checks() -> None:
    assert error({"experiment_name": "e", "mode": "up"}, PredictConfig).startswith("mode=up is not allowed")
    assert error({"experiment_name": "e", "batch_size": 0}, PredictConfig).startswith("batch_size=0 is not allowed")
    assert validate({"experiment_name": "e"}, PredictConfig).run_id == "best"
    assert validate({"experiment_name": "e", "output_dir": "o"}, StageConfig).force is False
    with pytest.raises(WorkspaceError, match="members.top_k=0"):
        Members(top_k=0)
    ens = {"experiment_name": "e", "competition": "c"}
    assert error({**ens, "method": "mean"}, EnsembleConfig).startswith("method=mean is not allowed")
    ok = validate({**ens, "method": {"_target_": "src.utils.ensemble.methods.Mean"}}, EnsembleConfig)
    assert ok.members.top_k == 5 and ok.nested_cv is True


# --- resolvers --------------------------------------------------------------------------------------------------------
def test_stable_id_is_stable_short_and_order_independent() -> None:
    a = stable_id(["model=cnn", "lr=interval(0.001,0.1)"])
    assert a == stable_id(["lr=interval(0.001,0.1)", "model=cnn"])
    assert a == stable_id(("model=cnn", "lr=interval(0.001,0.1)"))
    assert len(a) == 10 and all(c in "0123456789abcdef" for c in a)
    assert a != stable_id(["model=cnn", "lr=interval(0.001,0.2)"])
    assert stable_id(None) == stable_id([])


def test_stable_id_counts_the_search_space_by_content() -> None:
    items = ["lr=0.1"]
    space = {"dropout": "interval(0,0.5)", "bs": "choice(32,64)"}
    assert stable_id(items, space) != stable_id(items)
    assert stable_id(items, space) == stable_id(items, dict(reversed(list(space.items()))))
    assert stable_id(items, space) != stable_id(items, {**space, "bs": "choice(32,128)"})
    assert stable_id(items, {}) == stable_id(items)  # an empty space is no space
    assert stable_id(items, OmegaConf.create(space)) == stable_id(items, space)


def test_direction() -> None:
    assert direction("max") == "maximize"
    assert direction("min") == "minimize"
    with pytest.raises(ValueError, match="monitor_mode must be max or min, not 'up'"):
        direction("up")


def test_the_resolvers_are_registered_by_the_set_up() -> None:
    cfg = OmegaConf.create({"root": "${root:}", "study": "${stable_id:[b,a]}", "same": "${stable_id:[a,b]}",
                            "dir": "${direction:min}", "bad": "${direction:up}"})
    assert cfg.root == str(ROOT)
    assert cfg.study == cfg.same == stable_id(["a", "b"])
    assert cfg.dir == "minimize"
    with pytest.raises(InterpolationResolutionError, match="monitor_mode must be max or min"):
        _ = cfg.bad


# --- targets ----------------------------------------------------------------------------------------------------------
def test_instantiate_builds_allowed_targets() -> None:
    from sklearn.model_selection import KFold

    splitter = instantiate({"_target_": "sklearn.model_selection.KFold", "n_splits": 3})
    assert isinstance(splitter, KFold) and splitter.n_splits == 3


@pytest.mark.parametrize("target", ["os.system", "subprocess.run", "builtins.eval", "collections.OrderedDict",
                                    "optuna.pruners.MedianPruner"])
def test_instantiate_refuses_a_target_outside_the_allow_list(target: str) -> None:
    with pytest.raises(InstantiationException, match="whitelist"):
        instantiate({"_target_": target, "_args_": ["echo unit"]} if target != "optuna.pruners.MedianPruner"
                    else {"_target_": target})


def test_instantiate_takes_other_allow_lists_and_trusted_packages() -> None:
    import optuna

    assert isinstance(instantiate({"_target_": "optuna.pruners.MedianPruner"}, allowed=PRUNERS),
                      optuna.pruners.MedianPruner)
    assert dict(instantiate({"_target_": "collections.OrderedDict"}, trusted=("collections.*",))) == {}
    with pytest.raises(InstantiationException):
        instantiate({"_target_": "sklearn.model_selection.KFold"}, allowed=PRUNERS)
    assert "src.*" in BUILD and "optuna.pruners.*" not in BUILD
