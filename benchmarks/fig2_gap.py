"""Why StdTS trails poGAMBITTS so far on the study's Fig. 2 setting: measured, not guessed.

Prints, for ``GambitIHS-1D-v0`` (the study's one-dimensional optimism outcome, noise level 0):

1. the arms: each prompt's exact expected reward per context, the gaps to the best arm, the
   outcome noise sd, the spread of the mean reward between the bank's messages of one
   (prompt, context) cell, and so the sd of one pull's reward as StdTS sees it; the share of
   the mean reward's variance over the arms' messages that lies between cells;
2. what the StdTS prior (the study's m = 77, nu = 5, alpha = 1, beta = 10) does with such
   rewards: its posterior mean's pull toward 77 and its noise-variance estimate after n pulls;
3. regret at T (mean and 95% interval over R replicates) of poGAMBITTS, StdTS with the study's
   prior, and StdTS with priors calibrated in steps (the prior mean at the env's mean reward;
   then also the noise scale at its per-pull variance), same seed.

Usage::

    python benchmarks/fig2_gap.py --replicates 250 --horizon 1000
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import gambit_gym  # noqa: F401
from gambit_gym.bench import run
from gambit_gym.core.intervals import mean_interval

ENV = "GambitIHS-1D-v0"


def arm_report(env_id: str) -> tuple[float, float]:
    """Print the arms' gaps and reward spreads; return (mean reward, per-pull reward sd)."""
    env = gym.make(env_id)
    tables = env.unwrapped.tables
    desc = env.unwrapped.describe()
    expected = np.asarray(tables.expected)  # (12, K)
    k = expected.shape[1]
    gaps = np.sort(expected.max(axis=1, keepdims=True) - expected, axis=1)
    within = []
    cell_means = []
    for a in range(k):
        for c in range(expected.shape[0]):
            start, count = tables.offsets[a, c], tables.counts[a, c]
            rewards = tables.row_reward[start:start + count]
            within.append(rewards.var())
            cell_means.append(rewards.mean())
    within_sd = float(np.sqrt(np.mean(within)))
    between_var = float(np.var(cell_means))
    noise = float(desc.noise_sd)
    per_pull = float(np.sqrt(within_sd ** 2 + noise ** 2))
    mean_reward = float(expected.mean())
    print(f"{env_id}: K = {k}, arms' expected reward {expected.min():.3f} .. "
          f"{expected.max():.3f} (mean {mean_reward:.3f}); best arm per context "
          f"{sorted(set(expected.argmax(axis=1).tolist()))}")
    print("  gap to the best arm, sorted, mean over the 12 contexts: "
          + ", ".join(f"{g:.3f}" for g in gaps.mean(axis=0)))
    print(f"  smallest gap per context: min {gaps[:, 1].min():.3f}, mean {gaps[:, 1].mean():.3f}")
    print(f"  outcome noise sd {noise:.4f}; sd of the mean reward between one cell's messages "
          f"{within_sd:.4f}; one pull's reward sd (both) {per_pull:.4f}")
    print(f"  share of the mean reward's variance over the arms' messages between cells: "
          f"{between_var / (between_var + within_sd ** 2):.3f}")
    print(f"  smallest gap / per-pull sd: {gaps[:, 1].mean() / per_pull:.3f} (mean over contexts)")
    return mean_reward, per_pull


def prior_report(mean_reward: float, per_pull: float, m: float = 77.0, nu: float = 5.0,
                 alpha: float = 1.0, beta: float = 10.0) -> None:
    """Print the study prior's bias and noise estimate after n pulls at the true mean."""
    print(f"StdTS prior m={m}, nu={nu}, alpha={alpha}, beta={beta} on rewards of mean "
          f"{mean_reward:.2f} and sd {per_pull:.3f} (expected posterior after n pulls):")
    for n in (5, 20, 50, 100, 200):
        bias = nu * (m - mean_reward) / (nu + n)
        beta_n = beta + 0.5 * n * per_pull ** 2 + n * nu * (mean_reward - m) ** 2 / (2 * (n + nu))
        alpha_n = alpha + 0.5 * n
        noise_var = beta_n / alpha_n
        post_sd = np.sqrt(beta_n / (alpha_n * (nu + n)))
        print(f"  n={n:4d}: posterior mean {bias:+.3f} off the arm's mean, noise variance "
              f"estimate {noise_var:.3f} (true {per_pull ** 2:.3f}), posterior sd of the mean "
              f"{post_sd:.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--replicates", type=int, default=250)
    p.add_argument("--horizon", type=int, default=1000)
    p.add_argument("--seed", type=int, default=323)
    args = p.parse_args()
    mean_reward, per_pull = arm_report(ENV)
    prior_report(mean_reward, per_pull)
    m = round(mean_reward, 1)
    beta = round(per_pull ** 2, 3)
    runs = [
        ("poGAMBITTS", "poGAMBITTS", {}),
        ("StdTS, study prior (m=77, nu=5, alpha=1, beta=10)", "StdTS", {}),
        (f"StdTS, m={m}", "StdTS", {"m": m}),
        (f"StdTS, m={m}, nu=1", "StdTS", {"m": m, "nu": 1.0}),
        (f"StdTS, m={m}, nu=1, beta={beta}", "StdTS", {"m": m, "nu": 1.0, "beta": beta}),
        ("StdTS-Contextual, study prior", "StdTS-Contextual", {}),
        (f"StdTS-Contextual, m={m}, nu=1, beta={beta}", "StdTS-Contextual",
         {"m": m, "nu": 1.0, "beta": beta}),
    ]
    print(f"regret at T = {args.horizon}, R = {args.replicates}, seed {args.seed} "
          "(mean ± 95% half-width):")
    for label, agent, kwargs in runs:
        t0 = time.perf_counter()
        res = run(ENV, agent, horizon=args.horizon, replicates=args.replicates, seed=args.seed,
                  agent_kwargs=kwargs, progress=False)
        mean, half = mean_interval(res.regret.sum(axis=1))
        print(f"  {label:50s} {mean:8.1f} ± {half:5.1f}   ({time.perf_counter() - t0:.1f} s)",
              flush=True)


if __name__ == "__main__":
    main()
