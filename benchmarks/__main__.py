"""Measure the book's speed: `python -m benchmarks` (or `make bench`).

Prints a table and writes benchmarks/results.json with the keys `machine`,
`matmul_peak_gflops`, `chapter_book_seconds` (chapter → seconds), `book_wall_seconds`
(all chapters, `book_jobs` at a time, as `make book` runs them), `replica_speedup`
(chapter → looped over batched time at R = 16; `replica_speedup_runs` every repeat of
that measurement, the first being `replica_speedup`; `replica_line` what bounds it;
`replica_fresh_processes` the times at R = 16 in new interpreters, one per entry),
`ch04_paper_flop_fraction` (objective → best fraction of the matmul peak of chapter 04's
paper step; `ch04_paper_step` the details, `ch04_fault_trace` the page faults of a fresh
process's first steps), `ch05_steps_per_second` (chapter 05's training speed early and
late, denormals flushed and not), and the details behind them. `--parts` runs a subset;
the other entries keep their earlier values.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

import mmnb
from benchmarks.chapters import book_seconds
from benchmarks.denormals import denormal_speeds
from benchmarks.paper_step import fault_trace, flop_rate
from benchmarks.replicas import (
    MAIN_MODELS,
    overhead_and_per_seed,
    replica_times,
    replica_times_in_fresh_processes,
)
from benchmarks.timing import matmul_peak_gflops
from mmnb.results import write_json_atomic
from mmnb.worlds import identifiability

RESULTS = Path(__file__).with_name("results.json")
FAULT_STEPS = 30  # paper steps traced in a fresh process
PARTS = ("peak", "replicas", "paper_step", "denormals", "chapters")


def machine(device: torch.device) -> str:
    """A one-line description of where the numbers come from."""
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    return f"{where}; {torch.get_num_threads()} threads; torch {torch.__version__}"


def replica_run(replicas: list[int], dev: torch.device, run: int) -> tuple[dict, dict]:
    """One pass over every chapter's main model at each R: (seconds, speed-up at the
    largest R), printed as it goes."""
    table, speedup = {}, {}
    print(f"\nreplicas, run {run}")
    print(f"{'chapter':<26}{'R':>4}{'batched ms':>12}{'looped ms':>11}{'speed-up':>10}")
    for name, build in MAIN_MODELS.items():
        for r in replicas:
            batched, looped = replica_times(build, r, dev)
            table[f"{name}/R={r}"] = {"batched_s": batched, "looped_s": looped}
            print(
                f"{name:<26}{r:>4}{1e3 * batched:>12.2f}{1e3 * looped:>11.2f}"
                f"{looped / batched:>9.1f}x"
            )
        speedup[name] = round(looped / batched, 2)  # at the largest R
    return table, speedup


def replica_lines(table: dict) -> dict:
    """For each chapter, the batched step's fixed part and part per seed
    (`overhead_and_per_seed`), one seed's looped step and the bound ℓ / c they set."""
    lines = {}
    for name in MAIN_MODELS:
        times = {int(k.split("=")[1]): v for k, v in table.items() if k.startswith(name + "/")}
        overhead, per_seed = overhead_and_per_seed({r: t["batched_s"] for r, t in times.items()})
        r = max(times)
        looped = times[r]["looped_s"] / r
        lines[name] = {
            "overhead_s": overhead,
            "per_seed_s": per_seed,
            "looped_per_seed_s": looped,
            "bound": round(looped / per_seed, 2) if per_seed > 0 else None,  # None: no bound
        }
    return lines


def fresh_process_runs(
    replicas: int, processes: int, dev: torch.device, threads: int | None
) -> dict[str, list[dict[str, float]]]:
    """Every chapter's replica times at `replicas`, once in each of `processes` new
    interpreters, printed as they come."""
    print(f"\nreplicas at R = {replicas}, one new process each")
    print(f"{'chapter':<26}{'speed-ups':>10}   one seed's looped step, ms")
    runs = {}
    for name in MAIN_MODELS:
        runs[name] = replica_times_in_fresh_processes(name, replicas, processes, dev, threads)
        speedups = " ".join(f"{t['looped_s'] / t['batched_s']:.2f}" for t in runs[name])
        steps = " ".join(f"{1e3 * t['looped_s'] / replicas:.2f}" for t in runs[name])
        print(f"{name:<26}{speedups:>10}   {steps}")
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--replica-runs", type=int, default=3, help="repeats of the replica table")
    parser.add_argument(
        "--fresh-processes", type=int, default=4,
        help="new interpreters that each time every chapter's replicas at the largest R",
    )  # fmt: skip
    parser.add_argument("--compile", action="store_true", help="also time a torch.compile step")
    parser.add_argument("--jobs", type=int, default=2, help="chapters run side by side")
    parser.add_argument(
        "--book-cache", type=Path, help="fill this execution cache (e.g. _build/.jupyter_cache)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.replica_runs < 1:
        parser.error(f"--replica-runs {args.replica_runs}: need at least 1")
    if args.fresh_processes < 0:
        parser.error(f"--fresh-processes {args.fresh_processes}: need 0 (none) or more")
    if "replicas" in args.parts and len(set(args.replicas)) < 2:
        parser.error(f"--replicas {args.replicas}: need two values of R or more (1 4 16)")
    dev = mmnb.setup(0, args.device, threads=args.threads)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["machine"] = machine(dev)

    if "peak" in args.parts or "paper_step" in args.parts:
        results["matmul_peak_gflops"] = round(matmul_peak_gflops(dev), 1)
        print(f"matmul peak (float32): {results['matmul_peak_gflops']} GFLOP/s")

    if "replicas" in args.parts:
        runs = [replica_run(args.replicas, dev, k + 1) for k in range(args.replica_runs)]
        results["replica_seconds"], results["replica_speedup"] = runs[0]
        results["replica_speedup_runs"] = [speedup for _, speedup in runs]
        results["replica_line"] = replica_lines(runs[0][0])
        if args.fresh_processes:
            results["replica_fresh_processes"] = fresh_process_runs(
                max(args.replicas), args.fresh_processes, dev, args.threads
            )
        else:  # not measured: no entry from an earlier run beside this run's table
            results.pop("replica_fresh_processes", None)

    if "paper_step" in args.parts:
        steps, fractions = {}, {}
        print()
        padded = identifiability.ALIGN  # the chapter's step; unpadded: what the padding buys
        ways = {"eager": (False, padded), **({"compiled": (True, padded)} if args.compile else {}),
                "eager, unpadded": (False, 1)}  # fmt: skip
        for objective in identifiability.OBJECTIVES:
            for how, (compiled, align) in ways.items():
                rate = flop_rate(dev, compiled, objective, align=align)
                fraction = rate["gflops"] / results["matmul_peak_gflops"]
                steps[f"{objective}/{how}"] = {**rate, "peak_fraction": round(fraction, 3)}
                if align == padded:
                    fractions[objective] = max(fractions.get(objective, 0.0), round(fraction, 3))
                print(
                    f"ch04 paper step, {objective} objective ({how}): "
                    f"{rate['seconds_per_step']:.3f} s, {rate['gflops']:.1f} GFLOP/s "
                    f"= {fraction:.2f} of the matmul peak, "
                    f"page faults a step {rate['page_faults_steps']}"
                )
        results["ch04_paper_step"] = steps
        traces = {}
        for how, compiled in {"eager": False, "compiled": True}.items():
            traces[f"reference/{how}"] = fault_trace("reference", compiled, FAULT_STEPS)
            print(
                f"page faults of the first {FAULT_STEPS} reference steps ({how}), "
                f"fresh process: {traces[f'reference/{how}']}"
            )
        results["ch04_fault_trace"] = traces
        results["ch04_paper_flop_fraction"] = fractions

    if "denormals" in args.parts:
        speeds = denormal_speeds()
        results["ch05_steps_per_second"] = speeds
        print()
        for name, rate in speeds.items():
            print(
                f"ch05, 150 epochs, denormals {name.replace('_', ' ')}: {rate['first']:.0f} "
                f"steps/s in the first tenth, {rate['last']:.0f} in the last "
                f"({rate['last_over_first']:.2f})"
            )

    if "chapters" in args.parts:
        seconds, wall = book_seconds(args.jobs, args.book_cache)
        results["chapter_book_seconds"], results["book_wall_seconds"] = seconds, wall
        results["book_jobs"] = args.jobs
        print(f"\n{'chapter':<30}{'book profile, s':>16}")
        for name, value in sorted(seconds.items()):
            print(f"{name:<30}{value:>16.1f}")
        print(f"{'all, ' + str(args.jobs) + ' at a time (wall)':<30}{wall:>16.1f}")

    write_json_atomic(args.out, results)
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
