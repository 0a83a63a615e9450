"""Every chapter's "paper" profile on a GPU, shortened to a few hundred steps.

`python -m benchmarks.gpu_smoke --out DIR [--steps 300] [--timeout 90]` runs each chapter
with `python -m mmnb run` (parameters checked first), `profile="paper"`, `device="cuda"`,
`n_seeds=2`, and every knob named `steps`, `*_steps`, `epochs` or `*_epochs` lowered to
`--steps` (epochs to 1). It writes DIR/gpu_smoke.json: per chapter, the status ("ok";
"checks" when it ran to a failing theory check, expected after so few steps; "error";
"timeout"), the wall time and the run's metrics. Used by `benchmarks/gpu.sh`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from mmnb.files import write_json_atomic
from mmnb.notebooks import notebook_configs

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"


def shortened(notebook: Path, steps: int) -> dict[str, int]:
    """The step and epoch knobs of the notebook's configs, lowered for a smoke run."""
    knobs = [k for cls in notebook_configs(notebook) for k in cls.knobs()]
    short = {k: steps for k in knobs if k == "steps" or k.endswith("_steps")}
    short.update({k: 1 for k in knobs if k == "epochs" or k.endswith("_epochs")})
    return short


def classify(returncode: int, log: str) -> str:
    """The outcome of a run: "ok"; "checks" when only a theory check failed (expected after
    a few hundred steps); else "error"."""
    if returncode == 0:
        return "ok"
    return "checks" if "AssertionError" in log else "error"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--timeout", type=int, default=90, help="seconds per chapter")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    report = {}
    for notebook in sorted(CHAPTERS.glob("*.ipynb")):
        params = {"profile": "paper", "device": args.device, "n_seeds": 2,
                  **shortened(notebook, args.steps)}  # fmt: skip
        cmd = [sys.executable, "-m", "mmnb", "run", str(notebook), "--out",
               str(args.out / notebook.stem)]  # fmt: skip
        for name, value in params.items():
            cmd += ["-p", name, repr(value) if isinstance(value, str) else str(value)]
        start = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            tail = (done.stdout + done.stderr)[-2000:]
            status = classify(done.returncode, tail)
        except subprocess.TimeoutExpired:
            status, tail = "timeout", ""
        metrics_file = args.out / notebook.stem / "metrics.json"
        metrics = json.loads(metrics_file.read_text())["metrics"] if metrics_file.exists() else {}
        seconds = round(time.perf_counter() - start, 1)
        report[notebook.stem] = {"status": status, "seconds": seconds, "params": params,
                                 "metrics": metrics, "log_tail": tail}  # fmt: skip
        print(f"{notebook.stem:<32} {status!s:>8} {report[notebook.stem]['seconds']:>7.1f} s")
        write_json_atomic(args.out / "gpu_smoke.json", report)


if __name__ == "__main__":
    main()
