"""The front doors users come in by: kwargs, render modes, SB3's make_vec_env (real libraries)."""

import re
import warnings

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym.envs.registration import registered_ids

ALL_IDS = registered_ids()
FAST_IDS = [i for i in ALL_IDS if i != "GambitIHS-Live-v0"]
SMALL = {"MixedEffectLinear-v0": {"n_actions": 10}, "MixedEffectLogistic-v0": {"n_actions": 10}}


@pytest.mark.parametrize("env_id", ALL_IDS)
@pytest.mark.parametrize("bad", ["frameskip", "noise_levle"])
def test_unknown_kwargs_raise_pythons_type_error_listing_the_valid_ones(env_id, bad):
    with pytest.raises(TypeError) as info:
        gym.make(env_id, **{bad: 1})
    message = str(info.value)
    # the phrase SB3's make_vec_env and torchrl's GymEnv look for, then the valid kwargs
    assert re.search(rf"__init__\(\) got an unexpected keyword argument '{bad}'", message)
    assert "horizon" in message and "render_mode" in message


@pytest.mark.parametrize("env_id", ["GambitIHS-v0", "MixedEffectLinear-v0"])
def test_several_unknown_kwargs_are_all_named(env_id):
    with pytest.raises(TypeError, match=r"argument 'aa' \(and 'bb'\)"):
        gym.make(env_id, aa=1, bb=2)


def test_live_only_kwargs_are_unexpected_elsewhere():
    for name in ("generator", "embedder", "device"):
        with pytest.raises(TypeError, match=f"unexpected keyword argument '{name}'.*Live"):
            gym.make("GambitIHS-v0", **{name: "cpu"})


@pytest.mark.parametrize("env_id", FAST_IDS)
def test_render_modes_are_declared_and_work(env_id, env_kwargs):
    kwargs = {**SMALL.get(env_id, {}), **env_kwargs(env_id)}
    env = gym.make(env_id, render_mode="ansi", **kwargs)
    assert env.metadata["render_modes"] == ["ansi", "rgb_array"]
    env.reset(seed=0)
    before = env.render()
    assert isinstance(before, str) and before
    _, reward, _, _, info = env.step(1)
    text = env.render()
    assert f"{reward:.3f}" in text and f"{info['regret']:.3f}" in text
    if "context" in info:  # a GAMBIT notification: context, prompt and message
        assert info["context"].split(",")[0] in text and info["text"] in text
        assert info["prompt"] in text
    env = gym.make(env_id, render_mode="rgb_array", **kwargs)
    env.reset(seed=0)
    env.step(1)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape[0] >= 150 and frame.shape[1] == 480
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 20  # a drawn picture, not a fill
    plain = gym.make(env_id, **kwargs)
    plain.reset(seed=0)
    assert plain.render() is None
    with pytest.raises(ValueError, match="render_mode must be one of"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gym.make warns first that the mode is not declared
        gym.make(env_id, render_mode="human3d", **kwargs)


def test_card_shows_one_bar_per_style_dimension():
    from gambit_gym.envs.render import notification_card

    context = "home, 0-4,999"
    one = notification_card(context, "Time for a walk!", np.array([1.0]), ["optimism"], 80.0)
    many = notification_card(context, "Time for a walk!", np.linspace(-5, 5, 20),
                             [f"dim{i}" for i in range(20)], 80.0)
    assert many.shape[0] - one.shape[0] == 19 * 14  # 19 more bars of 14 px
    long = notification_card(context, "walk " * 200, np.array([1.0]), ["optimism"], 80.0)
    assert long.shape[0] - one.shape[0] == 6 * 17  # wrapped to at most 7 lines of 17 px
    empty = notification_card(context, None, None, [], None)
    assert empty.shape[0] < one.shape[0] and empty.dtype == np.uint8


def _greedy_regret(model, env_id="GambitIHS-v0"):
    """Exact mean regret (over the 12 contexts) of the model's deterministic policy."""
    tables = gym.make(env_id).unwrapped.tables
    actions, _ = model.predict(tables.observations, deterministic=True)
    policy = tables.optimal_reward - tables.expected[np.arange(len(actions)), actions]
    uniform = tables.optimal_reward[:, None] - tables.expected
    return policy.mean(), uniform.mean()


def _train_ppo(venv):
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", venv, gamma=0.0, n_steps=32, batch_size=64, n_epochs=4,
                learning_rate=1e-2, policy_kwargs={"net_arch": [32]}, seed=0, device="cpu")
    model.learn(2048)
    return model


@pytest.mark.slow
def test_sb3_make_vec_env_dummy_trains_ppo():
    torch = pytest.importorskip("torch")
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    venv = make_vec_env("GambitIHS-v0", n_envs=4, seed=0)  # SB3 passes render_mode="rgb_array"
    try:
        assert venv.num_envs == 4 and venv.render_mode == "rgb_array"
        model = _train_ppo(venv)
    finally:
        venv.close()
    learned, uniform = _greedy_regret(model)
    assert learned < 0.3 * uniform, (learned, uniform)


SUBPROC_SCRIPT = """
import sys

import gymnasium
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv

import gambit_gym  # registers the ids (in the workers too: they re-import this script)

if __name__ == "__main__":
    torch.set_num_threads(1)
    venv = make_vec_env(sys.argv[1], n_envs=4, seed=0, vec_env_cls=SubprocVecEnv)
    model = PPO("MlpPolicy", venv, gamma=0.0, n_steps=32, batch_size=64, n_epochs=4,
                learning_rate=1e-2, policy_kwargs={"net_arch": [32]}, seed=0, device="cpu")
    model.learn(2048)
    venv.close()
    tables = gymnasium.make("GambitIHS-v0").unwrapped.tables
    actions, _ = model.predict(tables.observations, deterministic=True)
    regret = tables.optimal_reward - tables.expected[np.arange(12), actions]
    print("greedy_regret", regret.mean(), (tables.optimal_reward[:, None] - tables.expected).mean())
"""


@pytest.mark.slow
def test_sb3_make_vec_env_subproc_trains_ppo_from_a_user_script(tmp_path):
    """As a user runs it: a script that imports gambit_gym, SubprocVecEnv workers, PPO."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("stable_baselines3")
    script = tmp_path / "train.py"
    script.write_text(SUBPROC_SCRIPT)
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(script), "GambitIHS-v0"], capture_output=True,
                         text=True, timeout=600, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    learned, uniform = map(float, out.stdout.split("greedy_regret")[1].split())
    assert learned < 0.3 * uniform, out.stdout


def test_module_prefixed_id_works_in_subprocess_workers_without_an_import():
    """``"gambit_gym:GambitIHS-v0"`` imports the package itself, in any worker."""
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = make_vec_env("gambit_gym:GambitIHS-v0", n_envs=2, seed=5, vec_env_cls=SubprocVecEnv)
    try:
        first = venv.reset()
        _, rewards, _, infos = venv.step(np.array([0, 1]))
    finally:
        venv.close()
    single = gym.make("GambitIHS-v0")
    obs, _ = single.reset(seed=5)
    assert np.array_equal(first[0], obs)
    assert rewards[0] == pytest.approx(single.step(0)[1]) and "regret" in infos[0]


def test_expected_rewards_accepts_what_info_context_holds():
    env = gym.make("GambitIHS-v0")
    _, reset_info = env.reset(seed=2)
    tables = env.unwrapped.tables
    first = env.unwrapped.expected_rewards(reset_info["context"])
    _, _, _, _, info = env.step(0)
    oracle = env.unwrapped.expected_rewards(info["context"])
    assert np.array_equal(first, oracle)  # the step's context is the reset's
    assert info["optimal_action"] == int(np.argmax(oracle))
    assert info["expected_reward"] == oracle[0]
    vec = gym.make_vec("GambitIHS-v0", 3, vectorization_mode="vector_entry_point")
    vec.reset(seed=2)
    _, _, _, _, vinfo = vec.step(np.array([0, 1, 2]))
    for r in range(3):
        row = vec.unwrapped.expected_rewards(vinfo["context"][r])
        assert row[r] == vinfo["expected_reward"][r]
    with pytest.raises(ValueError, match="not a context label"):
        env.unwrapped.expected_rewards("kitchen, 3 steps")
    assert np.array_equal(env.unwrapped.expected_rewards(tables.observations[7]),
                          tables.expected[7])


@pytest.mark.parametrize("env_id", ["GambitIHS-v0", "MixedEffectLinear-v0"])
def test_max_episode_steps_beyond_the_horizon_is_honoured_or_refused(env_id):
    def length(env):
        env.reset(seed=0)
        for n in range(1, 10_000):
            *_, terminated, truncated, _ = env.step(0)
            if terminated or truncated:
                return n

    kwargs = SMALL.get(env_id, {})
    assert length(gym.make(env_id, horizon=7, **kwargs)) == 7
    assert length(gym.make(env_id, max_episode_steps=6000, **kwargs)) == 6000
    assert length(gym.make(env_id, max_episode_steps=5, horizon=7, **kwargs)) == 5
    with pytest.raises(ValueError, match="max_episode_steps=6000 is larger than horizon=7"):
        gym.make(env_id, max_episode_steps=6000, horizon=7, **kwargs)


def test_max_episode_steps_sets_the_native_vector_horizon():
    vec = gym.make_vec("GambitIHS-v0", 2, vectorization_mode="vector_entry_point",
                       max_episode_steps=3)
    vec.reset(seed=0)
    flags = [vec.step(np.zeros(2, dtype=int))[3].all() for _ in range(3)]
    assert flags == [False, False, True] and vec.unwrapped.config.horizon == 3
    with pytest.raises(ValueError, match="larger than horizon=5"):
        gym.make_vec("GambitIHS-v0", 2, vectorization_mode="vector_entry_point",
                     max_episode_steps=30, horizon=5)


@pytest.mark.parametrize("env_id", [i for i in FAST_IDS if i.startswith("Gambit")])
def test_info_values_are_numpy_values_or_strings(env_id, env_kwargs):
    from gambit_gym.envs.checks import check_info_values

    env = gym.make(env_id, **env_kwargs(env_id))
    _, info = env.reset(seed=0)
    check_info_values(info)
    _, _, _, _, info = env.step(0)
    check_info_values(info)
    assert isinstance(info["text"], str) and isinstance(info["context"], str)
    with pytest.raises(AssertionError, match="info\\['bad'\\] is a dict"):
        check_info_values({"bad": {"nested": 1}})


def test_vector_and_population_envs_name_themselves_and_their_own_kwargs():
    from gambit_gym.envs import gambit_population_v0

    with pytest.raises(TypeError, match=r"GambitVectorEnv.__init__\(\) got an unexpected "
                                        r"keyword argument 'foo'; valid keyword arguments: "
                                        r"num_envs, autoreset_mode"):
        gym.make_vec("GambitIHS-v0", 2, vectorization_mode="vector_entry_point", foo=1)
    with pytest.raises(TypeError, match=r"GambitPopulationEnv.__init__\(\) got an unexpected "
                                        r"keyword argument 'foo'; valid keyword arguments: "
                                        r"n_users, spread"):
        gambit_population_v0.parallel_env(foo=1)


@pytest.mark.parametrize("env_id", FAST_IDS)
@pytest.mark.parametrize("mode", ["ansi", "rgb_array"])
def test_gymnasium_check_env_with_its_render_check(env_id, mode, env_kwargs):
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(env_id, render_mode=mode, **SMALL.get(env_id, {}),
                           **env_kwargs(env_id)).unwrapped)
