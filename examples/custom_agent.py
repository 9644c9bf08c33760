"""Your own bandit agent, benchmarked beside the built-in ones (docs/agents.md explains each step).

Two agents written against the protocol by subclassing ``gambit_gym.agents.BaseAgent``:

- ``ContextualEpsilonGreedy``: per-context running means, ε-greedy; its propensities have a
  closed form, so it overrides ``action_probabilities``.
- ``ContextualGaussianTS``: Thompson sampling with a Gaussian posterior per (context, prompt);
  no closed form, so it keeps the base class's Monte Carlo estimate from ``act`` draws.

Both run through ``gambit_gym.bench.run`` next to the Random and Oracle references, then on a
leaderboard through a sweep into a results store.

Run: ``python examples/custom_agent.py`` (set ``GAMBIT_GYM_EXAMPLE_SMALL=1`` for a quick run).
"""

import os
import tempfile
from pathlib import Path

import numpy as np

import gambit_gym  # noqa: F401  (registers the env ids)
from gambit_gym.agents import BaseAgent
from gambit_gym.agents.base import EnvDescription


class ContextualEpsilonGreedy(BaseAgent):
    """ε-greedy on the mean reward of each (context, prompt); unplayed prompts first.

    Args:
        epsilon: probability of a uniformly random prompt.
    """

    def __init__(self, epsilon: float = 0.1):
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")
        self.epsilon = epsilon

    def setup(self, spec: EnvDescription) -> None:
        self.sums = np.zeros((spec.n_contexts, self.n_actions))
        self.counts = np.zeros((spec.n_contexts, self.n_actions))

    def _greedy(self, c: int) -> int:
        means = np.where(self.counts[c] > 0, self.sums[c] / np.maximum(self.counts[c], 1),
                         np.inf)
        return int(np.argmax(means))  # ties: the lowest index (so the propensity is exact)

    def act(self, obs) -> int:
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.n_actions))
        return self._greedy(self.context_id(obs))

    def update(self, obs, action, reward, info) -> None:
        c = info["context_id"]  # what a deployed app sees: context, prompt, text, embedding
        self.sums[c, action] += reward
        self.counts[c, action] += 1

    def action_probabilities(self, obs, n_samples=1000) -> np.ndarray:
        p = np.full(self.n_actions, self.epsilon / self.n_actions)
        p[self._greedy(self.context_id(obs))] += 1.0 - self.epsilon
        return p


class ContextualGaussianTS(BaseAgent):
    """Thompson sampling, a Normal posterior on the mean reward of each (context, prompt).

    Args:
        prior_mean: prior mean of every cell (rewards are sqrt(steps): ~77 in the study).
        prior_sd: prior sd of every cell's mean.
    """

    def __init__(self, prior_mean: float = 77.0, prior_sd: float = 20.0):
        self.prior_mean, self.prior_sd = prior_mean, prior_sd

    def setup(self, spec: EnvDescription) -> None:
        self.noise_var = (spec.noise_sd or 10.0) ** 2
        shape = (spec.n_contexts, self.n_actions)
        self.precision = np.full(shape, 1.0 / self.prior_sd ** 2)
        self.weighted = np.full(shape, self.prior_mean / self.prior_sd ** 2)

    def act(self, obs) -> int:
        c = self.context_id(obs)
        mean = self.weighted[c] / self.precision[c]
        return int(np.argmax(self.rng.normal(mean, 1.0 / np.sqrt(self.precision[c]))))

    def update(self, obs, action, reward, info) -> None:
        c = info["context_id"]
        self.precision[c, action] += 1.0 / self.noise_var
        self.weighted[c, action] += reward / self.noise_var


def main() -> None:
    from gambit_gym.bench import run

    small = bool(os.environ.get("GAMBIT_GYM_EXAMPLE_SMALL"))
    horizon, replicates = (200, 8) if small else (1000, 50)
    env_id, env_kwargs = "GambitIHS-v0", {"noise_level": 2}

    # 1. bench.run: a class (or a factory, or an instance: each replicate gets its own copy)
    print(f"{env_id} {env_kwargs}, T = {horizon}, R = {replicates}: cumulative regret at T")
    for agent in ("Random", ContextualEpsilonGreedy, ContextualGaussianTS, "StdTS", "Oracle"):
        res = run(env_id, agent, horizon=horizon, replicates=replicates, seed=0,
                  env_kwargs=env_kwargs, progress=False, propensities=True,
                  n_propensity_samples=100)
        s = res.summary()
        name = agent if isinstance(agent, str) else agent.__name__
        print(f"  {name:24s} {s['mean']:8.1f}  [{s['low']:.1f}, {s['high']:.1f}]  "
              f"min propensity {res.propensities.min():.3f}")

    # 2. a leaderboard: the suite's agents, the references and yours, into a results store
    from gambit_gym.bench import suites
    from gambit_gym.bench.executors import SerialExecutor, sweep
    from gambit_gym.bench.leaderboard import Leaderboard
    from gambit_gym.bench.store import ResultStore

    suite = (suites.get("var_decomp_linear")
             .narrow(replicates=replicates, horizon=horizon, agents=["StdTS", "poGAMBITTS"])
             .with_agent(ContextualEpsilonGreedy, {"epsilon": 0.1}))
    suite = suite.narrow(envs=["GambitIHS-v0"])
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(Path(tmp) / "results.sqlite")
        sweep(suite, store, executor=SerialExecutor(), progress=False, propensities=False)
        print(Leaderboard.from_store(store).to_markdown())


if __name__ == "__main__":  # the guard lets a process-pool sweep re-import this file safely
    main()
