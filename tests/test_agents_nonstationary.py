"""Agents for non-stationary users: they credit rewards correctly, and beat their unaware
counterparts where the dynamic bites (small R, short horizon, the benchmark runner)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym.agents import make
from gambit_gym.bench import run


def _play(env_id, agent_name, steps, seed=0, **env_kwargs):
    env = gym.make(env_id, horizon=steps, **env_kwargs)
    agent = make(agent_name)
    agent.reset(env.unwrapped.describe(), seed=seed)
    obs, _ = env.reset(seed=seed)
    log = []
    for _ in range(steps):
        a = agent.act(obs)
        nxt, reward, _, _, info = env.step(a)
        agent.update(obs, a, reward, info)
        log.append((a, reward, info))
        obs = nxt
    return agent, log


def test_delayed_rewards_are_credited_to_the_step_they_belong_to():
    k, steps = 3, 80
    agent, log = _play("GambitIHS-Delayed-v0", "StdTS-Observed", steps, reward_delay=k,
                       noise_level=2)
    actions = np.array([a for a, _, _ in log])
    # every arrived reward counted once, for the arm chosen at its step (the last k never came)
    np.testing.assert_array_equal(agent.count[0, 0], np.bincount(actions[:steps - k],
                                                                 minlength=5))
    for arm in range(5):
        own = [log[t + k][1] for t in range(steps - k) if actions[t] == arm]
        if own:
            assert agent.mean[0, 0, arm] == pytest.approx(np.mean(own))


def test_missing_rewards_are_skipped():
    agent, log = _play("GambitIHS-Missing-v0", "StdTS-Observed", 120, missing_rate=0.5)
    seen = np.array([bool(info["reward_observed"]) for _, _, info in log])
    actions = np.array([a for a, _, _ in log])
    assert 0 < seen.sum() < len(seen)
    np.testing.assert_array_equal(agent.count[0, 0], np.bincount(actions[seen], minlength=5))
    rewards = np.array([r for _, r, _ in log])
    for arm in np.flatnonzero(agent.count[0, 0]):  # the mean of the observed rewards: no zeros
        assert agent.mean[0, 0, arm] == pytest.approx(rewards[seen & (actions == arm)].mean())


def test_discounted_ts_statistics_decay_by_gamma():
    agent, log = _play("GambitIHS-v0", "DiscountedTS", 30)
    actions = np.array([a for a, _, _ in log])
    rewards = np.array([r for _, r, _ in log])
    weights = agent.gamma ** np.arange(29, -1, -1)
    for arm in range(5):
        assert agent.count[0, 0, arm] == pytest.approx(weights[actions == arm].sum())
        assert agent.total[0, 0, arm] == pytest.approx((weights * rewards)[actions == arm].sum())


@pytest.mark.parametrize("observed, plain", [("StdTS-Observed", "StdTS"),
                                             ("poGAMBITTS-Observed", "poGAMBITTS")])
def test_observed_agent_is_its_plain_self_where_every_reward_is_observed_at_once(observed,
                                                                               plain):
    a = run("GambitIHS-v0", plain, horizon=60, replicates=3, seed=2, progress=False)
    b = run("GambitIHS-v0", observed, horizon=60, replicates=3, seed=2, progress=False)
    np.testing.assert_array_equal(a.actions, b.actions)


def test_observed_pogambitts_learns_exactly_what_arrived_with_its_own_message():
    """Its posterior equals poGAMBITTS's fed only the observed (message, reward) pairs."""
    k, steps = 2, 150
    env = gym.make("GambitIHS-Delayed-v0", horizon=steps, reward_delay=k, missing_rate=0.3,
                   noise_level=2)
    agent, plain = make("poGAMBITTS-Observed"), make("poGAMBITTS")
    agent.reset(env.unwrapped.describe(), seed=1)
    plain.reset(env.unwrapped.describe(), seed=1)
    obs, _ = env.reset(seed=1)
    past = []
    for _t in range(steps):
        a = agent.act(obs)
        nxt, reward, _, _, info = env.step(a)
        agent.update(obs, a, reward, info)
        past.append((obs, a, info["embedding"]))
        if info["reward_observed"]:
            o, pa, z = past[int(info["reward_step"])]
            plain.update(o, pa, reward, {"embedding": z})
        obs = nxt
    np.testing.assert_allclose(agent.model.mu, plain.model.mu, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(agent.model.a, plain.model.a)
    np.testing.assert_allclose(agent.model.b, plain.model.b, rtol=1e-9)


@pytest.mark.parametrize("env_id, aware, unaware", [
    ("GambitIHS-Delayed-v0", "StdTS-Observed", "StdTS"),
    ("GambitIHS-Missing-v0", "StdTS-Observed", "StdTS"),
    ("GambitIHS-Delayed-v0", "poGAMBITTS-Observed", "poGAMBITTS"),
    ("GambitIHS-Missing-v0", "poGAMBITTS-Observed", "poGAMBITTS"),
    ("GambitIHS-Disengage-v0", "poGAMBITTS-Observed", "poGAMBITTS"),
    ("GambitIHS-ChangePoint-v0", "DiscountedTS", "StdTS"),
])
def test_aware_agent_beats_its_unaware_counterpart_where_the_dynamic_bites(env_id, aware,
                                                                           unaware):
    """Mean cumulative regret at T = 400 over 8 replicates, lower by more than 2 SE."""
    def cumulative(agent):
        res = run(env_id, agent, horizon=400, replicates=8, seed=0, progress=False)
        return res.regret.sum(axis=1)

    good, bad = cumulative(aware), cumulative(unaware)
    se = np.sqrt(good.var(ddof=1) / len(good) + bad.var(ddof=1) / len(bad))
    assert bad.mean() - good.mean() > 2 * se, (good.mean(), bad.mean(), se)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"gamma": 0.0}, r"gamma must be a finite number > 0"),
    ({"gamma": 1.5}, r"gamma must be a finite number > 0 and <= 1"),
    ({"prior_sd": -1.0}, r"prior_sd"),
    ({"sigma": 0.0}, r"sigma"),
    ({"contextual": "yes"}, r"contextual must be True or False"),
])
def test_discounted_ts_refuses_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make("DiscountedTS", **kwargs)


# ------------------------------------------------------------------ poGAMBITTS-Burden
def test_burden_agent_without_habituation_is_observed_pogambitts():
    a = run("GambitIHS-Disengage-v0", "poGAMBITTS-Observed", horizon=80, replicates=3, seed=4,
            progress=False)
    b = run("GambitIHS-Disengage-v0", "poGAMBITTS-Burden", horizon=80, replicates=3, seed=4,
            progress=False, agent_kwargs={"habituation": 0.0})
    np.testing.assert_array_equal(a.actions, b.actions)


def test_burden_agent_memory_and_arm_scores_follow_its_model():
    """Memory ``m ← λm + ẑ`` of the messages received; each arm's embedding now is its cell's
    average of ``z̄ + exp(-η max(0, ẑ·m))(z - z̄)``, recomputed here from the simulator."""
    env = gym.make("GambitIHS-Habituation-v0", horizon=30)
    obs, _ = env.reset(seed=1)
    agent = make("poGAMBITTS-Burden", habituation=1.5, memory=0.7)
    spec = env.unwrapped.describe()
    agent.reset(spec, 1)
    sim = spec.simulator
    every = np.concatenate([sim.cell_embeddings(a, c) for a in range(5)
                            for c in range(12)]).astype(np.float64)
    center, spread = every.mean(axis=0), every.std(axis=0)

    def unit(z):
        x = (np.asarray(z, np.float64) - center) / spread
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    memory = np.zeros(3)
    for _ in range(30):
        a = agent.act(obs)
        nxt, r, _, _, info = env.step(int(a))
        agent.update(obs, int(a), float(r), info)
        memory = 0.7 * memory + unit(info["embedding"])
        obs = nxt
    np.testing.assert_allclose(agent.recent[0], memory, rtol=1e-9)
    c = int(env.unwrapped._context)
    arms = agent._arm_embeddings(np.array([c]))[0]
    for k in range(5):
        z = np.asarray(sim.cell_embeddings(k, c), np.float64)
        kept = np.exp(-1.5 * np.maximum(unit(z) @ memory, 0.0))
        want = center + (kept[:, None] * (z - center)).mean(axis=0)
        np.testing.assert_allclose(arms[k], want, rtol=1e-9)


def test_burden_agent_beats_pogambitts_where_the_user_disengages():
    """R = 16, T = 400 on GambitIHS-Disengage-v0: lower mean cumulative regret by > 2 SE."""
    def cumulative(agent):
        res = run("GambitIHS-Disengage-v0", agent, horizon=400, replicates=16, seed=0,
                  progress=False)
        return res.regret.sum(axis=1)

    good, bad = cumulative("poGAMBITTS-Burden"), cumulative("poGAMBITTS")
    se = np.sqrt(good.var(ddof=1) / len(good) + bad.var(ddof=1) / len(bad))
    assert bad.mean() - good.mean() > 2 * se, (good.mean(), bad.mean(), se)


@pytest.mark.parametrize("kwargs, pattern", [({"memory": 1.0}, r"memory must be in \[0, 1\)"),
                                             ({"habituation": -1.0}, "habituation")])
def test_burden_agent_refuses_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make("poGAMBITTS-Burden", **kwargs)
