#!/usr/bin/env bash
# The GPU figures in one prepared command (benchmarks/gpu_check.py): detector and generator training images/s,
# detect --every 1 on 1080p, peak memory, fraction of the bf16 peak. Under 8 minutes on one GPU; the timeout
# leaves the rest of a 10-minute device call for a rerun.
#   benchmarks/gpu_check.sh                                   # -> benchmarks/results/gpu.json
#   benchmarks/gpu_check.sh --device cpu --smoke --out F      # toy sizes on the CPU (tests/test_gpu_check.py)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || make venv
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
exec timeout 480 "$PY" -m benchmarks.gpu_check "$@"
