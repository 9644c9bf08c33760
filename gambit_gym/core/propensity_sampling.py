"""Monte Carlo propensities of a batched agent: how often its own randomisation picks each arm.

Used by :class:`~gambit_gym.core.batched.BatchedAgent` (``_sampled``) for every built-in agent
whose propensities have no closed form; ``gambit_gym.agents._batched`` re-exports these names.
It lives in the core with the base that calls it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["PROPENSITY_PILOT", "PROPENSITY_RSE", "propensity_generator",
           "sampled_probabilities", "t_cdf"]

#: Default target relative standard error (SE / p) of the chosen action's Monte Carlo propensity.
PROPENSITY_RSE = 0.1
#: Draws per replicate in the first round of a Monte Carlo propensity (see
#: :func:`sampled_probabilities`).
PROPENSITY_PILOT = 32
#: The first round of the conditional estimator (see :func:`sampled_probabilities`).
CONDITIONAL_PILOT = 16
_PROP_TAG = 0x9E3779B97F4A7C15  # mixed into each replicate's key: the propensity generators
_PROP_CHUNK = 1 << 21  # scores materialised at once (R·S·K elements)


def propensity_generator(keys: np.ndarray) -> np.random.Generator:
    """The numpy generator of a batch's propensity draws, seeded from its replicates' keys.

    Why not the counter streams the agents act with: propensities need tens to hundreds of
    draws per replicate and step, which numpy draws for the whole batch in one call several
    times faster than hashing. The price: a replicate's propensity estimates (not its
    decisions) depend on the batch it runs in. It is separate from the acting streams, so
    computing propensities never changes a decision.
    """
    return np.random.Generator(np.random.PCG64([*(int(k) for k in keys), _PROP_TAG]))


_T_HILL_DOF = 12.0  # from here on the normal transform is within 1e-10 of the t CDF


def t_cdf(x: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """The standard Student-t CDF, vectorised and cheap, for the conditional propensities.

    ``dof >= 12``: Hill's normal transform (CACM Algorithm 395; within 1e-10 of the exact CDF
    there, checked against scipy in the tests), an ``ndtr`` and a few operations where
    ``scipy.special.stdtr`` takes about ten times as long. Integer ``dof < 12`` (the agents'
    posteriors: ``2 + pulls``): the finite series of the CDF (Abramowitz & Stegun 26.7.3-4).
    Other ``dof``: ``stdtr``.

    Args:
        x: points, ``(r, n)``.
        dof: degrees of freedom, ``(r, 1)`` (one per row).
    """
    from scipy.special import ndtr, stdtr

    x, dof = np.broadcast_arrays(np.asarray(x, dtype=np.float64), dof)
    out = np.empty(x.shape)
    row_dof = dof[:, 0]
    big = row_dof >= _T_HILL_DOF
    if big.any():
        xb, nb = x[big], dof[big]
        a = nb - 0.5
        b = 48.0 * a * a
        w2 = a * np.log1p(xb * xb / nb)
        w = np.sqrt(w2)
        z = w + w * (w2 + 3.0) / b - w * (((4.0 * w2 + 33.0) * w2 + 240.0) * w2 + 855.0) / (
            10.0 * b * (b + 0.8 * w2 * w2 + 100.0))
        out[big] = ndtr(np.copysign(z, xb))
    integer = ~big & (row_dof == np.round(row_dof)) & (row_dof >= 1.0)
    if integer.any():
        xi, nu = x[integer], row_dof[integer]
        ni = nu[:, None]
        c = ni / (ni + xi * xi)
        sin = xi / np.sqrt(ni + xi * xi)
        odd = (nu % 2) == 1
        terms = np.where(odd, (nu - 1.0) // 2, nu // 2).astype(np.int64)  # per row
        # the series' coefficients per row (zero past its last term), then Horner in c
        j = np.arange(max(int(terms.max()), 1))
        step = np.where(odd[:, None], 2.0 * j / (2.0 * j + 1.0),
                        (2.0 * j - 1.0) / np.maximum(2.0 * j, 1.0))
        step[:, 0] = 1.0
        coef = np.cumprod(step, axis=1) * (j < terms[:, None])
        total = np.zeros(xi.shape)
        for jj in range(len(j) - 1, -1, -1):
            total *= c
            total += coef[:, jj, None]
        even_cdf = 0.5 + 0.5 * sin * total
        odd_cdf = 0.5 + (np.arctan(xi / np.sqrt(ni)) + sin * np.sqrt(c) * total) / np.pi
        out[integer] = np.where(odd[:, None], odd_cdf, even_cdf)
    rest = ~big & ~integer
    if rest.any():
        out[rest] = stdtr(dof[rest], x[rest])
    return out


def sampled_probabilities(noise: Any, scores: Any, generator: np.random.Generator,
                          replicates: int, n_actions: int, max_samples: int, chosen: np.ndarray,
                          target_rse: float | None, pilot: int = PROPENSITY_PILOT,
                          conditional_dof: np.ndarray | None = None,
                          accumulate: Any = None) -> tuple[np.ndarray, ...]:
    """Propensities by Monte Carlo over an agent's own randomisation, draws set by their error.

    What needs to be precise is the propensity of the action the agent is about to take (the
    one logged for off-policy evaluation), and in relative terms (it divides the reward). So:
    a first round of ``pilot`` draws per replicate; a replicate whose chosen arm's estimate has
    a relative standard error above ``target_rse``, or was never drawn, gets one more round
    sized by the pilot to reach it (rounded up to a power of two times the pilot; at most
    ``max_samples`` draws in all). ``target_rse=None``: ``max_samples`` draws. Each round
    draws every replicate's random numbers in one generator call per kind of number.

    Two estimators of the chosen arm ``k``'s probability:

    - counting (default): the share of draws whose argmax is ``k``, logged as the add-one
      ``(C + 1)/(S + 1)``: never zero, and its inverse nearly unbiased for ``1/p``
      (``E[(S + 1)/(C + 1)] = (1 - (1 - p)^(S+1))/p`` for ``C ~ Binomial(S, p)``); relative SE
      ``√((1 - p̃)/(p̃ S))`` with ``p̃ = (C + 1)/(S + 2)``.
    - conditional (``conditional_dof`` given: the arms' scores are independent Student-t given
      the draw's shared numbers, as for StdTS and, given θ, foGAMBITTS): the mean over draws of
      ``P(X_k > M)``, ``M`` the largest of the other arms' draws, from ``k``'s own t CDF
      (:func:`t_cdf`). Unbiased, always positive, and its variance is at most the counting
      estimator's and far below it where ``k``'s score is spread wider than the others' (an
      arm the agent is still exploring: the counting estimator's hardest case). Its SE is the
      draws' sample SE.

    The other arms share ``1 - p_k`` in proportion to their counts (evenly if none was drawn).

    Args:
        noise: ``f(generator, rows, n) -> tuple of arrays``: the random numbers of ``n`` draws
            for replicates ``rows`` (``(len(rows), n, ...)``, or ``(n, ...)`` shared by the
            rows).
        scores: ``f(rows, numbers) -> (len(rows), n, K)``: the sampled scores of replicates
            ``rows`` from those numbers; with ``conditional_dof``, a tuple ``(scores, loc,
            scale)`` where ``loc`` and ``scale`` (broadcastable to the scores) are each arm's
            t location and scale given the numbers.
        generator: the batch's propensity generator (:func:`propensity_generator`).
        replicates: R.
        n_actions: K.
        max_samples: the most draws per replicate.
        chosen: ``(R,)`` the actions the agent takes now.
        target_rse: the target relative standard error, or None for ``max_samples`` draws.
        pilot: draws in the first round.
        conditional_dof: ``(R, K)`` the arms' t degrees of freedom, for the conditional
            estimator; None: counting.
        accumulate: with ``conditional_dof``, optionally a fused form of ``scores`` and the
            conditional estimator (the agents' numba kernels): ``f(rows, numbers, need) ->
            (counts (len(rows), K), sums (len(rows),), sums of squares (len(rows),))`` over
            each row's first ``need`` draws.

    Returns:
        ``(probabilities (R, K), standard errors (R, K), draws (R,))``.
    """
    r = replicates
    counts = np.zeros((r, n_actions))
    cond_sum = np.zeros(r)
    cond_sq = np.zeros(r)
    drawn = np.zeros(r, dtype=np.int64)
    if conditional_dof is not None and pilot == PROPENSITY_PILOT:
        pilot = CONDITIONAL_PILOT  # its draws vary far less: a smaller first round
    first = max_samples if target_rse is None else min(pilot, max_samples)
    need = np.full(r, first, dtype=np.int64)
    rows_all = np.arange(r)
    for _ in range(2):
        for rows, n in _draw_groups(need):
            per_call = max(1, _PROP_CHUNK // (n * max(n_actions, 8)))
            for lo in range(0, len(rows), per_call):
                part = rows[lo:lo + per_call]
                numbers = noise(generator, part, n)
                if accumulate is not None:
                    add_counts, add_sum, add_sq = accumulate(part, numbers, need[part])
                    counts[part] += add_counts
                    cond_sum[part] += add_sum
                    cond_sq[part] += add_sq
                    continue
                out = scores(part, numbers)
                sampled = out[0] if conditional_dof is not None else out
                picks = sampled.argmax(axis=-1)
                used = None if np.all(need[part] == n) else np.arange(n) < need[part, None]
                offsets = (np.arange(len(part)) * n_actions)[:, None]
                counts[part] += np.bincount((picks + offsets).ravel(),
                                            None if used is None else used.ravel(),
                                            minlength=len(part) * n_actions).reshape(
                                                len(part), n_actions)
                if conditional_dof is not None:
                    surv = _chosen_survival(out, part, chosen[part], conditional_dof)
                    if used is not None:
                        surv *= used
                    cond_sum[part] += surv.sum(axis=1)
                    cond_sq[part] += np.einsum("rn,rn->r", surv, surv)
        drawn += need
        if target_rse is None:
            break
        if conditional_dof is None:
            hits = counts[rows_all, chosen]
            p = (hits + 1.0) / (drawn + 2.0)
            per_draw = p * (1.0 - p)
        else:
            p = np.maximum(cond_sum / drawn, 1e-300)
            per_draw = np.maximum(cond_sq / drawn - p * p, 0.0) * drawn / np.maximum(drawn - 1, 1)
        want = per_draw / (p * p * target_rse ** 2)
        total = first * 2 ** np.ceil(np.log2(np.clip(want / first, 1.0, 2.0 * max_samples)))
        need = np.minimum(total, max_samples).astype(np.int64) - drawn
        need[want <= drawn] = 0
        if conditional_dof is None:
            hits = counts[rows_all, chosen]
            need[hits == 0] = max_samples - drawn[hits == 0]
        if not need.any():
            break
    smooth = (counts + 1.0) / (drawn[:, None] + 2.0)
    se = np.sqrt(smooth * (1.0 - smooth) / drawn[:, None])
    hits = counts[rows_all, chosen]
    if conditional_dof is None:
        p_chosen = (hits + 1.0) / (drawn + 1.0)
    else:
        p_chosen = np.maximum(cond_sum / drawn, np.finfo(float).tiny)  # never exactly 0
        var = np.maximum(cond_sq / drawn - p_chosen ** 2, 0.0) / np.maximum(drawn - 1, 1)
        se[rows_all, chosen] = np.sqrt(var)
    weights = counts.copy()
    weights[rows_all, chosen] = 0.0
    none = weights.sum(axis=1) == 0  # no other arm drawn (conditional estimator): evenly
    weights[none] = 1.0
    weights[none, chosen[none]] = 0.0
    probs = weights * ((1.0 - p_chosen) / weights.sum(axis=1))[:, None]
    probs[rows_all, chosen] = p_chosen
    return probs, se, drawn


def _draw_groups(need: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Rows that need draws, grouped to share one draw count each (rows use a prefix).

    Fewer groups mean fewer (per-call costly) rounds of numpy calls; a group's count is its
    largest need, so rows are added to it, largest need first, only while the draws computed
    stay within 1.5 times the draws needed.
    """
    rows = np.flatnonzero(need > 0)
    rows = rows[np.argsort(-need[rows], kind="stable")]
    groups: list[tuple[np.ndarray, int]] = []
    start, total = 0, 0
    for i, row in enumerate(rows):
        total += int(need[row])
        if i > start and int(need[rows[start]]) * (i - start + 1) > 1.5 * total:
            groups.append((np.sort(rows[start:i]), int(need[rows[start]])))
            start, total = i, int(need[row])
    if len(rows):
        groups.append((np.sort(rows[start:]), int(need[rows[start]])))
    return groups


def _chosen_survival(out: tuple[np.ndarray, ...], part: np.ndarray, chosen: np.ndarray,
                     dof: np.ndarray) -> np.ndarray:
    """``P(X_k > max of the other arms' draws)`` per draw ``(len(part), n)``, ``k = chosen``."""
    sampled, loc, scale = out
    shape = sampled.shape
    idx = chosen[:, None, None]
    others = sampled.copy()
    np.put_along_axis(others, idx, -np.inf, axis=-1)
    top = others.max(axis=-1)
    loc_k = np.take_along_axis(np.broadcast_to(loc, shape), idx, axis=-1)[..., 0]
    scale_k = np.take_along_axis(np.broadcast_to(scale, shape), idx, axis=-1)[..., 0]
    dof_k = dof[part, chosen][:, None]
    return t_cdf((loc_k - top) / scale_k, dof_k)  # P(X_k > top) = F((loc - top)/scale)
