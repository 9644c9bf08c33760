"""Env speed and memory, by hand: ``python benchmarks/bench_env_speed.py``.

Prints, measured in the same run:
* steps/s of ``gym.make("GambitIHS-v0")`` (default wrappers) against ``gym.make("CartPole-v1")``
  (target: ratio >= 1.0);
* replicate-steps/s of the native vector env at R=1000, texts included (target: >= 2e6);
* memory of 100 GambitIHS-v0 instances (the bank and tables are shared).
"""

from __future__ import annotations

import argparse
import gc
import resource
import time

import gymnasium as gym
import numpy as np

import gambit_gym  # noqa: F401


def steps_per_second(env_id: str, steps: int, **kwargs) -> float:
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(env.action_space.n, size=steps)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def vector_steps_per_second(num_envs: int, steps: int) -> float:
    vec = gym.make_vec("GambitIHS-v0", num_envs=num_envs,
                       vectorization_mode="vector_entry_point", autoreset_mode="same_step")
    vec.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(5, size=(steps, num_envs))
    start = time.perf_counter()
    for t in range(steps):
        _, _, _, _, info = vec.step(actions[t])
        assert info["text"].shape == (num_envs,)
    return num_envs * steps / (time.perf_counter() - start)


def rss_mb() -> float:
    """Current resident set size (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=50_000)
    args = parser.parse_args()
    gym.make("GambitIHS-v0")  # load the bank once before timing
    # Interleave three rounds and keep each env's best, so load on the machine hits both alike.
    cart = gambit = 0.0
    for _ in range(3):
        cart = max(cart, steps_per_second("CartPole-v1", args.steps))
        gambit = max(gambit, steps_per_second("GambitIHS-v0", args.steps))
    print(f"CartPole-v1    {cart:12,.0f} steps/s")
    print(f"GambitIHS-v0   {gambit:12,.0f} steps/s   ratio to CartPole {gambit / cart:.2f}x "
          "(target >= 1.0x)")
    vec = vector_steps_per_second(1000, 300)
    print(f"vector R=1000  {vec:12,.0f} replicate-steps/s   ratio to 2e6 target "
          f"{vec / 2e6:.2f}x")
    gc.collect()
    before = rss_mb()
    envs = [gym.make("GambitIHS-v0", noise_level=i % 5) for i in range(100)]
    for e in envs:
        e.reset(seed=0)
    gc.collect()
    after = rss_mb()
    print(f"100 GambitIHS-v0 instances: +{after - before:.1f} MB RSS "
          f"(process {after:.0f} MB; the bank and tables are shared)")


if __name__ == "__main__":
    main()
