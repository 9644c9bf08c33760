"""Agent speed: the study's Fig. 4 block for the linear agents, and ens-poGAMBITTS at scale.

1. Fig. 4 block: StdTS, StdTS-Contextual, poGAMBITTS and foGAMBITTS × K in {3, 5, 15, 30, 40}
   × R replicates × T steps on ``GambitIHS-v0`` (target: at most 30 s on a 2-core CPU at
   R = 250, T = 1000; the study reports 50-70 minutes per experiment on a 16-core node).
   Propensities are off and there is no progress bar, as a user runs the block.
   ``--workers N`` also runs the block's 20 runs on N worker processes (spawned, longest
   first), as ``gambit-gym bench`` spreads a suite over the cores; the wall time then
   includes starting the workers.

Wall and CPU seconds are both printed: on a shared machine the CPU time (all threads of
this process) is the steadier figure.
2. ens-poGAMBITTS and ens-foGAMBITTS, R × T (study sizes: 60 members, 64 hidden, batch 100),
   on the given device (target: at most 60 s each at R = 250, T = 1000 on 2 CPU cores, where
   the fused numba kernels of ``gambit_gym.agents._ensemble_kernels`` train them, or on one
   GPU); prints the time as a ratio of the target and the process's peak memory.
   ``--ens-workers N`` runs each ensemble's R replicates as N contiguous slices on N spawned
   worker processes, as ``gambit-gym bench --workers N`` spreads a suite's replicates over the
   cores (replicate r is seeded ``seed + r`` whatever the slice, so they are the same runs,
   action for action: ``test_batched_equals_single_replicate`` in
   ``tests/test_agents_ensemble.py``; the mean regret printed equals one process's).
   One process already runs the CPU kernels on every core (numba threads); on an idle
   2-core machine one process was faster (ens-poGAMBITTS 47.8 s) than 2 workers of one
   thread each (59.6 s), see docs/harness_benchmarks.md. On a GPU
   machine,
   ``bash benchmarks/gpu_check.sh run`` runs this with ``--ens-device cuda`` after the CUDA
   tests (see that script for the wheels to carry).

Usage::

    python benchmarks/bench_agents.py --replicates 250 --horizon 1000 --ens-device cpu
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import gambit_gym  # noqa: F401
from gambit_gym.bench import run

LINEAR_AGENTS = ("StdTS", "StdTS-Contextual", "poGAMBITTS", "foGAMBITTS")
ARM_COUNTS = (3, 5, 15, 30, 40)
STUDY_SECONDS = 50 * 60  # the study's lower figure for one experiment block
ENS_TARGET_S = 60  # each ensemble agent at R = 250, T = 1000 (2 CPU cores, or one GPU)


@dataclass
class Args:
    """Command-line arguments."""

    replicates: int = 250
    horizon: int = 1000
    ens_replicates: int = 250
    ens_horizon: int = 1000
    ens_device: str | None = None
    ens_agents: str = "ens-poGAMBITTS,ens-foGAMBITTS"
    skip_linear: bool = False
    skip_ensemble: bool = False
    threads: int | None = None
    workers: int = 1
    ens_workers: int = 1


def parse_args() -> Args:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, kind in (("replicates", int), ("horizon", int), ("ens-replicates", int),
                       ("ens-horizon", int), ("threads", int), ("workers", int),
                       ("ens-workers", int)):
        p.add_argument(f"--{name}", type=kind, default=getattr(Args, name.replace("-", "_")))
    p.add_argument("--ens-device", default=None)
    p.add_argument("--ens-agents", default=Args.ens_agents)
    p.add_argument("--skip-linear", action="store_true")
    p.add_argument("--skip-ensemble", action="store_true")
    return Args(**{k.replace("-", "_"): v for k, v in vars(p.parse_args()).items()})


def _one_run(agent: str, k: int, replicates: int, horizon: int) -> tuple[str, int, float, float]:
    """One run of the block: ``(agent, K, wall seconds, CPU seconds of this process)``."""
    t0, c0 = time.perf_counter(), time.process_time()
    run("GambitIHS-v0", agent, horizon=horizon, replicates=replicates, seed=323,
        env_kwargs={"n_prompts": k}, progress=False)
    return agent, k, time.perf_counter() - t0, time.process_time() - c0


def _block_on_workers(args: Args) -> None:
    """The block's runs spread over ``args.workers`` processes; prints the wall time."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # longest first (foGAMBITTS, then large K) so that no worker is left with a long run
    order = sorted(((a, k) for a in LINEAR_AGENTS for k in ARM_COUNTS),
                   key=lambda ak: (ak[0] != "foGAMBITTS", -ak[1]))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_one_run, a, k, args.replicates, args.horizon) for a, k in order]
        cpu = sum(f.result()[3] for f in futures)
    total = time.perf_counter() - t0
    print(f"Fig. 4 block on {args.workers} worker processes: {total:.1f} s wall (workers' "
          f"CPU in the runs {cpu:.1f} s; target 30 s)", flush=True)


def main(args: Args) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if not args.skip_linear:
        total = cpu_total = 0.0
        for agent in LINEAR_AGENTS:
            for k in ARM_COUNTS:
                _, _, dt, cpu = _one_run(agent, k, args.replicates, args.horizon)
                total += dt
                cpu_total += cpu
                print(f"{agent:>17s} K={k:2d}: {dt:6.2f} s (CPU {cpu:6.2f} s)", flush=True)
        scale = (250 * 1000) / (args.replicates * args.horizon)
        print(f"Fig. 4 block, {len(LINEAR_AGENTS)} agents x {len(ARM_COUNTS)} K x "
              f"{args.replicates} x {args.horizon}: {total:.1f} s wall, {cpu_total:.1f} s CPU "
              f"(x{scale:.2f} to R=250,T=1000: ~{total * scale:.0f} s; target 30 s; "
              f"study >= {STUDY_SECONDS} s, ratio {STUDY_SECONDS / max(total * scale, 1e-9):.0f}x)")
        if args.workers > 1:
            _block_on_workers(args)
    if not args.skip_ensemble:
        for agent in args.ens_agents.split(","):
            if args.ens_workers > 1:
                _ensemble_on_workers(agent, args)
            else:
                _ensemble_run(agent, args)


def _ensemble_run(agent: str, args: Args) -> None:
    """One ensemble run at ``ens_replicates × ens_horizon``: wall, CPU, peak memory, ratio."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    res = run("GambitIHS-v0", agent, horizon=args.ens_horizon, replicates=args.ens_replicates,
              seed=323, device=args.ens_device, progress=False)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MB (Linux)
    full = (args.ens_replicates, args.ens_horizon) == (250, 1000)
    ratio = f"x{dt / ENS_TARGET_S:.2f} of the {ENS_TARGET_S} s target" if full else \
        f"the {ENS_TARGET_S} s target is for 250 x 1000"
    print(f"{agent} {args.ens_replicates} x {args.ens_horizon} on "
          f"{args.ens_device or 'default device'}: {dt:.1f} s wall, {cpu:.1f} s CPU ({ratio}; "
          f"peak memory of this process {peak:.0f} MB, {before / 1024:.0f} MB before; mean "
          f"regret at T {res.final_regret().mean():.1f})", flush=True)


def _ensemble_slice(agent: str, start: int, n: int, horizon: int, device: str | None
                    ) -> tuple[object, float]:
    """Replicates ``start .. start + n - 1`` of the seed-323 run:
    ``((actions, regret at T), CPU seconds)``."""
    import torch

    torch.set_num_threads(1)  # one core per worker; the workers share the machine's cores
    c0 = time.process_time()
    res = run("GambitIHS-v0", agent, horizon=horizon, replicates=n, seed=323 + start,
              device=device, progress=False)
    return (res.actions, res.final_regret()), time.process_time() - c0


def _ensemble_on_workers(agent: str, args: Args) -> None:
    """One ensemble run split over ``args.ens_workers`` processes: wall (with the workers'
    start-up), the workers' CPU, the ratio to the target and the mean regret at T."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np

    n_w = args.ens_workers
    bounds = np.linspace(0, args.ens_replicates, n_w + 1).round().astype(int)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(n_w, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_ensemble_slice, agent, int(lo), int(hi - lo), args.ens_horizon,
                               args.ens_device) for lo, hi in zip(bounds[:-1], bounds[1:])]
        parts = [f.result() for f in futures]
    dt = time.perf_counter() - t0
    cpu = sum(p[1] for p in parts)
    final = np.concatenate([p[0][1] for p in parts])
    full = (args.ens_replicates, args.ens_horizon) == (250, 1000)
    ratio = f"x{dt / ENS_TARGET_S:.2f} of the {ENS_TARGET_S} s target" if full else \
        f"the {ENS_TARGET_S} s target is for 250 x 1000"
    print(f"{agent} {args.ens_replicates} x {args.ens_horizon} on {n_w} worker processes "
          f"({args.ens_device or 'default device'}): {dt:.1f} s wall, {cpu:.1f} s CPU in the "
          f"workers ({ratio}; mean regret at T {final.mean():.1f})", flush=True)


if __name__ == "__main__":
    main(parse_args())
