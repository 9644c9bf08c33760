"""Per-round cost of meTS against exact Thompson sampling on the joint K·d posterior (by hand).

    PYTHONPATH=. python benchmarks/bench_mets_cost.py            # K=1000, L=5, d=5, and K scaling

Both samplers use the same correlated prior: ψ ~ N(0, Σ_ψ), θ_i | ψ ~ N(W_i ψ, Σ_0). Exact TS
keeps the K·d × K·d posterior precision of θ (ψ integrated out; a dense prior precision) and
pays a Cholesky factorisation per round, O((K d)³); meTS pays O(L³d³ + K d²) per round plus
O(d³ + L²d²) per update. One round = act + update, timed after a warm-up.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np
from gymnasium import spaces
from scipy import linalg

from gambit_gym.agents.mets import MeTSFa, MeTSLin
from gambit_gym.agents.mets_structure import MixedEffectStructure
from gambit_gym.core.description import EnvDescription


@dataclass
class Args:
    n_actions: list[int] = field(default_factory=lambda: [100, 250, 500, 1000])
    n_effects: int = 5
    dim: int = 5
    rounds: int = 200
    exact_rounds: int = 50
    seed: int = 0


class ExactJointTS:
    """Thompson sampling on the exact joint posterior of all K·d action parameters."""

    def __init__(self, st: MixedEffectStructure, seed: int) -> None:
        W = st.mixing().reshape(-1, st.mu_psi.size)  # (K d, p)
        K, d = st.n_actions, st.dim
        cov = W @ st.sigma_psi @ W.T + linalg.block_diag(*st.sigma_0)
        self.prec = np.linalg.inv(cov)
        self.lin = self.prec @ (W @ st.mu_psi)
        self.K, self.d, self.sigma2 = K, d, st.sigma**2
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray) -> int:
        C = linalg.cholesky(self.prec, lower=True)
        mean = linalg.cho_solve((C, True), self.lin)
        theta = mean + linalg.solve_triangular(C.T, self.rng.standard_normal(mean.size))
        return int((obs * theta.reshape(self.K, self.d)).sum(1).argmax())

    def update(self, obs: np.ndarray, a: int, y: float) -> None:
        x, s = obs[a], slice(a * self.d, (a + 1) * self.d)
        self.prec[s, s] += np.outer(x, x) / self.sigma2
        self.lin[s] += x * y / self.sigma2


def structure(K: int, L: int, d: int, rng: np.random.Generator) -> MixedEffectStructure:
    return MixedEffectStructure(b=rng.uniform(-1, 1, (K, L)), mu_psi=np.zeros(L * d),
                                sigma_psi=3 * np.eye(L * d), sigma_0=np.eye(d), sigma=1.0)


def time_rounds(agent, obs_stream, rewards, rounds: int, budget_s: float = 3.0) -> float:
    """Mean seconds per round over up to ``rounds`` rounds (stopping after ``budget_s``)."""
    exact = isinstance(agent, ExactJointTS)

    def one(t: int) -> None:
        a = agent.act(obs_stream[t])
        if exact:
            agent.update(obs_stream[t], a, rewards[t])
        else:
            agent.update(obs_stream[t], a, rewards[t], {})

    for t in range(5):  # warm-up
        one(t)
    start = time.perf_counter()
    done = 0
    while done < rounds and (done < 3 or time.perf_counter() - start < budget_s):
        one(5 + done)
        done += 1
    return (time.perf_counter() - start) / done


def main(args: Args) -> None:
    rng = np.random.default_rng(args.seed)
    L, d = args.n_effects, args.dim
    print(f"L={L}, d={d}; seconds per round (act + update)")
    print(f"{'K':>6} {'meTS':>10} {'meTS-Fa':>10} {'exact TS':>10} {'exact/meTS':>11}")
    for K in args.n_actions:
        st = structure(K, L, d, rng)
        spec = EnvDescription(n_actions=K, action_space=spaces.Discrete(K),
                              observation_space=spaces.Box(-1, 1, (K, d), np.float32),
                              horizon=5000)
        n = 5 + max(args.rounds, args.exact_rounds)
        obs = rng.uniform(-1, 1, (n, K, d))
        y = rng.standard_normal(n)
        costs = []
        for cls in (MeTSLin, MeTSFa):
            agent = cls(structure=st)
            agent.reset(spec, seed=0)
            costs.append(time_rounds(agent, obs, y, args.rounds))
        exact = time_rounds(ExactJointTS(st, 0), obs, y, args.exact_rounds)
        print(f"{K:6d} {costs[0]:10.2e} {costs[1]:10.2e} {exact:10.2e} {exact / costs[0]:11.0f}",
              flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-actions", type=int, nargs="*", default=Args().n_actions)
    for f in ("n_effects", "dim", "rounds", "exact_rounds", "seed"):
        parser.add_argument(f"--{f.replace('_', '-')}", type=int, default=getattr(Args, f))
    main(Args(**vars(parser.parse_args())))
