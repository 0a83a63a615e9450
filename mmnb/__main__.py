"""Command line: `python -m mmnb sweep NOTEBOOK ...` and `python -m mmnb collect DIR`."""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "parse_value"]


def parse_value(text: str) -> Any:
    """A command-line value: a Python literal (int, float, bool, None, quoted string), else text."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(
        f"value {text!r} is a {type(value).__name__}; give each value as a separate number, "
        "string, True/False or None"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mmnb", description="Sweep a chapter notebook with papermill."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "sweep",
        help="run a notebook over a parameter grid",
        usage="python -m mmnb sweep NOTEBOOK [-p NAME VALUE [VALUE ...]] ... [--seeds SEED ...] "
        "--out DIR [--grid FILE.yaml] [--jobs N | --scheduler ADDRESS] [--kernel NAME]",
        description="Run NOTEBOOK once per combination of the parameter values, one folder "
        "per run below --out, and write --out/results.csv. Runs that already finished "
        "are skipped.",
    )
    run.add_argument("notebook", type=Path, help="the notebook, e.g. chapters/01_snr.ipynb")
    run.add_argument(
        "-p",
        "--param",
        action="append",
        nargs="+",
        default=[],
        metavar=("NAME", "VALUE"),
        help="sweep NAME over one or more values (Python literals, else strings); repeatable",
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
        grid[name] = [parse_value(value) for value in values]
    if args.seeds:
        if "seed" in grid:
            parser.error("give the seeds either with --seeds or as the parameter `seed`, not both")
        grid["seed"] = args.seeds
    return grid


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (1 if a run failed, 2 on bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        from mmnb.sweep import RESULTS, collect, sweep
    except ImportError as err:
        print(f"error: the sweep needs papermill and pyyaml ({err})", file=sys.stderr)
        return 2
    try:
        if args.command == "collect":
            table = collect(args.dir)
            counts = table["status"].value_counts().to_dict() if len(table) else {}
            print(f"wrote {args.dir / RESULTS}: {len(table)} runs {counts}")
            return 0
        summary = sweep(
            args.notebook,
            _grid(args, parser),
            args.out,
            jobs=args.jobs,
            scheduler=args.scheduler,
            kernel_name=args.kernel,
        )
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    total = len(summary.ran) + len(summary.skipped)
    print(
        f"{total} runs: {len(summary.ran)} ran, {len(summary.skipped)} skipped (already "
        f"finished), {len(summary.failed)} failed; table: {args.out / RESULTS}"
    )
    if summary.failed:
        print(f"{len(summary.failed)} run(s) failed:", file=sys.stderr)
        for name, error in summary.failed.items():
            print(f"  {name}: {error}  (see {args.out / name / 'error.txt'})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
