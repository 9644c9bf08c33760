"""Off-policy logs: OBP's bandit_feedback layout, and IPW / SNIPW / DM / DR against exact values.

The logging agent is the real Random agent run by the real runner (propensity 1/K, contexts
i.i.d. uniform over the 12 IHS contexts), so the logged rounds are i.i.d. and each estimator is
asymptotically normal around the target policy's value with the standard error computed from
its per-round influence terms. The exact value is ``V(π) = (1/12) Σ_c Σ_a π(a|c) E[Y | c, a]``
from the env's own oracle table. Each estimate must lie within 4 standard errors of it: a
two-sided normal tail of 6e-5 per check (under 2e-3 for all 24 checks together); the run is
seeded, so the test is deterministic.
"""

import gymnasium as gym
import numpy as np
import pytest

from gambit_gym.bench import ope, run
from gambit_gym.bench.executors import SerialExecutor, sweep
from gambit_gym.bench.store import ResultStore
from gambit_gym.bench.suites import get

K = 5


@pytest.fixture(scope="module", params=[0, 2], ids=["noise0", "noise2"])
def noise_level(request):
    return request.param


@pytest.fixture(scope="module")
def logged(noise_level):
    return run("GambitIHS-v0", "Random", horizon=600, replicates=4, seed=11,
               env_kwargs={"noise_level": noise_level}, progress=False, propensities=True,
               n_propensity_samples=10)


@pytest.fixture(scope="module")
def table(noise_level):
    env = gym.make("GambitIHS-v0", noise_level=noise_level)
    return np.stack([env.unwrapped.expected_rewards(c) for c in range(12)])


def _policies(table):
    best = np.eye(K)[table.argmax(axis=1)]
    worst = np.eye(K)[table.argmin(axis=1)]
    z = (table - table.mean(axis=1, keepdims=True)) / table.std()
    soft = np.exp(2 * z) / np.exp(2 * z).sum(axis=1, keepdims=True)
    return {"best": best, "worst": worst, "softmax": soft}


def test_bandit_feedback_layout(logged):
    fb = ope.from_result(logged, n_actions=K, n_contexts=12)
    n = 4 * 600
    assert fb["n_rounds"] == n and fb["n_actions"] == K
    for key, shape in [("action", (n,)), ("position", (n,)), ("reward", (n,)), ("pscore", (n,)),
                       ("context", (n, 12)), ("action_context", (K, K))]:
        assert fb[key].shape == shape, key
    assert np.issubdtype(fb["action"].dtype, np.integer)
    assert not fb["position"].any()
    np.testing.assert_allclose(fb["pscore"], 1 / K)
    np.testing.assert_array_equal(fb["context"].argmax(axis=1), logged.contexts.reshape(-1))
    np.testing.assert_array_equal(fb["action"], logged.actions.reshape(-1))


@pytest.mark.parametrize("policy", ["best", "worst", "softmax"])
def test_estimates_match_the_exact_policy_value(logged, table, policy):
    pi = _policies(table)[policy]
    exact = float((pi * table).sum(axis=1).mean())
    fb = ope.from_result(logged, n_actions=K, n_contexts=12)
    action_dist = ope.policy_action_dist(fb, pi)
    q_hat = ope.TabularRewardModel(12, K).fit_predict(fb)
    estimates = ope.estimate_all(fb, action_dist, q_hat)
    assert set(estimates) == {"IPW", "SNIPW", "DM", "DR"}
    for est in estimates.values():
        assert np.isfinite(est.se) and est.se > 0
        assert abs(est.value - exact) <= 4 * est.se, (policy, est, exact)


def test_estimates_separate_the_best_and_worst_policies():
    """At noise level 0 the test above has the power to tell the policies apart."""
    logged = run("GambitIHS-v0", "Random", horizon=600, replicates=4, seed=12,
                 progress=False, propensities=True, n_propensity_samples=10)
    env = gym.make("GambitIHS-v0")
    table = np.stack([env.unwrapped.expected_rewards(c) for c in range(12)])
    fb = ope.from_result(logged, n_actions=K, n_contexts=12)
    q_hat = ope.TabularRewardModel(12, K).fit_predict(fb)
    pols = _policies(table)
    best = ope.estimate("DR", fb, ope.policy_action_dist(fb, pols["best"]), q_hat)
    worst = ope.estimate("DR", fb, ope.policy_action_dist(fb, pols["worst"]), q_hat)
    assert best.interval()[0] > worst.interval()[1]


def test_export_from_a_store_and_cli(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    suite = get("one_d").narrow(replicates=3, horizon=40, agents=["Random", "StdTS"])
    sweep(suite, store, executor=SerialExecutor(), chunk=2, progress=False,
          propensity_samples=100)
    from gambit_gym.cli import main

    out = tmp_path / "stdts.npz"
    assert main(["export-obp", str(store.path), "--env", "GambitIHS-1D-v0", "--agent", "StdTS",
                 "--n-actions", "5", "--out", str(out)]) == 0
    fb = ope.load(out)
    assert fb["n_rounds"] == 3 * 40 and fb["n_actions"] == 5
    assert ((fb["pscore"] > 0) & (fb["pscore"] <= 1)).all()
    assert sorted(np.unique(fb["replicate"])) == [0, 1, 2]


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"propensities": None}, ValueError, "no propensities"),
    ({"propensities": np.zeros((2, 3))}, ValueError, r"lie in \(0, 1\]"),
    ({"rewards": np.zeros((2, 4))}, ValueError, "rewards has shape"),
    ({"n_actions": 2}, ValueError, "outside 0..1"),
])
def test_bandit_feedback_rejects_bad_logs(kwargs, error, pattern):
    args = {"actions": np.array([[0, 1, 2], [2, 1, 0]]), "rewards": np.ones((2, 3)),
            "propensities": np.full((2, 3), 0.5), "contexts": None, **kwargs}
    with pytest.raises(error, match=pattern):
        ope.bandit_feedback(args.pop("actions"), args.pop("rewards"), args.pop("propensities"),
                            args.pop("contexts"), **args)
