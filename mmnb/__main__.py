"""Command line: `python -m mmnb run NOTEBOOK ...`, `sweep NOTEBOOK ...` and `collect DIR`.

Exit status: 0 when every run finished (a run whose claims did not hold has finished: its
numbers are recorded, with the status `claims_failed`), 1 when a run failed, timed out or
was interrupted (or the Dask scheduler died), 2 on bad input or a refused run (nothing
ran: a folder that holds another notebook's or other code's run, a missing device, a
size too large for the machine), 5 when the disk filled up (the runs not started are
named; run the same command again once there is space), 128 + the signal's number when a
signal stopped the command (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "parse_value"]

DISK_FULL = 5


def parse_value(text: str, name: str = "value") -> Any:
    """A command-line value: a Python literal (int, float, bool, None, quoted string, or a
    list of those for a list knob: `"[0.1, 1.0]"`), else text."""
    from mmnb.grids import scalar
    from mmnb.names import literal

    value = literal(text)
    if value is None or isinstance(value, (bool, int, float, str, list)):
        return scalar(name, value)
    raise ValueError(
        f"value {text!r} is a {type(value).__name__}; give each value as a separate number, "
        "string, True/False, None or a list of those"
    )


def _timing(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--timeout", type=float, metavar="SECONDS",
        help="stop a run that takes longer than this (recorded as failed: timed out)",
    )  # fmt: skip
    command.add_argument(
        "--redo", action="store_true",
        help="run again finished runs made by another notebook or other mmnb code (their "
        "files are kept as *.superseded); without it they are refused",
    )  # fmt: skip


def _notebook_and_params(command: argparse.ArgumentParser, nargs: int | str, help: str) -> None:
    """The NOTEBOOK argument and the repeatable `-p NAME VALUE…` option of a command."""
    command.add_argument("notebook", type=Path, help="the notebook, e.g. chapters/01_snr.ipynb")
    command.add_argument(
        "-p", "--param", action="append", nargs=nargs, default=[], metavar=("NAME", "VALUE"),
        help=help,
    )  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmnb", description="Run or sweep a chapter notebook with papermill."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "sweep",
        help="run a notebook over a parameter grid",
        usage="python -m mmnb sweep NOTEBOOK [-p NAME VALUE [VALUE ...]] ... [--seeds SEED ...] "
        "--out DIR [--grid FILE.yaml] [--jobs N | --scheduler ADDRESS] [--kernel NAME] "
        "[--timeout SECONDS] [--redo]",
        description="Run NOTEBOOK once per combination of the parameter values, one folder "
        "per run below --out, and write --out/results.csv. Runs that already finished "
        "are skipped.",
    )
    _notebook_and_params(
        run, "+", "sweep NAME over one or more values (Python literals, else strings); repeatable"
    )
    run.add_argument(
        "--seeds", type=int, nargs="+", metavar="SEED", help="values of the notebook's `seed`"
    )
    run.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder of the runs and results.csv"
    )
    run.add_argument(
        "--grid",
        type=Path,
        metavar="FILE.yaml",
        help="YAML file mapping names to a value or a list of values; -p overrides its entries",
    )
    where = run.add_mutually_exclusive_group()
    where.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="local runs at once (default 1)"
    )
    where.add_argument(
        "--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://host:8786"
    )
    run.add_argument(
        "--kernel", default="python3", metavar="NAME", help="Jupyter kernel (default python3)"
    )
    _timing(run)
    one = commands.add_parser(
        "run",
        help="run a notebook once, with its parameters checked first",
        usage="python -m mmnb run NOTEBOOK [-p NAME VALUE] ... --out DIR [--kernel NAME] "
        "[--timeout SECONDS] [--redo]",
        description="Run NOTEBOOK once with the given parameters; the executed notebook, "
        "metrics.json and run.json go to DIR. Names are checked against the notebook's "
        "parameters cell and values against its config (and the machine's memory and "
        "devices) before the kernel starts. A DIR that already holds this finished run is "
        "left as it is; one that holds a finished run with other parameters, of another "
        "notebook or of other code is refused (--redo runs it again).",
    )
    _notebook_and_params(one, 2, "set NAME to VALUE (a Python literal, else a string); repeatable")
    one.add_argument("--out", type=Path, required=True, metavar="DIR", help="the run's folder")
    one.add_argument(
        "--kernel", default="python3", metavar="NAME", help="Jupyter kernel (default python3)"
    )
    _timing(one)
    collect = commands.add_parser("collect", help="rebuild DIR/results.csv from the run folders")
    collect.add_argument("dir", type=Path, help="the --out folder of a sweep")
    return parser


def _grid(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, list[Any]]:
    from mmnb.sweep import load_grid

    grid = load_grid(args.grid) if args.grid else {}
    given: set[str] = set()
    for name, *values in args.param:
        if not values:
            parser.error(f"-p {name}: give at least one value")
        if name in given:
            parser.error(f"-p {name} is given twice; list all its values after one -p")
        given.add(name)
        grid[name] = [parse_value(value, name) for value in values]
    if args.seeds:
        if "seed" in grid:
            parser.error("give the seeds either with --seeds or as the parameter `seed`, not both")
        grid["seed"] = args.seeds
    return grid


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from mmnb.sweep import run_notebook

    params: dict[str, Any] = {}
    for name, value in args.param:
        if name in params:
            parser.error(f"-p {name} is given twice")
        params[name] = parse_value(value, name)
    result = run_notebook(
        args.notebook, params, args.out, kernel_name=args.kernel, timeout=args.timeout,
        redo=args.redo,
    )  # fmt: skip
    if result.status == "refused":
        print(f"error: {result.error}", file=sys.stderr)
        return 2
    if result.status == "disk_full":
        print(f"error: {result.error}", file=sys.stderr)
        return DISK_FULL
    if result.status == "done":
        print(f"{args.out} already holds a finished run (metrics.json); nothing ran")
        return 0
    if result.status == "ok":
        print(f"finished in {result.wall_seconds} s: {args.out / 'metrics.json'}")
        return 0
    if result.status == "claims_failed":
        print(
            f"finished in {result.wall_seconds} s, numbers recorded ({args.out / 'metrics.json'}); "
            f"{result.error}",
            file=sys.stderr,
        )
        return 0
    if result.status == "interrupted":
        print(f"run interrupted: {result.error}", file=sys.stderr)
    else:
        print(f"run failed: {result.error}{_see(args.out / 'error.txt')}", file=sys.stderr)
    return 1


def _see(path: Path) -> str:
    """A pointer to the full error text, only where that file exists."""
    return f"  (see {path})" if path.is_file() else ""


def _collect(folder: Path) -> int:
    from mmnb.sweep import RESULTS, collect

    table = collect(folder)
    if not len(table):
        print(f"{folder} holds no runs; nothing written")
        return 0
    counts = table["status"].value_counts().to_dict()
    print(f"wrote {folder / RESULTS}: {len(table)} runs {counts}")
    for run, error in table.loc[table["status"] == "corrupt", ["run", "error"]].values:
        print(f"  {run}: {error}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (see the module)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        from mmnb.sweep import SweepInterrupted, sweep
    except ImportError as err:
        need = "papermill, pyyaml and a POSIX system (Linux, macOS; file locks)"
        print(f"error: runs and sweeps need {need}: {err}", file=sys.stderr)
        return 2
    try:
        if args.command == "collect":
            return _collect(args.dir)
        if args.command == "run":
            return _run(args, parser)
        summary = sweep(
            args.notebook,
            _grid(args, parser),
            args.out,
            jobs=args.jobs,
            scheduler=args.scheduler,
            kernel_name=args.kernel,
            timeout=args.timeout,
            redo=args.redo,
        )
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            print(
                f"error: disk full (no space left on device): {err}. Free space and run the "
                "same command again; finished runs are kept",
                file=sys.stderr,
            )
            return DISK_FULL
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except SweepInterrupted as stop:
        done = stop.summary.interrupted
        dask = getattr(args, "scheduler", None)
        where = "; runs already on Dask workers finish there" if dask else ""
        print(
            f"stopped by {stop.args[0]}: {len(done)} running run(s) interrupted "
            f"{' '.join(done)}; queued runs did not start{where}. Run the same command "
            f"again to resume ({args.out}).",
            file=sys.stderr,
        )
        return 128 + stop.signum
    except KeyboardInterrupt:  # Ctrl-C while the grid was being checked: nothing started
        print("stopped by SIGINT before any run started", file=sys.stderr)
        return 130
    return _report(summary, args.out)


def _report(summary: Any, out: Path) -> int:
    """Print what a sweep did; return its exit status."""
    from mmnb.sweep import RESULTS

    total = len(summary.ran) + len(summary.skipped) + len(summary.refused)
    stopped = f", {len(summary.interrupted)} interrupted" if summary.interrupted else ""
    print(
        f"{total} runs: {len(summary.ran)} ran, {len(summary.skipped)} skipped (already "
        f"finished), {len(summary.failed)} failed{stopped}; table: {out / RESULTS}"
    )
    groups = [
        ("failed", summary.failed, True),
        ("finished with failing claims", summary.claims_failed, False),
        ("refused (their folders hold other runs)", summary.refused, False),
        ("stopped by a full disk", summary.disk_full, True),
        ("did not start", summary.not_started, False),
        ("left when the Dask scheduler died", summary.lost, False),
    ]
    for what, runs, see in groups:
        if runs:
            print(f"{len(runs)} run(s) {what}:", file=sys.stderr)
            for name, error in runs.items():
                where = _see(out / name / "error.txt") if see else ""
                print(f"  {name}: {error}{where}", file=sys.stderr)
    if summary.interrupted:  # a run's own process was stopped: resume runs it again
        print(f"interrupted, run again to finish: {' '.join(summary.interrupted)}", file=sys.stderr)
    if summary.disk_full:
        return DISK_FULL
    if summary.refused:
        return 2
    return 1 if summary.failed or summary.interrupted or summary.lost else 0


if __name__ == "__main__":
    sys.exit(main())
