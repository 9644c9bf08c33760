"""Contract tests over every registered environment id (gambit_gym.envs.checks)."""

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym.envs import checks
from gambit_gym.envs.registration import registered_ids

FAST_IDS = [i for i in registered_ids() if i != "GambitIHS-Live-v0"]
# ids whose agents see the full MiniLM vector run on a small bank (conftest.py: env_kwargs)


@pytest.mark.parametrize("env_id", FAST_IDS)
def test_gymnasium_check_env_passes_without_warnings(env_id, env_kwargs):
    checks.check_gymnasium_contract(gym.make(env_id, **env_kwargs(env_id)))


@pytest.mark.parametrize("env_id", FAST_IDS)
def test_step_types_and_info_keys(env_id, env_kwargs):
    checks.check_step_types_and_info(gym.make(env_id, **env_kwargs(env_id)), steps=30)


@pytest.mark.parametrize("env_id", FAST_IDS)
def test_same_seed_same_trajectory(env_id, env_kwargs):
    checks.check_determinism(lambda: gym.make(env_id, **env_kwargs(env_id)))


@pytest.mark.parametrize("env_id", FAST_IDS)
def test_invalid_actions_raise_clear_errors(env_id, env_kwargs):
    checks.check_invalid_actions(gym.make(env_id, **env_kwargs(env_id)))


@pytest.mark.parametrize("env_id", FAST_IDS)
def test_pickled_env_continues_identically(env_id, env_kwargs):
    checks.check_pickle(gym.make(env_id, **env_kwargs(env_id)))


@pytest.mark.parametrize("env_id", FAST_IDS)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec_sync_and_async(env_id, mode, env_kwargs):
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode=mode,
                       **env_kwargs(env_id))
    obs, _ = vec.reset(seed=3)
    single = gym.make(env_id, **env_kwargs(env_id))
    single_obs, _ = single.reset(seed=3)
    assert np.array_equal(obs[0], single_obs)
    obs, rewards, terminated, truncated, info = vec.step(np.zeros(2, dtype=np.int64))
    _, r0, *_ = single.step(0)
    assert rewards[0] == pytest.approx(r0)
    assert "regret" in info
    vec.close()


def test_unknown_kwarg_is_rejected_naming_the_valid_ones():
    with pytest.raises(TypeError, match="noise_level"):
        gym.make("GambitIHS-v0", noise_levle=2)
