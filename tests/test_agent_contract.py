"""Contract tests over every registered agent (``gambit_gym.agents.names()``).

Each agent runs on the first env of its ``supported_envs`` (``GambitIHS-v0`` where empty): the
protocol, seeded determinism, valid actions, propensities that sum to 1, and pickling. Agents
that are not step-by-step (a ``WholeRunAgent``, e.g. the stable-baselines3 adapters, which own
their loop) or whose env is not registered are skipped with the reason.
"""

import pickle

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401
from gambit_gym.agents import names, resolve
from gambit_gym.core.protocol import WholeRunAgent

# Small settings so that every agent acts after learning within the short rollout.
SMALL = {
    "ens-poGAMBITTS": {"n_members": 3, "hidden": 8, "batch_size": 8, "burn_in": 8,
                       "device": "cpu"},
    "ens-foGAMBITTS": {"n_members": 3, "hidden": 8, "batch_size": 8, "burn_in": 8,
                       "n_embedding_draws": 10, "device": "cpu"},
}
STEPS = 15


def _setup(name):
    try:
        factory = resolve(name)
    except ImportError as exc:  # optional dependency missing
        pytest.skip(f"{name}: {exc}")
    if isinstance(factory, type) and issubclass(factory, WholeRunAgent):
        pytest.skip(f"{name} runs whole through its own loop (a WholeRunAgent); "
                    "its contract is tested with its runner")
    env_id = (getattr(factory, "supported_envs", ()) or ("GambitIHS-v0",))[0]
    if env_id not in gym.registry:
        pytest.skip(f"{name} needs env {env_id!r}, which is not registered")
    return factory, env_id


def _rollout(name, seed, steps=STEPS):
    factory, env_id = _setup(name)
    env = gym.make(env_id, horizon=steps)
    obs, _ = env.reset(seed=seed)
    agent = factory(**SMALL.get(name, {}))
    agent.reset(env.unwrapped.describe(), seed)
    actions, probs = [], []
    for _ in range(steps):
        p = np.asarray(agent.action_probabilities(obs, n_samples=200))
        a = agent.act(obs)
        assert isinstance(a, (int, np.integer)) and env.action_space.contains(int(a))
        nxt, reward, terminated, truncated, info = env.step(int(a))
        agent.update(obs, int(a), float(reward), info)
        actions.append(int(a))
        probs.append(p)
        obs = nxt
    return agent, np.array(actions), np.array(probs), env


@pytest.mark.parametrize("name", names())
def test_agent_protocol_determinism_and_propensities(name):
    agent, actions, probs, env = _rollout(name, seed=3)
    k = env.action_space.n
    assert probs.shape == (STEPS, k)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(probs >= 0)
    _, again, probs_again, _ = _rollout(name, seed=3)
    np.testing.assert_array_equal(actions, again)
    np.testing.assert_allclose(probs, probs_again)


@pytest.mark.parametrize("name", names())
def test_agent_pickles_and_resumes(name):
    """The clone continues exactly as the original: 20 further decisions and updates on two
    envs seeded alike (one matching decision out of K would often match by chance)."""
    agent, _, _, _ = _rollout(name, seed=1)
    clone = pickle.loads(pickle.dumps(agent))
    _, env_id = _setup(name)
    assert _continue(clone, env_id) == _continue(agent, env_id)


def _continue(agent, env_id, steps=20, seed=9):
    env = gym.make(env_id, horizon=steps)
    obs, _ = env.reset(seed=seed)
    actions = []
    for _ in range(steps):
        a = int(agent.act(obs))
        nxt, reward, _, _, info = env.step(a)
        agent.update(obs, a, float(reward), info)
        actions.append(a)
        obs = nxt
    return actions
