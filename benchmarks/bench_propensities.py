"""What recording propensities costs: each agent run with and without them, same seed.

Prints, per agent, the run's wall time without and with propensities, the overhead in percent
(target: at most +50% with the default settings), the same in CPU time (robust on a machine
shared with other jobs), and the precision the propensities reached
(the runner's ``metadata["propensity"]``: mean draws per decision, the median and mean relative
standard error of the logged propensity; for StdTS and StdTS-Contextual, computed by
quadrature, the nodes per decision and the rules' error estimate). Decisions are checked to
be the same with and without propensities.

Usage::

    python benchmarks/bench_propensities.py --replicates 50 --horizon 1000 \\
        --env GambitIHS-MLP-v0 --agents StdTS,poGAMBITTS,foGAMBITTS
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import gambit_gym  # noqa: F401
from gambit_gym.bench import run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--replicates", type=int, default=50)
    p.add_argument("--horizon", type=int, default=1000)
    p.add_argument("--env", default="GambitIHS-MLP-v0")
    p.add_argument("--agents", default="StdTS,StdTS-Contextual,poGAMBITTS,foGAMBITTS")
    p.add_argument("--samples", type=int, default=1000, help="the most draws per decision")
    p.add_argument("--rse", type=float, default=None,
                   help="target relative SE (default: the runner's); 0: always --samples draws")
    args = p.parse_args()
    extra = {} if args.rse is None else {"propensity_rse": args.rse or None}
    for agent in args.agents.split(","):
        kw = dict(horizon=args.horizon, replicates=args.replicates, seed=323, progress=False)
        # warm-up, untimed: imports, the bank, numba's compiled kernels (cached on disk)
        run(args.env, agent, horizon=5, replicates=2, seed=1, progress=False, propensities=True)
        t0, c0 = time.perf_counter(), time.process_time()
        plain = run(args.env, agent, **kw)
        t1, c1 = time.perf_counter(), time.process_time()
        logged = run(args.env, agent, **kw, propensities=True,
                     n_propensity_samples=args.samples, **extra)
        t2, c2 = time.perf_counter(), time.process_time()
        assert np.array_equal(plain.actions, logged.actions), "propensities changed decisions"
        info = logged.metadata.get("propensity") or {}
        without, with_ = t1 - t0, t2 - t1
        cpu_without, cpu_with = c1 - c0, c2 - c1
        print(f"{agent:>17s} R={args.replicates} T={args.horizon}: {without:6.2f} s without, "
              f"{with_:6.2f} s with propensities (+{100 * (with_ / without - 1):.0f}%, target "
              f"+50%); CPU {cpu_without:.2f} s / {cpu_with:.2f} s "
              f"(+{100 * (cpu_with / cpu_without - 1):.0f}%); "
              f"draws/decision {info.get('mean_draws', 0):.0f}, logged propensity's "
              f"relative SE median {info.get('median_rse') or 0:.2g} mean "
              f"{info.get('mean_rse') or 0:.2g}, zero {info.get('zero_share', 0):.4f}",
              flush=True)


if __name__ == "__main__":
    main()
