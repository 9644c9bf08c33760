"""Scoring: stored unit records → per-setting statistics and normalised scores.

This is the analysis step, kept apart from running (the sweep) and from presenting (the
leaderboard, the plots, the report), which only read what is computed here.

- A setting's statistics pool its units' replicates: cumulative-regret curves by merging the
  per-chunk moments exactly, final regret from the per-replicate values. Units whose replicate
  ranges overlap an earlier one (the same replicates run twice under different chunkings or in
  two suites) are counted once.
- The 95% interval of mean regret at T is Student-t over replicates.
- The score of an agent on an env configuration is ``(R_random - R_agent) / (R_random -
  R_oracle)`` with ``R`` the mean cumulative regret at T of each agent on that configuration
  and horizon: 0 for the uniform-random agent, 1 for the oracle, NaN where the Random row is
  missing. Regret is the env's expected (pseudo-)regret against the best action, so the
  oracle's is 0 by definition; where no Oracle row was run (the mixed-effect envs publish no
  oracle table), 0 is used.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from gambit_gym.bench.units import UnitRecord, merge_moments
from gambit_gym.core.intervals import mean_interval, t_quantile

RANDOM, ORACLE = "Random", "Oracle"


@dataclass
class SettingStats:
    """Pooled statistics of one (env config, agent config, horizon, seed).

    Attributes:
        suite: the suite (empty when pooled over suites).
        env_id: env id.
        env_key: env id + kwargs, canonical.
        agent: agent name or path.
        agent_key: agent + kwargs, canonical.
        panel: figure panel.
        label: line label.
        horizon: T.
        n: replicates.
        mean: mean cumulative regret at T.
        ci_low: lower end of the 95% interval of ``mean``.
        ci_high: upper end.
        final_regret: per-replicate cumulative regret at T, ``(n,)``.
        curve_mean: mean cumulative regret per step, ``(T,)``.
        curve_var: its variance over replicates per step, ``(T,)``.
        wall_time_s: total run time of the units.
        score: normalised score (filled by :func:`add_scores`).
        ref_random: the Random row's mean regret at T used for the score.
        ref_oracle: the Oracle row's (or 0).
        score_note: why :attr:`score` is missing, where it is (empty otherwise).
        outcomes: per-replicate totals of the safety and cost outcomes every unit recorded
            (``unsafe_delivered``, ``tokens``, ``cost``...), ``{key: (n,)}``.
    """

    suite: str
    env_id: str
    env_key: str
    agent: str
    agent_key: str
    panel: str
    label: str
    horizon: int
    n: int
    mean: float
    ci_low: float
    ci_high: float
    final_regret: np.ndarray = field(repr=False)
    curve_mean: np.ndarray = field(repr=False)
    curve_var: np.ndarray = field(repr=False)
    wall_time_s: float = 0.0
    score: float = float("nan")
    ref_random: float = float("nan")
    ref_oracle: float = float("nan")
    score_note: str = ""
    outcomes: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def replicate_scores(self) -> np.ndarray:
        """Each replicate's normalised score, ``(n,)`` (all NaN where :attr:`score` is NaN).

        The same normalisation as :attr:`score`, applied to each replicate's regret at T: the
        run scores the aggregates (IQM, probability of improvement) are computed over.
        """
        if not np.isfinite(self.score):
            return np.full(self.final_regret.shape, np.nan)
        return (self.ref_random - self.final_regret) / (self.ref_random - self.ref_oracle)

    def band(self, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Per-step interval of mean cumulative regret, each ``(T,)``."""
        half = t_quantile(confidence, self.n) * np.sqrt(np.maximum(self.curve_var, 0) / self.n)
        half = np.nan_to_num(half)
        return self.curve_mean - half, self.curve_mean + half


def _non_overlapping(records: list[UnitRecord]) -> list[UnitRecord]:
    kept: list[UnitRecord] = []
    covered: set[int] = set()
    for rec in sorted(records, key=lambda r: (r.unit.rep_start, -r.n_reps)):
        reps = set(range(rec.unit.rep_start, rec.unit.rep_start + rec.n_reps))
        if reps & covered:
            continue
        covered |= reps
        kept.append(rec)
    return kept


def summarise(records: list[UnitRecord], *, by_suite: bool = True,
              confidence: float = 0.95) -> list[SettingStats]:
    """Pool records into one :class:`SettingStats` per setting.

    Args:
        records: stored unit records.
        by_suite: keep suites apart (for figures); False pools the same setting across suites
            (for the leaderboard), counting each replicate once.
        confidence: level of the interval of mean regret at T.
    """
    groups: dict[tuple, list[UnitRecord]] = defaultdict(list)
    for rec in records:
        u, s = rec.unit, rec.unit.setting
        key = (u.suite if by_suite else "", s.env_key, s.agent_key, u.horizon, u.seed)
        groups[key].append(rec)
    out = []
    for (suite, env_key, agent_key, horizon, _), recs in groups.items():
        recs = _non_overlapping(recs)
        n, curve_mean, curve_var = merge_moments(recs)
        final = np.concatenate([r.final_regret for r in recs])
        mean, half = mean_interval(final, confidence)
        s = recs[0].unit.setting
        out.append(SettingStats(
            suite=suite, env_id=s.env_id, env_key=env_key, agent=s.agent, agent_key=agent_key,
            panel=s.panel, label=s.label, horizon=horizon, n=n, mean=mean,
            ci_low=mean - half, ci_high=mean + half, final_regret=final, curve_mean=curve_mean,
            curve_var=curve_var, wall_time_s=float(sum(r.wall_time_s for r in recs)),
            outcomes=_pooled_outcomes(recs)))
    add_scores(out)
    return out


def _pooled_outcomes(records: list[UnitRecord]) -> dict[str, np.ndarray]:
    """The outcomes every record has, their per-replicate totals concatenated."""
    keys = set.intersection(*(set(getattr(r, "outcomes", {}) or {}) for r in records)) \
        if records else set()
    return {k: np.concatenate([np.asarray(r.outcomes[k], dtype=np.float64) for r in records])
            for k in sorted(keys)}


def add_scores(rows: list[SettingStats]) -> None:
    """Fill each row's normalised score from the Random and Oracle rows of its env config."""
    refs: dict[tuple, dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r.agent_key in (RANDOM, ORACLE):
            refs[(r.suite, r.env_key, r.horizon)][r.agent_key] = r.mean
    for r in rows:
        ref = refs.get((r.suite, r.env_key, r.horizon), {})
        lo, hi = ref.get(RANDOM), ref.get(ORACLE, 0.0)
        if lo is None:
            r.score = float("nan")
            r.score_note = ("no Random run on this env config to normalise by (suites run "
                            "Random and Oracle unless --no-reference)")
        elif hi is None or not np.isfinite(lo - hi) or lo - hi <= 0:
            r.score = float("nan")
            r.score_note = ("Random's regret is not above the Oracle's on this env config, "
                            "so there is no range to normalise by")
        else:
            r.score = float((lo - r.mean) / (lo - hi))
            r.ref_random, r.ref_oracle = float(lo), float(hi)
