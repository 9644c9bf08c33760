"""Fused CPU kernels of the Student-t agents' propensities (numba, optional).

Why: at the study's sizes a step of StdTS costs a few microseconds per replicate, and a
propensity estimate written as numpy operations makes dozens of passes over ``replicates ×
draws (or nodes) × arms`` temporaries plus many small numpy calls per step. Two kernels:

- :func:`linear_t` (foGAMBITTS, Monte Carlo): each replicate's draws are scored, counted and
  turned into the chosen arm's conditional probability
  (:func:`gambit_gym.core.propensity_sampling.sampled_probabilities`) in one pass. The random
  numbers are the same (drawn by numpy from the propensity generator, shared by the batch), so
  the estimates equal the numpy path's up to float rounding (a test checks it).
- :func:`independent_t_quadrature` (StdTS, StdTS-Contextual, no draws): the quadrature of
  :mod:`gambit_gym.core.propensity_quadrature` with its early exits (the numpy path there
  evaluates every node; they agree to ``1e-6`` relative, a test checks it).

Without numba (the ``fast`` extra) the agents use the numpy paths.
"""

from __future__ import annotations

import math

import numpy as np

try:  # numba is an optional extra: gambit-gym[fast]
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None

#: From here on the kernels use Hill's normal transform for the t CDF (as ``t_cdf``).
HILL_DOF = 12.0
#: The quadrature kernel's switch to Hill's transform: the finite series up to here (exact,
#: and at most ~20 multiply-adds, cheaper than a ``log1p`` and an ``erfc``).
QUAD_HILL_DOF = 40.0
#: Below this value of the chosen arm's direct integrand at the top node, its probability lies
#: in the arm's far tail, beyond the nodes: the by-parts form is computed too (as in
#: ``core.propensity_quadrature.TAIL_TOP``).
TAIL_TOP = 0.5


def available() -> bool:
    """Whether the numba kernels can be used."""
    return numba is not None


def supported(dof: np.ndarray) -> bool:
    """Whether the kernels' t CDF covers these degrees of freedom (>= 12, or integer >= 1)."""
    dof = np.asarray(dof)
    return bool(np.all((dof >= HILL_DOF) | ((dof == np.round(dof)) & (dof >= 1.0))))


def _t_cdf(x, nu):  # pragma: no cover - compiled
    """The t CDF at ``x``: Hill's transform for ``nu >= 12``, the finite series below."""
    return _t_cdf_from(x, nu, HILL_DOF)


def _t_cdf_from(x, nu, hill_from):  # pragma: no cover - compiled
    """The t CDF: Hill's transform for ``nu >= hill_from`` or a non-integer ``nu``.

    Else the finite series (exact; cheaper than Hill's ``log1p`` and ``erfc`` up to ``nu``
    near 40). Callers pass only ``nu`` that :func:`supported` accepts.
    """
    if nu >= hill_from or nu != math.floor(nu):
        a = nu - 0.5
        b = 48.0 * a * a
        w2 = a * math.log1p(x * x / nu)
        w = math.sqrt(w2)
        z = w + w * (w2 + 3.0) / b - w * (((4.0 * w2 + 33.0) * w2 + 240.0) * w2 + 855.0) / (
            10.0 * b * (b + 0.8 * w2 * w2 + 100.0))
        if x < 0.0:
            z = -z
        return 0.5 * math.erfc(-z / math.sqrt(2.0))
    c = nu / (nu + x * x)
    sin = x / math.sqrt(nu + x * x)
    m = int(nu)
    odd = m % 2 == 1
    terms = (m - 1) // 2 if odd else m // 2
    total = 0.0
    coef = 1.0
    power = 1.0
    for j in range(terms):
        if j > 0:
            if odd:
                coef *= 2.0 * j / (2.0 * j + 1.0)
            else:
                coef *= (2.0 * j - 1.0) / (2.0 * j)
            power *= c
        total += coef * power
    if odd:
        return 0.5 + (math.atan(x / math.sqrt(nu)) + sin * math.sqrt(c) * total) / math.pi
    return 0.5 + 0.5 * sin * total


def _linear_t(maps_t, mean, mu_z, psi_flat, inv_root_kappa, dof, chosen, z, v, a, log_w,
              need, counts, cond_sum, cond_sq):  # pragma: no cover - compiled
    """foGAMBITTS: θ from shared normals, each arm's score Student-t given θ.

    Per row ``i`` and draw ``s``: ``m = √v·zᵀ maps_t[i]`` (``K + d`` values: the arms' linear
    scores' spread and θ_z's), ``θ_z = mu_z + m[K:]``, arm ``j``'s location
    ``mean[i, j] + m[j]`` and spread ``√(θ_zᵀΨ_jθ_z)/√κ_j``; its draw adds the spread times
    the polar-method ``T/√ν``. Shapes: ``maps_t (r, p, K + d)``, ``mean, inv_root_kappa, dof
    (r, K)``, ``mu_z (r, d)``, ``psi_flat (r, d², K)``, ``z (n, p)``, ``v (1 or r, n)``,
    ``a, log_w (n, K)``.
    """
    r, p, kd = maps_t.shape
    k_arms = mean.shape[1]
    d = kd - k_arms
    shared_v = v.shape[0] == 1
    for i in range(r):
        k = chosen[i]
        mapped = np.empty(kd)
        tz = np.empty(d)
        loc = np.empty(k_arms)
        tsc = np.empty(k_arms)
        expo = np.empty(k_arms)
        for j in range(k_arms):
            expo[j] = -2.0 / dof[i, j]
        for s in range(need[i]):
            root_v = math.sqrt(v[0, s] if shared_v else v[i, s])
            for c in range(kd):
                acc = 0.0
                for q in range(p):
                    acc += z[s, q] * maps_t[i, q, c]
                mapped[c] = acc * root_v
            for e in range(d):
                tz[e] = mu_z[i, e] + mapped[k_arms + e]
            best = -np.inf
            arg = 0
            top = -np.inf
            for j in range(k_arms):
                quad = 0.0
                for e in range(d):
                    for f in range(d):
                        quad += tz[e] * tz[f] * psi_flat[i, e * d + f, j]
                spread = math.sqrt(max(quad, 0.0)) * inv_root_kappa[i, j]
                loc[j] = mapped[j] + mean[i, j]
                tsc[j] = spread / math.sqrt(dof[i, j])
                x = loc[j] + spread * a[s, j] * math.sqrt(math.expm1(log_w[s, j] * expo[j]))
                if x > best:
                    best = x
                    arg = j
                if j != k and x > top:
                    top = x
            counts[i, arg] += 1.0
            sf = _t_cdf((loc[k] - top) / tsc[k], dof[i, k])
            cond_sum[i] += sf
            cond_sq[i] += sf * sf


def _sweep(loc, tsc, dof, q, j, k, parts, w_hi, w_lo, below, cut, prune, active,
           values):  # pragma: no cover - compiled
    """One integral over arm ``j``'s quantile nodes ``q`` (ascending): ``(I_G, I_{G/2})``.

    ``parts=False``: the direct integrand ``∏_{i≠j} F_i(x_j)``. ``parts=True`` (``j != k``):
    the by-parts term ``S_k(x_j)·∏_{i≠j,k} F_i(x_j)``. The lowest node is evaluated first
    and drops every factor within ``prune`` of 1 there (the CDFs increase with ``u``, so it
    is as close to 1 at every node above); the others are visited from the top, and the sweep
    stops once the nodes left can add at most ``cut`` times what the sweep has so far, or
    1e-13 (each integrand is at most the rivals' product, which decreases down the nodes).
    """
    k_arms = loc.shape[0]
    n_nodes = q.shape[0]
    for i in range(k_arms):
        active[i] = i != j and not (parts and i == k)
    hi = 0.0
    lo = 0.0
    bottom = True
    n = 0
    while n >= 0:
        x = loc[j] + tsc[j] * q[n]
        rival = 1.0
        for i in range(k_arms):
            if not active[i]:
                continue
            f = _t_cdf_from((x - loc[i]) / tsc[i], dof[i], QUAD_HILL_DOF)
            if bottom and f > 1.0 - prune:
                active[i] = False  # as close to 1 at every node above
                continue
            rival *= f
            if rival < 1e-300:
                rival = 0.0
                break
        value = rival
        if parts and rival > 0.0:
            value *= _t_cdf_from((loc[k] - x) / tsc[k], dof[k], QUAD_HILL_DOF)  # S_k(x)
        values[n] = value
        hi += w_hi[n] * value
        lo += w_lo[n] * value
        if bottom:
            bottom = False
            any_active = False
            for i in range(k_arms):
                any_active = any_active or active[i]
            if not any_active and not parts:  # the integrand is 1 at every node
                hi = 0.0
                lo = 0.0
                for m in range(n_nodes):
                    hi += w_hi[m]
                    lo += w_lo[m]
                return hi, lo
            n = n_nodes - 1
            continue
        if n == 1 or rival * below[n] <= max(cut * hi, 1e-13):
            break
        n -= 1
    return hi, lo


def _independent_t_quadrature(loc, tscale, dof, chosen, qtab, qidx, w_hi, w_lo, below, tol,
                              a_hi, a_lo, top, b_hi, b_lo):  # pragma: no cover - compiled
    """StdTS's propensities by quadrature (``core.propensity_quadrature``), early exits.

    Per row: the chosen arm's direct integral into ``a_hi, a_lo (r, K)`` (column ``chosen``;
    the others are left as they are), its integrand at the top node into ``top (r,)``; where
    the direct form misses ``tol`` (relative) or ``top < TAIL_TOP``, the by-parts form into
    ``b_hi, b_lo (r,)`` (left as they are elsewhere). ``qtab[qidx[i, j]]`` are arm ``j``'s
    t quantiles at the nodes. The exits drop at most ``tol/1000`` relative.
    """
    r, k_arms = loc.shape
    active = np.empty(k_arms, dtype=np.bool_)
    n_nodes = qtab.shape[1]
    values = np.empty(n_nodes)
    cut = tol * 1e-3
    prune = tol * 1e-4 / k_arms
    for i in range(r):
        k = chosen[i]
        values[n_nodes - 1] = 1.0  # what a sweep that found the integrand 1 leaves
        hi, lo = _sweep(loc[i], tscale[i], dof[i], qtab[qidx[i, k]], k, k, False, w_hi, w_lo,
                        below, cut, prune, active, values)
        a_hi[i, k] = hi
        a_lo[i, k] = lo
        top[i] = values[n_nodes - 1]
        if abs(a_hi[i, k] - a_lo[i, k]) <= tol * abs(a_hi[i, k]) and top[i] >= TAIL_TOP:
            continue
        hi_sum = 0.0
        lo_sum = 0.0
        for j in range(k_arms):
            if j == k:
                continue
            hi, lo = _sweep(loc[i], tscale[i], dof[i], qtab[qidx[i, j]], j, k, True, w_hi,
                            w_lo, below, cut * 0.1, prune, active, values)
            hi_sum += hi
            lo_sum += lo
        b_hi[i] = hi_sum
        b_lo[i] = lo_sum


if numba is not None:
    _t_cdf_from = numba.njit(cache=True, inline="always")(_t_cdf_from)
    _t_cdf = numba.njit(cache=True, inline="always")(_t_cdf)
    _sweep = numba.njit(cache=True)(_sweep)
    linear_t = numba.njit(cache=True)(_linear_t)
    independent_t_quadrature = numba.njit(cache=True)(_independent_t_quadrature)
else:  # pragma: no cover - exercised where numba is absent
    linear_t = independent_t_quadrature = None
