"""The runner is fair by construction: one agent object per replicate, and agents see only what
a deployed app would see (the oracle fields stay with the runner)."""

import copy

import numpy as np
import pytest

import gambit_gym  # noqa: F401
from gambit_gym.agents.stdts import StdTS
from gambit_gym.bench import run
from gambit_gym.bench.agent_view import AGENT_KEYS, ORACLE_KEYS, AgentInfo, agent_info


class _Greedy:
    """A user's single-replicate agent: ε-greedy over per-context mean rewards (learns)."""

    def __init__(self, epsilon: float = 0.2):
        self.epsilon = epsilon

    def reset(self, spec, seed=None):
        self.rng = np.random.default_rng(seed)
        self.k = spec.n_actions
        self.sums = np.zeros((spec.n_contexts, self.k))
        self.counts = np.zeros((spec.n_contexts, self.k))
        self.extra_keys = set(spec.extra)

    def act(self, obs):
        c = int(obs[0]) * 4 + int(obs[1])
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.k))
        means = self.sums[c] / np.maximum(self.counts[c], 1)
        return int(np.argmax(means))

    def update(self, obs, action, reward, info):
        self.seen = set(info)
        c = info["context_id"]
        self.sums[c, action] += info["reward"]
        self.counts[c, action] += 1

    def action_probabilities(self, obs, n_samples=1000):
        c = int(obs[0]) * 4 + int(obs[1])
        p = np.full(self.k, self.epsilon / self.k)
        p[int(np.argmax(self.sums[c] / np.maximum(self.counts[c], 1)))] += 1 - self.epsilon
        return p


class _Peeker(_Greedy):
    """Reads the oracle's regret: must be stopped with a clear error."""

    def update(self, obs, action, reward, info):
        super().update(obs, action, reward, info)
        self.last_regret = info["regret"]


class _PeekerWithGet(_Greedy):
    def update(self, obs, action, reward, info):
        self.best = info.get("optimal_action", 0)


class _BatchedPeeker(StdTS):
    """A batched agent (the runner's fast path) that reads ``expected_reward``."""

    def _update(self, obs, actions, rewards, info):
        _ = info["expected_reward"]


def test_an_instance_gives_the_same_numbers_as_its_class():
    by_class = run("GambitIHS-v0", _Greedy, horizon=60, replicates=4, seed=3, progress=False)
    instance = _Greedy()
    by_instance = run("GambitIHS-v0", instance, horizon=60, replicates=4, seed=3,
                      progress=False)
    np.testing.assert_array_equal(by_class.regret, by_instance.regret)
    np.testing.assert_array_equal(by_class.actions, by_instance.actions)
    assert not hasattr(instance, "rng")  # the caller's instance is copied, never stepped
    # replicates really are separate learners: each one's numbers equal a one-replicate run
    for r in range(4):
        alone = run("GambitIHS-v0", _Greedy, horizon=60, replicates=1, seed=3 + r,
                    progress=False)
        np.testing.assert_array_equal(alone.regret[0], by_instance.regret[r])


def test_a_batched_instance_gives_the_same_numbers_as_its_name():
    by_name = run("GambitIHS-v0", "StdTS", horizon=40, replicates=3, seed=1, progress=False)
    by_instance = run("GambitIHS-v0", StdTS(), horizon=40, replicates=3, seed=1,
                      progress=False)
    np.testing.assert_array_equal(by_name.regret, by_instance.regret)


def test_a_factory_is_called_once_per_replicate():
    made = []

    def factory():
        agent = _Greedy(epsilon=0.3)
        made.append(agent)
        return agent

    run("GambitIHS-v0", factory, horizon=5, replicates=3, seed=0, progress=False)
    assert len({id(a) for a in made}) == 3


def test_an_instance_that_cannot_be_copied_is_refused_with_the_fix():
    class _Uncopyable(_Greedy):
        def __deepcopy__(self, memo):
            raise RuntimeError("holds a socket")

    with pytest.raises(TypeError, match="pass its class or a zero-argument factory"):
        run("GambitIHS-v0", _Uncopyable(), horizon=5, replicates=2, seed=0, progress=False)


class _Recorder(_Greedy):
    """Records, per agent object, the info keys and description extras it was given."""

    log: list = []

    def reset(self, spec, seed=None):
        super().reset(spec, seed)
        _Recorder.log.append(self)


@pytest.mark.parametrize("env_id", ["GambitIHS-v0", "GambitIHS-Covariates-v0"])
def test_agents_receive_only_deployed_app_keys(env_id):
    _Recorder.log.clear()
    run(env_id, _Recorder(), horizon=5, replicates=2, seed=0, progress=False)
    assert len({id(a) for a in _Recorder.log}) == 2
    for obj in _Recorder.log:
        assert obj.seen <= set(AGENT_KEYS)
        assert {"reward", "context_id", "text", "embedding", "prompt"} <= obj.seen
        assert not obj.seen & ORACLE_KEYS
        assert "expected_rewards" not in obj.extra_keys  # the oracle's table is removed too


@pytest.mark.parametrize("agent", [_Peeker, _PeekerWithGet, _BatchedPeeker])
def test_an_agent_reading_an_oracle_key_gets_a_clear_error(agent):
    with pytest.raises(KeyError, match="evaluation-only.*stay with the runner"):
        run("GambitIHS-v0", agent, horizon=5, replicates=2, seed=0, progress=False)


def test_the_oracle_reference_still_reads_its_table():
    res = run("GambitIHS-v0", "Oracle", horizon=30, replicates=2, seed=0, progress=False)
    assert np.all(res.regret == 0)


def test_agent_info_is_a_dict_without_oracle_fields():
    env_info = {"text": "t", "embedding": np.zeros(3), "regret": 0.5, "expected_reward": 1.0,
                "optimal_action": 2, "optimal_expected_reward": 1.5, "_text": np.ones(1)}
    info = agent_info(env_info, 1.25, 7)
    assert isinstance(info, dict)
    assert set(info) == {"text", "embedding", "reward", "context_id"}
    assert info.get("prompt", "none") == "none"
    clone = copy.deepcopy(info)
    assert isinstance(clone, AgentInfo) and set(clone) == set(info)
    for key in ORACLE_KEYS:
        assert key not in info
        with pytest.raises(KeyError, match=f"info\\['{key}'\\] is evaluation-only"):
            info[key]
    with pytest.raises(KeyError) as err:
        info["nope"]
    assert "evaluation-only" not in str(err.value)
