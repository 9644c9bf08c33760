"""Reproduce the meTS paper's ordering on the synthetic mixed-effect envs (run by hand).

    PYTHONPATH=. python benchmarks/bench_mets.py --env linear --runs 50 --horizon 5000
    PYTHONPATH=. python benchmarks/bench_mets.py --env logistic --runs 50 --horizon 5000

Each agent runs R replicates in its batched form against R envs reset with seeds seed+r (the
same problems for every agent). Prints, per agent, the mean cumulative pseudo-regret at the
horizon with a 95% interval (t quantile), the wall time, and writes a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field

import gymnasium as gym
import numpy as np

import gambit_gym  # noqa: F401  (registers the envs)
from gambit_gym import agents
from gambit_gym.core.intervals import mean_interval

SUITES = {
    "linear": ("MixedEffectLinear-v0",
               {"meTS": "meTS-Lin", "meTS-Fa": "meTS-Fa", "LinTS": "LinTS-Disjoint",
                "HierTS": "HierTS", "LinUCB": "LinUCB-Disjoint"}),
    "logistic": ("MixedEffectLogistic-v0",
                 {"meTS-GLM": "meTS-GLM", "meTS-Lin": "meTS-Lin", "GLM-TS": "GLM-TS",
                  "UCB-GLM": "UCB-GLM", "HierTS": "HierTS", "meTS-Fa": "meTS-Fa"}),
}


@dataclass
class Args:
    env: str = "linear"
    runs: int = 50
    horizon: int = 5000
    seed: int = 0
    agents: list[str] = field(default_factory=list)
    out: str = ""


def run_batched(env_id: str, agent_name: str, runs: int, horizon: int, seed: int,
                env_kwargs: dict | None = None, agent_kwargs: dict | None = None) -> np.ndarray:
    """Per-step pseudo-regret ``(runs, horizon)`` of a batched agent on ``runs`` envs."""
    envs = [gym.make(env_id, horizon=horizon, **(env_kwargs or {})).unwrapped
            for _ in range(runs)]
    obs = np.stack([env.reset(seed=seed + r)[0] for r, env in enumerate(envs)])
    agent = agents.make(agent_name, **(agent_kwargs or {}))
    agent.reset_batch([env.describe() for env in envs], seed)  # one description per replicate
    regret = np.zeros((runs, horizon))
    for t in range(horizon):
        actions = agent.act_batch(obs)
        steps = [env.step(int(a)) for env, a in zip(envs, actions)]
        rewards = np.array([s[1] for s in steps])
        regret[:, t] = [s[4]["regret"] for s in steps]
        agent.update_batch(obs, actions, rewards, {})  # the meTS agents read no info
        obs = np.stack([s[0] for s in steps])
    return regret


def summarize(cum: np.ndarray) -> dict:
    mean, half = mean_interval(cum)
    return {"mean": mean, "ci95": float(half), "runs": int(cum.size)}


def main(args: Args) -> dict:
    env_id, suite = SUITES[args.env]
    chosen = args.agents or list(suite)
    results = {}
    for label in chosen:
        start = time.perf_counter()
        regret = run_batched(env_id, suite[label], args.runs, args.horizon, args.seed)
        wall = time.perf_counter() - start
        res = summarize(regret.sum(axis=1))
        res["wall_s"] = wall
        res["curve_mean"] = regret.cumsum(axis=1).mean(0)[
            np.linspace(0, args.horizon - 1, 11).astype(int)].tolist()
        results[label] = res
        print(f"{label:10s} {res['mean']:9.1f} ± {res['ci95']:7.1f}  ({wall:6.1f} s)", flush=True)
    summary = {"args": asdict(args), "env_id": env_id, "results": results}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(summary, fh, indent=1)
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in ("env", "out"):
        parser.add_argument(f"--{f}", default=getattr(Args, f))
    for f in ("runs", "horizon", "seed"):
        parser.add_argument(f"--{f}", type=int, default=getattr(Args, f))
    parser.add_argument("--agents", nargs="*", default=[])
    main(Args(**vars(parser.parse_args())))
