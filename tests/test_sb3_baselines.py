"""stable-baselines3 baselines: SB3's check_env over the registry, online runs, RunResult."""

import warnings

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym import agents
from gambit_gym.baselines import SB3Baseline, run_sb3
from gambit_gym.bench.result import RunResult
from gambit_gym.core.protocol import WholeRunAgent
from gambit_gym.envs.registration import registered_ids

pytest.importorskip("stable_baselines3")

CHECK_IDS = [i for i in registered_ids() if i != "GambitIHS-Live-v0"]
LOW_NOISE = {"noise_sd": 0.1}


@pytest.mark.parametrize("env_id", CHECK_IDS, ids=CHECK_IDS)
def test_sb3_check_env_passes(env_id, env_kwargs):
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings():
        if env_id.startswith("Gambit"):
            warnings.simplefilter("error")  # GAMBIT envs pass without a single warning
        else:
            # the meTS envs' (K, d) context matrix is legal but not SB3's preferred 1-D shape
            warnings.filterwarnings("ignore", message=".*unconventional shape")
        check_env(gym.make(env_id, **env_kwargs(env_id)).unwrapped, warn=True)


@pytest.mark.parametrize("name", ["PPO", "A2C", "DQN"])
def test_registered_names_make_sb3_baselines(name):
    baseline = agents.make(name, learning_rate=1e-3)
    assert isinstance(baseline, SB3Baseline)
    assert isinstance(baseline, WholeRunAgent) and baseline.algo == name
    assert baseline.hyperparameters()["learning_rate"] == 1e-3
    assert baseline.hyperparameters()["gamma"] == 0.0


@pytest.mark.parametrize("algo", ["PPO", "A2C", "DQN"])
def test_short_run_returns_a_complete_run_result(algo):
    result = run_sb3("GambitIHS-v0", algo, horizon=40, replicates=2, seed=1,
                     env_kwargs=LOW_NOISE, learning_starts=10) if algo == "DQN" else \
        run_sb3("GambitIHS-v0", algo, horizon=40, replicates=2, seed=1, env_kwargs=LOW_NOISE)
    assert isinstance(result, RunResult)
    for arr in (result.regret, result.rewards, result.actions, result.propensities,
                result.contexts):
        assert arr.shape == (2, 40)
    assert np.all(result.regret >= 0)
    assert np.all((result.propensities > 0) & (result.propensities <= 1))
    assert np.all((result.actions >= 0) & (result.actions < 5))
    assert result.metadata["runner"] == "sb3" and result.agent == algo


def test_regret_and_contexts_match_the_env_oracle():
    result = run_sb3("GambitIHS-v0", "A2C", horizon=30, replicates=1, seed=5,
                     env_kwargs=LOW_NOISE)
    env = gym.make("GambitIHS-v0", **LOW_NOISE)
    expected = env.unwrapped.tables.expected
    c, a = result.contexts[0], result.actions[0]
    oracle = expected.max(axis=1)[c] - expected[c, a]
    np.testing.assert_allclose(result.regret[0], oracle)


def test_ppo_beats_uniform_random_on_a_low_noise_env_and_is_reproducible():
    horizon = 600
    first = run_sb3("GambitIHS-v0", "PPO", horizon=horizon, replicates=2, seed=0,
                    env_kwargs=LOW_NOISE)
    again = run_sb3("GambitIHS-v0", "PPO", horizon=horizon, replicates=2, seed=0,
                    env_kwargs=LOW_NOISE)
    np.testing.assert_array_equal(first.actions, again.actions)
    np.testing.assert_array_equal(first.regret, again.regret)
    # Uniform random's expected regret per step: the mean gap to the best arm, per context.
    env = gym.make("GambitIHS-v0", **LOW_NOISE)
    expected = env.unwrapped.tables.expected
    random_per_step = (expected.max(axis=1) - expected.mean(axis=1))[first.contexts].mean()
    random_total = random_per_step * horizon
    ppo_total = first.final_regret().mean()
    assert ppo_total < 0.5 * random_total, (ppo_total, random_total)


def test_invalid_arguments_raise_clear_errors():
    table = [
        (dict(algo="SAC"), ValueError, "algo must be one of"),
        (dict(algo="PPO", hyper={"gamma": 2.0}), ValueError, "gamma must be a finite number"),
    ]
    for kwargs, error, pattern in table:
        with pytest.raises(error, match=pattern):
            SB3Baseline(**kwargs)
    baseline = SB3Baseline("PPO")
    for kwargs, error, pattern in [
        (dict(horizon=0), ValueError, "horizon must be"),
        (dict(horizon=5, replicates=0), ValueError, "replicates must be"),
        (dict(horizon=5, device="tpu"), ValueError, "device must be one of"),
    ]:
        with pytest.raises(error, match=pattern):
            baseline.run("GambitIHS-v0", **kwargs)


@pytest.mark.parametrize("device", ["auto", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_devices_give_a_run(device):
    result = run_sb3("GambitIHS-v0", "A2C", horizon=16, replicates=1, seed=0,
                     env_kwargs=LOW_NOISE, device=device)
    assert result.regret.shape == (1, 16) and result.metadata["device"] == device


def test_bench_run_hands_registered_sb3_names_to_the_sb3_runner():
    from gambit_gym.bench import run

    result = run("GambitIHS-v0", "DQN", horizon=20, replicates=2, seed=3, env_kwargs=LOW_NOISE,
                 agent_kwargs={"learning_starts": 5}, progress=False)
    direct = run_sb3("GambitIHS-v0", "DQN", horizon=20, replicates=2, seed=3,
                     env_kwargs=LOW_NOISE, learning_starts=5)
    assert result.agent == "DQN" and result.metadata["runner"] == "sb3"
    np.testing.assert_array_equal(result.actions, direct.actions)


def test_sb3_runs_write_no_log_folders(tmp_path, monkeypatch):
    """SB3's default logger makes an SB3-<date> folder in the temp directory on every run."""
    import tempfile

    from gambit_gym.baselines.sb3 import run_sb3

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    for algo in ("PPO", "DQN"):
        run_sb3("GambitIHS-v0", algo, horizon=16, replicates=1, seed=0)
    assert [p.name for p in tmp_path.glob("SB3-*")] == []
