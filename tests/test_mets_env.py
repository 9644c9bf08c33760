"""Behaviour of the mixed-effect envs beyond the shared contract tests."""

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym.envs.mixed_effect import MixedEffectConfig

IDS = ["MixedEffectLinear-v0", "MixedEffectLogistic-v0"]


@pytest.mark.parametrize("env_id", IDS)
def test_defaults_match_the_paper(env_id):
    env = gym.make(env_id)
    cfg = env.unwrapped.config
    assert (cfg.n_actions, cfg.n_effects, cfg.dim, cfg.horizon) == (100, 3, 2, 5000)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (100, 2) and obs.dtype == np.float32
    extra = env.unwrapped.describe().extra
    assert np.array_equal(extra["sigma_psi"], 3 * np.eye(6))
    assert np.array_equal(extra["sigma_0"], np.eye(2))
    assert np.array_equal(extra["mu_psi"], np.zeros(6))
    b = extra["b"]
    high = 1.0 if env_id == "MixedEffectLinear-v0" else 2.0
    assert b.shape == (100, 3) and b.min() >= -1 and b.max() <= high and b.max() > 0.9 * high


def test_parameters_follow_the_prior():
    env = gym.make("MixedEffectLinear-v0", n_actions=2000, sigma_0=0.5).unwrapped
    env.reset(seed=3)
    resid = env.theta - env._b @ env._psi.reshape(3, 2)
    np.testing.assert_allclose(np.cov(resid.T), 0.5 * np.eye(2), atol=0.06)


def test_contexts_come_from_a_pool_and_vary_per_action():
    env = gym.make("MixedEffectLinear-v0", n_contexts=5).unwrapped
    obs, _ = env.reset(seed=1)
    rows = {tuple(r) for r in obs}
    assert 1 < len(rows) <= 5
    obs2, *_ = env.step(0)
    assert {tuple(r) for r in obs2} <= {tuple(r) for r in env._pool.astype(np.float32)}


@pytest.mark.parametrize("env_id", IDS)
def test_regret_is_zero_for_the_optimal_action_and_positive_otherwise(env_id):
    env = gym.make(env_id, n_actions=10).unwrapped
    env.reset(seed=5)
    means = env.expected_rewards()
    best, worst = int(means.argmax()), int(means.argmin())
    _, reward, term, trunc, info = env.step(best)
    assert info["regret"] == 0.0 and info["optimal_action"] == best
    assert type(reward) is float and type(term) is bool and type(trunc) is bool
    means = env.expected_rewards()
    _, _, _, _, info = env.step(int(means.argmin()))
    assert info["regret"] > 0 and worst >= 0


def test_logistic_rewards_are_bernoulli_with_the_right_mean():
    env = gym.make("MixedEffectLogistic-v0", n_actions=3, n_contexts=1, horizon=4000).unwrapped
    env.reset(seed=2)
    rewards, means = [], []
    for _ in range(4000):
        means.append(env.expected_rewards()[0])
        rewards.append(env.step(0)[1])
    assert set(rewards) <= {0.0, 1.0}
    assert abs(np.mean(rewards) - means[0]) < 4 * 0.5 / np.sqrt(4000)


def test_truncates_at_the_horizon_and_then_refuses_to_step():
    env = gym.make("MixedEffectLinear-v0", horizon=3).unwrapped
    env.reset(seed=0)
    flags = [env.step(0)[3] for _ in range(3)]
    assert flags == [False, False, True]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_describe_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        gym.make("MixedEffectLinear-v0").unwrapped.describe()


def test_same_seed_same_problem_other_seed_other_problem():
    a, b = (gym.make("MixedEffectLinear-v0").unwrapped for _ in range(2))
    a.reset(seed=7)
    b.reset(seed=7)
    assert np.array_equal(a.theta, b.theta)
    b.reset(seed=8)
    assert not np.array_equal(a.theta, b.theta)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"n_actoins": 5}, TypeError,
         "got an unexpected keyword argument 'n_actoins'; valid keyword arguments: n_actions"),
        ({"n_actions": 1}, ValueError, "at least 2"),
        ({"n_effects": 0}, ValueError, "n_effects"),
        ({"dim": 2.5}, ValueError, "dim"),
        ({"sigma": -1.0}, ValueError, "sigma"),
        ({"b_low": 1.0, "b_high": 0.0}, ValueError, "b_low < b_high"),
        ({"mu_psi": [0.0, 1.0]}, ValueError, "L\\*d = 6"),
        ({"sigma_psi": np.eye(3)}, ValueError, "\\(6, 6\\)"),
        ({"sigma_0": -np.eye(2)}, ValueError, "positive definite"),
        ({"sigma_0": 0.0}, ValueError, "positive"),
        ({"link": "probit"}, TypeError, "link is fixed"),
    ],
)
def test_invalid_configurations(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        gym.make("MixedEffectLinear-v0", **kwargs)


def test_sigma_is_rejected_on_the_logistic_env():
    with pytest.raises(ValueError, match="linear env only"):
        gym.make("MixedEffectLogistic-v0", sigma=0.5)


def test_config_accepts_arrays_and_stays_hashable():
    cfg = MixedEffectConfig(mu_psi=np.ones((3, 2)), sigma_psi=2 * np.eye(6), sigma_0=np.eye(2))
    hash(cfg)
    mu, cov_psi, cov_0 = cfg.prior_arrays()
    assert mu.shape == (6,) and cov_psi[0, 0] == 2.0 and cov_0.shape == (2, 2)


@pytest.mark.parametrize("bad", [100, -1, 0.5, float("nan"), np.array([0, 1]), True, None, "0"])
def test_invalid_actions_raise_value_errors(bad):
    env = gym.make("MixedEffectLinear-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="0..99"):
        env.step(bad)


def test_numpy_integer_actions_are_accepted():
    env = gym.make("MixedEffectLinear-v0").unwrapped
    env.reset(seed=0)
    env.step(np.int64(3))
    env.step(np.array(4))
