"""Off-the-shelf learners on GambitIHS-v0, raw rewards against ``center_rewards=True``.

Prints a markdown table of cumulative regret at T (mean and 95% half-width over seeds) for
MABWiser LinUCB and LinTS (context one-hot features, a warm start of one pull per arm in a
random order, then ``predict`` / ``partial_fit`` each step), SB3 DQN (the gambit-gym baseline's
hyperparameters, ``gambit_gym.baselines.sb3``) and uniform random, each on the registered arm
order and on the reversed one (``prompt_ids`` reversed: the same arms, numbered backwards).

    python benchmarks/bench_off_the_shelf.py [--horizon 1000] [--seeds 5]

Needs ``pip install mabwiser`` (in the ``test`` extra) and stable-baselines3.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym.core.intervals import mean_interval

ENV_ID = "GambitIHS-v0"


def one_hot(obs: np.ndarray) -> np.ndarray:
    """The 12-context one-hot of an observation ``[location, step_bucket]``."""
    x = np.zeros(12)
    x[int(obs[0]) * 4 + int(obs[1])] = 1.0
    return x


def run_mabwiser(policy_name: str, env_kwargs: dict, horizon: int, seed: int) -> float:
    """Cumulative regret of a MABWiser contextual policy used as its docs show."""
    from mabwiser.mab import MAB, LearningPolicy

    policy = {"LinUCB": LearningPolicy.LinUCB(alpha=1.0),
              "LinTS": LearningPolicy.LinTS(alpha=1.0)}[policy_name]
    env = gym.make(ENV_ID, horizon=horizon, **env_kwargs)
    k = env.action_space.n
    obs, _ = env.reset(seed=seed)
    mab = MAB(list(range(k)), policy, seed=seed)
    total, decisions, rewards, contexts = 0.0, [], [], []
    for a in np.random.default_rng(seed).permutation(k):  # warm start: each arm once
        x = one_hot(obs)
        obs, r, _, _, info = env.step(int(a))
        decisions.append(int(a))
        rewards.append(r)
        contexts.append(x)
        total += info["regret"]
    mab.fit(decisions, rewards, np.array(contexts))
    for _ in range(k, horizon):
        x = one_hot(obs)[None]
        a = int(mab.predict(x))
        obs, r, _, _, info = env.step(a)
        mab.partial_fit([a], [r], x)
        total += info["regret"]
    return total


def run_random(env_kwargs: dict, horizon: int, seed: int) -> float:
    """Cumulative regret of uniform random actions."""
    env = gym.make(ENV_ID, horizon=horizon, **env_kwargs)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    return sum(env.step(int(rng.integers(env.action_space.n)))[4]["regret"]
               for _ in range(horizon))


def run_dqn(env_kwargs: dict, horizon: int, seed: int) -> float:
    """Cumulative regret of SB3 DQN with the gambit-gym baseline's hyperparameters."""
    from gambit_gym.baselines import run_sb3

    result = run_sb3(ENV_ID, "DQN", horizon=horizon, replicates=1, seed=seed,
                     env_kwargs=env_kwargs)
    return float(result.regret.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    arms = gym.make(ENV_ID).unwrapped.tables.arm_prompts
    orders = {"registered": {}, "reversed": {"prompt_ids": tuple(int(p) for p in arms[::-1])}}
    learners = {"MABWiser LinUCB": lambda kw, s: run_mabwiser("LinUCB", kw, args.horizon, s),
                "MABWiser LinTS": lambda kw, s: run_mabwiser("LinTS", kw, args.horizon, s),
                "SB3 DQN": lambda kw, s: run_dqn(kw, args.horizon, s),
                "uniform random": lambda kw, s: run_random(kw, args.horizon, s)}
    print(f"{ENV_ID}, T={args.horizon}, seeds 0..{args.seeds - 1}: cumulative regret at T, "
          "mean ± 95% half-width")
    print()
    print("| learner | arm order | raw rewards | center_rewards=True |")
    print("|---|---|---|---|")
    start = time.perf_counter()
    for name, fn in learners.items():
        for order, order_kwargs in orders.items():
            cells = []
            for center in (False, True):
                kwargs = {**order_kwargs, "center_rewards": center}
                values = np.array([fn(kwargs, s) for s in range(args.seeds)])
                mean, half = mean_interval(values)
                cells.append(f"{mean:.1f} ± {half:.1f}")
            print(f"| {name} | {order} | {cells[0]} | {cells[1]} |", flush=True)
    print()
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
