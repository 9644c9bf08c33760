"""Off-policy estimators on an adaptive agent's own logs, against values known exactly.

The logging agent is StdTS run by the real runner with its own Monte Carlo propensities
(1,000 draws per decision): its propensities range from under 0.01 to over 0.9, so importance
weights matter, unlike under uniform logging. Rounds within a replicate are not i.i.d., but IPW
and DR (with a reward model independent of the replicate, see ``TabularRewardModel``) are
martingale sums whose terms have mean ``V(π)`` given the past, so they stay unbiased.

The exact value of an evaluation policy comes from the env's oracle table:
``V(π) = (1/12) Σ_c Σ_a π(a|c) E[Y | c, a]`` (contexts are i.i.d. uniform over 12).

One batched run gives 400 independent replicates of 100 rounds; groups of 4 replicates are 100
independent "seeds" (400 rounds each). Over the 100 seeds we check:

- bias: the mean estimate lies within 0.25 standard deviations (of one seed's estimate) of the
  exact value;
- coverage: the 95% intervals ``value ± 1.96 se`` contain the exact value in 87-99 of the 100
  seeds (binomial sd at 95% is 2.2; IPW's heavy-tailed weights make it undercover a little at
  400 rounds, which the lower bound allows for; 100/100 would mean intervals too wide).

An IPW that ignores its weights estimates the logging policy's value instead: the tests below
show these checks reject it.
"""

import gymnasium as gym
import numpy as np
import pytest

from gambit_gym.bench import ope, run

K, N_CTX = 5, 12
R, T, GROUP = 400, 100, 4
N_SEEDS = R // GROUP
UNBIASED = ("IPW", "SNIPW", "DR")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def logged():
    return run("GambitIHS-v0", "StdTS", horizon=T, replicates=R, seed=3, progress=False,
               propensities=True, n_propensity_samples=1000)


@pytest.fixture(scope="module")
def table():
    env = gym.make("GambitIHS-v0")
    return np.stack([env.unwrapped.expected_rewards(c) for c in range(N_CTX)])


def _policies(table):
    z = (table - table.mean(axis=1, keepdims=True)) / table.std()
    soft = np.exp(2 * z) / np.exp(2 * z).sum(axis=1, keepdims=True)
    return {"best": np.eye(K)[table.argmax(axis=1)], "worst": np.eye(K)[table.argmin(axis=1)],
            "uniform": np.full((N_CTX, K), 1 / K), "softmax": soft}


def _seeds(logged):
    for g in range(N_SEEDS):
        rows = slice(g * GROUP, (g + 1) * GROUP)
        yield ope.bandit_feedback(logged.actions[rows], logged.rewards[rows],
                                  logged.propensities[rows], logged.contexts[rows],
                                  n_actions=K, n_contexts=N_CTX)


def _over_seeds(logged, pi, reward_model):
    """``{estimator: (values (N_SEEDS,), covered (N_SEEDS,) of the exact value)}``."""
    out = {}
    for fb in _seeds(logged):
        dist = ope.policy_action_dist(fb, pi)
        q_hat = reward_model(fb)
        for name, est in ope.estimate_all(fb, dist, q_hat).items():
            out.setdefault(name, []).append((est.value, *est.interval()))
    return {name: np.array(v) for name, v in out.items()}


def _exact(pi, table):
    return float((pi * table).sum(axis=1).mean())


def _failures(rows: np.ndarray, exact: float) -> list[str]:
    """What is wrong with an estimator's (value, lo, hi) rows over the seeds (empty: fine)."""
    values, lo, hi = rows.T
    bias, spread = values.mean() - exact, values.std(ddof=1)
    coverage = float(np.mean((lo <= exact) & (exact <= hi)))
    out = []
    if abs(bias) > 0.25 * spread:
        out.append(f"bias {bias:+.3f} is over 0.25 x the seed-to-seed sd {spread:.3f}")
    if not 0.87 <= coverage <= 0.99:
        out.append(f"95% intervals cover the exact value in {coverage:.0%} of seeds")
    return out


def test_the_logs_are_adaptive(logged):
    p = logged.propensities
    assert p.min() > 0
    assert np.quantile(p, 0.1) < 0.1 and np.quantile(p, 0.9) > 0.8
    first, last = np.bincount(logged.actions[:, :10].ravel(), minlength=K), \
        np.bincount(logged.actions[:, -10:].ravel(), minlength=K)
    assert last.max() / last.sum() > first.max() / first.sum() + 0.1  # it learns


@pytest.mark.parametrize("policy", ["best", "worst", "uniform", "softmax"])
def test_unbiased_estimators_cover_the_exact_value(logged, table, policy):
    pi = _policies(table)[policy]
    exact = _exact(pi, table)
    model = ope.TabularRewardModel(N_CTX, K).fit_predict
    results = _over_seeds(logged, pi, model)
    problems = {name: _failures(results[name], exact) for name in UNBIASED}
    assert not any(problems.values()), (policy, exact, problems)


@pytest.mark.parametrize("policy", ["best", "softmax"])
def test_an_ipw_that_ignores_its_weights_fails_the_checks(logged, table, policy):
    """The checks above have the power to reject an IPW returning the mean logged reward."""
    pi = _policies(table)[policy]
    exact = _exact(pi, table)
    rows = []
    for fb in _seeds(logged):
        r = fb["reward"]
        se = r.std(ddof=1) / np.sqrt(len(r))
        rows.append((r.mean(), r.mean() - 1.96 * se, r.mean() + 1.96 * se))
    assert _failures(np.array(rows), exact)


def test_dr_matches_dm_when_the_reward_model_is_right(logged, table):
    """With q̂ the env's exact table, DM and DR are both unbiased (DM with less spread)."""
    pi = _policies(table)["best"]
    exact = _exact(pi, table)
    results = _over_seeds(logged, pi, lambda fb: table[fb["context_id"]][:, :, None])
    dm, dr = results["DM"][:, 0], results["DR"][:, 0]
    for values in (dm, dr):
        assert abs(values.mean() - exact) < 3 * values.std(ddof=1) / np.sqrt(N_SEEDS) + 1e-9
    assert dm.std() < dr.std()
    assert not _failures(results["DR"], exact)


def test_dr_beats_dm_when_the_reward_model_is_wrong(logged, table):
    """With q̂ blind to the action (each context's mean over actions), DM is off by the gap
    between the target policy and the uniform one; DR's correction removes it."""
    pi = _policies(table)["best"]
    exact = _exact(pi, table)
    blind = np.repeat(table.mean(axis=1, keepdims=True), K, axis=1)
    results = _over_seeds(logged, pi, lambda fb: blind[fb["context_id"]][:, :, None])
    dm, dr = results["DM"][:, 0], results["DR"][:, 0]
    rmse_dm = np.sqrt(np.mean((dm - exact) ** 2))
    rmse_dr = np.sqrt(np.mean((dr - exact) ** 2))
    assert abs(dm.mean() - exact) > 0.4  # the wrong model's error
    assert rmse_dr < 0.5 * rmse_dm, (rmse_dr, rmse_dm)
    assert not _failures(results["DR"], exact)


def test_cross_fitting_keeps_dr_unbiased_where_an_in_sample_fit_does_not(logged, table):
    """An in-sample tabular model on adaptive logs biases DR (see TabularRewardModel)."""
    pi = _policies(table)["uniform"]
    exact = _exact(pi, table)
    crossed = _over_seeds(logged, pi, ope.TabularRewardModel(N_CTX, K).fit_predict)
    in_sample = _over_seeds(logged, pi,
                            ope.TabularRewardModel(N_CTX, K, cross_fit=False).fit_predict)
    assert not _failures(crossed["DR"], exact)
    assert _failures(in_sample["DR"], exact)


# ------------------------------------------------------------ OBP's documented layout
def test_bandit_feedback_follows_obps_documented_layout(logged):
    """Keys, shapes and dtypes as Open Bandit Pipeline documents them.

    Keys: ``obp.dataset.OpenBanditDataset.obtain_batch_bandit_feedback`` (docstring: n_rounds,
    n_actions, action, position, reward, pscore, context, action_context;
    https://zr-obp.readthedocs.io/en/latest/_autosummary/obp.dataset.real.html). Shapes and
    dtypes: ``obp.utils.check_ope_inputs`` (action ``(n_rounds,)`` integers in
    ``[0, n_actions)``; position ``(n_rounds,)`` non-negative integers below ``len_list``;
    reward ``(n_rounds,)``; pscore ``(n_rounds,)`` positive; ``action_dist`` and
    ``estimated_rewards_by_reg_model`` ``(n_rounds, n_actions, len_list)``, action_dist
    summing to 1 over actions) and ``obp.types.BanditFeedback`` (``Dict[str, Union[int,
    np.ndarray]]``); context ``(n_rounds, dim_context)`` and action_context
    ``(n_actions, dim_action_context)`` as in ``obp.dataset.SyntheticBanditDataset``.
    OBP itself cannot be installed beside numpy 2, so the rules are written out here.
    """
    fb = ope.from_result(logged, n_actions=K, n_contexts=N_CTX)
    documented = {"n_rounds", "n_actions", "action", "position", "reward", "pscore",
                  "context", "action_context"}
    assert documented <= set(fb)
    n = R * T
    assert type(fb["n_rounds"]) is int and fb["n_rounds"] == n
    assert type(fb["n_actions"]) is int and fb["n_actions"] == K
    for key in documented - {"n_rounds", "n_actions"}:
        assert isinstance(fb[key], np.ndarray), key
    for key in ("action", "position", "reward", "pscore"):
        assert fb[key].shape == (n,), key
    assert np.issubdtype(fb["action"].dtype, np.integer)
    assert fb["action"].min() >= 0 and fb["action"].max() < K
    assert np.issubdtype(fb["position"].dtype, np.integer) and not fb["position"].any()
    assert np.issubdtype(fb["reward"].dtype, np.floating)
    assert np.issubdtype(fb["pscore"].dtype, np.floating)
    assert (fb["pscore"] > 0).all() and (fb["pscore"] <= 1).all()
    assert fb["context"].ndim == 2 and fb["context"].shape[0] == n
    assert fb["action_context"].ndim == 2 and fb["action_context"].shape[0] == K
    # the logged values themselves, in round order (replicate-major)
    np.testing.assert_array_equal(fb["action"], logged.actions.reshape(-1))
    np.testing.assert_array_equal(fb["reward"], logged.rewards.reshape(-1))
    np.testing.assert_array_equal(fb["pscore"], logged.propensities.reshape(-1))
    np.testing.assert_array_equal(fb["context"].argmax(axis=1), logged.contexts.reshape(-1))
    # what the estimators take, as check_ope_inputs wants it
    dist = ope.policy_action_dist(fb, np.full((N_CTX, K), 1 / K))
    assert dist.shape == (n, K, 1) and np.allclose(dist.sum(axis=1), 1)
    assert fb["position"].max() < dist.shape[2]
    q_hat = ope.TabularRewardModel(N_CTX, K).fit_predict(fb)
    assert q_hat.shape == dist.shape


def test_a_converging_agents_logs_export_with_positive_propensities(tmp_path):
    """Once a TS posterior is sharp, an action's Monte Carlo frequency is often 0 and TS still
    takes it now and then; its logged propensity must stay positive (StdTS: the conditional
    estimator of ``sampled_probabilities``, positive by construction) or export-obp and IPW
    break on exactly the logs they exist for."""
    logged = run("GambitIHS-v0", "StdTS", horizon=300, replicates=10, seed=0, progress=False,
                 propensities=True, n_propensity_samples=50)
    assert (logged.propensities > 0).all()
    fb = ope.from_result(logged, n_actions=K, n_contexts=N_CTX)
    # an action rarer than 50 counting draws resolve (their add-one floor 1/51) was taken, and
    # its propensity is estimated, not floored
    assert 0 < fb["pscore"].min() < 1 / (50 + 1)
    ope.save(fb, tmp_path / "fb.npz")
    np.testing.assert_array_equal(ope.load(tmp_path / "fb.npz")["pscore"], fb["pscore"])


def test_monte_carlo_propensities_are_add_one_estimates_for_the_chosen_action():
    from gambit_gym.agents._batched import sampled_probabilities

    def noise(gen, rows, n):
        return (np.zeros((len(rows), n, 4)),)

    def always_action_1(rows, numbers):  # (rows, n, K=4) scores, action 1 always wins
        scores = numbers[0].copy()
        scores[:, :, 1] = 1.0
        return scores

    # replicate 0 is about to take action 1, replicate 1 action 0 (never drawn)
    p, se, draws = sampled_probabilities(noise, always_action_1, np.random.default_rng(0), 2, 4,
                                         96, np.array([1, 0]), None)
    np.testing.assert_allclose(p, [[0, 1, 0, 0], [1 / 97, 96 / 97, 0, 0]])
    np.testing.assert_array_equal(draws, [96, 96])
    # with a target relative SE, a never-drawn chosen action gets the most draws; a sure one 32
    p, se, draws = sampled_probabilities(noise, always_action_1, np.random.default_rng(0), 2, 4,
                                         96, np.array([1, 0]), 0.1)
    np.testing.assert_array_equal(draws, [32, 96])
