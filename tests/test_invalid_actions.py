"""Actions handed to every env (single, vector, meTS, PettingZoo): an integer in ``0..K-1``
(numpy integers and one-element integer arrays welcome), else a ValueError that says so; never
``2.9`` to arm 2, ``-1`` to the last arm or ``True`` to 1. Tables of (action, message pattern).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401
from gambit_gym.envs import gambit_population_v0


def _env(env_id="GambitIHS-v0", **kw):
    return gym.make(env_id, **kw)


BAD_ACTIONS = [
    (2.9, r"must be an integer in 0\.\.4, got 2\.9"),
    (3.99, r"got 3\.99"),
    ("1", r"got '1'"),
    (True, r"got True"),
    (np.bool_(True), r"got (np\.)?(True|bool)"),
    (-1, r"got -1"),
    (5, r"got 5"),
    (np.float64(1.0), r"got (np\.float64\()?1\.0"),
    (np.array([0, 1]), r"array"),
    (None, r"got None"),
]


@pytest.mark.parametrize("action, pattern", BAD_ACTIONS, ids=[repr(a) for a, _ in BAD_ACTIONS])
def test_env_step_refuses_bad_actions(action, pattern):
    env = _env(n_prompts=5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=pattern):
        env.unwrapped.step(action)


@pytest.mark.parametrize("action", [2, np.int64(2), np.int8(2), np.array(2), np.array([2])])
def test_env_step_takes_integers(action):
    env = _env(n_prompts=5)
    env.reset(seed=0)
    assert env.step(action)[4]["prompt_id"] == env.unwrapped.tables.arm_prompts[2]


@pytest.mark.parametrize("env_id", ["MixedEffectLinear-v0", "MixedEffectLogistic-v0"])
@pytest.mark.parametrize("action", [2.9, "1", True, -1])
def test_mixed_effect_step_refuses_bad_actions(env_id, action):
    env = gym.make(env_id)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.unwrapped.step(action)


@pytest.mark.parametrize("action", [2.9, "1", True, -1])
def test_population_step_refuses_bad_actions(action):
    env = gambit_population_v0.parallel_env(n_users=2, horizon=5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step({"user_0": action, "user_1": 0})


def test_vector_env_refuses_bad_actions():
    vec = gym.make_vec("GambitIHS-v0", num_envs=2, vectorization_mode="vector_entry_point",
                       n_prompts=5)
    vec.reset(seed=0)
    for actions, pattern in [(np.array([0.5, 1.0]), "integer"), (np.array([0, 9]), r"0\.\.4"),
                             (np.array([-1, 0]), r"0\.\.4")]:
        with pytest.raises(ValueError, match=pattern):
            vec.step(actions)
    vec.close()
