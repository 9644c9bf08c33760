#!/usr/bin/env bash
# The GPU checks of the agents issue, as one short script for a lent GPU machine.
#
#   bash benchmarks/gpu_check.sh fetch   # here, where pip reaches an index: the wheels the GPU
#                                        # machine's image lacks (gymnasium, pettingzoo,
#                                        # stable-baselines3), into .whl/ (ignored by git)
#   bash benchmarks/gpu_check.sh run     # there, with .whl carried: the CUDA tests, then
#                                        # ens-poGAMBITTS at R = 250: T = 200 on the CPU
#                                        # (the reference), then ens-poGAMBITTS and
#                                        # ens-foGAMBITTS at T = 1000 on CUDA (target: at
#                                        # most 60 s on one H100-class GPU)
#
# `run` takes DEVICE (default cuda), R, T and T_CPU (default 250, 1000 and 200) from the
# environment, so that `DEVICE=cpu R=4 T=120 T_CPU=120 bash benchmarks/gpu_check.sh run`
# smoke-tests it on a CPU. The image is expected to hold torch, numpy, scipy, pyarrow, pandas,
# tqdm and pytest. The CPU reference takes about 35 s on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(gymnasium farama-notifications pettingzoo stable-baselines3)

case "${1:-run}" in
fetch)
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    specs=()
    for name in "${WHEELS[@]}"; do
        version=$(python3 -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
        specs+=("$name${version:+==$version}")
    done
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux2014_x86_64 -d .whl "${specs[@]}"
    ls -l .whl
    ;;
run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gambit_site .whl/*.whl
    export PYTHONPATH="/tmp/gambit_site:$PWD" PYTHONUNBUFFERED=1
    device=${DEVICE:-cuda}
    python3 - "$device" <<'EOF'
import sys

import torch

device = sys.argv[1]
if device.startswith("cuda") and not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA device here; run it on the GPU machine "
             "(or set DEVICE=cpu for a smoke test)")
name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
print(f"torch {torch.__version__} on {name}")
EOF
    # the CUDA tests (skipped, and reported as such, where no CUDA device is present)
    python3 -m pytest -q -rs -m cuda tests/test_agents_ensemble.py tests/test_sb3_baselines.py
    # the reference, measured in the same run: the same agent on this machine's CPU, 250 x 200
    python3 benchmarks/bench_agents.py --skip-linear --ens-device cpu --ens-agents ens-poGAMBITTS \
        --ens-replicates "${R:-250}" --ens-horizon "${T_CPU:-200}"
    python3 benchmarks/bench_agents.py --skip-linear --ens-device "$device" \
        --ens-replicates "${R:-250}" --ens-horizon "${T:-1000}"
    ;;
*)
    echo "usage: bash benchmarks/gpu_check.sh fetch|run" >&2
    exit 2
    ;;
esac
