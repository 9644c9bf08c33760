"""Aggregate metrics over runs × env configurations, with stratified-bootstrap intervals.

Means and point ranks mislead when each agent has a few runs on each of a few tasks (Agarwal et
al., NeurIPS 2021, "Deep RL at the edge of the statistical precipice"). This module follows the
definitions of their library, ``rliable`` (``metrics.py`` and ``library.py``), on numpy and
scipy alone (rliable's ``arch`` dependency does not import beside pandas 3):

- scores are normalised per replicate (Random 0, Oracle 1, see :func:`score_table`); a *task* is
  one env configuration (a leaderboard column); an agent's scores are one array of runs per task;
- **IQM**: the 25%-trimmed mean of all runs × tasks scores pooled (``scipy.stats.trim_mean``);
- **median**: the median over tasks of the per-task mean score;
- **mean**: the mean over tasks of the per-task mean score;
- **optimality gap**: ``gamma`` minus the mean over tasks of the per-task mean of
  ``min(score, gamma)``, ``gamma = 1``;
- **probability of improvement** ``P(X > Y)``: per task the Mann-Whitney ``U`` of X's runs against
  Y's divided by ``n_x n_y`` (ties count 1/2), averaged over the tasks both agents have;
- **performance profile**: the fraction of all runs × tasks scores above each threshold ``tau``
  (strictly above, as rliable's ``run_score_deviation``).

With the same number of runs on every task these equal rliable's exactly. With different numbers
of runs per task (a store can hold more replicates of some configurations) the per-task means
still weigh every task equally, while IQM and the profiles pool every run.

Intervals are stratified-bootstrap percentile intervals, as rliable's default
(``task_bootstrap=False``, ``method='percentile'``): each resample draws, within every task and
independently, as many runs as the task has, with replacement; the interval is the
``(1 - c)/2`` and ``(1 + c)/2`` percentiles (numpy's linear interpolation) of the statistic over
the resamples. For the probability of improvement the two agents are resampled independently
(rliable's ``StratifiedIndependentBootstrap``); :func:`improvement_matrix` draws each agent's
resamples once and uses them in all its pairs. Resampling is vectorised (a block of resamples is
one array) and seeded from the base seed and the agent names only, so the same store gives the
same intervals, and adding an agent to a store leaves the others' intervals unchanged.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

METRICS: tuple[str, ...] = ("iqm", "median", "mean", "optimality_gap")
METRIC_NAMES = {"iqm": "IQM", "median": "Median", "mean": "Mean",
                "optimality_gap": "Optimality gap"}
DEFAULT_REPS = 2000
DEFAULT_SEED = 0
BLOCK = 250  # resamples drawn and evaluated at a time (part of the draw order: keep fixed)

Tasks = Sequence[np.ndarray]  # one 1-D array of run scores per task


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval."""

    point: float
    low: float
    high: float

    def overlaps(self, other: Interval) -> bool:
        """Whether the two intervals share a point."""
        return self.low <= other.high and other.low <= self.high

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready (NaN as None)."""
        return {"point": _finite(self.point), "low": _finite(self.low),
                "high": _finite(self.high)}


# ---------------------------------------------------------------------- point estimates
def _as_tasks(tasks: Tasks | np.ndarray) -> list[np.ndarray]:
    """A ``(runs, tasks)`` matrix or a sequence of per-task arrays as a list of 1-D arrays."""
    if isinstance(tasks, np.ndarray):
        if tasks.ndim != 2:
            raise ValueError(f"scores must be a (runs, tasks) matrix, got shape {tasks.shape}")
        return [tasks[:, j].astype(np.float64) for j in range(tasks.shape[1])]
    out = [np.asarray(t, dtype=np.float64).reshape(-1) for t in tasks]
    if not out or any(t.size == 0 for t in out):
        raise ValueError("every task needs at least one run score, and there must be a task")
    return out


def iqm(tasks: Tasks | np.ndarray) -> float:
    """Interquartile mean of all runs × tasks scores (25% cut from each end)."""
    return float(_trimmed_mean_sorted(np.sort(np.concatenate(_as_tasks(tasks)))[None])[0])


def median(tasks: Tasks | np.ndarray) -> float:
    """Median over tasks of the per-task mean score."""
    return float(np.median([t.mean() for t in _as_tasks(tasks)]))


def mean(tasks: Tasks | np.ndarray) -> float:
    """Mean over tasks of the per-task mean score."""
    return float(np.mean([t.mean() for t in _as_tasks(tasks)]))


def optimality_gap(tasks: Tasks | np.ndarray, gamma: float = 1.0) -> float:
    """How far scores fall short of ``gamma`` (scores above it count as ``gamma``)."""
    return float(gamma - np.mean([np.minimum(t, gamma).mean() for t in _as_tasks(tasks)]))


def probability_of_improvement(x: Tasks | np.ndarray, y: Tasks | np.ndarray) -> float:
    """``P(X > Y)`` averaged over tasks (ties count 1/2); tasks matched by position."""
    xs, ys = _as_tasks(x), _as_tasks(y)
    if len(xs) != len(ys):
        raise ValueError(f"X has {len(xs)} tasks and Y {len(ys)}; pass the tasks both have")
    return float(np.mean([_comparison(a, b).mean() for a, b in zip(xs, ys)]))


def performance_profile(tasks: Tasks | np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Fraction of all runs × tasks scores strictly above each threshold, ``(K,)``."""
    pooled = np.sort(np.concatenate(_as_tasks(tasks)))
    tau = np.asarray(thresholds, dtype=np.float64)
    return 1.0 - np.searchsorted(pooled, tau, side="right") / pooled.size


def _trimmed_mean_sorted(rows: np.ndarray) -> np.ndarray:
    """``scipy.stats.trim_mean(row, 0.25)`` of each already sorted row of ``rows``."""
    n = rows.shape[1]
    cut = int(0.25 * n)
    return rows[:, cut:n - cut].mean(axis=1)


def _comparison(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(n_x, n_y)``: 1 where ``x_i > y_j``, 1/2 where equal, 0 below."""
    return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])


# ---------------------------------------------------------------------- bootstrap
def rng_for(seed: int, *labels: str) -> np.random.Generator:
    """A generator seeded from ``seed`` and labels (agent names), stable across runs."""
    digest = hashlib.sha256("\x1f".join(labels).encode()).digest()
    return np.random.default_rng(np.random.SeedSequence([int(seed),
                                                         int.from_bytes(digest[:16], "big")]))


def resample_blocks(rng: np.random.Generator, sizes: Sequence[int],
                    reps: int) -> Iterator[list[np.ndarray]]:
    """Stratified resampling indices, a block of resamples at a time.

    Yields, for blocks of up to :data:`BLOCK` resamples, one ``(block, n_j)`` integer array per
    task ``j`` of run indices drawn uniformly with replacement from ``0..n_j-1``.
    """
    done = 0
    while done < reps:
        b = min(BLOCK, reps - done)
        yield [rng.integers(0, n, size=(b, n), dtype=np.int32) for n in sizes]
        done += b


def _percentiles(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail], axis=0)
    return lo, hi


def _check(reps: int, confidence: float) -> None:
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise ValueError(f"reps must be a positive integer number of resamples, got {reps!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")


def bootstrap_metrics(tasks: Tasks | np.ndarray, *, thresholds: np.ndarray | None = None,
                      reps: int = DEFAULT_REPS, confidence: float = 0.95,
                      rng: np.random.Generator | None = None, gamma: float = 1.0,
                      ) -> tuple[dict[str, Interval], np.ndarray | None]:
    """IQM, median, mean and optimality gap with stratified-bootstrap intervals.

    Args:
        tasks: one agent's scores, one array of runs per task (or a ``(runs, tasks)`` matrix).
        thresholds: also the performance profile at these thresholds.
        reps: bootstrap resamples.
        confidence: interval coverage.
        rng: the generator to resample with (default: seeded from :data:`DEFAULT_SEED`).
        gamma: the optimality gap's threshold.

    Returns:
        ``({metric: Interval}, profile)`` with ``profile`` a ``(3, K)`` array (point, low, high
        per threshold) when ``thresholds`` is given, else None.
    """
    _check(reps, confidence)
    tasks = _as_tasks(tasks)
    rng = rng if rng is not None else rng_for(DEFAULT_SEED)
    tau = None if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    sizes = [t.size for t in tasks]
    orders = [np.argsort(t, kind="stable") for t in tasks]
    places = [np.searchsorted(t[o], tau, side="right") if tau is not None else None
              for t, o in zip(tasks, orders)]
    stats: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    profiles: list[np.ndarray] = []
    for block in resample_blocks(rng, sizes, reps):
        samples = [t[idx] for t, idx in zip(tasks, block)]  # each (b, n_j)
        task_means = np.stack([s.mean(axis=1) for s in samples], axis=1)  # (b, m)
        pooled = np.sort(np.concatenate(samples, axis=1), axis=1)  # (b, N)
        stats["iqm"].append(_trimmed_mean_sorted(pooled))
        stats["median"].append(np.median(task_means, axis=1))
        stats["mean"].append(task_means.mean(axis=1))
        clipped = np.stack([np.minimum(s, gamma).mean(axis=1) for s in samples], axis=1)
        stats["optimality_gap"].append(gamma - clipped.mean(axis=1))
        if tau is not None:
            # runs above tau per task: the resample's counts summed past tau's place in
            # the task's sorted runs (a fixed place, so one cumulative sum per block)
            above = np.zeros((block[0].shape[0], tau.size))
            for t, idx, order, pos in zip(tasks, block, orders, places):
                cum = np.cumsum(_counts(idx, t.size)[:, order], axis=1)
                above += cum[:, -1:] - np.where(pos > 0, cum[:, np.maximum(pos - 1, 0)], 0.0)
            profiles.append(above / pooled.shape[1])
    points = {"iqm": iqm(tasks), "median": median(tasks), "mean": mean(tasks),
              "optimality_gap": optimality_gap(tasks, gamma)}
    out = {}
    for m in METRICS:
        lo, hi = _percentiles(np.concatenate(stats[m]), confidence)
        out[m] = Interval(points[m], float(lo), float(hi))
    profile = None
    if tau is not None:
        lo, hi = _percentiles(np.concatenate(profiles, axis=0), confidence)
        profile = np.stack([performance_profile(tasks, tau), lo, hi])
    return out, profile


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """``(b, n)``: how often each run index appears in each resample row of ``idx``."""
    b = idx.shape[0]
    flat = (idx + n * np.arange(b, dtype=idx.dtype)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def bootstrap_improvement(x: Tasks | np.ndarray, y: Tasks | np.ndarray, *,
                          reps: int = DEFAULT_REPS, confidence: float = 0.95,
                          rng: np.random.Generator | None = None) -> Interval:
    """``P(X > Y)`` with a stratified bootstrap interval, X and Y resampled independently.

    A resample's ``P`` on task ``j`` is ``sum_i wx_i G(x_i) / (n_x n_y)``, with ``w`` the
    resample's count of each run and ``G(v)`` the resampled Y runs below ``v`` plus half those
    equal to it, read off a cumulative sum of Y's counts in sorted order. Where a resampled
    X run falls among Y's sorted runs does not change between resamples, so a block of
    resamples costs ``O(block (n_x + n_y))`` per task instead of one Mann-Whitney test each.
    """
    _check(reps, confidence)
    xs, ys = _as_tasks(x), _as_tasks(y)
    if len(xs) != len(ys):
        raise ValueError(f"X has {len(xs)} tasks and Y {len(ys)}; pass the tasks both have")
    rng = rng if rng is not None else rng_for(DEFAULT_SEED)
    orders = [np.argsort(b, kind="stable") for b in ys]
    below = [np.searchsorted(b[o], a, side="left") for a, b, o in zip(xs, ys, orders)]
    upto = [np.searchsorted(b[o], a, side="right") for a, b, o in zip(xs, ys, orders)]
    sizes = [a.size for a in xs] + [b.size for b in ys]
    m = len(xs)
    values = []
    for block in resample_blocks(rng, sizes, reps):
        per_task = []
        for j in range(m):
            wx = _counts(block[j], xs[j].size)
            wy = _counts(block[m + j], ys[j].size)[:, orders[j]]
            cum = np.concatenate([np.zeros((wy.shape[0], 1)), np.cumsum(wy, axis=1)], axis=1)
            lo, hi = cum[:, below[j]], cum[:, upto[j]]
            per_task.append((wx * (lo + 0.5 * (hi - lo))).sum(axis=1)
                            / (xs[j].size * ys[j].size))
        values.append(np.mean(per_task, axis=0))
    lo, hi = _percentiles(np.concatenate(values), confidence)
    return Interval(probability_of_improvement(xs, ys), float(lo), float(hi))


def resample_counts(rng: np.random.Generator, n: int, reps: int) -> np.ndarray:
    """``(reps, n)``: how often each of ``n`` runs is drawn in each of ``reps`` resamples.

    Drawn as :func:`resample_blocks` draws one task's indices, block by block.
    """
    return np.concatenate([_counts(idx, n) for (idx,) in resample_blocks(rng, [n], reps)])


def improvement_matrix(scores: Mapping[str, Mapping[str, np.ndarray]], *,
                       reps: int = DEFAULT_REPS, confidence: float = 0.95,
                       seed: int = DEFAULT_SEED) -> dict[str, dict[str, Interval]]:
    """``P(X > Y)`` with its interval for every pair of agents, over the tasks both have.

    The same independent stratified bootstrap as :func:`bootstrap_improvement`, with one set
    of resamples per agent shared by all its pairs: agent ``a``'s resample counts on its tasks
    (in sorted task order) come from its own generator (:func:`rng_for` ``(seed, "poi", a)``).
    Within a pair the two agents' resamples are independent, as the bootstrap requires, and
    each agent is resampled once instead of once per pair, which makes the whole matrix about
    as costly as the pairs' arithmetic. Tasks are taken one at a time to bound memory.

    Returns:
        ``{x: {y: Interval}}`` for ``x != y`` (NaN where the two share no task);
        ``P(Y > X) = 1 - P(X > Y)`` on every resample, so ``y``'s interval mirrors ``x``'s.
    """
    _check(reps, confidence)
    names = sorted(scores)
    tasks = sorted({t for row in scores.values() for t in row})
    rngs = {a: rng_for(seed, "poi", a) for a in names}
    pairs = [(x, y) for i, x in enumerate(names) for y in names[i + 1:]]
    totals = {pair: np.zeros(reps) for pair in pairs}
    shared = {pair: 0 for pair in pairs}
    for task in tasks:
        have = [a for a in names if task in scores[a]]
        runs = {a: np.asarray(scores[a][task], dtype=np.float64) for a in have}
        # float32 holds these counts, their cumulative sums and the per-resample totals
        # (whole or half numbers below n_x * n_y) exactly: half the memory traffic, same sums
        counts = {a: resample_counts(rngs[a], runs[a].size, reps).astype(np.float32)
                  for a in have}
        order = {a: np.argsort(runs[a], kind="stable") for a in have}
        sorted_runs = {a: runs[a][order[a]] for a in have}
        cum = {a: np.concatenate([np.zeros((reps, 1), np.float32),
                                  np.cumsum(counts[a][:, order[a]], axis=1)], axis=1)
               for a in have}
        for x, y in pairs:
            if x not in runs or y not in runs:
                continue
            below = np.searchsorted(sorted_runs[y], runs[x], side="left")
            upto = np.searchsorted(sorted_runs[y], runs[x], side="right")
            lo = cum[y][:, below]
            if np.array_equal(below, upto):  # no ties between the two agents' runs
                below_count = lo
            else:
                below_count = lo + np.float32(0.5) * (cum[y][:, upto] - lo)
            wins = (counts[x] * below_count).sum(axis=1, dtype=np.float64)
            totals[(x, y)] += wins / (runs[x].size * runs[y].size)
            shared[(x, y)] += 1
    out: dict[str, dict[str, Interval]] = {a: {} for a in names}
    nan = Interval(math.nan, math.nan, math.nan)
    for x, y in pairs:
        if not shared[(x, y)]:
            out[x][y] = out[y][x] = nan
            continue
        common = [t for t in tasks if t in scores[x] and t in scores[y]]
        point = probability_of_improvement([scores[x][t] for t in common],
                                           [scores[y][t] for t in common])
        lo, hi = _percentiles(totals[(x, y)] / shared[(x, y)], confidence)
        out[x][y] = Interval(point, float(lo), float(hi))
        out[y][x] = Interval(1 - point, 1 - float(hi), 1 - float(lo))
    return out


# ---------------------------------------------------------------------- all agents
@dataclass
class Aggregates:
    """Every aggregate of a score table, as the leaderboard and the report show them.

    Attributes:
        agents: agent keys, best IQM first.
        tasks: task (env configuration) names.
        metrics: per agent, per metric in :data:`METRICS`, the estimate and interval.
        improvement: ``improvement[x][y]``: ``P(X > Y)`` over the tasks both have
            (NaN interval where they share none; ``x == y`` is left out).
        thresholds: performance-profile thresholds, ``(K,)``.
        profiles: per agent, ``(3, K)``: fraction of runs above each threshold, low, high.
        n_runs: per agent, per task, the number of runs.
        reps: bootstrap resamples.
        confidence: interval coverage.
        seed: the base seed of the resampling.
    """

    agents: list[str]
    tasks: list[str]
    metrics: dict[str, dict[str, Interval]]
    improvement: dict[str, dict[str, Interval]]
    thresholds: np.ndarray
    profiles: dict[str, np.ndarray]
    n_runs: dict[str, dict[str, int]]
    reps: int
    confidence: float
    seed: int
    rank_range: dict[str, tuple[int, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every aggregate, the pairwise improvement matrix and the profiles."""
        return {
            "method": {"reps": self.reps, "confidence": self.confidence, "seed": self.seed,
                       "bootstrap": "stratified by env configuration, percentile intervals",
                       "metrics": list(METRICS)},
            "tasks": self.tasks,
            "agents": [{"agent": a, "rank_range": list(self.rank_range.get(a, (0, 0))),
                        "runs": self.n_runs[a],
                        **{m: self.metrics[a][m].to_dict() for m in METRICS}}
                       for a in self.agents],
            "probability_of_improvement": {
                x: {y: iv.to_dict() for y, iv in row.items()}
                for x, row in self.improvement.items()},
            "performance_profiles": {
                "thresholds": [float(t) for t in self.thresholds],
                **{a: {"fraction": p[0].tolist(), "low": p[1].tolist(), "high": p[2].tolist()}
                   for a, p in self.profiles.items()}},
        }


def rank_ranges(intervals: Mapping[str, Interval],
                higher_is_better: bool = True) -> dict[str, tuple[int, int]]:
    """The ranks each agent could hold given its interval: ``(best, worst)``.

    An agent's best rank is one plus the number of agents whose interval lies wholly above
    its own (better beyond doubt); its worst rank is the number of agents whose interval does
    not lie wholly below. Agents whose intervals overlap share ranks.
    """
    out = {}
    for a, ia in intervals.items():
        sure_better = sure_worse = 0
        for b, ib in intervals.items():
            if a == b:
                continue
            above, below = ib.low > ia.high, ib.high < ia.low
            if not higher_is_better:
                above, below = below, above
            sure_better += above
            sure_worse += below
        out[a] = (1 + sure_better, len(intervals) - sure_worse)
    return out


def aggregate(scores: Mapping[str, Mapping[str, np.ndarray]], *,
              reps: int = DEFAULT_REPS, confidence: float = 0.95, seed: int = DEFAULT_SEED,
              thresholds: np.ndarray | None = None) -> Aggregates:
    """Aggregate a score table: per agent, per task, the runs' normalised scores.

    Args:
        scores: ``{agent: {task: (n_runs,) scores}}`` (see :func:`score_table`).
        reps: bootstrap resamples per interval.
        confidence: interval coverage.
        seed: base seed; each agent's (and each pair's) resampling is seeded from it and the
            agent names, so intervals do not move when other agents are added.
        thresholds: performance-profile thresholds (default: 0 to the highest score rounded
            up to a tenth, or 1, in 0.02 steps).

    Raises:
        ValueError: no agent has a score, or bad ``reps`` / ``confidence``.
    """
    _check(reps, confidence)
    scores = {a: {t: np.asarray(v, dtype=np.float64) for t, v in row.items()
                  if np.size(v) and np.all(np.isfinite(v))}
              for a, row in scores.items()}
    scores = {a: row for a, row in scores.items() if row}
    if not scores:
        raise ValueError("no normalised scores to aggregate (each env configuration needs a "
                         "Random row: run the suite with the Random agent)")
    tasks = sorted({t for row in scores.values() for t in row})
    if thresholds is None:
        top = max(float(v.max()) for row in scores.values() for v in row.values())
        thresholds = np.round(np.arange(0.0, max(1.0, math.ceil(top * 10) / 10) + 1e-9, 0.02), 4)
    tau = np.asarray(thresholds, dtype=np.float64)
    metrics, profiles = {}, {}
    for agent, row in scores.items():
        task_names = [t for t in tasks if t in row]
        metrics[agent], profiles[agent] = bootstrap_metrics(
            [row[t] for t in task_names], thresholds=tau, reps=reps, confidence=confidence,
            rng=rng_for(seed, "metrics", agent))
    improvement = improvement_matrix(scores, reps=reps, confidence=confidence, seed=seed)
    order = sorted(scores, key=lambda a: (-metrics[a]["iqm"].point, a))
    return Aggregates(
        agents=order, tasks=tasks, metrics=metrics, improvement=improvement, thresholds=tau,
        profiles=profiles, n_runs={a: {t: int(v.size) for t, v in scores[a].items()}
                                   for a in order},
        reps=int(reps), confidence=float(confidence), seed=int(seed),
        rank_range=rank_ranges({a: metrics[a]["iqm"] for a in order}))


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
