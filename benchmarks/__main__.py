"""Measure the book's speed: `python -m benchmarks` (or `make bench`).

Prints a table and writes benchmarks/results.json with the keys `machine`,
`matmul_peak_gflops`, `chapter_book_seconds` (chapter → seconds), `replica_speedup`
(chapter → looped over batched time at R = 16), `ch04_paper_flop_fraction`, and the
details behind them. `--parts` runs a subset (and `--chapters` a subset of the chapters);
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
from benchmarks.chapters import chapter_seconds
from benchmarks.paper_step import flop_rate
from benchmarks.replicas import MAIN_MODELS, replica_times
from benchmarks.timing import matmul_peak_gflops
from mmnb.results import write_json_atomic

RESULTS = Path(__file__).with_name("results.json")
PARTS = ("peak", "replicas", "paper_step", "chapters")


def machine(device: torch.device) -> str:
    """A one-line description of where the numbers come from."""
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    return f"{where}; {torch.get_num_threads()} threads; torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--compile", action="store_true", help="also time a torch.compile step")
    parser.add_argument("--chapters", nargs="+", help="time only these chapters (file stems)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    dev = mmnb.setup(0, args.device, threads=args.threads)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["machine"] = machine(dev)

    if "peak" in args.parts or "paper_step" in args.parts:
        results["matmul_peak_gflops"] = round(matmul_peak_gflops(dev), 1)
        print(f"matmul peak (float32): {results['matmul_peak_gflops']} GFLOP/s")

    if "replicas" in args.parts:
        table, speedup = {}, {}
        print(f"\n{'chapter':<26}{'R':>4}{'batched ms':>12}{'looped ms':>11}{'speed-up':>10}")
        for name, build in MAIN_MODELS.items():
            for r in args.replicas:
                batched, looped = replica_times(build, r, dev)
                table[f"{name}/R={r}"] = {"batched_s": batched, "looped_s": looped}
                print(
                    f"{name:<26}{r:>4}{1e3 * batched:>12.2f}{1e3 * looped:>11.2f}"
                    f"{looped / batched:>9.1f}x"
                )
            speedup[name] = round(looped / batched, 2)  # at the largest R
        results["replica_speedup"], results["replica_seconds"] = speedup, table

    if "paper_step" in args.parts:
        eager = flop_rate(dev)
        results["ch04_paper_step"] = {"eager": eager}
        rates = {"eager": eager}
        if args.compile:
            rates["compiled"] = results["ch04_paper_step"]["compiled"] = flop_rate(dev, True)
        print()
        for how, rate in rates.items():
            fraction = rate["gflops"] / results["matmul_peak_gflops"]
            print(
                f"ch04 paper step ({how}): {rate['seconds_per_step']:.3f} s, "
                f"{rate['gflops']:.1f} GFLOP/s = {fraction:.2f} of the matmul peak"
            )
        best = max(rate["gflops"] for rate in rates.values())
        results["ch04_paper_flop_fraction"] = round(best / results["matmul_peak_gflops"], 3)

    if "chapters" in args.parts:
        seconds = chapter_seconds(args.chapters)
        results["chapter_book_seconds"] = {**results.get("chapter_book_seconds", {}), **seconds}
        print(f"\n{'chapter':<30}{'book profile, s':>16}")
        for name, value in seconds.items():
            print(f"{name:<30}{'failed' if value is None else f'{value:.1f}':>16}")

    write_json_atomic(args.out, results)
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
