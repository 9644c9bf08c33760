"""Env kwargs, seeds and simulator indices that are wrong: a clear error naming the argument
and what is expected, never a silent cast and never a riddle from deep inside numpy (actions:
tests/test_invalid_actions.py).

Tables of (call, error type, message pattern).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401
from gambit_gym.envs import gambit_population_v0


def _env(env_id="GambitIHS-v0", **kw):
    return gym.make(env_id, **kw)


# ------------------------------------------------------------------ constructor kwargs
ENV_KWARGS = [
    ({"noise_level": True}, r"noise_level must be an integer in 0\.\.4, got True"),
    ({"noise_level": 1.0}, r"noise_level must be an integer in 0\.\.4, got 1\.0"),
    ({"noise_level": 5}, r"noise_level must be an integer in 0\.\.4, got 5"),
    ({"noise_level": -1}, r"noise_level must be an integer in 0\.\.4, got -1"),
    ({"noise_sd": True}, r"noise_sd must be a finite number >= 0, got True"),
    ({"noise_sd": "1.5"}, r"noise_sd must be a finite number >= 0, got '1\.5'"),
    ({"noise_sd": float("nan")}, r"noise_sd must be a finite number >= 0, got nan"),
    ({"noise_sd": -0.5}, r"noise_sd must be a finite number >= 0"),
    ({"prompt_ids": "012"}, r"prompt_ids must be a sequence of non-negative integers, got '012'"),
    ({"prompt_ids": [1.7, 2.2]}, r"prompt_ids\[0\] must be a non-negative integer, got 1\.7"),
    ({"prompt_ids": [True, False]}, r"prompt_ids\[0\] must be a non-negative integer, got True"),
    ({"prompt_ids": []}, r"prompt_ids must name at least one id"),
    ({"prompt_ids": [3, 3]}, r"prompt_ids must not repeat an id"),
    ({"prompt_ids": [-1, 2]}, r"prompt_ids\[0\] must be a non-negative integer, got -1"),
    ({"prompt_ids": 7}, r"prompt_ids must be a sequence"),
    ({"n_prompts": True}, r"n_prompts must be a positive integer, got True"),
    ({"n_prompts": 2.5}, r"n_prompts must be a positive integer, got 2\.5"),
    ({"horizon": 0}, r"horizon must be a positive integer, got 0"),
    ({"env_id": "GambitIHS-Optional-v0", "no_message_reward": True},
     r"no_message_reward .* must be a finite number, got True"),
    ({"env_id": "GambitIHS-Optional-v0", "no_message_reward": "mean"},
     r"no_message_reward must be 'median', 'min', 'max'"),
]


@pytest.mark.parametrize("kwargs, pattern", ENV_KWARGS, ids=[str(k) for k, _ in ENV_KWARGS])
def test_env_kwargs_refused(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        _env(**kwargs)


def test_good_kwargs_still_pass():
    env = _env(prompt_ids=(np.int64(3), 7), noise_sd=np.float32(2.0))
    assert env.unwrapped.tables.arm_prompts.tolist() == [3, 7]
    assert env.unwrapped.noise_sd == 2.0
    assert _env(noise_level=np.int64(2)).unwrapped.noise_sd > 0


MIXED_KWARGS = [
    ({"sigma": True}, r"sigma must be a finite number > 0"),
    ({"sigma": "1"}, r"sigma must be a finite number > 0"),
    ({"b_low": "0"}, r"b_low must be a finite number"),
    ({"n_actions": 2.5}, r"n_actions must be a positive integer"),
]


@pytest.mark.parametrize("kwargs, pattern", MIXED_KWARGS, ids=[str(k) for k, _ in MIXED_KWARGS])
def test_mixed_effect_kwargs_refused(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        gym.make("MixedEffectLinear-v0", **kwargs)


# ------------------------------------------------------------------ seeds
@pytest.mark.parametrize("seed, pattern", [
    (True, r"seed must be a non-negative integer or None, got True"),
    (1.5, r"seed must be a non-negative integer or None, got 1\.5"),
    ("3", r"seed must be a non-negative integer or None, got '3'"),
    (-2, r"seed must be a non-negative integer or None, got -2"),
])
@pytest.mark.parametrize("make", [
    lambda: _env(),
    lambda: gym.make("MixedEffectLinear-v0"),
    lambda: gym.make_vec("GambitIHS-v0", num_envs=2, vectorization_mode="vector_entry_point"),
    lambda: gambit_population_v0.parallel_env(n_users=2, horizon=5),
], ids=["GambitEnv", "MixedEffect", "vector", "population"])
def test_reset_refuses_bad_seeds(make, seed, pattern):
    env = make()
    with pytest.raises(ValueError, match=pattern):
        env.reset(seed=seed)


# ------------------------------------------------------------------ simulator and oracle
@pytest.mark.parametrize("call, pattern", [
    (lambda s, e: s.mean_embeddings(-1), r"cannot read a context from -1: .*an id 0\.\.11"),
    (lambda s, e: s.mean_embeddings(12), r"cannot read a context from 12"),
    (lambda s, e: s.mean_embeddings(1.9), r"cannot read a context from 1\.9"),
    (lambda s, e: s.mean_embeddings(True), r"cannot read a context from True"),
    (lambda s, e: s.mean_embeddings(np.array([0, -1])), r"step_bucket 0\.\.3"),
    (lambda s, e: s.mean_embeddings(np.array([3, 0])), r"location 0\.\.2"),
    (lambda s, e: s.mean_embeddings(np.array([1.5, 0.0])), r"cannot read a context"),
    (lambda s, e: e.expected_rewards(1.9), r"cannot read a context from 1\.9"),
    (lambda s, e: e.expected_rewards(-1), r"cannot read a context from -1"),
    (lambda s, e: s.simulate(2.9, 0, 3, np.random.default_rng(0)),
     r"action must be an integer in 0\.\.2, got 2\.9"),
    (lambda s, e: s.simulate(-1, 0, 3, np.random.default_rng(0)), r"action must be .*got -1"),
    (lambda s, e: s.simulate(0, 0, 2.5, np.random.default_rng(0)),
     r"n must be a positive integer, got 2\.5"),
    (lambda s, e: s.cell_embeddings(-1, 0), r"action must be .*got -1"),
    (lambda s, e: s.cell_texts(True, 0), r"action must be .*got True"),
])
def test_simulator_and_oracle_indices(call, pattern):
    env = _env(n_prompts=3).unwrapped
    with pytest.raises(ValueError, match=pattern):
        call(env.simulator, env)


def test_simulator_takes_what_the_user_holds():
    env = _env(n_prompts=3).unwrapped
    obs, info = env.reset(seed=0)
    a = env.simulator.mean_embeddings(obs)
    assert np.array_equal(a, env.simulator.mean_embeddings(info["context"]))
    assert np.array_equal(env.expected_rewards(np.int64(5)), env.expected_rewards(5))
