"""gambit_gym.bench.ope on small hand-written logs, every number worked out here round by round.

tests/test_bench_ope.py and tests/test_bench_ope_adaptive.py check the estimators statistically
against exact policy values; this file pins each formula, fallback and refusal exactly on logs
small enough to compute by hand (loops over rounds, not the module's vectorised code). Fast, so
that mutation testing (benchmarks/mutation.py) can run it for every mutant.
"""

import math

import numpy as np
import pytest
from scipy import stats

from gambit_gym.bench import ope
from gambit_gym.bench.suites import Setting
from gambit_gym.bench.units import Unit, UnitRecord
from gambit_gym.core.result import RunResult

# two replicates x three rounds, K = 3 actions, 2 contexts
ACTIONS = np.array([[0, 2, 1], [2, 2, 0]])
REWARDS = np.array([[1.0, 0.5, -1.0], [2.0, 0.0, 3.0]])
PROPS = np.array([[0.5, 0.25, 0.2], [0.4, 1.0, 0.8]])
CONTEXTS = np.array([[0, 1, 1], [1, 0, 0]])


def _fb(**kwargs):
    return ope.bandit_feedback(ACTIONS, REWARDS, PROPS, CONTEXTS, **kwargs)


def test_feedback_layout_values_and_dtypes():
    fb = _fb()
    assert fb["n_rounds"] == 6 and type(fb["n_rounds"]) is int
    assert fb["n_actions"] == 3 and type(fb["n_actions"]) is int
    np.testing.assert_array_equal(fb["action"], [0, 2, 1, 2, 2, 0])
    assert fb["action"].dtype == np.int64 and fb["position"].dtype == np.int64
    np.testing.assert_array_equal(fb["position"], np.zeros(6))
    np.testing.assert_array_equal(fb["reward"], [1.0, 0.5, -1.0, 2.0, 0.0, 3.0])
    np.testing.assert_array_equal(fb["pscore"], [0.5, 0.25, 0.2, 0.4, 1.0, 0.8])
    assert fb["reward"].dtype == fb["pscore"].dtype == np.float64
    np.testing.assert_array_equal(fb["action_context"], np.eye(3))
    np.testing.assert_array_equal(fb["replicate"], [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(fb["context_id"], [0, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(fb["context"], [[1, 0], [0, 1], [0, 1], [0, 1], [1, 0],
                                                  [1, 0]])


def test_feedback_sizes_given_explicitly_and_flat_logs():
    fb = _fb(n_actions=5, n_contexts=4)
    assert fb["n_actions"] == 5 and fb["action_context"].shape == (5, 5)
    assert fb["context"].shape == (6, 4) and fb["context"][0].tolist() == [1, 0, 0, 0]
    flat = ope.bandit_feedback(ACTIONS[0], REWARDS[0], PROPS[0])
    np.testing.assert_array_equal(flat["replicate"], [0, 0, 0])
    assert flat["replicate"].dtype == np.int64
    # integer rewards and float32 propensities come out in OBP's float64
    fb32 = ope.bandit_feedback(ACTIONS, np.array([[1, 0, 2], [0, 0, 1]]),
                               PROPS.astype(np.float32), CONTEXTS)
    assert fb32["reward"].dtype == fb32["pscore"].dtype == np.float64
    np.testing.assert_array_equal(fb32["reward"], [1.0, 0.0, 2.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(fb32["pscore"], PROPS.astype(np.float32).reshape(-1))
    assert flat["context"].shape == (3, 0) and "context_id" not in flat
    # three replicates of two rounds: replicate ids follow the rows
    fb3 = ope.bandit_feedback(ACTIONS.reshape(3, 2), REWARDS.reshape(3, 2), PROPS.reshape(3, 2))
    np.testing.assert_array_equal(fb3["replicate"], [0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize("change, match", [
    (dict(propensities=None), r"^this run has no propensities \(its agent gives no "
                              r"action_probabilities\), so its logs cannot be used off-policy$"),
    (dict(rewards=REWARDS[:, :2]), r"rewards has shape \(2, 2\), actions \(2, 3\)"),
    (dict(propensities=PROPS[:1]), r"propensities has shape \(1, 3\)"),
    (dict(contexts=CONTEXTS.T), r"contexts has shape \(3, 2\)"),
    (dict(propensities=np.where(PROPS == 0.2, 0.0, PROPS)),
     r"^propensities must lie in \(0, 1\]; a zero propensity for a logged action means the "
     r"logging agent's probabilities are wrong$"),
    (dict(propensities=np.where(PROPS == 0.2, np.nan, PROPS)), r"in \(0, 1\]"),
    (dict(propensities=np.where(PROPS == 0.2, -0.1, PROPS)), r"in \(0, 1\]"),
    (dict(propensities=np.where(PROPS == 1.0, 1.00001, PROPS)), r"in \(0, 1\]"),
    (dict(actions=np.where(ACTIONS == 1, -1, ACTIONS)), r"outside 0..2"),
    (dict(n_actions=2), r"outside 0..1"),
])
def test_feedback_refuses_bad_logs(change, match):
    kwargs = dict(actions=ACTIONS, rewards=REWARDS, propensities=PROPS, contexts=CONTEXTS)
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        ope.bandit_feedback(**kwargs)


def test_propensities_just_above_one_from_round_off_are_accepted():
    for p in (1.0000005, 1 + 1e-6):
        fb = ope.bandit_feedback(ACTIONS, REWARDS, np.where(PROPS == 1.0, p, PROPS))
        assert fb["pscore"][4] == p


def _record(sl, props=True, ctx=True, logs=True):
    setting = Setting(env_id="GambitIHS-v0", agent="Random")
    unit = Unit(suite="s", setting=setting, horizon=3, seed=0, rep_start=0, n_reps=1)
    a = ACTIONS[sl] if logs else np.zeros((0, 3), np.int64)
    return UnitRecord(unit=unit, cum_mean=np.zeros(3), cum_m2=np.zeros(3),
                      final_regret=np.zeros(1), actions=a, rewards=REWARDS[sl],
                      propensities=PROPS[sl] if props else None,
                      contexts=CONTEXTS[sl] if ctx else None)


def test_from_records_stacks_units_and_from_result_reads_a_run():
    fb = ope.from_records([_record(slice(0, 1)), _record(slice(1, 2))], n_actions=4)
    ref = _fb(n_actions=4)
    for key in ref:
        np.testing.assert_array_equal(fb[key], ref[key], err_msg=key)
    no_ctx = ope.from_records([_record(slice(0, 1)), _record(slice(1, 2), ctx=False)])
    assert "context_id" not in no_ctx
    with pytest.raises(ValueError, match="no propensities"):
        ope.from_records([_record(slice(0, 1)), _record(slice(1, 2), props=False)])
    with pytest.raises(ValueError, match="^no stored units to export$"):
        ope.from_records([])
    with pytest.raises(ValueError, match=r"^records were loaded without their logs \(use "
                                         r"logs=True\)$"):
        ope.from_records([_record(slice(0, 1), logs=False)])
    result = RunResult(env_id="GambitIHS-v0", agent="Random", regret=np.zeros((2, 3)),
                       rewards=REWARDS, actions=ACTIONS, propensities=PROPS,
                       contexts=CONTEXTS)
    fb = ope.from_result(result, n_contexts=3)
    assert fb["context"].shape == (6, 3)
    ref = _fb(n_contexts=3)
    for key in ref:
        np.testing.assert_array_equal(fb[key], ref[key], err_msg=key)


def test_save_and_load_round_trip(tmp_path):
    fb = _fb()
    path = ope.save(fb, tmp_path / "deep" / "er" / "run.npz")  # folders made as needed
    assert path == tmp_path / "deep" / "er" / "run.npz"
    assert ope.save(fb, path) == path  # an existing folder, an existing file: overwritten
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.npz"]  # no temp file left
    back = ope.load(path)
    assert set(back) == set(fb)
    assert type(back["n_rounds"]) is int and type(back["n_actions"]) is int
    for key in fb:
        np.testing.assert_array_equal(back[key], fb[key], err_msg=key)
    with pytest.raises(ValueError, match="is a folder"):
        ope.save(fb, tmp_path)
    # a file holding pickled objects is refused, never unpickled
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        ope.load(tmp_path / "objects.npz")


def test_policy_action_dist_reads_the_table_per_round():
    fb = _fb()
    table = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    dist = ope.policy_action_dist(fb, table)
    assert dist.shape == (6, 3, 1)
    np.testing.assert_array_equal(dist[:, :, 0], table[[0, 1, 1, 1, 0, 0]])
    # a deterministic policy written with integers gives float probabilities
    greedy = ope.policy_action_dist(fb, [[0, 0, 1], [1, 0, 0]])
    assert greedy.dtype == np.float64
    np.testing.assert_array_equal(greedy[:2, :, 0], [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="^policy table rows must be probability vectors$"):
        ope.policy_action_dist(fb, [[0.5, 0.5, 0.5], [1, 0, 0]])
    with pytest.raises(ValueError, match="probability vectors"):
        ope.policy_action_dist(fb, [[1.5, -0.5, 0.0], [1, 0, 0]])
    with pytest.raises(ValueError, match="^the feedback has no context ids$"):
        ope.policy_action_dist(ope.bandit_feedback(ACTIONS, REWARDS, PROPS), table)


def _cell_means(rounds, n_contexts, n_actions):
    """q̂ by hand: cell mean, else the action's mean, else the overall mean."""
    rounds = list(rounds)
    overall = sum(r for _, _, r in rounds) / max(len(rounds), 1)
    q = np.zeros((n_contexts, n_actions))
    for c in range(n_contexts):
        for a in range(n_actions):
            cell = [r for cc, aa, r in rounds if (cc, aa) == (c, a)]
            act = [r for _, aa, r in rounds if aa == a]
            q[c, a] = np.mean(cell) if cell else np.mean(act) if act else overall
    return q


def test_tabular_reward_model_in_sample_with_its_fallbacks():
    fb = _fb()
    rounds = list(zip(fb["context_id"], fb["action"], fb["reward"]))
    q = ope.TabularRewardModel(3, 4, cross_fit=False).fit_predict(fb)
    expected = _cell_means(rounds, 3, 4)
    # the hand-made log has: a (context 0, action 0) cell with two rounds (1.0 and 3.0), an
    # empty cell whose action has data elsewhere, an action never taken (overall mean) and a
    # context never seen
    assert expected[0, 0] == 2.0 and expected[0, 1] == -1.0 and expected[1, 3] == 5.5 / 6
    assert q.shape == (6, 4, 1)
    np.testing.assert_allclose(q[:, :, 0], expected[fb["context_id"]], rtol=1e-12)


def test_tabular_reward_model_cross_fits_each_replicate_on_the_others():
    fb = _fb()
    rounds = list(zip(fb["context_id"], fb["action"], fb["reward"], fb["replicate"]))
    q = ope.TabularRewardModel(2, 3).fit_predict(fb)[:, :, 0]
    for i, (c, _, _, rep) in enumerate(rounds):
        others = [(cc, aa, r) for cc, aa, r, rr in rounds if rr != rep]
        np.testing.assert_allclose(q[i], _cell_means(others, 2, 3)[c], rtol=1e-12)
    # one replicate only: nothing to cross-fit with, so in-sample
    flat = ope.bandit_feedback(ACTIONS[0], REWARDS[0], PROPS[0], CONTEXTS[0])
    np.testing.assert_allclose(ope.TabularRewardModel(2, 3).fit_predict(flat),
                               ope.TabularRewardModel(2, 3, cross_fit=False).fit_predict(flat))
    # an OBP dict without replicate ids is one replicate (nothing to cross-fit with)
    no_rep = {k: v for k, v in fb.items() if k != "replicate"}
    np.testing.assert_allclose(ope.TabularRewardModel(2, 3).fit_predict(no_rep),
                               ope.TabularRewardModel(2, 3, cross_fit=False).fit_predict(fb))
    # one logged round: the action never taken falls back to the overall mean, that round
    one = ope.bandit_feedback(np.array([1]), np.array([3.0]), np.array([0.5]))
    np.testing.assert_array_equal(ope.TabularRewardModel(1, 2).fit_predict(one)[0, :, 0],
                                  [3.0, 3.0])
    # a log without context ids is one context
    bare = ope.bandit_feedback(ACTIONS, REWARDS, PROPS)
    q1 = ope.TabularRewardModel(1, 3, cross_fit=False).fit_predict(bare)[:, :, 0]
    np.testing.assert_allclose(q1[0], _cell_means(
        [(0, a, r) for a, r in zip(bare["action"], bare["reward"])], 1, 3)[0])


def _by_hand(fb, pi, q):
    """Each estimator's value and standard error, round by round."""
    n = fb["n_rounds"]
    a, r, p = fb["action"], fb["reward"], fb["pscore"]
    w = [pi[i, a[i]] / p[i] for i in range(n)]

    def se(terms):
        m = sum(terms) / n
        return math.sqrt(sum((t - m) ** 2 for t in terms) / (n - 1) / n)

    ipw = [w[i] * r[i] for i in range(n)]
    snipw = sum(ipw) / sum(w)
    wbar = sum(w) / n
    dm = [sum(pi[i, b] * q[i, b] for b in range(pi.shape[1])) for i in range(n)]
    dr = [dm[i] + w[i] * (r[i] - q[i, a[i]]) for i in range(n)]
    return {
        "IPW": (sum(ipw) / n, se(ipw)),
        "SNIPW": (snipw, se([w[i] * (r[i] - snipw) / wbar for i in range(n)])),
        "DM": (sum(dm) / n, se(dr)),
        "DR": (sum(dr) / n, se(dr)),
    }


def test_each_estimator_equals_its_formula():
    fb = _fb()
    table = np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    dist = ope.policy_action_dist(fb, table)
    q = np.random.default_rng(3).normal(size=(6, 3, 1))
    expected = _by_hand(fb, dist[:, :, 0], q[:, :, 0])
    got = ope.estimate_all(fb, dist, q)
    assert list(got) == ["IPW", "SNIPW", "DM", "DR"]
    for name, (value, se) in expected.items():
        assert got[name].estimator == name
        assert got[name].value == pytest.approx(value, rel=1e-12), name
        assert got[name].se == pytest.approx(se, rel=1e-12), name
        assert ope.estimate(name, fb, dist, q) == got[name]
    assert list(ope.estimate_all(fb, dist)) == ["IPW", "SNIPW"]
    dr = got["DR"]
    assert dr.n == 6 and all(e.n == 6 for e in got.values())
    # Student-t with n - 1 = 5 degrees of freedom, the library's one interval rule
    half95, half80 = stats.t.ppf(0.975, 5) * dr.se, stats.t.ppf(0.90, 5) * dr.se
    assert dr.interval() == pytest.approx((dr.value - half95, dr.value + half95), rel=1e-12)
    assert dr.interval(0.8) == pytest.approx((dr.value - half80, dr.value + half80), rel=1e-12)


def test_estimator_refusals_and_a_single_round():
    fb = _fb()
    dist = np.full((6, 3, 1), 1 / 3)
    with pytest.raises(ValueError, match="unknown estimator 'MIPS'"):
        ope.estimate("MIPS", fb, dist)
    with pytest.raises(ValueError, match=r"action_dist must have shape .*\(6, 3, 1\), got "
                                         r"\(6, 3\)"):
        ope.estimate("IPW", fb, dist[:, :, 0])
    for name in ("DM", "DR"):
        with pytest.raises(ValueError, match=f"{name} needs estimated_rewards_by_reg_model"):
            ope.estimate(name, fb, dist)
    with pytest.raises(ValueError, match=r"must have shape \(6, 3, 1\), got \(6, 3\)"):
        ope.estimate("DR", fb, dist, np.zeros((6, 3)))
    one = ope.bandit_feedback(np.array([1]), np.array([2.0]), np.array([0.5]))
    est = ope.estimate("IPW", one, np.full((1, 2, 1), 0.5))
    assert est.value == pytest.approx(2.0) and math.isnan(est.se)
    # two rounds are enough for a standard error: |w1 r1 - w2 r2| / 2
    two = ope.bandit_feedback(np.array([1, 0]), np.array([2.0, 3.0]), np.array([0.5, 0.25]))
    est = ope.estimate("IPW", two, np.full((2, 2, 1), 0.5))
    assert est.value == pytest.approx(4.0) and est.se == pytest.approx(2.0)
