"""Two facts docs/user_dynamics.md quotes about the ``beyond`` ids, computed from the package.

1. **How much of the named dims the PCA keeps**: for k in (4, 8, 16, 32), the share of the
   MiniLM vectors' variance the first k principal components explain, and the R² of each of
   the three true dims (optimism, formality, severity) regressed on them, over the shipped
   bank (its shipped PCA; no model needed).
2. **Habituation's headroom**: the cumulative regret, against the env's one-step greedy
   oracle with the true state, of always playing the stationary best prompt in each context
   on the habituating user (4 users x 300 steps per setting): how much an agent that knew the
   habituation model exactly could gain over one that ignores it.

Usage::

    python benchmarks/beyond_facts.py
"""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym.text.bank import load_bank
from gambit_gym.text.sentence_vectors import load_pca

TRUE_DIMS = ("optimism", "formality", "severity")


def pca_facts() -> None:
    """Print the explained variance and the R² of the true dims on the first k components."""
    bank = load_bank()
    pca = load_pca(bank)
    true = bank.scores[:, bank.dimension_index(TRUE_DIMS)].astype(np.float64)
    proj = pca.projections.astype(np.float64)
    print("| k | variance explained | R² optimism | R² formality | R² severity |")
    print("|---|---|---|---|---|")
    for k in (4, 8, 16, 32):
        x = np.c_[proj[:, :k], np.ones(len(proj))]
        coef = np.linalg.lstsq(x, true, rcond=None)[0]
        resid = ((true - x @ coef) ** 2).sum(axis=0)
        r2 = 1.0 - resid / ((true - true.mean(axis=0)) ** 2).sum(axis=0)
        print(f"| {k} | {pca.explained[:k].sum():.3f} | " + " | ".join(f"{v:.3f}" for v in r2)
              + " |")


def habituation_headroom(steps: int = 300, users: int = 4) -> None:
    """Print the regret of always playing the stationary best prompt on habituating users."""
    print("\n| η | λ | K | regret of the stationary best, mean over users |")
    print("|---|---|---|---|")
    for eta, lam, k in itertools.product((1.0, 3.0), (0.8, 0.95), (5, 20)):
        totals = []
        for seed in range(users):
            env = gym.make("GambitIHS-v0", habituation=eta, habituation_memory=lam,
                           n_prompts=k, horizon=steps)
            env.reset(seed=seed)
            inner, total = env.unwrapped, 0.0
            for _ in range(steps):
                best = int(inner.tables.optimal_action[inner._context])
                total += env.step(best)[4]["regret"]
            totals.append(total)
        print(f"| {eta:g} | {lam:g} | {k} | {np.mean(totals):.1f} |")


if __name__ == "__main__":
    pca_facts()
    habituation_headroom()
