import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401
from gambit_gym.envs.diagnostics import cell_means, ranking_floor

ENVS = [("GambitIHS-1D-v0", {}), ("GambitIHS-Misspec-Severity-v0", {}),
        ("GambitIHS-Misspec-Clarity-v0", {}), ("GambitIHS-v0", {"n_prompts": 5}),
        ("GambitIHS-5D-v0", {"n_prompts": 15})]


def _brute_cell_means(tables, dim):
    k, c = tables.counts.shape
    return np.array([[tables.working[tables.offsets[a, x]:tables.offsets[a, x]
                                     + tables.counts[a, x], dim].astype(np.float64).mean()
                      for a in range(k)] for x in range(c)])


@pytest.mark.parametrize("env_id,kwargs", ENVS)
def test_cell_means_match_a_loop_over_cells(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    tables = env.unwrapped.tables
    for dim in range(tables.working.shape[1]):
        np.testing.assert_allclose(cell_means(env, dim), _brute_cell_means(tables, dim),
                                   rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("env_id,kwargs", ENVS)
def test_ranking_floor_is_the_regret_of_the_fitted_ranking(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    tables = env.unwrapped.tables
    m = _brute_cell_means(tables, 0)
    n_ctx, k = m.shape
    # slope of expected reward on m with one intercept per context, by least squares
    design = np.hstack([m.reshape(-1, 1), np.kron(np.eye(n_ctx), np.ones((k, 1)))])
    theta = np.linalg.lstsq(design, tables.expected.reshape(-1), rcond=None)[0][0]
    pick = m.argmax(1) if theta >= 0 else m.argmin(1)
    regret = [tables.optimal_reward[c] - tables.expected[c, pick[c]] for c in range(n_ctx)]
    floor = ranking_floor(env)
    assert floor == pytest.approx(np.mean(regret), abs=1e-12)
    assert 0.0 <= floor <= (tables.optimal_reward[:, None] - tables.expected).max()


def test_ranking_floor_is_zero_when_the_agent_sees_the_outcome_dimension():
    # linear outcome in optimism, working dim optimism: the top-ranked prompt is the best one
    assert ranking_floor("GambitIHS-1D-v0") == 0.0
    assert ranking_floor("GambitIHS-Misspec-Clarity-v0") > 0.0
