"""PPO (stable-baselines3, learning online) next to poGAMBITTS and StdTS on GambitIHS-v0.

Run: ``python examples/ppo_vs_bandits.py [--horizon 1000] [--replicates 5] [--device cpu]``

All three go through the same runner, :func:`gambit_gym.bench.run` (PPO's run is handed to
:mod:`gambit_gym.baselines.sb3`), so each result is a ``RunResult`` with per-step regret taken
from the env's ``info["regret"]``. PPO's env is built with ``center_rewards=True`` (the SB3
baselines' default: its value head starts at 0, the rewards near 83; see docs/ecosystem.md);
the bandit agents get the env as the study defines it. Set ``GAMBIT_GYM_EXAMPLE_SMALL=1`` (as
the tests do) for a budget of seconds.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

import numpy as np

import gambit_gym  # noqa: F401  (registers the GambitIHS-* ids)
from gambit_gym.bench import run

AGENTS = ("poGAMBITTS", "StdTS", "PPO")


@dataclass
class Args:
    """Command-line arguments."""

    env_id: str = "GambitIHS-v0"
    horizon: int = 1000
    replicates: int = 5
    seed: int = 0
    noise_level: int = 0
    device: str = "cpu"
    bank: str | None = None


def parse_args() -> Args:
    defaults = Args()
    if os.environ.get("GAMBIT_GYM_EXAMPLE_SMALL"):
        defaults = Args(horizon=64, replicates=2)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in vars(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value) if value is not None
                            else str, default=value)
    return Args(**vars(parser.parse_args()))


def main() -> None:
    args = parse_args()
    env_kwargs = {"noise_level": args.noise_level}
    if args.bank:
        env_kwargs["bank"] = args.bank
    print(f"{args.env_id}, noise level {args.noise_level}, T={args.horizon}, "
          f"R={args.replicates}, seed {args.seed}")
    print(f"{'agent':<12}{'cum. regret at T':>18}{'± 95%':>10}{'wall s':>9}")
    for agent in AGENTS:
        result = run(args.env_id, agent, horizon=args.horizon, replicates=args.replicates,
                     seed=args.seed, env_kwargs=env_kwargs, device=args.device, progress=False)
        s = result.summary()
        half = (s["high"] - s["low"]) / 2 if np.isfinite(s["high"]) else float("nan")
        print(f"{agent:<12}{s['mean']:>18.2f}{half:>10.2f}{result.wall_time_s:>9.1f}")


if __name__ == "__main__":
    main()
