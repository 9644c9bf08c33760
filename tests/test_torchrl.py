"""torchrl front doors: GymEnv on a GAMBIT id, GymWrapper on the native vector env."""

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401  (registers the ids)

torchrl = pytest.importorskip("torchrl")
torch = pytest.importorskip("torch")
from torchrl.envs import GymEnv, GymWrapper  # noqa: E402
from torchrl.envs.libs.gym import default_info_dict_reader  # noqa: E402

from gambit_gym.baselines.torchrl_info import info_reader  # noqa: E402


def test_gymenv_builds_by_id_and_rolls_out_across_an_episode_boundary():
    # torchrl probes with frameskip=... and retries on the standard "unexpected keyword" error
    env = GymEnv("GambitIHS-v0", horizon=5)
    td = env.rollout(8, break_when_any_done=False)
    assert td["next", "reward"].shape == (8, 1)
    assert td["next", "truncated"].squeeze(-1).tolist() == [False] * 4 + [True] + [False] * 3
    assert torch.isfinite(td["next", "reward"]).all()


def test_numeric_info_keys_read_by_torchrls_default_reader_match_the_env():
    env = GymEnv("GambitIHS-v0", horizon=50)
    env.set_info_dict_reader(default_info_dict_reader(["regret", "expected_reward",
                                                       "optimal_action"]))
    env.set_seed(3)
    td = env.rollout(6)
    tables = env._env.unwrapped.tables
    actions = td["action"].argmax(-1).numpy()  # one-hot actions
    obs = td["observation"].numpy()  # one-hot [location (3) | step bucket (4)]
    contexts = obs[:, :3].argmax(-1) * 4 + obs[:, 3:].argmax(-1)
    expected = tables.expected[contexts, actions]
    np.testing.assert_allclose(td["next", "expected_reward"].numpy(), expected)
    np.testing.assert_allclose(td["next", "regret"].numpy(),
                               tables.optimal_reward[contexts] - expected)
    assert td["next", "optimal_action"].dtype == torch.int64


def test_every_info_key_with_gambit_specs_across_an_episode_boundary():
    env = GymEnv("GambitIHS-v0", horizon=4)
    env.set_info_dict_reader(info_reader(env))
    td = env.rollout(7, break_when_any_done=False)
    nxt = td["next"]
    assert nxt["embedding"].shape == (7, 3) and nxt["regret"].shape == (7,)
    texts = nxt["text"]
    assert len(texts) == 7 and all(isinstance(t, str) and t for t in texts)
    assert all(", " in c for c in nxt["context"])


def test_gymwrapper_over_the_native_vector_env():
    """torchrl wants DISABLED (it resets itself) or SAME_STEP; the native env offers both."""
    vec = gym.make_vec("GambitIHS-v0", 3, vectorization_mode="vector_entry_point", horizon=4,
                       autoreset_mode="disabled")
    env = GymWrapper(vec)
    assert tuple(env.batch_size) == (3,)
    env.set_info_dict_reader(info_reader(env, keys=("regret", "context")))
    env.set_seed(0)
    td = env.rollout(10, break_when_any_done=False)
    assert td["next", "reward"].shape == (3, 10, 1)
    truncated = td["next", "truncated"].squeeze(-1)
    assert truncated.all(0).nonzero().flatten().tolist() == [3, 7]
    assert (td["next", "regret"] >= 0).all() and td["next", "regret"].shape == (3, 10)
    rewards = td["next", "reward"]
    assert torch.isfinite(rewards).all() and (rewards.abs() > 50).all()  # never a reset's 0
