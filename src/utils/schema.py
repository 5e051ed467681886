"""Typed configs: what each key may hold, checked before anything runs.

Every entry script declares its keys as a dataclass (a structured config): the harness's keys live in
`TrainConfig` here, an experiment adds its own in a subclass (model01: `dropout: float`). The values stay in the
YAML; the dataclass says what they may be. `preflight()` runs before Hydra starts: it composes the config with
Hydra's own command-line parser and composition (every value a sweep can take included) and checks it against
the dataclass, so a misspelt key, a wrong type or an impossible value ends in one `error:` line naming the key,
the value and what is allowed, before any run is started. The harness checks the config again before each run
(`validate`), so a trial a sweep hands a wrong value fails in Optuna (and the sweep goes on) without a run.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from src.utils.errors import WorkspaceError
from src.utils.paths import ROOT, config_dir

KINDS = {float: "a number", int: "a whole number", bool: "true or false", str: "a string"}
# Hydra 1.4 builds config `_target_`s only from packages a trusted call site names: the workspace's own code and the
# libraries its configs build from. A class from another package is built once its package is added here.
TARGETS = ("src.*", "torch.*", "pytorch_lightning.*", "torchmetrics.*", "torchvision.*", "timm.*", "sklearn.*",
           "scipy.*", "numpy.*")


def instantiate(config: Any, *args: Any, trusted: tuple[str, ...] = (), **kwargs: Any) -> Any:
    """`hydra.utils.instantiate` for the workspace's configs (TARGETS, and the packages in `trusted`)."""
    import hydra

    return hydra.utils.instantiate(config, *args, _execution_whitelist_=(*TARGETS, *trusted), **kwargs)


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise the one-line error for a value a key may not take: `dropout=1.5 is not allowed: a number in [0, 1)`."""
    if not ok:
        raise WorkspaceError(f"{key}={value} is not allowed: {allowed}")


@dataclass
class MlflowOptions:
    log_model: bool = True  # pickled LightningModule + its code: mlflow.pytorch.load_model("runs:/<id>/model")
    log_checkpoint: bool = True
    system_metrics: bool = True  # CPU, memory (and GPU where present), sampled in the background


@dataclass
class TrainConfig:
    """The keys the training harness reads. An experiment subclasses this for its own hyper-parameters."""

    experiment_name: str = MISSING
    feature_dir: str = MISSING
    competition: str | None = None  # config/competition/<name>.yaml (None: the one the features were built for)
    lr: float = MISSING
    batch_size: int = MISSING
    max_epochs: int = MISSING
    weight_decay: float = 0.0
    seed: int = 42
    fold: Any = 0  # a fold number, or "all" for K-fold CV (the upper bound comes from the features)
    debug: bool = False
    ckpt_path: str | None = None
    monitor: str = MISSING  # the metric the model logs that early stopping, checkpoints and sweeps follow
    monitor_mode: str = "max"
    objective: str = "monitor"  # the sweep objective: best `monitor` (CV mean), or `oof`: the competition's metric
    # Hydra `_target_` nodes: what they build is checked by what builds it
    model: Any = MISSING
    data: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = None
    callbacks: dict[str, Any] = field(default_factory=dict)
    trainer: Any = MISSING
    pruner: Any = None  # an optuna.pruners `_target_` node; None: sweeps never prune
    note: str | None = None  # note="why this run": the run's description in MLflow and the diary
    tensorboard: bool = False  # also log to TensorBoard (logs/tensorboard/<experiment>/<run_id>)
    mlflow: MlflowOptions = field(default_factory=MlflowOptions)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Ranges and combinations; a subclass adds its own and calls super().check()."""
        require(self.lr > 0, "lr", self.lr, "a number > 0 (e.g. lr=0.003)")
        require(self.batch_size >= 1, "batch_size", self.batch_size, "a whole number >= 1 (e.g. batch_size=64)")
        require(self.max_epochs >= 1, "max_epochs", self.max_epochs, "a whole number >= 1")
        require(self.weight_decay >= 0, "weight_decay", self.weight_decay, "a number >= 0")
        require(self.fold == "all" or (type(self.fold) is int and self.fold >= 0), "fold", self.fold,
                "a fold number (0, 1, ...) or all")
        require(self.monitor_mode in ("max", "min"), "monitor_mode", self.monitor_mode, "max or min")
        require(self.objective in ("monitor", "oof"), "objective", self.objective,
                "monitor (the best monitored value) or oof (the competition's metric on the OOF predictions)")
        if self.competition is not None:
            from src.utils.competition import load

            metric = load(self.competition).metric
            require(self.objective != "oof" or metric.direction == self.monitor_mode, "objective", self.objective,
                    f"the competition's metric {metric.name} is to be {metric.direction}imized but monitor_mode="
                    f"{self.monitor_mode}; set monitor_mode={metric.direction}")
        require(not (self.fold == "all" and self.ckpt_path), "ckpt_path", self.ckpt_path,
                "it resumes a single fold; pass fold=<k> with it, not fold=all")
        if self.pruner is not None:
            from src.utils.optuna_sweeper import check_pruner

            check_pruner(self.pruner)


@dataclass
class PredictConfig:
    """The keys of a model folder's predict.yaml."""

    experiment_name: str = MISSING
    run_id: str = "best"  # a run_id, or `best`: the FINISHED run with the best `metric` in experiment_name
    metric: str | None = None  # None: best_<monitor> of the runs' own monitor
    mode: str | None = None  # None: the runs' own monitor_mode
    batch_size: int | None = None  # None: the run's own

    def __post_init__(self) -> None:
        require(self.mode in ("max", "min", None), "mode", self.mode, "max, min or null")
        require(self.batch_size is None or self.batch_size >= 1, "batch_size", self.batch_size,
                "a whole number >= 1")


def _where(schema: type) -> str:
    try:
        path = Path(inspect.getsourcefile(schema) or "").resolve().relative_to(ROOT)
    except (TypeError, ValueError):
        path = Path(schema.__module__.replace(".", "/") + ".py")
    return f"{schema.__name__} in {path}"


def _kind(schema: type, key: str) -> str:
    hints = typing.get_type_hints(schema)
    top = key.split(".")[0]
    hint = hints.get(top)
    if "." in key and dataclasses.is_dataclass(hint):
        return _kind(hint, key.split(".", 1)[1])
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if len(args) == 1 else hint
    return KINDS.get(base, str(base)) + (" or null" if type(None) in typing.get_args(hint) else "")


def validate(cfg: DictConfig | dict, schema: type) -> Any:
    """The config as an instance of `schema` (its checks run); a WorkspaceError names the first bad key.

    Keys the schema does not declare are left alone (untyped): an experiment declares the keys it reads.
    """
    if isinstance(cfg, DictConfig):
        data = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    else:
        data = {k: v for k, v in cfg.items() if k != "hydra"}
    declared = {f.name for f in dataclasses.fields(schema)}
    typed = {k: v for k, v in data.items() if k in declared}
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), typed)
        return OmegaConf.to_object(merged)
    except ValidationError as exc:
        key = exc.full_key or "?"
        value = OmegaConf.select(OmegaConf.create(typed), key, default="?")
        raise WorkspaceError(f"{key}={value!r} is not {_kind(schema, key)} (declared in {_where(schema)})") from exc
    except MissingMandatoryValue as exc:
        raise WorkspaceError(f"config key '{exc.full_key}' has no value; {_where(schema)} needs one: set it in the "
                             f"YAML or on the command line ({exc.full_key}=...)") from exc


# ------------------------------------------------------------------------------------------------------
# Before Hydra starts
# ------------------------------------------------------------------------------------------------------
def _sweep_values(override: Any) -> list[Any]:
    """The values a sweep override can hand a trial that are worth composing: every choice, both ends."""
    value = override.value()
    if override.is_interval_sweep():
        return [value.start, value.end]
    values = list(override.sweep_iterator())
    return values if override.is_choice_sweep() else values[:1] + values[-1:]


def _explain(exc: Exception, overrides: list[str], base: Callable[[], DictConfig | None], config_file: str) -> str:
    """One line for what Hydra's composition refused (`base`: the config without overrides, for spelling hints)."""
    from hydra.errors import MissingConfigException

    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, MissingConfigException) or isinstance(cause, MissingConfigException):
        missing = exc if isinstance(exc, MissingConfigException) else cause
        name = (missing.missing_cfg_file or "").rsplit("/", 1)
        options = ", ".join(missing.options or [])
        if len(name) == 2:
            return (f"{name[0]}={name[1]} is not an option of config group '{name[0]}'"
                    + (f"; choose one of {options}" if options else "") + f" ({config_file})")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(cause, ConfigKeyError | ConfigAttributeError) and text.startswith("Could not override"):
        key = text.split("'")[1] if text.count("'") >= 2 else "?"
        group = ROOT / Path(config_file).parent / key.split(".")[0]
        if group.is_dir():  # an object the config chooses from a group: `pruner={...}`, or a key its choice lacks
            name = key.split(".")[0]
            options = group_options(group)
            where = f"config group {group.relative_to(ROOT)}/: {options}"
            if "." in key:
                return (f"{key}: the chosen {name} has no key {key.split('.', 1)[1]!r} ({where}); choose the option "
                        f"that has it first ({name}=<option> {key}=...), or replace {name} with "
                        f"'~{name}' '+{name}={{_target_:...}}'")
            return (f"{key}=... cannot replace a config group's choice ({where}); choose one with {name}=<option> "
                    f"and set its keys with {name}.<key>=..., or replace it with '~{name}' '+{name}={{_target_:...}}'")
        known = [k for k, _ in _flat_keys(base())]
        close = difflib.get_close_matches(key, known, n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        return (f"unknown config key '{key}'{hint} in {config_file}; fix the spelling, or add a new key "
                f"with +{key}=...")
    detail = str(cause).strip().splitlines()[0] if cause is not None and str(cause).strip() else ""
    return f"{text}{'; ' + detail if detail and detail not in text else ''} (overrides: {' '.join(overrides)})"


def group_options(group: Path) -> str:
    """The options of a config group folder, as an error line lists them."""
    return ", ".join(sorted(p.stem for p in group.glob("*.yaml")))


def _flat_keys(cfg: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    if isinstance(cfg, DictConfig):
        for k in cfg.keys():
            node = cfg._get_node(k)
            name = f"{prefix}{k}"
            out += _flat_keys(node, f"{name}.") if isinstance(node, DictConfig) else [(name, None)]
    return out


def check_command(file: str, schema: type, config_name: str, argv: list[str]) -> int:
    """Compose what Hydra will compose for `argv` and validate it; returns how many configs were checked."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.utils import get_args_parser
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Override
    from hydra.errors import HydraException

    import src.utils.launchers  # noqa: F401  (registers hydra/launcher=submitit_slurm|submitit_local: jobs may die)
    import src.utils.optuna_plugin  # noqa: F401  (registers hydra/sweeper=workspace_optuna; imports no Optuna)

    args, _ = get_args_parser().parse_known_args(argv)
    if args.help or args.hydra_help or args.cfg or args.shell_completion or args.info or args.experimental_rerun:
        return 0
    if args.config_path or args.config_dir:
        return 0  # another config folder: Hydra checks what it finds there
    folder = config_dir(file)
    config_name = args.config_name or config_name
    config_file = f"{Path(folder).relative_to(ROOT)}/{config_name}.yaml"
    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(args.overrides)
    except HydraException as exc:
        reason = str(exc).strip().splitlines()[0].split(" expecting ")[0]
        raise WorkspaceError(f"cannot read the override(s) {' '.join(args.overrides)}: {reason}; quote values "
                             f"with brackets or commas in the shell, e.g. 'lr=interval(1e-4,1e-1)'") from exc
    sweeps = [o for o in parsed if o.is_sweep_override()]
    if sweeps and not args.multirun:
        key, _, value = sweeps[0].input_line.partition("=")
        raise WorkspaceError(f"{sweeps[0].input_line} is a sweep: add -m to run it as an Optuna sweep; for one value "
                             f"with commas, quote it for Hydra inside the shell's quotes: '{key}=\"{value}\"'")
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]

    GlobalHydra.instance().clear()
    checked = 0
    with initialize_config_dir(config_dir=folder):
        def composed(overrides: list[str]) -> DictConfig:
            nonlocal checked
            try:
                cfg = compose(config_name, overrides, return_hydra_config=args.multirun)
            except (HydraException, OmegaConfBaseException) as exc:
                raise WorkspaceError(_explain(exc, overrides, base, config_file)) from exc
            except ValueError as exc:  # Hydra: "Config group override must be a string or a list. Got int"
                group = next((o.split("=", 1) for o in overrides if (Path(folder) / o.split("=", 1)[0]).is_dir()
                              and "=" in o and not o.startswith(("+", "~"))), None)
                if group is None:
                    raise
                options = group_options(Path(folder) / group[0])
                if group[1].strip().lower() in ("null", "none", "~"):  # Hydra cannot set a group's choice to null
                    raise WorkspaceError(f"{group[0]}={group[1]}: a config group's choice cannot be null; "
                                         + (f"write {group[0]}=none, or " if "none" in options.split(", ") else "")
                                         + f"remove it with '~{group[0]}' (options: {options})") from exc
                raise WorkspaceError(f"{group[0]}={group[1]} is not an option of config group '{group[0]}'; choose "
                                     f"one of {options} ({config_file})") from exc
            checked += 1
            validate(cfg, schema)
            return cfg

        def base() -> DictConfig | None:  # composed only to suggest the spelling of an unknown key
            try:
                return compose(config_name, [], return_hydra_config=args.multirun)
            except (HydraException, OmegaConfBaseException):
                return None  # the config itself is broken: the composition's own error says how

        cfg = composed(fixed)
        if args.multirun:
            from src.utils.optuna_sweeper import check_settings, parse_space

            space_args = [f"{k}={v}" for k, v in (OmegaConf.select(cfg, "hydra.sweeper.params") or {}).items()]
            space_args += [o.input_line for o in parsed if not o.key_or_group.startswith("hydra")]
            check_settings(OmegaConf.select(cfg, "hydra.sweeper.n_trials"), parse_space(space_args)[0], space_args)
            on_command_line = {o.key_or_group for o in sweeps}
            space = OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {}
            for key, value in space.items():
                if key not in on_command_line:
                    try:
                        sweeps += parser.parse_overrides([f"{key}={value}"])
                    except HydraException as exc:
                        raise WorkspaceError(f"hydra.sweeper.params.{key}={value} cannot be read: "
                                             f"{str(exc).strip().splitlines()[0]}") from exc
            for sweep in sweeps:
                for value in _sweep_values(sweep):
                    composed([*fixed, f"{sweep.get_key_element()}={Override._get_value_element_as_str(value)}"])
    GlobalHydra.instance().clear()
    return checked


def preflight(file: str, schema: type, config_name: str = "config", argv: list[str] | None = None) -> None:
    """Exit with one `error:` line if the command line (or the config) holds a key, type or value the entry
    script `file` cannot run with. Call it before the @hydra.main function."""
    from src.utils.store import check_store

    try:
        check_store()
        check_command(file, schema, config_name, sys.argv[1:] if argv is None else argv)
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)


@dataclass
class StageConfig:
    """The keys every data stage (dataset, feature folders) has; a stage subclasses it for its own."""

    experiment_name: str = MISSING
    output_dir: str = MISSING
    competition: str | None = None  # config/competition/<name>.yaml: the competition this stage belongs to
    force: bool = False  # rebuild even when the outputs are up to date
    note: str | None = None  # note="...": the run's description in MLflow and the diary

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        if self.competition is not None:
            from src.utils.competition import load

            load(self.competition)


@dataclass
class Members:
    """Who is in an ensemble: any mix of run_ids, sweeps' top trials and model experiments' top runs."""

    runs: list[str] = field(default_factory=list)  # run_ids of fold=all training runs
    sweeps: list[str] = field(default_factory=list)  # sweep parent run_ids: the top_k trials of each, by monitor
    experiments: list[str] = field(default_factory=list)  # model experiments (model01): their top_k fold=all runs
    top_k: int = 5

    def __post_init__(self) -> None:
        require(self.top_k >= 1, "members.top_k", self.top_k, "a whole number >= 1")


@dataclass
class EnsembleConfig:
    """The keys an ensemble folder's config.yaml holds (src/utils/ensemble.py reads them)."""

    experiment_name: str = MISSING
    competition: str = MISSING  # config/competition/<name>.yaml: every member must belong to it
    members: Members = field(default_factory=Members)
    method: Any = MISSING  # config/ensemble/<folder>/method/: a node with _target_ (src/utils/blend.py)
    nested_cv: bool = True  # also score the blend fitted on the other folds, on the held-out fold
    note: str | None = None  # note="...": the run's description in MLflow and the diary

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        from src.utils.competition import load

        load(self.competition)
        if not isinstance(self.method, dict) or "_target_" not in self.method:
            raise WorkspaceError(f"method={self.method} is not allowed: an option of the method group (method=mean, "
                                 f"rank_mean, hill_climbing, stacking) or a node with _target_")
