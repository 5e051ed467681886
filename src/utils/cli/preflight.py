"""The command-line preflight: before Hydra starts, compose what Hydra will compose and check it.

`preflight(__file__, Config)` runs first in every entry script: the one set-up (src/utils/cli/setup.py), the
store's home, then the command line parsed with Hydra's own parser and composed with Hydra's own composition,
every value a sweep can take included, and validated against the script's dataclass with the checks its kind of
config needs (the competition file, the pruner, the sweep's settings). A misspelt key, a wrong type or an
impossible value is one `error:` line naming the key, the value and what is allowed, before any run exists.
This package is the only code that touches Hydra's internals (`hydra._internal`); it may import every other.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from src.utils.cli.setup import setup
from src.utils.config.schema import EnsembleConfig, RunConfig, StageConfig, validate
from src.utils.core.errors import WorkspaceError
from src.utils.core.paths import ROOT, config_dir


def checks_for(schema: type) -> tuple[Callable[[Any], None], ...]:
    """The checks beyond the dataclass's own that a kind of config needs (they read other packages)."""
    from src.utils.competition.spec import check_named
    from src.utils.run.checks import train_checks

    if issubclass(schema, RunConfig):
        return (train_checks,)
    if issubclass(schema, StageConfig | EnsembleConfig):
        return (check_named,)
    return ()


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


@dataclass
class Command:
    """A command line as Hydra reads it: its overrides split into fixed ones and sweeps."""

    folder: str
    config_name: str
    config_file: str
    multirun: bool
    parsed: list
    sweeps: list
    fixed: list[str]


def read_command(file: str, config_name: str, argv: list[str]) -> Command | None:
    """The command line as Hydra's own parser reads it; None when Hydra is asked for something else (--help, --cfg,
    another config folder), which Hydra then handles itself."""
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    args, _ = get_args_parser().parse_known_args(argv)
    if args.help or args.hydra_help or args.cfg or args.shell_completion or args.info or args.experimental_rerun:
        return None
    if args.config_path or args.config_dir:
        return None  # another config folder: Hydra checks what it finds there
    folder = config_dir(file)
    config_name = args.config_name or config_name
    try:
        parsed = OverridesParser.create().parse_overrides(args.overrides)
    except HydraException as exc:
        reason = str(exc).strip().splitlines()[0].split(" expecting ")[0]
        raise WorkspaceError(f"cannot read the override(s) {' '.join(args.overrides)}: {reason}; quote values "
                             f"with brackets or commas in the shell, e.g. 'lr=interval(1e-4,1e-1)'") from exc
    sweeps = [o for o in parsed if o.is_sweep_override()]
    if sweeps and not args.multirun:
        key, _, value = sweeps[0].input_line.partition("=")
        raise WorkspaceError(f"{sweeps[0].input_line} is a sweep: add -m to run it as an Optuna sweep; for one value "
                             f"with commas, quote it for Hydra inside the shell's quotes: '{key}=\"{value}\"'")
    return Command(folder, config_name, f"{Path(folder).relative_to(ROOT)}/{config_name}.yaml", bool(args.multirun),
                   parsed, sweeps, [o.input_line for o in parsed if not o.is_sweep_override()])


def group_error(command: Command, overrides: list[str], exc: ValueError) -> WorkspaceError:
    """Hydra's "Config group override must be a string or a list. Got int" (or a null choice), as one line."""
    group = next((o.split("=", 1) for o in overrides if (Path(command.folder) / o.split("=", 1)[0]).is_dir()
                  and "=" in o and not o.startswith(("+", "~"))), None)
    if group is None:
        raise exc
    options = group_options(Path(command.folder) / group[0])
    if group[1].strip().lower() in ("null", "none", "~"):  # Hydra cannot set a group's choice to null
        return WorkspaceError(f"{group[0]}={group[1]}: a config group's choice cannot be null; "
                              + (f"write {group[0]}=none, or " if "none" in options.split(", ") else "")
                              + f"remove it with '~{group[0]}' (options: {options})")
    return WorkspaceError(f"{group[0]}={group[1]} is not an option of config group '{group[0]}'; choose one of "
                          f"{options} ({command.config_file})")


def sweep_overrides(command: Command, cfg: DictConfig) -> list:
    """The sweep's settings checked, and every sweep override: the command line's and the config's search space."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from src.utils.tune.checks import check_settings, parse_space

    space = OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {}
    space_args = [f"{k}={v}" for k, v in space.items()]
    space_args += [o.input_line for o in command.parsed if not o.key_or_group.startswith("hydra")]
    check_settings(OmegaConf.select(cfg, "hydra.sweeper.n_trials"), parse_space(space_args)[0], space_args)
    sweeps = list(command.sweeps)
    on_command_line = {o.key_or_group for o in sweeps}
    for key, value in space.items():
        if key not in on_command_line:
            try:
                sweeps += OverridesParser.create().parse_overrides([f"{key}={value}"])
            except HydraException as exc:
                raise WorkspaceError(f"hydra.sweeper.params.{key}={value} cannot be read: "
                                     f"{str(exc).strip().splitlines()[0]}") from exc
    return sweeps


def check_command(file: str, schema: type, config_name: str, argv: list[str]) -> int:
    """Compose what Hydra will compose for `argv` and validate it; returns how many configs were checked."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.types import Override
    from hydra.errors import HydraException

    command = read_command(file, config_name, argv)
    if command is None:
        return 0
    checks = checks_for(schema)
    GlobalHydra.instance().clear()
    checked = 0
    with initialize_config_dir(config_dir=command.folder):
        def base() -> DictConfig | None:  # composed only to suggest the spelling of an unknown key
            try:
                return compose(command.config_name, [], return_hydra_config=command.multirun)
            except (HydraException, OmegaConfBaseException):
                return None  # the config itself is broken: the composition's own error says how

        def composed(overrides: list[str]) -> DictConfig:
            nonlocal checked
            try:
                cfg = compose(command.config_name, overrides, return_hydra_config=command.multirun)
            except (HydraException, OmegaConfBaseException) as exc:
                raise WorkspaceError(_explain(exc, overrides, base, command.config_file)) from exc
            except ValueError as exc:
                raise group_error(command, overrides, exc) from exc
            checked += 1
            validate(cfg, schema, checks)
            return cfg

        cfg = composed(command.fixed)
        if command.multirun:  # the sweep's study storage, when it is a SQLite file that cannot be read
            from src.utils.track.store import check_study_storage

            check_study_storage(str(OmegaConf.select(cfg, "hydra.sweeper.storage", default="") or ""))
            for sweep in sweep_overrides(command, cfg):
                for value in _sweep_values(sweep):
                    composed([*command.fixed,
                              f"{sweep.get_key_element()}={Override._get_value_element_as_str(value)}"])
    GlobalHydra.instance().clear()
    return checked


def preflight(file: str, schema: type, config_name: str = "config", argv: list[str] | None = None) -> None:
    """The entry script's set-up, then exit with one `error:` line if the command line (or the config) holds a key,
    type or value the script `file` cannot run with. Call it before the @hydra.main function."""
    from src.utils.track.store import check_store

    setup(collector_paused=issubclass(schema, RunConfig))
    try:
        check_store()
        check_command(file, schema, config_name, sys.argv[1:] if argv is None else argv)
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
