"""The 95% interval of a mean over replicates: one definition for every table, figure and script.

Student-t with ``n - 1`` degrees of freedom (not the normal ``1.96``): replicate counts in the
study and the suites are often small (R = 4 to 50), where the normal quantile is too narrow.
docs/harness.md states this choice; the leaderboard, figures, reports, ``RunResult.summary`` and
the study script all call :func:`mean_interval`, and an off-policy estimate's interval
(``bench.ope.Estimate.interval``, a mean of per-round terms) uses :func:`t_quantile`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mean_interval", "t_quantile"]


def t_quantile(confidence: float, n: int) -> float:
    """Two-sided Student-t quantile for a mean over ``n`` values (NaN for ``n < 2``).

    Args:
        confidence: the interval's level, e.g. 0.95.
        n: the number of values the mean is over.
    """
    if n < 2:
        return float("nan")
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, df=n - 1))


def mean_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The mean of ``values`` and its interval's half-width (NaN half-width for fewer than 2).

    Args:
        values: ``(n,)`` values, one per replicate.
        confidence: the interval's level.

    Returns:
        ``(mean, half)``: the interval is ``mean ± half``.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    n = values.size
    mean = float(values.mean()) if n else float("nan")
    if n < 2:
        return mean, float("nan")
    return mean, t_quantile(confidence, n) * float(values.std(ddof=1)) / float(np.sqrt(n))
