"""The agent API and the runner given wrong input: a clear error naming the argument and
what is expected, never a silent cast. Tables of (call, error, message pattern)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401
from gambit_gym.agents import make
from gambit_gym.agents.classic import RandomAgent
from gambit_gym.bench import run

AGENTS = ["StdTS", "StdTS-Contextual", "UCB1", "EpsilonGreedy", "LinTS", "LinUCB",
          "poGAMBITTS", "Random"]


@pytest.fixture(scope="module")
def env():
    return gym.make("GambitIHS-v0", n_prompts=5)


def _ready(name, env):
    agent = make(name)
    agent.reset(env.unwrapped.describe(), seed=0)
    obs, _ = env.reset(seed=0)
    return agent, obs


# ------------------------------------------------------------------ update(obs, action, ...)
BAD_UPDATES = [
    (2.9, 1.0, r"action must be an integer in 0\.\.4, got 2\.9"),
    (3.99, 1.0, r"action must be an integer in 0\.\.4, got 3\.99"),
    ("1", 1.0, r"action must be an integer in 0\.\.4, got '1'"),
    (True, 1.0, r"action must be an integer in 0\.\.4, got True"),
    (-1, 1.0, r"action must be an integer in 0\.\.4, got -1"),
    (5, 1.0, r"action must be an integer in 0\.\.4, got 5"),
    (1, float("nan"), r"reward must be a finite number, got nan"),
    (1, "3", r"reward must be a finite number, got '3'"),
    (1, None, r"reward must be a finite number, got None"),
]


@pytest.mark.parametrize("name", AGENTS)
@pytest.mark.parametrize("action, reward, pattern", BAD_UPDATES,
                         ids=[f"{a!r}-{r!r}" for a, r, _ in BAD_UPDATES])
def test_update_refuses(name, env, action, reward, pattern):
    agent, obs = _ready(name, env)
    with pytest.raises(ValueError, match=pattern):
        agent.update(obs, action, reward, {})


@pytest.mark.parametrize("name", ["StdTS", "LinTS"])
def test_update_takes_numpy_integers_and_learns_the_same(name, env):
    a, obs = _ready(name, env)
    b, _ = _ready(name, env)
    a.update(obs, 2, 80.0, {})
    b.update(obs, np.int64(2), np.float32(80.0), {})
    assert a.act(obs) == b.act(obs)


# ------------------------------------------------------------------ batched form
def _batched(env_k=5, replicates=3):
    vec = gym.make_vec("GambitIHS-v0", num_envs=replicates,
                       vectorization_mode="vector_entry_point", n_prompts=env_k)
    obs, _ = vec.reset(seed=0)
    agent = make("StdTS")
    agent.reset_batch(vec.unwrapped.describe(), 0, replicates)
    return agent, obs, vec


@pytest.mark.parametrize("actions, rewards, pattern", [
    (np.array([0.0, 1.0, 2.0]), np.zeros(3), r"actions must be integers in 0\.\.4, got dtype"),
    (np.array([True, False, True]), np.zeros(3), r"actions must be integers .*dtype bool"),
    (np.array([0, 1, 5]), np.zeros(3), r"actions must be integers in 0\.\.4, got \[5\]"),
    (np.array([0, -1, 2]), np.zeros(3), r"got \[-1\] at positions \[1\]"),
    (np.arange(481), np.zeros(3), r"actions must have shape \(3,\) \(one per replicate\), got "
                                  r"shape \(481,\)"),
    (np.array([0, 1, 2]), np.zeros(481), r"rewards must have shape \(3,\)"),
    (np.array([0, 1, 2]), np.array([0.0, np.inf, 1.0]), r"rewards must be finite, got \[inf\]"),
])
def test_update_batch_refuses(actions, rewards, pattern):
    agent, obs, vec = _batched()
    with pytest.raises(ValueError, match=pattern):
        agent.update_batch(obs, actions, rewards, {})
    vec.close()


@pytest.mark.parametrize("n", [0, 2.5, True, "9"])
def test_action_probabilities_n_samples(n, env):
    agent, obs = _ready("StdTS", env)
    with pytest.raises(ValueError, match=r"n_samples must be a positive integer"):
        agent.action_probabilities(obs, n)


# ------------------------------------------------------------------ agent constructors
AGENT_KWARGS = [
    ("StdTS", {"nu": True}, r"nu must be a finite number > 0, got True"),
    ("StdTS", {"nu": "5"}, r"nu must be a finite number > 0, got '5'"),
    ("StdTS", {"m": "77"}, r"m must be a finite number, got '77'"),
    ("StdTS", {"alpha": float("inf")}, r"alpha must be a finite number > 0"),
    ("poGAMBITTS", {"prior_mean": "0"}, r"prior_mean must be a finite number"),
    ("PPO", {"total_timesteps": -5}, r"total_timesteps is not a hyperparameter here"),
    ("PPO", {"n_steps": 2.5}, r"n_steps must be a positive integer, got 2\.5"),
    ("PPO", {"gamma": True}, r"gamma must be a finite number >= 0 and <= 1, got True"),
    ("PPO", {"learnin_rate": 1e-3}, r"PPO does not take 'learnin_rate'; its hyperparameters"),
    ("DQN", {"buffer_size": 0}, r"buffer_size must be a positive integer"),
]


@pytest.mark.parametrize("name, kwargs, pattern", AGENT_KWARGS,
                         ids=[f"{n}-{k}" for n, k, _ in AGENT_KWARGS])
def test_agent_kwargs_refused(name, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make(name, **kwargs)


# ------------------------------------------------------------------ the runner
class _Bad:
    """A user's own agent (the plain protocol) whose act() or action_probabilities() is wrong."""

    def __init__(self, action=None, probs=None):
        self._action, self._probs = action, probs

    def reset(self, spec, seed=None):
        self.k = spec.n_actions
        self.rng = np.random.default_rng(seed)

    def act(self, obs):
        return self._action if self._action is not None else int(self.rng.integers(self.k))

    def update(self, obs, action, reward, info):
        pass

    def action_probabilities(self, obs, n_samples=1000):
        return self._probs(self.k) if self._probs is not None else np.full(self.k, 1 / self.k)


RUNNER = [
    ({"action": 2.9}, r"the action returned by act\(\) must be an integer in 0\.\.4, got 2\.9"),
    ({"action": "1"}, r"the action returned by act\(\) must be an integer .*got '1'"),
    ({"action": -1}, r"the action returned by act\(\) must be an integer .*got -1"),
    ({"action": 1, "probs": lambda k: np.full(k, np.nan)},
     r"action_probabilities\(\) .*must be finite"),
    ({"action": 1, "probs": lambda k: np.full(k + 1, 1 / (k + 1))},
     r"action_probabilities\(\).* must have shape"),
    ({"action": 1, "probs": lambda k: np.eye(k)[0]},
     r"gives the chosen arm 1 probability 0"),
    ({"action": 1, "probs": lambda k: np.full(k, 0.5)}, r"must sum to 1 .*got sum 2\.5"),
    ({"action": 1, "probs": lambda k: np.r_[-0.5, 1.5, np.zeros(k - 2)]},
     r"must be non-negative"),
]


@pytest.mark.parametrize("kwargs, pattern", RUNNER, ids=[str(i) for i in range(len(RUNNER))])
def test_runner_checks_actions_and_propensities(kwargs, pattern):
    def factory():
        return _Bad(**kwargs)

    for env_id in ("GambitIHS-v0", "MixedEffectLinear-v0"):
        env_kwargs = {"n_prompts": 5} if env_id == "GambitIHS-v0" else {"n_actions": 5}
        with pytest.raises(ValueError, match=pattern):
            run(env_id, factory, horizon=3, replicates=2, seed=0, env_kwargs=env_kwargs,
                progress=False, propensities=True, n_propensity_samples=10)


@pytest.mark.parametrize("n", [2.5, 0, True])
def test_runner_n_propensity_samples(n):
    with pytest.raises(ValueError, match=r"n_propensity_samples must be a positive integer"):
        run("GambitIHS-v0", "Random", horizon=3, replicates=1, seed=0, progress=False,
            propensities=True, n_propensity_samples=n)


def test_runner_records_good_propensities():
    result = run("GambitIHS-v0", "StdTS", horizon=5, replicates=2, seed=0, progress=False,
                 env_kwargs={"n_prompts": 3}, propensities=True, n_propensity_samples=50)
    assert np.all(result.propensities > 0) and np.all(result.propensities <= 1)


class _BadBatched(RandomAgent):
    """A batched agent whose act_batch() or action_probabilities_batch() is wrong."""

    def __init__(self, mode="probs"):
        super().__init__()
        self.mode = mode

    def act_batch(self, obs):
        a = super().act_batch(obs)
        return a + 0.5 if self.mode == "float" else a

    def action_probabilities_batch(self, obs, n_samples=1000):
        p = super().action_probabilities_batch(obs, n_samples)
        if self.mode == "probs":
            p[1] = np.nan
        return p


@pytest.mark.parametrize("mode, pattern", [
    ("probs", r"action_probabilities_batch\(\) of replicate 1 must be finite"),
    ("float", r"the actions returned by act_batch\(\) must be integers in 0\.\.4, got dtype "
              r"float64"),
])
def test_runner_checks_the_batched_form(mode, pattern):
    with pytest.raises(ValueError, match=pattern):
        run("GambitIHS-v0", lambda: _BadBatched(mode), horizon=3, replicates=2, seed=0,
            env_kwargs={"n_prompts": 5}, progress=False, propensities=True,
            n_propensity_samples=10)


# ------------------------------------------------------------------ riddles turned into messages
def _fresh_stdts():
    env = gym.make("GambitIHS-v0", n_prompts=3)
    agent = make("StdTS")
    agent.reset(env.unwrapped.describe(), seed=0)
    return agent


RIDDLES = [
    (lambda: make(None), r"an agent must be a registered name.*got None"),
    (lambda: make(3), r"an agent must be a registered name.*got 3"),
    (lambda: run("GambitIHS-v0", None, horizon=3, replicates=1, seed=0, progress=False),
     r"an agent must be a registered name.*got None"),
    (lambda: run("GambitIHS-v0", "Random", horizon=3, replicates=1, seed=True, progress=False),
     r"seed must be a non-negative integer or None, got True"),
    (lambda: run("GambitIHS-v0", "Random", horizon=3, replicates=1, seed=None, progress=False),
     r"seed must be a non-negative integer \(a run is reproducible\)"),
    (lambda: run("GambitIHS-v0", "Random", horizon=3, replicates=1, seed=0, env_kwargs="x",
                 progress=False), r"env_kwargs must be a dict of keyword arguments, got 'x'"),
    (lambda: run("GambitIHS-v0", "Random", horizon=3, replicates=1, seed=0, agent_kwargs=[1],
                 progress=False), r"agent_kwargs must be a dict"),
    (lambda: _fresh_stdts().act(None), r"expected observations of shape \(2,\)"),
    (lambda: _fresh_stdts().act(np.zeros(481)), r"expected observations of shape \(2,\).*481"),
    (lambda: _fresh_stdts().act("abc"), r"expected observations of shape \(2,\)"),
    (lambda: make("StdTS").reset(None, seed=0),
     r"StdTS\.reset needs the env's description \(env\.unwrapped\.describe\(\)\)"),
    (lambda: make("gambit_gym.agents.classic:NoSuchAgent"),
     r"module 'gambit_gym\.agents\.classic' has no attribute 'NoSuchAgent'"),
    (lambda: make("gambit_gym.agents.classic:__doc__"), r"names a str, not an agent class"),
]


@pytest.mark.parametrize("call, pattern", RIDDLES, ids=[str(i) for i in range(len(RIDDLES))])
def test_riddles_become_messages(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
