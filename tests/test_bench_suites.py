"""Suites are data: every suite builds, names real envs and agents, narrows, and plans units."""

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401  (registers the env ids)
from gambit_gym import agents
from gambit_gym.bench import run, suites
from gambit_gym.bench.units import plan


@pytest.mark.parametrize("name", suites.names())
def test_suite_builds_with_registered_envs_and_agents(name):
    suite = suites.get(name)
    assert suite.settings
    registered = set(agents.names())
    for s in suite.settings:
        assert s.env_id in gym.registry, s.env_id
        assert s.agent in registered, s.agent
    ids = [u.unit_id for u in plan(suite)]
    assert len(ids) == len(set(ids))


def test_study_protocol_defaults():
    for name in suites.STUDY_BLOCKS:
        suite = suites.get(name)
        assert suite.replicates == 250 and suite.seed == 323
        assert suite.horizon == (10_000 if name == "fogambitts_arms" else 1000)
    assert {s.panel for s in suites.get("scale_arms").settings} == {
        "K=3", "K=5", "K=15", "K=30", "K=40"}
    assert len(suites.get("db_access").narrow(agents=["poGAMBITTS"]).settings) == 5 + 2


def test_narrowed_suites_keep_the_references_unless_told_not_to():
    one_d = suites.get("one_d")
    assert one_d.narrow(agents=["StdTS"]).agents == ["StdTS", "Random", "Oracle"]
    assert one_d.narrow(agents=["StdTS"], references=False).agents == ["StdTS"]
    assert one_d.narrow(agents=["StdTS", "Random"], references=False).agents == [
        "StdTS", "Random"]
    assert "Oracle" not in one_d.narrow(references=False).agents
    assert one_d.narrow().agents == one_d.agents


def test_core_has_every_registered_agent():
    assert set(agents.names()) <= set(suites.get("core").agents)


def test_unit_count_and_chunks():
    suite = suites.get("one_d").narrow(replicates=7, horizon=5)
    units = plan(suite, chunk=3)
    assert len(units) == len(suite.settings) * 3
    assert sorted({(u.rep_start, u.n_reps) for u in units}) == [(0, 3), (3, 3), (6, 1)]


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"agents": ["NoSuchAgent"]}, ValueError, "has no agent 'NoSuchAgent'"),
    ({"envs": ["GambitIHS-20D-v0"]}, ValueError, "has no env id"),
    ({"replicates": 0}, ValueError, "replicates must be a positive integer"),
    ({"horizon": -1}, ValueError, "horizon must be a positive integer"),
])
def test_narrow_rejects_bad_input(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        suites.get("one_d").narrow(**kwargs)


def test_unknown_suite_lists_the_valid_ones():
    with pytest.raises(KeyError, match="suites: one_d"):
        suites.get("nope")


def test_user_agent_by_class_and_path():
    from bench_helpers import MyRandom

    by_class = suites.get("one_d").with_agent(MyRandom)
    assert "bench_helpers:MyRandom" in by_class.agents
    by_path = suites.get("one_d").with_agent("bench_helpers:MyRandom")
    assert [s.agent_key for s in by_path.settings] == [s.agent_key for s in by_class.settings]
    with pytest.raises(ImportError):
        suites.get("one_d").with_agent("no_such_module_xyz:Agent")

    class Local:  # defined in a function: not importable by worker processes
        pass

    with pytest.raises(ValueError, match="importable"):
        suites.get("one_d").with_agent(Local)


def test_chunked_replicates_equal_one_run():
    """A unit of replicates [1, 3) gives what replicates 1, 2 of one run give (seeds fixed)."""
    whole = run("GambitIHS-v0", "StdTS", horizon=25, replicates=3, seed=323, progress=False)
    part = run("GambitIHS-v0", "StdTS", horizon=25, replicates=2, seed=324, progress=False)
    np.testing.assert_array_equal(whole.actions[1:], part.actions)
    np.testing.assert_allclose(whole.regret[1:], part.regret)
