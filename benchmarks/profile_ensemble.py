"""Where an ensemble agent's time goes: cProfile of one run, CPU seconds, one thread.

One thread for torch and numba so that CPU time is attributed to the functions that spend it
(a loaded machine's wall time is not); a short warm-up run first compiles the numba kernels.
``--torch`` profiles the batched torch path instead of the fused CPU kernels (the path taken
on CUDA, or without numba).

Usage::

    python benchmarks/profile_ensemble.py --replicates 50 --horizon 300 [--torch]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import gambit_gym  # noqa: F401
from gambit_gym.bench import run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agent", default="ens-poGAMBITTS")
    p.add_argument("--replicates", type=int, default=50)
    p.add_argument("--horizon", type=int, default=300)
    p.add_argument("--torch", action="store_true", help="the torch path, not the kernels")
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    try:
        import numba

        numba.set_num_threads(1)
    except ImportError:
        pass
    kw = {"cpu_kernel": not args.torch}
    run("GambitIHS-v0", args.agent, horizon=120, replicates=2, seed=1, progress=False,
        device="cpu", agent_kwargs=kw)  # compiles the kernels
    prof = cProfile.Profile(timer=time.process_time)
    c0, t0 = time.process_time(), time.perf_counter()
    prof.enable()
    run("GambitIHS-v0", args.agent, horizon=args.horizon, replicates=args.replicates, seed=323,
        progress=False, device="cpu", agent_kwargs=kw)
    prof.disable()
    print(f"{args.agent} {args.replicates} x {args.horizon}, "
          f"{'torch path' if args.torch else 'fused kernels'}: "
          f"{time.process_time() - c0:.2f} s CPU ({time.perf_counter() - t0:.2f} s wall)")
    pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
