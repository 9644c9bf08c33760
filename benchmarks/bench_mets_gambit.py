"""meTS on the GAMBIT envs: prompts as actions, clustered by their mean style embedding (by hand).

    PYTHONPATH=. python benchmarks/bench_mets_gambit.py --runs 20 --horizon 1000

meTS-Lin gets a GMM structure over the K prompts' mean working embeddings from the simulator
(offline data only; ``gambit_structure``) and the additive context features; it is compared
with poGAMBITTS and StdTS on ``GambitIHS-v0`` with K=5 and K=40, through the benchmark runner.
Prints the mean cumulative regret at the horizon with a 95% interval.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import gambit_gym  # noqa: F401  (registers the envs)
from gambit_gym.agents import names
from gambit_gym.bench import run
from gambit_gym.core.intervals import mean_interval

FALLBACK_PATHS = {"poGAMBITTS": "gambit_gym.agents.gambitts:POGambitTS",
                  "StdTS": "gambit_gym.agents.stdts:StdTS"}


@dataclass
class Args:
    env: str = "GambitIHS-v0"
    n_prompts: list[int] = field(default_factory=lambda: [5, 40])
    agents: list[str] = field(default_factory=lambda: ["meTS-Lin", "HierTS", "poGAMBITTS",
                                                       "StdTS"])
    runs: int = 20
    horizon: int = 1000
    seed: int = 0


def main(args: Args) -> None:
    registered = set(names())
    for K in args.n_prompts:
        print(f"{args.env}, K={K}, T={args.horizon}, R={args.runs}")
        for agent in args.agents:
            target = agent if agent in registered else FALLBACK_PATHS.get(agent, agent)
            res = run(args.env, target, horizon=args.horizon, replicates=args.runs,
                      seed=args.seed, env_kwargs={"n_prompts": K}, progress=False)
            cum = res.regret.sum(axis=1)
            mean, half = mean_interval(cum)
            print(f"  {agent:12s} {mean:9.1f} ± {half:7.1f}  ({res.wall_time_s:6.1f} s)",
                  flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=Args.env)
    parser.add_argument("--n-prompts", type=int, nargs="*", default=Args().n_prompts)
    parser.add_argument("--agents", nargs="*", default=Args().agents)
    for f in ("runs", "horizon", "seed"):
        parser.add_argument(f"--{f}", type=int, default=getattr(Args, f))
    a = parser.parse_args()
    main(Args(env=a.env, n_prompts=a.n_prompts, agents=a.agents, runs=a.runs,
              horizon=a.horizon, seed=a.seed))
