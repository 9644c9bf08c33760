"""The analysis step (gambit_gym.bench.analysis) on hand-built unit records.

Every expected number is computed here from the per-replicate curves with plain numpy/scipy,
independently of the pooling code: chunk moments merged, intervals, overlap handling, grouping
and the normalised scores with each of their refusals. Fast (no env runs), so that mutation
testing (benchmarks/mutation.py) can run it for every mutant.
"""

import numpy as np
import pytest
from scipy import stats

from gambit_gym.bench.analysis import SettingStats, add_scores, summarise
from gambit_gym.bench.suites import Setting
from gambit_gym.bench.units import Unit, UnitRecord

T = 6


def _curves(seed: int, n: int, scale: float = 1.0) -> np.ndarray:
    """``(n, T)`` cumulative-regret curves (non-decreasing), distinct per replicate."""
    steps = np.random.default_rng(seed).gamma(2.0, scale, size=(n, T))
    return np.cumsum(steps, axis=1)


def _record(curves: np.ndarray, *, agent: str = "StdTS", rep_start: int = 0, suite: str = "s",
            env_kwargs: dict | None = None, horizon: int = T, seed: int = 0,
            wall: float = 1.0, panel: str = "p", label: str = "") -> UnitRecord:
    setting = Setting(env_id="GambitIHS-v0", agent=agent, env_kwargs=env_kwargs or {},
                      panel=panel, label=label)
    unit = Unit(suite=suite, setting=setting, horizon=horizon, seed=seed, rep_start=rep_start,
                n_reps=len(curves))
    mean = curves.mean(axis=0)
    return UnitRecord(unit=unit, cum_mean=mean, cum_m2=((curves - mean) ** 2).sum(axis=0),
                      final_regret=curves[:, -1].copy(),
                      actions=np.zeros(curves.shape, np.int64),
                      rewards=np.zeros(curves.shape), wall_time_s=wall)


def _only(rows, agent="StdTS"):
    (row,) = [r for r in rows if r.agent == agent]
    return row


def test_chunks_pool_to_the_statistics_of_all_replicates():
    a, b, c = _curves(1, 3), _curves(2, 4, 3.0), _curves(3, 2, 0.5)
    recs = [_record(a, rep_start=0, wall=1.5), _record(b, rep_start=3, wall=2.0),
            _record(c, rep_start=7, wall=0.25)]
    row = _only(summarise(recs[::-1]))  # order of the records does not matter
    every = np.concatenate([a, b, c])
    n = len(every)
    assert row.n == n == 9
    np.testing.assert_allclose(row.curve_mean, every.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(row.curve_var, every.var(axis=0, ddof=1), rtol=1e-10)
    np.testing.assert_array_equal(row.final_regret, every[:, -1])  # in replicate order
    final = every[:, -1]
    half = stats.t.ppf(0.975, n - 1) * final.std(ddof=1) / np.sqrt(n)
    assert row.mean == pytest.approx(final.mean(), rel=1e-12)
    assert row.ci_low == pytest.approx(final.mean() - half, rel=1e-12)
    assert row.ci_high == pytest.approx(final.mean() + half, rel=1e-12)
    assert row.wall_time_s == pytest.approx(3.75)
    assert (row.suite, row.env_id, row.agent, row.agent_key, row.panel, row.horizon) == (
        "s", "GambitIHS-v0", "StdTS", "StdTS", "p", T)
    assert row.label == "StdTS"  # a setting's label defaults to its agent


def test_the_interval_level_is_the_one_asked_for():
    curves = _curves(4, 5)
    final = curves[:, -1]
    row = _only(summarise([_record(curves)], confidence=0.80))
    half = stats.t.ppf(0.90, 4) * final.std(ddof=1) / np.sqrt(5)
    assert row.ci_high - row.mean == pytest.approx(half, rel=1e-12)
    assert row.mean - row.ci_low == pytest.approx(half, rel=1e-12)


def test_overlapping_chunks_are_counted_once_and_adjacent_ones_both():
    a, b = _curves(5, 4), _curves(6, 2)
    # the same replicates 0-3 stored twice, once cut 0-1 + 2-3 and once whole: the bigger
    # chunk starting first is kept, the pieces that overlap it are dropped
    whole = _record(a, rep_start=0)
    pieces = [_record(a[:2], rep_start=0), _record(a[2:], rep_start=2)]
    row = _only(summarise([pieces[1], whole, pieces[0]]))
    assert row.n == 4 and row.wall_time_s == pytest.approx(1.0)
    np.testing.assert_array_equal(row.final_regret, a[:, -1])
    # adjacent chunks (0-1 and 2-3) and a gap (0-3, then 6-7) are all kept
    row = _only(summarise(pieces))
    assert row.n == 4 and row.wall_time_s == pytest.approx(2.0)
    row = _only(summarise([whole, _record(b, rep_start=6)]))
    assert row.n == 6
    np.testing.assert_array_equal(row.final_regret, np.concatenate([a, b])[:, -1])
    # a later chunk overlapping only its first replicate is still dropped
    row = _only(summarise([_record(a, rep_start=0), _record(b, rep_start=3)]))
    assert row.n == 4
    # a dropped chunk does not stop the pooling: the chunks after it still count
    row = _only(summarise([whole, pieces[0], _record(b, rep_start=6)]))
    assert row.n == 6


def test_groups_split_by_suite_env_agent_horizon_and_seed():
    x = _curves(7, 3)
    recs = [_record(x, suite="one"), _record(x, suite="two", rep_start=0),
            _record(x, env_kwargs={"noise_level": 2}), _record(x, agent="Random"),
            _record(x[:, :4], horizon=4), _record(x, seed=1), _record(x)]
    rows = summarise(recs)
    keys = {(r.suite, r.env_key, r.agent_key, r.horizon) for r in rows}
    assert len(rows) == 7 and len(keys) == 6  # the seed splits two otherwise equal rows
    assert {r.n for r in rows} == {3}
    # pooled over suites, the same replicates stored by two suites count once
    pooled = summarise(recs[:2], by_suite=False)
    assert len(pooled) == 1 and pooled[0].n == 3 and pooled[0].suite == ""
    assert len(summarise(recs[:2], by_suite=True)) == 2


def test_scores_normalise_between_random_and_oracle():
    rnd, orc, agent = _curves(8, 4, 5.0), _curves(9, 4, 0.1), _curves(10, 4, 1.0)
    rows = summarise([_record(rnd, agent="Random"), _record(orc, agent="Oracle"),
                      _record(agent)])
    lo, hi = rnd[:, -1].mean(), orc[:, -1].mean()
    row = _only(rows)
    assert row.score == pytest.approx((lo - agent[:, -1].mean()) / (lo - hi), rel=1e-12)
    assert (row.ref_random, row.ref_oracle) == (pytest.approx(lo), pytest.approx(hi))
    assert row.score_note == ""
    assert _only(rows, "Random").score == pytest.approx(0.0, abs=1e-12)
    assert _only(rows, "Oracle").score == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(row.replicate_scores(), (lo - agent[:, -1]) / (lo - hi),
                               rtol=1e-12)


def test_without_an_oracle_row_its_regret_is_zero():
    rnd, agent = _curves(8, 4, 5.0), _curves(10, 4, 1.0)
    row = _only(summarise([_record(rnd, agent="Random"), _record(agent)]))
    lo = rnd[:, -1].mean()
    assert row.score == pytest.approx((lo - agent[:, -1].mean()) / lo, rel=1e-12)
    assert row.ref_oracle == 0.0


def _row(agent: str, mean: float, *, suite: str = "s", env_key: str = "E",
         horizon: int = 10) -> SettingStats:
    return SettingStats(suite=suite, env_id="E", env_key=env_key, agent=agent,
                        agent_key=agent, panel="", label=agent, horizon=horizon, n=3, mean=mean,
                        ci_low=mean, ci_high=mean, final_regret=np.array([mean - 1, mean,
                                                                          mean + 1]),
                        curve_mean=np.zeros(2), curve_var=np.zeros(2))


def test_scores_use_only_the_references_of_the_same_suite_env_and_horizon():
    rows = [_row("Random", 10.0), _row("Oracle", 2.0), _row("A", 4.0),
            _row("Random", 100.0, suite="t"), _row("A", 4.0, suite="t"),
            _row("Random", 50.0, env_key="F"), _row("Oracle", 40.0, env_key="F"),
            _row("A", 45.0, env_key="F"), _row("Random", 20.0, horizon=20),
            _row("A", 4.0, horizon=20)]
    add_scores(rows)
    scores = [r.score for r in rows if r.agent == "A"]
    assert scores == pytest.approx([0.75, 0.96, 0.5, 0.8])
    assert rows[2].replicate_scores() == pytest.approx([0.875, 0.75, 0.625])
    # a narrow range (Random only 0.5 above the Oracle) and huge finite regrets still score
    rows = [_row("Random", 0.5), _row("Oracle", 0.0), _row("A", 0.25),
            _row("Random", 1.5e308, env_key="F"), _row("Oracle", 1e308, env_key="F"),
            _row("A", 1.25e308, env_key="F")]
    add_scores(rows)
    assert rows[2].score == pytest.approx(0.5) and rows[5].score == pytest.approx(0.5)


NO_RANDOM = ("no Random run on this env config to normalise by (suites run Random and Oracle "
             "unless --no-reference)")
NO_RANGE = ("Random's regret is not above the Oracle's on this env config, so there is no "
            "range to normalise by")


@pytest.mark.parametrize("rows, note", [
    ([_row("A", 4.0)], NO_RANDOM),
    ([_row("Random", 2.0), _row("Oracle", 2.0), _row("A", 4.0)], NO_RANGE),
    ([_row("Random", 1.0), _row("Oracle", 2.0), _row("A", 4.0)], NO_RANGE),
    ([_row("Random", float("inf")), _row("A", 4.0)], NO_RANGE),
])
def test_a_missing_score_says_why(rows, note):
    add_scores(rows)
    row = rows[-1]
    assert np.isnan(row.score) and row.score_note == note
    assert np.isnan(row.ref_random) and np.isnan(row.ref_oracle)
    assert np.isnan(row.replicate_scores()).all() and row.replicate_scores().shape == (3,)


def test_band_is_the_per_step_t_interval():
    curves = _curves(11, 5)
    row = _only(summarise([_record(curves)]))
    low, high = row.band(0.9)
    half = stats.t.ppf(0.95, 4) * curves.std(axis=0, ddof=1) / np.sqrt(5)
    np.testing.assert_allclose(high - row.curve_mean, half, rtol=1e-9)
    np.testing.assert_allclose(row.curve_mean - low, half, rtol=1e-9)
    low95, high95 = row.band()
    np.testing.assert_allclose(high95 - row.curve_mean,
                               stats.t.ppf(0.975, 4) * curves.std(axis=0, ddof=1) / np.sqrt(5),
                               rtol=1e-9)
    # a single replicate has no interval (NaN variance): the band collapses onto the mean
    one = _only(summarise([_record(curves[:1])]))
    assert np.isnan(one.ci_low) and np.isnan(one.ci_high)
    np.testing.assert_array_equal(one.band()[0], one.curve_mean)
    np.testing.assert_array_equal(one.band()[1], one.curve_mean)
    # round-off can leave a tiny negative variance: clipped to 0, never a NaN band
    row.curve_var = np.full(T, -1e-18)
    np.testing.assert_array_equal(row.band()[0], row.curve_mean)
