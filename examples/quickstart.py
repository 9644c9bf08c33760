"""Quickstart: make an env, read a message and its style embedding, run a bandit agent.

Run: ``python examples/quickstart.py``
"""

import gymnasium as gym
import numpy as np

import gambit_gym  # noqa: F401  (registers the GambitIHS-* ids)

env = gym.make("GambitIHS-v0", noise_level=1)
obs, info = env.reset(seed=42)
print("context:", info["context"])
obs, reward, terminated, truncated, info = env.step(0)
print("message:", info["text"])
print("style:", dict(zip(info["embedding_names"], np.round(info["embedding"], 2))))
print(f"reward {reward:.2f}, expected {info['expected_reward']:.2f}, regret {info['regret']:.3f}")

# The oracle and the simulator (what two-stage agents use) live on the unwrapped env.
print("expected reward of each prompt here:", np.round(env.unwrapped.expected_rewards(obs), 3))
