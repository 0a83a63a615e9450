"""Chapter 04's long experiment: the paper's main setting (statistical and causal
dependence, p_chg < 1) and statistical dependence alone, trained beyond the book's
budget, with the full evaluation (`evaluate`) at checkpoints.

The book profile trains 2000 steps of 128 pairs; this experiment trains the same replicas
(seed 0, replica ids 0 and 1, every other setting of the book profile unchanged) for 4 times
the steps (8000 at batch 128, evaluated at 1000, 2000, 4000 and 8000 steps) and at 4 times the
batch (2000 steps at batch 512, evaluated at 1000 and 2000), so that each of the two factors
changes alone. It takes a few minutes of one CPU core, more than the page may spend, so the
chapter reads its stored result (`load`). Reproduce it with

    MMNB_THREADS=1 python -m mmnb.worlds.identifiability.long \\
        --out data/long/04_identifiability/long.json

`tests/test_identifiability_long.py` reruns its first checkpoint for one replica.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mmnb.worlds.identifiability.config import IdentifiabilityConfig, Setting, replicas, table
from mmnb.worlds.identifiability.fit import run
from mmnb.worlds.identifiability.measures import Evaluation, evaluate
from mmnb.worlds.identifiability.world import BLOCKS

__all__ = [
    "RUNS",
    "SEEDS",
    "STORED",
    "load",
    "load_seeds",
    "long_experiment",
    "long_settings",
    "main",
    "record_seeds",
]

#: (batch size, steps) of each long run
RUNS: tuple[tuple[int, int], ...] = ((128, 8000), (512, 2000))
#: where the chapter reads the stored result, relative to the repository root
STORED = Path("data") / "long" / "04_identifiability" / "long.json"
#: the claims of the chapter's runs at two seeds, for its closing note
SEEDS = STORED.with_name("seeds.json")
ROOT = Path(__file__).resolve().parents[3]
EVERY = 1000  # steps between two tracking evaluations; checkpoints are 1000 · 2^k


def long_settings(cfg: IdentifiabilityConfig) -> list[Setting]:
    """The main setting (statistical + causal, p_chg < 1) and statistical dependence alone."""
    rows = table(cfg.p_chg)
    return [rows[-1], rows[2]]


def _records(ev: Evaluation, pairs: Sequence[tuple[Setting, int]], **keys: Any) -> list[dict]:
    out = []
    for r, (s, j) in enumerate(pairs):
        rec = {**keys, "setting": s.name, "replica id": j, "oracle": float(ev.oracle[r])}
        rec.update({b: float(ev.kernel[r, 0, i]) for i, b in enumerate(BLOCKS)})
        rec["c_mod2"] = float(ev.kernel[r, 1, 0])
        rec["c_linear"] = float(ev.linear[r, 0, 0])
        out.append(rec)
    return out


def long_experiment(
    cfg: IdentifiabilityConfig | None = None,
    seed: int = 0,
    runs: Sequence[tuple[int, int]] = RUNS,
    ids: int = 2,
    settings: Sequence[Setting] | None = None,
    every: int = EVERY,
) -> dict[str, Any]:
    """Train `settings` (default `long_settings`) × replica ids `0 … ids − 1` for each
    (batch, steps) of `runs` on the CPU; return the records (kernel R² of every block from
    encoder 1, content from encoder 2, the oracle, per checkpoint and replica), the time
    each run took and what produced it."""
    cfg = cfg or IdentifiabilityConfig.from_profile("book")
    pairs = replicas(settings or long_settings(cfg), ids)
    records, timing = [], []
    for batch, steps in runs:
        c = cfg.replace(batch_size=batch, steps=steps, track_evals=max(1, steps // every))
        marks = [m for m in (every * 2**k for k in range(20)) if m < steps]
        cpu, wall = time.process_time(), time.perf_counter()
        res = run(c, pairs, seed, "cpu", desc=f"long: batch {batch}", checkpoints=marks)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        one = time.process_time()  # one more evaluation, to split the time
        probe = {k: getattr(c, k) for k in ("n_val", "n_test", "kernel_points", "kernel_alphas")}
        evaluate(res.encoders, res.world, kernel_gammas=c.kernel_gammas, **probe)
        one = time.process_time() - one
        for step, ev in {**res.checkpoints, steps: res.evaluation}.items():
            records += _records(ev, pairs, batch=batch, steps=step)
        timing.append({
            "batch": batch, "steps": steps, "replicas": len(pairs), "cpu_seconds": cpu,
            "wall_seconds": wall, "evaluations": len(marks) + 1,
            "evaluation_cpu_seconds_each": one, "tracking_evaluations": c.track_evals,
        })  # fmt: skip
    return {"records": records, "timing": timing, "provenance": _provenance(seed, ids, runs)}


def _provenance(seed: int, ids: int, runs: Sequence[tuple[int, int]]) -> dict[str, Any]:
    from mmnb import __version__

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = ""
    return {
        "command": "python -m mmnb.worlds.identifiability.long " + " ".join(sys.argv[1:]),
        "seed": seed, "ids": ids, "runs": [list(r) for r in runs], "every": EVERY,
        "mmnb": __version__, "torch": torch.__version__, "commit": commit,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.node(), "processor": platform.processor(),
        "threads": torch.get_num_threads(), "MMNB_THREADS": os.environ.get("MMNB_THREADS", ""),
    }  # fmt: skip


def _stored(path: str | os.PathLike[str] | None, default: Path) -> Path:
    path = Path(path) if path is not None else ROOT / default
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: it is stored in the repository (data/long/); in a checkout, "
            f"rebuild it with the command in mmnb.worlds.identifiability.long's docstring"
        )
    return path


def load(path: str | os.PathLike[str] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The stored long experiment (default `STORED` in the repository): its records as a
    table and the rest (timing, provenance)."""
    data = json.loads(_stored(path, STORED).read_text())
    return pd.DataFrame(data.pop("records")), data


def record_seeds(metrics: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> None:
    """Store every claim (value, verdict) of the chapter's `metrics.json` files, one per seed."""
    runs = []
    for path in metrics:
        data = json.loads(Path(path).read_text())
        claims = [
            {k: c.get(k) for k in ("name", "kind", "op", "threshold", "rule", "mean",
                                   "statistic", "verdict", "values")}
            for c in data["claims"]
        ]  # fmt: skip
        seed = data["params"]["seed"]
        runs.append({"seed": seed, "wall_seconds": data.get("wall_seconds"), "claims": claims})
    Path(out).write_text(json.dumps({"runs": runs}, indent=1) + "\n")


def load_seeds(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The stored claims at two seeds (`record_seeds`) as one table, a row per claim (empty
    where nothing is stored yet)."""
    path = Path(path) if path is not None else ROOT / SEEDS
    if not path.exists():
        return pd.DataFrame(index=pd.Index([], name="name"))
    data = json.loads(path.read_text())
    frames = []
    for one in data["runs"]:
        df = pd.DataFrame(one["claims"]).set_index("name")
        value = df["statistic"].where(df["statistic"].notna(), df["mean"])
        frames.append(pd.DataFrame({
            f"seed {one['seed']}": value.map(lambda x: f"{x:.3f}" if x is not None else "–"),
            f"verdict, seed {one['seed']}": df["verdict"],
        }))  # fmt: skip
    return pd.concat(frames, axis=1)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the long experiment and write its JSON (`--out`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=STORED)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ids", type=int, default=2)
    parser.add_argument("--runs", nargs="+", default=[f"{b}:{s}" for b, s in RUNS],
                        help="batch:steps of each run")  # fmt: skip
    parser.add_argument("--seeds-from", nargs="+", default=None,
                        help="instead: store the claims of these metrics.json files")  # fmt: skip
    args = parser.parse_args(argv)
    if args.seeds_from:
        record_seeds(args.seeds_from, args.out)
        return
    runs = [tuple(int(x) for x in r.split(":")) for r in args.runs]
    torch.set_num_threads(int(os.environ.get("MMNB_THREADS", "1")))
    result = long_experiment(seed=args.seed, runs=runs, ids=args.ids)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
