"""Aggregates benchmark, run by hand; it prints a ratio.

The leaderboard's aggregates on a table the size of the ``core`` suite (23 agents x 8 env
configurations x 250 replicates, 2000 bootstrap resamples): the probability-of-improvement
matrix with each agent's resamples shared by its pairs
(:func:`gambit_gym.bench.aggregates.improvement_matrix`) against the reference, an
independent bootstrap per pair (:func:`~gambit_gym.bench.aggregates.bootstrap_improvement`,
rliable's way), both measured in this run; then the whole :func:`aggregate` call. The two
matrices must agree within bootstrap noise; the printed ratio is reference / shared.

Example::

    python benchmarks/bench_aggregates.py                  # core size
    python benchmarks/bench_aggregates.py --agents 8       # a quicker look
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gambit_gym.bench import aggregates as agg


def main() -> None:
    """Time the two ways of computing the matrix, and the whole aggregate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=23)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--replicates", type=int, default=250)
    parser.add_argument("--reps", type=int, default=agg.DEFAULT_REPS)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    table = {f"agent{i:02d}": {f"env{j}": rng.normal(i / args.agents, 0.3, args.replicates)
                               for j in range(args.envs)} for i in range(args.agents)}
    names = sorted(table)
    envs = sorted(table[names[0]])

    start = time.perf_counter()
    reference = {}
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            reference[(x, y)] = agg.bootstrap_improvement(
                [table[x][t] for t in envs], [table[y][t] for t in envs], reps=args.reps,
                rng=agg.rng_for(0, "poi", x, y))
    t_reference = time.perf_counter() - start

    start = time.perf_counter()
    shared = agg.improvement_matrix(table, reps=args.reps)
    t_shared = time.perf_counter() - start

    start = time.perf_counter()
    agg.aggregate(table, reps=args.reps)
    t_all = time.perf_counter() - start

    width = max(abs(shared[x][y].high - reference[(x, y)].high) for x, y in reference)
    print(f"{args.agents} agents x {args.envs} envs x {args.replicates} runs, "
          f"{args.reps} resamples, {len(reference)} pairs")
    print(f"per-pair bootstrap (reference) {t_reference:8.1f} s")
    print(f"shared resamples               {t_shared:8.1f} s   ratio {t_reference / t_shared:.1f}x")
    print(f"whole aggregate()              {t_all:8.1f} s")
    print(f"largest difference of an upper bound between the two: {width:.3f} "
          "(bootstrap noise)")


if __name__ == "__main__":
    main()
