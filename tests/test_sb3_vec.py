"""The SB3 VecEnv over the native vector env: same stream as make_vec_env, and PPO learns on it."""

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401  (registers the ids)

pytest.importorskip("stable_baselines3")
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

from gambit_gym.baselines.sb3_vec import GambitSB3VecEnv, make_sb3_vec_env  # noqa: E402


def test_same_stream_as_sb3_make_vec_env_across_episode_boundaries():
    kwargs = {"horizon": 4, "noise_level": 2, "center_rewards": True}
    ours = make_sb3_vec_env("GambitIHS-v0", n_envs=3, seed=9, **kwargs)
    theirs = make_vec_env("GambitIHS-v0", n_envs=3, seed=9, env_kwargs=kwargs)
    assert ours.num_envs == 3 and ours.observation_space == theirs.observation_space
    np.testing.assert_array_equal(ours.reset(), theirs.reset())
    rng = np.random.default_rng(0)
    boundaries = 0
    for _ in range(10):
        actions = rng.integers(5, size=3)
        o1, r1, d1, i1 = ours.step(actions)
        o2, r2, d2, i2 = theirs.step(actions)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        assert r1.dtype == r2.dtype == np.float32
        np.testing.assert_array_equal(d1, d2)
        for a, b in zip(i1, i2):
            assert a["regret"] == b["regret"] and a["text"] == b["text"]
            assert a["TimeLimit.truncated"] == b["TimeLimit.truncated"]
            if "terminal_observation" in b:
                np.testing.assert_array_equal(a["terminal_observation"],
                                              b["terminal_observation"])
            else:
                assert "terminal_observation" not in a
        boundaries += int(d1.all())
    assert boundaries == 2  # horizon 4: steps 4 and 8 end episodes
    ours.close()
    theirs.close()


def test_refuses_a_next_step_vector_env():
    venv = gym.make_vec("GambitIHS-v0", 2, vectorization_mode="vector_entry_point")
    with pytest.raises(ValueError, match="same_step"):
        GambitSB3VecEnv(venv)
    with pytest.raises(ValueError, match="no native vector env"):
        make_sb3_vec_env("MixedEffectLinear-v0", n_envs=2)


def test_renders_and_answers_sb3s_other_verbs():
    venv = GambitSB3VecEnv(gym.make_vec("GambitIHS-v0", 2, vectorization_mode="vector_entry_point",
                                        autoreset_mode="same_step", render_mode="rgb_array"))
    venv.reset()
    venv.step(np.array([0, 1]))
    frames = venv.get_images()
    assert len(frames) == 2 and frames[0].dtype == np.uint8
    assert venv.get_attr("noise_sd") == [venv.venv.unwrapped.noise_sd] * 2
    assert venv.env_is_wrapped(gym.Wrapper) == [False, False]
    assert venv.env_method("expected_rewards", 3, indices=[1])[0].shape == (5,)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["PPO", "DQN"])
def test_sb3_learns_on_the_native_vec_env(algo):
    torch = pytest.importorskip("torch")
    import stable_baselines3 as sb3

    torch.set_num_threads(1)
    venv = make_sb3_vec_env("GambitIHS-v0", n_envs=8, seed=0, center_rewards=True)
    hyper = {"PPO": dict(n_steps=16, batch_size=64, n_epochs=4, learning_rate=1e-2),
             "DQN": dict(learning_starts=100, learning_rate=3e-3, exploration_fraction=0.3,
                         train_freq=1, gradient_steps=1)}[algo]
    model = getattr(sb3, algo)("MlpPolicy", venv, gamma=0.0, policy_kwargs={"net_arch": [32]},
                               seed=0, device="cpu", **hyper)
    model.learn(3000)
    venv.close()
    tables = gym.make("GambitIHS-v0").unwrapped.tables
    actions, _ = model.predict(tables.observations, deterministic=True)
    learned = (tables.optimal_reward - tables.expected[np.arange(12), actions]).mean()
    uniform = (tables.optimal_reward[:, None] - tables.expected).mean()
    assert learned < 0.3 * uniform, (learned, uniform)
