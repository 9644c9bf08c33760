"""Pooled, mixed-effect and independent poGAMBITTS on the population env, and its runner."""

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from gambit_gym.agents.pooled import IndependentAgents, PopulationGambitTS  # noqa: E402
from gambit_gym.bench.population import (  # noqa: E402
    PopulationResult,
    make_population_agent,
    run_population,
)


def _overall(agent, horizon, early, spread, n_users=4, replicates=3):
    res = run_population(agent, n_users=n_users, horizon=horizon, replicates=replicates,
                         seed=10, env_kwargs={"spread": spread})
    return float(res.overall_regret(early).mean())


def test_pooling_wins_early_when_users_are_alike():
    horizon = 30
    pooled = _overall("pooled-poGAMBITTS", horizon, horizon, spread=0.3)
    mixed = _overall("mixed-poGAMBITTS", horizon, horizon, spread=0.3)
    independent = _overall("independent-poGAMBITTS", horizon, horizon, spread=0.3)
    std = _overall("StdTS", horizon, horizon, spread=0.3)
    assert pooled < independent and mixed < independent, (pooled, mixed, independent)
    assert independent < std, (independent, std)


def test_independent_learners_close_the_gap_when_users_differ_much():
    horizon = 150
    pooled = _overall("pooled-poGAMBITTS", horizon, horizon, spread=3.0)
    mixed = _overall("mixed-poGAMBITTS", horizon, horizon, spread=3.0)
    independent = _overall("independent-poGAMBITTS", horizon, horizon, spread=3.0)
    # one shared model cannot serve users whose best prompts differ: its regret keeps growing
    assert independent < pooled and mixed < pooled, (pooled, mixed, independent)


def test_runs_are_reproducible_and_seed_dependent():
    kwargs = dict(n_users=3, horizon=15, replicates=2, env_kwargs={"spread": 1.0})
    a = run_population("mixed-poGAMBITTS", seed=3, **kwargs)
    b = run_population("mixed-poGAMBITTS", seed=3, **kwargs)
    c = run_population("mixed-poGAMBITTS", seed=4, **kwargs)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.regret, b.regret)
    assert not np.array_equal(a.regret, c.regret)


def test_result_reports_regret_per_user_and_overall_with_a_schedule():
    active = {"user_1": (5, 12)}
    res = run_population("pooled-poGAMBITTS", n_users=3, horizon=20, replicates=2, seed=0,
                         env_kwargs={"active": active})
    assert isinstance(res, PopulationResult)
    assert res.regret.shape == res.actions.shape == res.active.shape == (2, 3, 20)
    assert res.users == ("user_0", "user_1", "user_2")
    assert res.active[:, 1].sum(axis=1).tolist() == [7, 7]
    assert np.all(res.actions[:, 1, :5] == -1) and np.all(res.regret[:, 1, 12:] == 0)
    np.testing.assert_allclose(res.per_user_regret().sum(axis=1), res.overall_regret())
    np.testing.assert_allclose(res.cumulative_regret()[:, -1], res.overall_regret())
    summary = res.summary()
    assert set(summary["per_user"]) == set(res.users) and summary["overall"] >= 0


def test_single_user_agents_run_one_copy_per_user():
    agent = make_population_agent("StdTS")
    assert isinstance(agent, IndependentAgents)
    res = run_population(agent, n_users=2, horizon=5, seed=0)
    assert res.regret.shape == (1, 2, 5)
    assert len(agent.agents) == 2 and agent.agents["user_0"] is not agent.agents["user_1"]


def test_pooled_model_recovers_the_population_embedding_direction():
    from gambit_gym.envs import gambit_population_v0

    env = gambit_population_v0.parallel_env(n_users=5, spread=0.0, horizon=400)
    agent = PopulationGambitTS(pooling="pooled")
    obs, _ = env.reset(seed=0)
    agent.reset(env.describe(), env.possible_agents, seed=0)
    rng = np.random.default_rng(0)
    while env.agents:  # uniform exploration, so every prompt is seen
        current = dict(obs)
        actions = {a: int(rng.integers(5)) for a in env.agents}
        obs, rewards, _, _, infos = env.step(actions)
        agent.update(current, actions, rewards, infos)
    # The posterior orders the prompts as the oracle does: its predicted cell means correlate
    # with the exact ones, and its greedy prompt is the best or within a small share of the
    # spread in every context (the real bank has near-ties between its best prompts).
    sim = env.describe().simulator
    beta = agent.posterior_mean()
    st = agent._state
    for c in range(12):
        zt = (sim.mean_embeddings(c) - st["mean"]) / st["scale"]
        predicted = zt @ beta[:st["d"]]
        truth = env.expected_rewards("user_0", c)
        assert np.corrcoef(predicted, truth)[0, 1] > 0.9
        gap = truth.max() - truth[np.argmax(predicted)]
        assert gap <= 0.15 * (truth.max() - truth.min())


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(pooling="hierarchical"), "pooling must be one of"),
    (dict(random_effect_sd=0.0), "random_effect_sd must be"),
    (dict(noise="learn"), "noise must be"),
    (dict(noise=-1.0), "noise must be"),
])
def test_invalid_agent_arguments_raise_clear_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        PopulationGambitTS(**kwargs)


def test_act_before_reset_and_unknown_users_raise():
    agent = PopulationGambitTS()
    with pytest.raises(RuntimeError, match="reset"):
        agent.act({"user_0": np.array([0, 0])})
    from gambit_gym.envs import gambit_population_v0

    env = gambit_population_v0.parallel_env(n_users=2)
    agent.reset(env.describe(), env.possible_agents, seed=0)
    with pytest.raises(KeyError, match="not passed to reset"):
        agent.act({"user_9": np.array([0, 0])})
