"""gambit_gym.core: the one interval, the result, the whole-run interface, the shared streams."""

import numpy as np
import pytest
from scipy import stats

import gambit_gym  # noqa: F401
from gambit_gym.bench import run
from gambit_gym.core import EnvDescription, RunResult, WholeRunAgent, counter_rng, mean_interval


def test_mean_interval_is_student_t():
    values = np.array([3.0, 5.0, 4.0, 9.0])
    mean, half = mean_interval(values)
    low, high = stats.t.interval(0.95, df=3, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(values.mean())
    assert (mean - half, mean + half) == pytest.approx((low, high))
    assert np.isnan(mean_interval(np.array([1.0]))[1])


def test_run_result_summary_uses_the_one_interval():
    regret = np.array([[1.0, 2.0], [0.0, 1.0], [4.0, 0.5]])
    res = RunResult("GambitIHS-v0", "x", regret=regret, rewards=regret, actions=regret.astype(int))
    mean, half = mean_interval(regret.sum(axis=1))
    s = res.summary()
    assert (s["mean"], s["low"], s["high"]) == pytest.approx((mean, mean - half, mean + half))


class _Fixed(WholeRunAgent):
    """A user's own whole-run agent: the runner must hand it the run, not step it."""

    def run(self, env_id, *, horizon, replicates=1, seed=0, env_kwargs=None, device=None):
        z = np.full((replicates, horizon), float(seed))
        return RunResult(env_id, "Fixed", regret=z, rewards=z, actions=z.astype(np.int64))


def test_runner_hands_a_whole_run_agent_the_run():
    res = run("GambitIHS-v0", _Fixed, horizon=3, replicates=2, seed=5)
    assert res.regret.shape == (2, 3) and np.all(res.regret == 5.0)


def test_old_paths_reexport_the_core():
    from gambit_gym.agents.base import EnvDescription as OldDescription
    from gambit_gym.bench.result import RunResult as OldResult
    from gambit_gym.envs import counter_rng as old_rng

    assert OldDescription is EnvDescription and OldResult is RunResult
    assert old_rng.uniform is counter_rng.uniform


def test_mix_inplace_matches_hash64():
    keys = np.arange(1, 50, dtype=np.uint64) * np.uint64(977)
    x = keys + counter_rng.offset(7, counter_rng.STREAM_ROW)
    counter_rng.mix_inplace(x)
    assert np.array_equal(x, counter_rng.hash64(keys, 7, counter_rng.STREAM_ROW))


def test_env_reports_the_context_id_the_action_was_taken_in():
    import gymnasium as gym

    from gambit_gym.text.contexts import context_ids

    env = gym.make("GambitIHS-v0", horizon=30)
    obs, info = env.reset(seed=3)
    assert info["context_id"] == context_ids(obs[None])[0]
    seen = set()
    for _ in range(30):
        taken_in = int(context_ids(obs[None])[0])
        obs, _, _, _, info = env.step(env.action_space.sample())
        assert info["context_id"] == taken_in
        seen.add(taken_in)
    assert len(seen) > 3
    vec = gym.make_vec("GambitIHS-v0", 4, vectorization_mode="vector_entry_point")
    obs, info = vec.reset(seed=3)
    assert np.array_equal(info["context_id"], context_ids(obs))
    _, _, _, _, step_info = vec.step(np.zeros(4, dtype=np.int64))
    assert np.array_equal(step_info["context_id"], context_ids(obs))


def test_runner_records_the_env_reported_contexts():
    import gymnasium as gym

    res = run("GambitIHS-v0", "Random", horizon=12, replicates=2, seed=4)
    env = gym.make("GambitIHS-v0", horizon=12)
    env.reset(seed=4)  # replicate 0 of the native vector env equals a single env seeded 4
    expected = []
    for a in res.actions[0]:
        expected.append(env.step(int(a))[4]["context_id"])
    assert np.array_equal(res.contexts[0], expected)
    mixed = run("MixedEffectLinear-v0", "Random", horizon=5, replicates=2, seed=0)
    assert mixed.contexts is None  # no discrete contexts reported: none recorded
