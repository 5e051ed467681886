"""`bash scripts/bench.sh --profile`: where a sweep trial's time goes outside training, by cProfile.

Runs `<train.py> -m <args>` in this process with the harness's `fit` (one trial's whole job: the MLflow run, the
fit, the OOF predictions, the logged model) profiled from the second trial on (the first pays the imports), and
prints, per profiled trial, its wall time, the part spent in Lightning's `Trainer.fit`, and the calls that make up
the rest: the harness's own steps, then the library calls under them. The profile is written to `--out`
(open it with `python -m pstats` or snakeviz).

    python -m src.tools.bench_profile --out trial.prof src/model/model01/train.py -m 'lr=choice(0.003,0.002)' ...
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import runpy
import sys
import time
from pathlib import Path

FIT = ("harness.py", "fit")  # the job of one trial
TRAINING = ("trainer.py", "fit")  # Lightning's Trainer.fit: the epochs, their validation, the sanity check


def callees(stats: dict, of: tuple[str, str], trials: int) -> list[tuple[float, str]]:
    """(seconds per trial, function) of what `of` called, most first."""
    rows = []
    for func, (_, _, _, _, callers) in stats.items():
        for caller, (_, _, _, cumulative) in callers.items():
            if caller[0].endswith(of[0]) and caller[2] == of[1]:
                name = func[0].split("site-packages/")[-1].split("/src/", 1)[-1]
                rows.append((cumulative / trials, f"{name}:{func[1]} {func[2]}"))
    return sorted(rows, reverse=True)


def report(stats: dict, walls: list[float], top: int = 12) -> str:
    n = len(walls)
    fit = next((v[3] for k, v in stats.items() if k[0].endswith(FIT[0]) and k[2] == FIT[1]), 0.0) / n
    training = sum(v[3] for k, v in stats.items() if k[0].endswith("pytorch_lightning/trainer/trainer.py")
                   and k[2] == TRAINING[1]) / n
    lines = [f"{n} profiled trial(s): {sum(walls) / n:.2f} s each (under cProfile, which slows Python code more "
             f"than torch's), Trainer.fit {training:.2f} s, the rest {fit - training:.2f} s:"]
    for seconds, name in callees(stats, FIT, n)[:top]:
        if "fit_fold" in name:
            lines.append(f"  {seconds:7.3f} s  {name} (Trainer.fit {training:.3f} s of it, the rest:)")
            for s, inner in callees(stats, ("harness.py", "fit_fold"), n)[:6]:
                if "trainer.py" not in inner:
                    lines.append(f"  {s:15.3f} s  {inner}")
        else:
            lines.append(f"  {seconds:7.3f} s  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where to write the cProfile stats")
    parser.add_argument("script", help="the experiment's train.py")
    args, rest = parser.parse_known_args(argv)

    import src.utils.run.harness as harness

    fit, profile, walls, calls = harness.fit, cProfile.Profile(), [], [0]

    def profiled(*a, **k):
        calls[0] += 1
        if calls[0] == 1:  # the first trial pays the imports: not profiled
            return fit(*a, **k)
        start = time.perf_counter()
        profile.enable()
        try:
            return fit(*a, **k)
        finally:
            profile.disable()
            walls.append(time.perf_counter() - start)

    harness.fit = profiled  # the entry scripts import it inside main, after this
    sys.argv = [args.script, *rest]
    try:
        runpy.run_path(args.script, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    if not walls:
        print("no trial was profiled: give the sweep 2 trials or more", file=sys.stderr)
        return 2
    profile.dump_stats(str(args.out))
    print(report(pstats.Stats(str(args.out)).stats, walls))
    print(f"profile: {args.out}")
    return 0


if __name__ == "__main__":
    from src.utils.cli.setup import setup

    setup()  # the environment, resolvers and plugins, before anything else runs
    sys.exit(main())
