"""Contract checks for gambit-gym environments, shipped so users can test their own variants.

Each ``check_*`` function raises ``AssertionError`` with a message saying what broke. The test
suite runs them over every registered id; :func:`check_gambit_env` runs them all.
"""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

STEP_INFO_TYPES: dict[str, type | tuple[type, ...]] = {
    "expected_reward": float,
    "optimal_action": int,
    "optimal_expected_reward": float,
    "regret": float,
}
GAMBIT_INFO_TYPES: dict[str, type | tuple[type, ...]] = {
    "text": str,
    "prompt_id": int,
    "prompt": str,
    "embedding": np.ndarray,
    "embedding_names": tuple,
    "context": dict,
}


def is_gambit(env: gym.Env) -> bool:
    """Whether an env is a GAMBIT env (carries texts and embeddings in its info)."""
    from gambit_gym.envs.gambit_env import GambitEnv

    return isinstance(env.unwrapped, GambitEnv)


def check_gymnasium_contract(env: gym.Env) -> None:
    """Gymnasium's own ``check_env`` passes with no warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)


def rollout(env: gym.Env, seed: int, steps: int, policy_seed: int = 0) -> list[tuple[Any, ...]]:
    """``steps`` steps under a seeded uniform policy: (obs, reward, term, trunc, info) tuples."""
    rng = np.random.default_rng(policy_seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        action = int(rng.integers(env.action_space.n))
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs.copy(), reward, terminated, truncated, info, action))
        if terminated or truncated:
            obs, _ = env.reset()
    return out


def check_step_types_and_info(env: gym.Env, steps: int = 20, seed: int = 0) -> None:
    """Rewards are Python floats, flags Python bools, obs in the space, info keys typed."""
    for obs, reward, terminated, truncated, info, action in rollout(env, seed, steps):
        assert env.observation_space.contains(obs), f"observation {obs} outside the space"
        assert type(reward) is float, f"reward must be a Python float, got {type(reward)}"
        assert type(terminated) is bool and type(truncated) is bool, "flags must be bools"
        expected_types = dict(STEP_INFO_TYPES)
        if is_gambit(env):
            expected_types.update(GAMBIT_INFO_TYPES)
        for key, typ in expected_types.items():
            assert key in info, f"info lacks {key!r}"
            assert isinstance(info[key], typ), f"info[{key!r}] is {type(info[key])}, not {typ}"
        assert info["regret"] >= 0, "regret must be >= 0"
        gap = info["optimal_expected_reward"] - info["expected_reward"]
        assert np.isclose(info["regret"], max(gap, 0.0)), "regret != optimal - expected"
        if action == info["optimal_action"]:
            assert info["regret"] == 0.0, "regret of the optimal action must be exactly 0"
        if is_gambit(env):
            assert info["embedding"].dtype == np.float32
            assert info["embedding"].shape == (len(info["embedding_names"]),)


def check_determinism(env_factory: Any, steps: int = 15, seed: int = 123) -> None:
    """Two envs reset with the same seed give the same observations, rewards and info."""
    a = rollout(env_factory(), seed, steps)
    b = rollout(env_factory(), seed, steps)
    for (oa, ra, _, _, ia, _), (ob, rb, _, _, ib, _) in zip(a, b):
        assert np.array_equal(oa, ob) and ra == rb, "same seed gave different trajectories"
        for key in ("text", "regret", "expected_reward"):
            if key in ia:
                assert ia[key] == ib[key], f"same seed gave different info[{key!r}]"
    c = rollout(env_factory(), seed + 1, steps)
    assert any(ra != rc for (_, ra, *_), (_, rc, *_) in zip(a, c)), \
        "different seeds gave identical rewards"


def check_invalid_actions(env: gym.Env) -> None:
    """Out-of-range, float, NaN, array and None actions raise a ValueError naming the range."""
    env.reset(seed=0)
    n = env.action_space.n
    for bad in (n, -1, 0.5, float("nan"), np.array([0, 1]), None, "0"):
        try:
            env.step(bad)
        except ValueError as exc:
            assert str(n - 1) in str(exc), f"error for action {bad!r} does not name the range"
        else:
            raise AssertionError(f"action {bad!r} was accepted")


def check_pickle(env: gym.Env, steps: int = 5) -> None:
    """A pickled and restored env continues exactly like the original."""
    env.reset(seed=7)
    env.step(0)
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(steps):
        o1, r1, *_ = env.step(0)
        o2, r2, *_ = clone.step(0)
        assert np.array_equal(o1, o2) and r1 == r2, "pickled env diverged"


def check_gambit_env(env_id: str, **kwargs: Any) -> None:
    """Run every contract check on a registered id (with env kwargs)."""
    check_gymnasium_contract(gym.make(env_id, **kwargs))
    check_step_types_and_info(gym.make(env_id, **kwargs))
    check_determinism(lambda: gym.make(env_id, **kwargs))
    check_invalid_actions(gym.make(env_id, **kwargs))
    check_pickle(gym.make(env_id, **kwargs))
