"""Fused CPU kernels of the Student-t agents' Monte Carlo propensities (numba, optional).

Why: at the study's sizes a step of StdTS costs a few microseconds per replicate, and the
propensity estimate (:func:`gambit_gym.core.propensity_sampling.sampled_probabilities`,
conditional estimator) written as numpy operations makes some thirty passes over
``replicates × draws × arms`` temporaries plus a few hundred small numpy calls per step. Here
each replicate's draws are scored, counted and turned into the chosen arm's conditional
probability in one pass, with nothing but the outputs written. The random numbers are the
same (drawn by numpy from the propensity generator, shared by the batch), so the estimates
equal the numpy path's up to float rounding (a test checks it). Without numba (the ``fast``
extra) the agents use the numpy path.
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


def available() -> bool:
    """Whether the numba kernels can be used."""
    return numba is not None


def supported(dof: np.ndarray) -> bool:
    """Whether the kernels' t CDF covers these degrees of freedom (>= 12, or integer >= 1)."""
    dof = np.asarray(dof)
    return bool(np.all((dof >= HILL_DOF) | ((dof == np.round(dof)) & (dof >= 1.0))))


def _t_cdf(x, nu):  # pragma: no cover - compiled
    """The t CDF at ``x``: Hill's transform for ``nu >= 12``, the finite series below."""
    if nu >= 12.0:
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


def _independent_t(loc, tscale, dof, chosen, a, log_w, need, counts, cond_sum,
                   cond_sq):  # pragma: no cover - compiled
    """Independent Student-t arms (StdTS): counts, and the conditional estimator's sums.

    ``loc, tscale, dof`` ``(r, K)`` are each row's arms' t location, scale and degrees of
    freedom; ``a, log_w`` ``(n, K)`` the shared polar-method numbers; row ``i`` uses the
    first ``need[i]`` draws. Adds to ``counts (r, K)``, ``cond_sum (r,)``, ``cond_sq (r,)``.
    """
    r, k_arms = loc.shape
    for i in range(r):
        k = chosen[i]
        expo = np.empty(k_arms)
        spread = np.empty(k_arms)
        for j in range(k_arms):
            expo[j] = -2.0 / dof[i, j]
            spread[j] = tscale[i, j] * math.sqrt(dof[i, j])
        for s in range(need[i]):
            best = -np.inf
            arg = 0
            top = -np.inf
            for j in range(k_arms):
                x = loc[i, j] + spread[j] * a[s, j] * math.sqrt(math.expm1(log_w[s, j] * expo[j]))
                if x > best:
                    best = x
                    arg = j
                if j != k and x > top:
                    top = x
            counts[i, arg] += 1.0
            sf = _t_cdf((loc[i, k] - top) / tscale[i, k], dof[i, k])
            cond_sum[i] += sf
            cond_sq[i] += sf * sf


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


if numba is not None:
    _t_cdf = numba.njit(cache=True, inline="always")(_t_cdf)
    independent_t = numba.njit(cache=True)(_independent_t)
    linear_t = numba.njit(cache=True)(_linear_t)
else:  # pragma: no cover - exercised where numba is absent
    independent_t = linear_t = None
