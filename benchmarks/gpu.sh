#!/usr/bin/env bash
# On a CUDA machine, from the repository root, with the venv of `make setup`:
#   OUT=gpu_results benchmarks/gpu.sh
# Runs (1) the unit tests that need CUDA, (2) the benchmarks on the GPU, (3) every chapter's
# "paper" profile shortened to a few hundred steps; about 10 minutes in all. Everything it
# measures goes under $OUT (unit.txt, results.json with both chapter 04 objectives,
# gpu_smoke.json, one folder per chapter).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_results}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
"$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"' || exit 1
timeout 120 "$PY" -m pytest tests -q -x -k "cuda or device or stream or replica" \
    > "$OUT/unit.txt" 2>&1; echo "unit tests: exit $?"
# one replica table, not three: the device time is short
timeout 200 "$PY" -m benchmarks --device cuda --parts peak replicas paper_step --compile \
    --replica-runs 1 --fresh-processes 0 --out "$OUT/results.json" > "$OUT/benchmarks.txt" 2>&1; echo "benchmarks: exit $?"
timeout 270 "$PY" -m benchmarks.gpu_smoke --out "$OUT" --steps 300 --timeout 35 \
    > "$OUT/smoke.txt" 2>&1; echo "chapters: exit $?"
cat "$OUT/smoke.txt"
