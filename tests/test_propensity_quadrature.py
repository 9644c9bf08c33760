"""StdTS's propensities by quadrature: rules, quantile cache, against scipy.quad and draws."""

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import stdtr, stdtrit

from gambit_gym.core import propensity_quadrature as pq

# Hard cases: rows of a StdTS run (GambitIHS-MLP-v0, R = 250, seed 323, steps 400 and 999)
# where plain Gauss-Legendre in u failed or both rules agreed on a wrong value (a chosen arm
# much wider than a rival, or a rival much narrower than another rival); then easy and
# extreme ones. Each: (loc, t scale, dof, chosen).
CASES = [
    ([81.9479, 82.9004, 82.2912, 82.2792, 81.2912], [0.432, 0.0375, 0.3013, 0.3402, 0.6242],
     [30, 869, 49, 42, 19], 0),
    ([82.3171, 81.1228, 81.9015, 82.707, 81.131], [0.3955, 0.6406, 0.4157, 0.0363, 0.6071],
     [35, 18, 32, 906, 18], 0),
    ([83.0825, 81.4495, 80.623, 79.3291, 80.5098], [0.0645, 0.6994, 0.7719, 1.2668, 0.8206],
     [362, 17, 13, 6, 12], 3),
    ([83.0404, 82.9103, 81.7806, 81.7032, 80.4657], [0.0717, 0.0443, 0.5407, 0.4063, 0.805],
     [307, 634, 24, 32, 12], 4),
    ([0.0, 0.1, -0.1, 0.05], [1.0, 1.1, 0.9, 1.0], [3, 5, 2, 40], 2),  # near ties: all matter
    ([5.0, 0.0, 0.2], [0.3, 1.0, 0.5], [200, 4, 9], 0),  # a dominant arm: p near 1
    ([0.0, 4.0, 3.5], [2.0, 0.5, 0.4], [3, 60, 80], 0),  # a wide chosen arm, p small
    ([1.0, 0.0], [0.7, 0.2], [7.5, 13.25], 1),  # two arms, non-integer dof (numpy path)
]


def as_arrays(case):
    loc, scale, dof, chosen = case
    return (np.array([loc], float), np.array([scale], float), np.array([dof], float),
            np.array([chosen]))


def case_reference(index, k):
    """:func:`quad_reference` of ``CASES[index]``'s arm ``k``, computed once per session."""
    if (index, k) not in _REFERENCES:
        loc, scale, dof, _ = (np.asarray(a, float) for a in CASES[index])
        _REFERENCES[index, k] = quad_reference(loc, scale, dof, k)
    return _REFERENCES[index, k]


_REFERENCES: dict = {}


def quad_reference(loc, scale, dof, k):
    """P(arm k is the argmax): scipy's adaptive quad over x, split around every arm.

    ``∫ f_k(x) ∏_{j≠k} F_j(x) dx`` on pieces bounded by each arm's location ± 1-8 scales
    (over u instead, quad too misses a heavy-tailed arm's mass far beyond the others).
    """
    def integrand(x):
        return stats.t.pdf(x, dof[k], loc[k], scale[k]) * np.prod(
            [stdtr(dof[j], (x - loc[j]) / scale[j]) for j in range(len(loc)) if j != k])

    lo, hi = loc[k] - 1e4 * scale[k], loc[k] + 1e4 * scale[k]
    cuts = {float(m + c * s) for m, s in zip(loc, scale) for c in (-8, -4, -2, -1, 0, 1, 2, 4, 8)}
    edges = [lo, *sorted(c for c in cuts if lo < c < hi), hi]
    inside = sum(integrate.quad(integrand, a, b, limit=500, epsabs=1e-18, epsrel=1e-12)[0]
                 for a, b in zip(edges[:-1], edges[1:]))
    return inside + stats.t.sf(1e4, dof[k])  # beyond hi every rival's CDF is 1


def kernels():
    from gambit_gym.agents import _propensity_kernels as k

    return [None] + ([k.independent_t_quadrature] if k.available() else [])


@pytest.mark.parametrize("g", pq.QUAD_LEVELS)
def test_rules_integrate_polynomials_to_their_degree(g):
    u, w_hi, w_lo, below = pq.quadrature_rule(g)
    assert len(u) == g + g // 2 and np.all(np.diff(u) > 0) and 0 < u[0] and u[-1] < 1
    assert np.count_nonzero(w_hi) == g and np.count_nonzero(w_lo) == g // 2
    legendre = np.polynomial.legendre.legvander(2 * u - 1, 2 * g)  # P_m(2u - 1), (N, 2g + 1)
    exact = np.zeros(2 * g + 1)
    exact[0] = 1.0  # ∫₀¹ P_m(2u - 1) du = [m == 0]
    np.testing.assert_allclose(w_hi @ legendre[:, :2 * g], exact[:2 * g], atol=1e-13)
    np.testing.assert_allclose(w_lo @ legendre[:, :g], exact[:g], atol=1e-13)
    assert abs(w_lo @ legendre[:, g]) > 1e-6  # and no further: the check can fail
    assert np.all(below[1:] >= np.cumsum(w_hi)[:-1] - 1e-15)


def test_t_quantiles_are_computed_once_per_dof_and_equal_scipy():
    u = pq.quadrature_rule(16)[0]
    table = pq.TQuantiles(u)
    dof = np.array([[2.0, 3.0, 2.5], [1002.0, 7.25, 3.0]])  # 7.25: off the half-integer grid
    rows = table.rows(dof)
    np.testing.assert_allclose(table.table[rows], stdtrit(dof[..., None], u), rtol=1e-14)
    known = len(table.index)
    assert known == 5
    again = table.rows(dof[::-1])
    np.testing.assert_array_equal(again, rows[::-1])
    assert len(table.index) == known  # nothing recomputed


@pytest.mark.parametrize("index", range(len(CASES)))
@pytest.mark.parametrize("kernel", kernels())
def test_quadrature_equals_scipy_quad(index, kernel):
    loc, scale, dof, chosen = as_arrays(CASES[index])
    k = int(chosen[0])
    ref = case_reference(index, k)
    probs, err, nodes = pq.independent_t_probabilities(loc, scale, dof, chosen, 0.1, kernel)
    p, e = probs[0, k], err[0, k]
    assert probs.sum() == pytest.approx(1.0) and np.all(probs >= 0)
    assert abs(p - ref) <= 2e-3 * ref, (p, ref, e)  # tolerance 1e-3, with margin
    assert abs(p - ref) <= max(e, 1e-3 * ref), (p, ref, e)  # the estimate covers the error
    assert nodes[0] in [g + g // 2 for g in pq.QUAD_LEVELS]
    exact, exact_err, _ = pq.independent_t_probabilities(loc, scale, dof, chosen, None, kernel)
    assert abs(exact[0, k] - ref) <= 1e-5 * ref, (exact[0, k], ref)
    for j in range(len(loc[0])):  # with target_rse=None every arm is integrated
        ref_j = case_reference(index, j)
        assert abs(exact[0, j] - ref_j) <= max(1e-3 * ref_j, 1e-7), (j, exact[0, j], ref_j)


def test_quadrature_matches_brute_force_thompson_draws():
    # the arms' own Thompson draws, 1,000,000 per case, against every arm's probability
    gen = np.random.default_rng(12)
    n = 1_000_000
    for case in CASES[4:7]:
        loc, scale, dof, chosen = as_arrays(case)
        draws = loc + scale * gen.standard_t(dof[0], size=(n, loc.shape[1]))
        freq = np.bincount(draws.argmax(axis=1), minlength=loc.shape[1]) / n
        for kernel in kernels():
            probs = pq.independent_t_probabilities(loc, scale, dof, chosen, None, kernel)[0][0]
            se = np.sqrt(probs * (1 - probs) / n)
            assert np.all(np.abs(freq - probs) <= 4.5 * se + 1e-6), (case, freq, probs)


def test_every_arm_matters_in_the_tie_case():
    # a rival dropped from the product (a kernel bug the tests above must catch) moves the
    # chosen arm's probability far beyond their tolerance in the near-tie case
    loc, scale, dof, chosen = as_arrays(CASES[4])
    k = int(chosen[0])
    ref = case_reference(4, k)
    for j in range(loc.shape[1]):
        if j == k:
            continue
        keep = np.arange(loc.shape[1]) != j
        sub_chosen = np.array([int(np.flatnonzero(keep).tolist().index(k))])
        p = pq.independent_t_probabilities(loc[:, keep], scale[:, keep], dof[:, keep],
                                           sub_chosen, 0.1)[0][0, sub_chosen[0]]
        assert p - ref > 50 * 2e-3 * ref, (j, p, ref)


@pytest.mark.parametrize("target", [0.1, None])
def test_kernel_equals_the_numpy_path_on_random_states(target):
    from gambit_gym.agents import _propensity_kernels as k

    if not k.available():
        pytest.skip("numba (the fast extra) is not installed")
    gen = np.random.default_rng(3)
    r, arms = (300 if target else 100), 6  # None: every arm in turn, six times the work
    loc = gen.normal(0, 1, (r, arms))
    scale = np.exp(gen.normal(-1, 1.2, (r, arms)))  # scales over two orders of magnitude
    dof = gen.integers(2, 400, (r, arms)).astype(float)
    chosen = gen.integers(0, arms, r)
    fused = pq.independent_t_probabilities(loc, scale, dof, chosen, target,
                                           k.independent_t_quadrature)
    plain = pq.independent_t_probabilities(loc, scale, dof, chosen, target)
    # the kernel's exits move an estimate by at most tol/1000, which can tip a row sitting at
    # the tolerance onto the next rule: the same rule for nearly all rows, and there the same
    # probabilities; elsewhere within the error estimates
    same = fused[2] == plain[2]
    assert same.mean() >= 0.98, same.mean()
    np.testing.assert_allclose(fused[0][same], plain[0][same], rtol=1e-6, atol=1e-12)
    rows = np.arange(r)
    p = plain[0][rows, chosen]
    gap = np.abs(fused[0][rows, chosen] - p)
    bound = np.maximum(fused[1][rows, chosen], plain[1][rows, chosen]) + 1e-6 * p + 1e-12
    assert np.all(gap <= bound)


def test_stdts_propensities_are_deterministic_and_leave_decisions_alone():
    from gambit_gym.bench import run

    kw = dict(horizon=80, replicates=5, seed=9, progress=False, env_kwargs={"noise_level": 3})
    for name in ("StdTS", "StdTS-Contextual"):
        plain = run("GambitIHS-v0", name, **kw)
        logged = run("GambitIHS-v0", name, **kw, propensities=True)
        again = run("GambitIHS-v0", name, **kw, propensities=True)
        np.testing.assert_array_equal(plain.actions, logged.actions)
        np.testing.assert_array_equal(logged.propensities, again.propensities)  # no draws
        assert np.all((logged.propensities > 0) & (logged.propensities <= 1))
        info = logged.metadata["propensity"]
        assert info["median_rse"] <= 1e-3 and info["mean_draws"] >= 24
