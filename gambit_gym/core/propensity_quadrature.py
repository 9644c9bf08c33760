"""Propensities of Thompson sampling over independent Student-t arms by quadrature, no draws.

Why: for an agent whose arms' scores are independent Student-t (StdTS and StdTS-Contextual:
arm ``j`` draws ``loc_j + s_j·T_{ν_j}``), the probability that arm ``k`` is the argmax is a
one-dimensional integral,

    p_k = E[∏_{j≠k} F_j(X_k)] = ∫₀¹ ∏_{j≠k} F_j(loc_k + s_k·Q_{ν_k}(u)) du,

``F_j`` arm ``j``'s CDF and ``Q_ν`` the t quantile. A Gauss-Legendre rule in ``u`` replaces the
Monte Carlo draws (:mod:`.propensity_sampling`) and all their random numbers: the quantiles at
the nodes depend only on ``ν``, of which a run has few distinct values (``2α + pulls``), so
they are computed once per ``ν`` and kept (:class:`TQuantiles`); a step then costs a few t CDFs
per arm and node, fewer with the early exits below. Nothing is random, so the agent's streams
are untouched and its decisions are the same with or without propensities.

Error: each rule of ``G`` nodes embeds the ``G/2``-node rule (its nodes evaluated too), and
``|I_G - I_{G/2}|`` is the error estimate reported in place of a standard error (pessimistic:
it is the ``G/2`` rule's error). Where it exceeds ``tol·p`` the row is computed again with the
next, four times larger rule (:data:`QUAD_LEVELS`).

Two exact forms of the chosen arm's probability, whichever has the smaller estimated error:

- direct (above): accurate where arm ``k`` is no wider than its rivals. Where ``k`` is much
  wider (an arm still being explored, against a well-known one), the integrand jumps from 0 to
  1 over a sliver of ``u`` and no small rule resolves it.
- by parts: ``p_k = ∫ (1 - F_k) d∏_{j≠k}F_j = Σ_{j≠k} ∫₀¹ S_k(x_j(u)) ∏_{i≠j,k} F_i(x_j(u)) du``
  (``S_k = 1 - F_k``, ``x_j(u) = loc_j + s_j Q_{ν_j}(u)``): integrals over the rivals'
  quantiles, smooth exactly where the direct form is not, and free of cancellation where
  ``p_k`` is small. Computed only for the rows whose direct form misses the tolerance.

Only the chosen arm's probability is logged (IPW and DR need nothing else), so by default
only it is integrated; the other arms share ``1 - p_k`` in proportion to a normal
approximation of ``P(X_j > X_k)`` (error bound reported: ``1 - p_k``). With
``target_rse=None`` every arm is made precise in turn (``K`` times the work), to
:data:`QUAD_EXACT_RTOL`, and the others are those, scaled to share ``1 - p_k``.

Early exits: the direct integrand increases with ``u``, so the nodes are visited from the top
and the sweep stops once the rest can add at most :data:`QUAD_CUT`; a factor within ``1e-15``
of 1 at the lowest node is 1 everywhere and is dropped (all dropped: the integral is 1). The
numba kernel (:func:`gambit_gym.agents._propensity_kernels.independent_t_quadrature`) takes
these exits, which change an integral by at most ``tol/1000`` relative (``tol`` the
tolerance below); the numpy path here evaluates every node.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from gambit_gym.core.propensity_sampling import t_cdf

__all__ = ["QUAD_CUT", "QUAD_EXACT_RTOL", "QUAD_LEVELS", "QUAD_RTOL", "TAIL_TOP", "TQuantiles",
           "independent_t_probabilities", "quadrature_rule"]

#: Nodes ``G`` of the Gauss-Legendre rules tried in turn; each embeds its ``G/2``-node rule.
QUAD_LEVELS = (16, 64, 256)
#: Relative error asked of the chosen arm's probability (or the target, where smaller). Far
#: below the Monte Carlo default (0.1) because the rules' own error estimates need the margin:
#: on 2,500 logged decisions of StdTS runs, accepting at 0.1 or 0.01 let true errors of 22%
#: and 7% through (a rival much narrower than the integration arm, missed by both rules);
#: at 1e-3 the largest true error was 5e-4 (``tests/test_propensity_quadrature.py``).
QUAD_RTOL = 1e-3
#: Relative error asked when no target is given (``target_rse=None``: as precise as it goes).
QUAD_EXACT_RTOL = 1e-6
#: The sweeps stop once the nodes left can add at most this much to an integral.
QUAD_CUT = 1e-13
#: Where the chosen arm's direct integrand is still below this at the top node, its
#: probability lies in its own far tail, beyond every node (a heavy-tailed arm far behind a
#: narrow leader: the rules agree on ~0, wrongly): the by-parts form is computed and used.
TAIL_TOP = 0.5
_CHUNK = 1 << 21  # numpy path: elements of the (rows, K, K, nodes) CDF array at once
_MAX_CACHED_DOF = 100_000


@functools.cache
def quadrature_rule(g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``g``-node and ``g/2``-node Gauss-Legendre rules on (0, 1), on one node set.

    Returns ``(u, w_hi, w_lo, w_below)``, each ``(g + g/2,)``: the nodes of both rules,
    ascending; each rule's weights (0 at the other rule's nodes); and ``w_below[n]``, the most
    either rule's weights add up to below node ``n`` (bounds what the nodes under ``n`` can add
    to an integrand at most its value at ``n``).
    """
    if g < 2 or g % 2:
        raise ValueError(f"the quadrature needs an even number of nodes >= 2, got {g}")
    from scipy.special import roots_legendre  # numpy's leggauss: an eigensolve, 0.2 s at 256

    x_hi, w_hi = roots_legendre(g)
    x_lo, w_lo = roots_legendre(g // 2)
    u = np.concatenate([x_hi, x_lo]) * 0.5 + 0.5
    weights_hi = np.concatenate([w_hi * 0.5, np.zeros(g // 2)])
    weights_lo = np.concatenate([np.zeros(g), w_lo * 0.5])
    order = np.argsort(u, kind="stable")
    u, weights_hi, weights_lo = u[order], weights_hi[order], weights_lo[order]
    below = np.maximum(np.cumsum(weights_hi) - weights_hi, np.cumsum(weights_lo) - weights_lo)
    for a in (u, weights_hi, weights_lo, below):
        a.flags.writeable = False
    return u, weights_hi, weights_lo, below


class TQuantiles:
    """Student-t quantiles at a rule's nodes, ``Q_ν(u_n)``, computed once per ``ν`` and kept.

    The agents' degrees of freedom take few distinct values over a run (``2α + pulls``), so
    after the first steps a lookup is all a step pays (``scipy.special.stdtrit`` otherwise).
    """

    def __init__(self, u: np.ndarray) -> None:
        self.u = np.asarray(u, dtype=np.float64)
        self.index: dict[float, int] = {}
        self.dense = np.full(0, -1, dtype=np.int64)  # 2ν -> row, -1 where not computed yet
        self.table = np.empty((64, len(self.u)))

    def rows(self, dof: np.ndarray) -> np.ndarray:
        """Rows of :attr:`table` holding each ``dof``'s quantiles (same shape as ``dof``).

        Degrees of freedom on the half-integer grid (the agents': ``2α + pulls`` with the
        default ``α``) are looked up in a dense array indexed by ``2ν``, without hashing.
        """
        dof = np.asarray(dof, dtype=np.float64)
        twice = dof * 2.0
        grid = np.rint(twice)
        if np.array_equal(grid, twice) and grid.min() >= 1 and grid.max() < 1 << 20:
            keys = grid.astype(np.int64)
            if keys.max() >= len(self.dense):
                grown = np.full(2 * int(keys.max()) + 2, -1, dtype=np.int64)
                grown[:len(self.dense)] = self.dense
                self.dense = grown
            found = self.dense[keys]
            if (found < 0).any():
                missing = np.unique(keys[found < 0])
                self.dense[missing] = self._lookup(missing * 0.5)
                found = self.dense[keys]
            return found
        values, inverse = np.unique(dof, return_inverse=True)
        return self._lookup(values)[inverse].reshape(dof.shape)

    def _lookup(self, values: np.ndarray) -> np.ndarray:
        """Table rows of distinct ``values``, computing the quantiles of new ones."""
        from scipy.special import stdtrit

        found = np.array([self.index.get(v, -1) for v in values.tolist()], dtype=np.int64)
        new = found < 0
        if new.any():
            if len(self.index) + int(new.sum()) > _MAX_CACHED_DOF:  # bounded: start over
                self.index.clear()
                self.dense[:] = -1
                return self._lookup(values)
            fresh = values[new]
            start = len(self.index)
            if start + len(fresh) > len(self.table):
                grown = np.empty((2 * (start + len(fresh)), len(self.u)))
                grown[:start] = self.table[:start]
                self.table = grown
            self.table[start:start + len(fresh)] = stdtrit(fresh[:, None], self.u[None, :])
            found[new] = np.arange(start, start + len(fresh))
            self.index.update(zip(fresh.tolist(), range(start, start + len(fresh))))
        return found


_QUANTILES: dict[int, TQuantiles] = {}


def _quantiles(g: int) -> TQuantiles:
    if g not in _QUANTILES:
        _QUANTILES[g] = TQuantiles(quadrature_rule(g)[0])
    return _QUANTILES[g]


def independent_t_probabilities(loc: np.ndarray, tscale: np.ndarray, dof: np.ndarray,
                                chosen: np.ndarray, target_rse: float | None,
                                kernel: Any = None) -> tuple[np.ndarray, ...]:
    """Thompson sampling's propensities over independent Student-t arms, by quadrature.

    Args:
        loc: ``(R, K)`` each arm's t location.
        tscale: ``(R, K)`` each arm's t scale (> 0).
        dof: ``(R, K)`` each arm's degrees of freedom.
        chosen: ``(R,)`` the actions about to be taken: their probability is made precise.
        target_rse: the relative error asked of the chosen arm's probability, at most
            :data:`QUAD_RTOL` (a row whose estimate misses it is computed again with the next
            rule of :data:`QUAD_LEVELS`); None: :data:`QUAD_EXACT_RTOL`.
        kernel: the compiled form (``_propensity_kernels.independent_t_quadrature``), or None
            for the numpy path.

    Returns:
        ``(probabilities (R, K), error estimates (R, K), nodes per row (R,))``: the chosen
        arm's error estimate is its rule's ``|I_G - I_{G/2}|``; the nodes count both rules'.
    """
    loc, tscale, dof = (np.ascontiguousarray(a, dtype=np.float64) for a in (loc, tscale, dof))
    chosen = np.ascontiguousarray(chosen, dtype=np.int64)
    r, k = loc.shape
    if target_rse is not None:
        tol = min(float(target_rse), QUAD_RTOL)
        p, e, nodes = _one_arm(loc, tscale, dof, chosen, tol, kernel)
        probs, err = _share_rest(p, e, loc, tscale, dof, chosen, None)
        return probs, err, nodes
    # every arm made precise in turn, each the "chosen" one (K times the work)
    each_p, each_e = np.empty((r, k)), np.empty((r, k))
    nodes = np.zeros(r, dtype=np.int64)
    for arm in range(k):
        p, e, n = _one_arm(loc, tscale, dof, np.full(r, arm), QUAD_EXACT_RTOL, kernel)
        each_p[:, arm], each_e[:, arm] = p, e
        nodes += n
    rows = np.arange(r)
    probs, err = _share_rest(each_p[rows, chosen], each_e[rows, chosen], loc, tscale, dof,
                             chosen, (each_p, each_e))
    return probs, err, nodes


def _one_arm(loc: np.ndarray, tscale: np.ndarray, dof: np.ndarray, chosen: np.ndarray,
             tol: float, kernel: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The chosen arms' probabilities, error estimates and nodes, rule after rule."""
    r, k = loc.shape
    p_chosen, e_chosen = np.zeros(r), np.zeros(r)
    nodes = np.zeros(r, dtype=np.int64)
    rows = np.arange(r)
    for g in QUAD_LEVELS:
        u, w_hi, w_lo, below = quadrature_rule(g)
        quantiles = _quantiles(g)
        qidx = quantiles.rows(dof[rows])
        part = (loc[rows], tscale[rows], dof[rows], chosen[rows])
        if kernel is not None:
            a_hi, a_lo = np.zeros((len(rows), k)), np.zeros((len(rows), k))
            top = np.zeros(len(rows))
            b_hi, b_lo = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
            kernel(*part, quantiles.table, qidx, w_hi, w_lo, below, tol, a_hi, a_lo, top,
                   b_hi, b_lo)
        else:
            a_hi, a_lo, top, b_hi, b_lo = _integrals(*part, quantiles.table[qidx], w_hi,
                                                     w_lo, tol)
        p, e = _chosen_estimate(a_hi, a_lo, top, b_hi, b_lo, chosen[rows])
        p_chosen[rows], e_chosen[rows], nodes[rows] = p, e, len(u)
        rows = rows[e > tol * p]
        if not len(rows):
            break
    return p_chosen, e_chosen, nodes


def _chosen_estimate(a_hi: np.ndarray, a_lo: np.ndarray, top: np.ndarray, b_hi: np.ndarray,
                     b_lo: np.ndarray, chosen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chosen arm's probability (direct or by parts) and its error estimate."""
    r = np.arange(len(chosen))
    p_direct = a_hi[r, chosen]
    e_direct = np.abs(p_direct - a_lo[r, chosen])
    e_parts = np.abs(b_hi - b_lo)
    # Where the direct form missed the tolerance the by-parts form was computed too (NaN where
    # not): the smaller estimate wins, and the two forms must also agree with each other.
    # They integrate over different variables, so a sharp rival that fools one rule pair
    # rarely fools the other the same way; trusting |I_G - I_{G/2}| of either alone let
    # errors of 7% pass at G = 64. In the tail case (the direct integrand still below
    # TAIL_TOP at the top node: the probability lies beyond it, where no node looks, and both
    # rules can agree on ~0) the by-parts form is the answer.
    both = ~np.isnan(b_hi)
    tail = both & (top < TAIL_TOP)
    use_parts = tail | (both & (e_parts < e_direct))
    p = np.where(use_parts, b_hi, p_direct)
    e = np.where(use_parts, e_parts, e_direct)
    e = np.where(both & ~tail, np.maximum(e, np.abs(b_hi - p_direct)), e)
    return np.clip(p, np.finfo(float).tiny, 1.0), e  # never 0: its inverse weights a reward


def _share_rest(p: np.ndarray, e: np.ndarray, loc: np.ndarray, tscale: np.ndarray,
                dof: np.ndarray, chosen: np.ndarray,
                each: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """All arms' probabilities and errors: the other arms share ``1 - p_k``.

    In proportion to their own estimates where made (``each``: every arm's probability and
    error, scaled alike); otherwise (only the chosen arm's probability is logged, so only it
    is integrated) to a normal approximation of ``P(X_j > X_k)``, with the whole rest
    ``1 - p_k`` as their error bound.
    """
    from scipy.special import ndtr

    r = np.arange(len(chosen))
    if each is not None:
        others = np.maximum(each[0], 0.0)
    else:  # t variance, or 3 s² where it is infinite (ν <= 2): a proxy only
        var = tscale ** 2 * np.where(dof > 2.0, dof / np.maximum(dof - 2.0, 1e-12), 3.0)
        loc_k, var_k = loc[r, chosen][:, None], var[r, chosen][:, None]
        others = ndtr((loc - loc_k) / np.sqrt(var + var_k))
    others[r, chosen] = 0.0
    total = others.sum(axis=1)
    none = total <= 0.0  # no rival has any mass: share the rest evenly
    others[none] = 1.0
    others[none, chosen[none]] = 0.0
    scale = (1.0 - p) / others.sum(axis=1)
    probs = others * scale[:, None]
    probs[r, chosen] = p
    if each is not None:
        errs = each[1] * scale[:, None]
    else:
        errs = np.repeat((1.0 - p)[:, None], len(loc[0]), axis=1)
    errs[r, chosen] = e
    return probs, errs


def _integrals(loc: np.ndarray, tscale: np.ndarray, dof: np.ndarray, chosen: np.ndarray,
               quantiles: np.ndarray, w_hi: np.ndarray, w_lo: np.ndarray,
               tol: float) -> tuple[np.ndarray, ...]:
    """The numpy path: every arm's direct integral and the chosen arm's by-parts one.

    Every node is evaluated (no early exits); ``quantiles`` ``(r, K, N)`` are each arm's
    ``Q_ν(u_n)``. Returns ``(a_hi, a_lo (r, K), top, b_hi, b_lo (r,))``, ``top`` the chosen
    arm's direct integrand at the top node, ``b`` NaN where the direct form met ``tol`` and
    ``top >= TAIL_TOP`` (as the kernel, which skips them).
    """
    r, k = loc.shape
    n = quantiles.shape[-1]
    outs = [np.empty((r, k)), np.empty((r, k)), np.empty(r), np.empty(r), np.empty(r)]
    step = max(1, _CHUNK // (k * k * n))
    for lo in range(0, r, step):
        sl = slice(lo, lo + step)
        for out, value in zip(outs, _integrals_part(loc[sl], tscale[sl], dof[sl], chosen[sl],
                                                    quantiles[sl], w_hi, w_lo, tol)):
            out[sl] = value
    return tuple(outs)


def _integrals_part(loc: np.ndarray, tscale: np.ndarray, dof: np.ndarray, chosen: np.ndarray,
                    quantiles: np.ndarray, w_hi: np.ndarray,
                    w_lo: np.ndarray, tol: float) -> tuple[np.ndarray, ...]:
    r, k = loc.shape
    n = quantiles.shape[-1]
    x = loc[:, :, None] + tscale[:, :, None] * quantiles  # (r, K_j, N): arm j's node points
    # z[r, i, j, n]: arm j's node n standardised by arm i; F_i there, with i's own ν
    z = (x[:, None] - loc[:, :, None, None]) / tscale[:, :, None, None]
    cdf = t_cdf(z.reshape(r * k, k * n), dof.reshape(r * k, 1)).reshape(r, k, k, n)
    eye = np.eye(k, dtype=bool)
    cdf[:, eye] = 1.0  # an arm is not its own rival
    direct = cdf.prod(axis=1)  # (r, K_j, N): ∏_{i≠j} F_i(x_j)
    a_hi, a_lo = direct @ w_hi, direct @ w_lo
    rows = np.arange(r)
    p = a_hi[rows, chosen]
    top = direct[rows, chosen, -1]
    need = (np.abs(p - a_lo[rows, chosen]) > tol * np.abs(p)) | (top < TAIL_TOP)
    b_hi, b_lo = np.full(r, np.nan), np.full(r, np.nan)
    if need.any():
        sub = np.flatnonzero(need)
        kk = chosen[sub]
        rest = cdf[sub].copy()
        rest[np.arange(len(sub)), kk] = 1.0  # ∏_{i≠j,k} F_i(x_j)
        rival = rest.prod(axis=1)
        zk = z[sub, kk]  # (s, K_j, N): arm k's standardised value at arm j's nodes
        surv = t_cdf(-zk.reshape(len(sub), k * n), dof[sub, kk][:, None]).reshape(len(sub), k, n)
        term = surv * rival
        term[np.arange(len(sub)), kk] = 0.0  # j = k is not a term
        b_hi[sub] = np.einsum("sjn,n->s", term, w_hi)
        b_lo[sub] = np.einsum("sjn,n->s", term, w_lo)
    return a_hi, a_lo, top, b_hi, b_lo
