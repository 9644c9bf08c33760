"""Aggregates over runs × tasks: a hand-computed case, a plain-loop reference, determinism."""

import numpy as np
import pytest
from scipy import stats

from gambit_gym.bench import aggregates as agg
from gambit_gym.bench.aggregates import Interval

# 4 runs x 2 tasks; X's second task has a score above 1 (clipped by the optimality gap)
X = np.array([[0.1, 0.5], [0.2, 0.6], [0.9, 0.0], [0.4, 1.2]])
Y = np.array([[0.2, 0.5], [0.0, 0.5], [0.3, 0.7], [0.2, 0.1]])


def test_point_estimates_by_hand():
    # pooled sorted: 0 .1 .2 .4 .5 .6 .9 1.2 -> middle four .2 .4 .5 .6
    assert agg.iqm(X) == pytest.approx(0.425)
    # task means 0.4 and 0.575
    assert agg.mean(X) == pytest.approx(0.4875)
    assert agg.median(X) == pytest.approx(0.4875)
    assert agg.median([X[:, 0], X[:, 1], np.array([2.0])]) == pytest.approx(0.575)
    # min(s, 1) sums to 3.7 over 8 runs (two tasks of four: mean of task means is the same)
    assert agg.optimality_gap(X) == pytest.approx(1 - 3.7 / 8)
    # task 0, X's runs .1 .2 .9 .4 against Y's .2 0 .3 .2: 1 + (.5 + 1 + .5) + 4 + 4 = 11;
    # task 1, X's .5 .6 0 1.2 against Y's .5 .5 .7 .1: (.5 + .5 + 1) + 3 + 0 + 4 = 9
    wins0 = sum((a > b) + 0.5 * (a == b) for a in X[:, 0] for b in Y[:, 0])
    wins1 = sum((a > b) + 0.5 * (a == b) for a in X[:, 1] for b in Y[:, 1])
    assert (wins0, wins1) == (11.0, 9.0)
    assert agg.probability_of_improvement(X, Y) == pytest.approx((11 / 16 + 9 / 16) / 2)
    assert agg.probability_of_improvement(X, X) == pytest.approx(0.5)
    profile = agg.performance_profile(X, np.array([0.0, 0.5, 1.0, 1.2]))
    np.testing.assert_allclose(profile, [7 / 8, 3 / 8, 1 / 8, 0.0])


def test_point_estimates_match_scipy_and_rliable_definitions():
    rng = np.random.default_rng(5)
    scores = rng.normal(0.5, 0.3, size=(7, 5))
    other = rng.normal(0.4, 0.3, size=(9, 5))
    assert agg.iqm(scores) == pytest.approx(stats.trim_mean(scores, 0.25, axis=None))
    assert agg.mean(scores) == pytest.approx(np.mean(np.mean(scores, axis=0)))
    assert agg.median(scores) == pytest.approx(np.median(np.mean(scores, axis=0)))
    assert agg.optimality_gap(scores) == pytest.approx(1 - np.mean(np.minimum(scores, 1)))
    per_task = [stats.mannwhitneyu(scores[:, j], other[:, j], alternative="greater")[0]
                / (7 * 9) for j in range(5)]
    assert agg.probability_of_improvement(scores, other) == pytest.approx(np.mean(per_task))
    tau = np.linspace(-0.5, 1.5, 11)
    np.testing.assert_allclose(agg.performance_profile(scores, tau),
                               [np.mean(scores > t) for t in tau])


def _loop_reference(tasks, reps, seed, thresholds, confidence=0.95):
    """The bootstrap written as a plain loop over resamples (same index draws)."""
    rng = agg.rng_for(seed, "ref")
    values = {m: [] for m in agg.METRICS}
    prof = []
    for block in agg.resample_blocks(rng, [t.size for t in tasks], reps):
        for b in range(block[0].shape[0]):
            sample = [t[idx[b]] for t, idx in zip(tasks, block)]
            pooled = np.concatenate(sample)
            values["iqm"].append(stats.trim_mean(pooled, 0.25))
            values["median"].append(np.median([s.mean() for s in sample]))
            values["mean"].append(np.mean([s.mean() for s in sample]))
            values["optimality_gap"].append(1 - np.mean([np.minimum(s, 1).mean()
                                                         for s in sample]))
            prof.append([np.mean(pooled > t) for t in thresholds])
    tail = 100 * (1 - confidence) / 2
    out = {m: np.percentile(v, [tail, 100 - tail]) for m, v in values.items()}
    return out, np.percentile(np.array(prof), [tail, 100 - tail], axis=0)


@pytest.mark.parametrize("sizes", [(6, 6, 6), (3, 8, 5, 1)])
def test_bootstrap_equals_a_plain_loop(sizes):
    rng = np.random.default_rng(11)
    tasks = [rng.normal(0.5, 0.4, size=n) for n in sizes]
    tau = np.array([0.0, 0.25, 0.5, 1.0])
    got, profile = agg.bootstrap_metrics(tasks, thresholds=tau, reps=600, confidence=0.9,
                                         rng=agg.rng_for(3, "ref"))
    want, want_prof = _loop_reference(tasks, 600, 3, tau, confidence=0.9)
    for m in agg.METRICS:
        assert (got[m].low, got[m].high) == pytest.approx(tuple(want[m]), abs=1e-12)
        assert got[m].low <= got[m].point <= got[m].high or m == "median"
    np.testing.assert_allclose(profile[1:], want_prof, atol=1e-12)
    np.testing.assert_allclose(profile[0], agg.performance_profile(tasks, tau))


def test_improvement_bootstrap_equals_a_plain_loop():
    rng = np.random.default_rng(2)
    x = [rng.integers(0, 4, size=5).astype(float), rng.normal(size=7)]
    y = [rng.integers(0, 4, size=6).astype(float), rng.normal(size=4)]  # ties in task 0
    got = agg.bootstrap_improvement(x, y, reps=500, rng=agg.rng_for(9, "p"))
    ref = []
    for block in agg.resample_blocks(agg.rng_for(9, "p"), [5, 7, 6, 4], 500):
        for b in range(block[0].shape[0]):
            per_task = []
            for j in range(2):
                xs, ys = x[j][block[j][b]], y[j][block[2 + j][b]]
                u = stats.mannwhitneyu(xs, ys, alternative="greater")[0] if not \
                    np.array_equal(xs, ys) else 0.5 * xs.size * ys.size
                per_task.append(u / (xs.size * ys.size))
            ref.append(np.mean(per_task))
    lo, hi = np.percentile(ref, [2.5, 97.5])
    assert (got.low, got.high) == pytest.approx((lo, hi), abs=1e-12)
    assert got.point == pytest.approx(agg.probability_of_improvement(x, y))


def test_improvement_matrix_equals_a_plain_loop():
    rng = np.random.default_rng(4)
    table = {"A": {"t1": rng.integers(0, 3, 5).astype(float), "t2": rng.normal(size=4)},
             "B": {"t1": rng.integers(0, 3, 6).astype(float)},  # ties with A on t1
             "C": {"t1": rng.normal(size=3), "t2": rng.normal(size=5)}}
    got = agg.improvement_matrix(table, reps=300, seed=7)
    counts = {}  # the same draws: per agent, its own generator, its tasks in sorted order
    for a in sorted(table):
        r = agg.rng_for(7, "poi", a)
        counts[a] = {t: agg.resample_counts(r, table[a][t].size, 300) for t in sorted(table[a])}
    for a in table:
        for t in table[a]:
            assert (counts[a][t].sum(axis=1) == table[a][t].size).all()
    for x, y in [("A", "B"), ("A", "C"), ("B", "C")]:
        common = sorted(set(table[x]) & set(table[y]))
        values = []
        for b in range(300):
            per_task = []
            for t in common:
                xs = np.repeat(table[x][t], counts[x][t][b].astype(int))
                ys = np.repeat(table[y][t], counts[y][t][b].astype(int))
                u = stats.mannwhitneyu(xs, ys, alternative="greater")[0]
                per_task.append(u / (xs.size * ys.size))
            values.append(np.mean(per_task))
        lo, hi = np.percentile(values, [2.5, 97.5])
        assert (got[x][y].low, got[x][y].high) == pytest.approx((lo, hi), abs=1e-12)
        assert got[x][y].point == pytest.approx(agg.probability_of_improvement(
            [table[x][t] for t in common], [table[y][t] for t in common]))
        assert (got[y][x].low, got[y][x].high) == pytest.approx((1 - hi, 1 - lo), abs=1e-12)


def test_resampling_is_stratified_by_task():
    blocks = list(agg.resample_blocks(np.random.default_rng(0), [2, 5], 600))
    assert [b[0].shape for b in blocks] == [(250, 2), (250, 2), (100, 2)]
    idx0 = np.concatenate([b[0] for b in blocks])
    idx1 = np.concatenate([b[1] for b in blocks])
    assert set(np.unique(idx0)) == {0, 1} and set(np.unique(idx1)) == {0, 1, 2, 3, 4}


def test_constant_scores_collapse_the_interval():
    tasks = [np.full(4, 0.3), np.full(3, 0.7)]
    got, _ = agg.bootstrap_metrics(tasks, reps=200)
    assert got["mean"].point == pytest.approx(0.5)
    for m in agg.METRICS:
        assert got[m].low == pytest.approx(got[m].point)
        assert got[m].high == pytest.approx(got[m].point)


def _table(seed=0):
    rng = np.random.default_rng(seed)
    return {"A": {"t1": rng.normal(0.9, 0.05, 10), "t2": rng.normal(0.8, 0.05, 10)},
            "B": {"t1": rng.normal(0.5, 0.05, 10), "t2": rng.normal(0.6, 0.05, 10)},
            "C": {"t1": rng.normal(0.52, 0.05, 10), "t2": rng.normal(0.58, 0.05, 10)},
            "D": {"t1": rng.normal(0.1, 0.05, 10)}}


def test_aggregate_is_seeded_and_stable_when_agents_are_added():
    first = agg.aggregate(_table(), reps=300)
    again = agg.aggregate(_table(), reps=300)
    assert first.to_dict() == again.to_dict()
    fewer = agg.aggregate({k: v for k, v in _table().items() if k != "C"}, reps=300)
    assert fewer.metrics["A"] == first.metrics["A"]
    assert fewer.improvement["A"]["B"] == first.improvement["A"]["B"]
    other = agg.aggregate(_table(), reps=300, seed=1)
    assert other.metrics["A"]["iqm"].point == first.metrics["A"]["iqm"].point
    assert other.metrics["A"]["iqm"].low != first.metrics["A"]["iqm"].low


def test_aggregate_ranks_pairs_and_profiles():
    res = agg.aggregate(_table(), reps=400)
    assert res.agents[0] == "A" and res.agents[-1] == "D"
    assert res.rank_range["A"] == (1, 1) and res.rank_range["D"] == (4, 4)
    assert res.rank_range["B"] == (2, 3) and res.rank_range["C"] == (2, 3)  # overlapping
    ab, ba = res.improvement["A"]["B"], res.improvement["B"]["A"]
    assert ab.point == pytest.approx(1.0) and ba.point == pytest.approx(0.0)
    assert (ba.low, ba.high) == pytest.approx((1 - ab.high, 1 - ab.low))
    # D has one task: its pairs are over t1 only
    assert res.improvement["A"]["D"].point == pytest.approx(1.0)
    assert res.n_runs["D"] == {"t1": 10}
    assert res.profiles["A"].shape == (3, len(res.thresholds))
    assert res.profiles["A"][0][0] == pytest.approx(1.0)  # every A run scores above 0
    doc = res.to_dict()
    assert [a["agent"] for a in doc["agents"]] == res.agents
    assert set(doc["probability_of_improvement"]["A"]) == {"B", "C", "D"}
    assert doc["agents"][0]["iqm"]["low"] <= doc["agents"][0]["iqm"]["point"]


def test_rank_ranges_by_hand():
    ivs = {"a": Interval(0.9, 0.8, 1.0), "b": Interval(0.7, 0.5, 0.85),
           "c": Interval(0.6, 0.55, 0.65), "d": Interval(0.1, 0.0, 0.2)}
    assert agg.rank_ranges(ivs) == {"a": (1, 2), "b": (1, 3), "c": (2, 3), "d": (4, 4)}


@pytest.mark.parametrize("kwargs, pattern", [
    ({"reps": 0}, "reps must be a positive integer"),
    ({"reps": True}, "reps must be a positive integer"),
    ({"confidence": 95}, "confidence must be in"),
])
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        agg.aggregate(_table(), **kwargs)


def test_nothing_to_aggregate():
    with pytest.raises(ValueError, match="Random row"):
        agg.aggregate({"A": {"t": np.array([np.nan])}})
    with pytest.raises(ValueError, match="at least one run"):
        agg.iqm([np.array([])])
    with pytest.raises(ValueError, match="X has 2 tasks and Y 1"):
        agg.probability_of_improvement(X, Y[:, :1])
