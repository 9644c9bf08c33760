"""Per-action likelihood summaries ``(G_i, B_i)``: exact Gaussian, or a Laplace step for GLMs.

Both stores keep ``(R, K, d, d)`` precisions ``G`` and ``(R, K, d)`` linear terms ``B`` that the
posterior algebra of :mod:`gambit_gym.agents.mets_posterior` consumes.

**Laplace step.** For a GLM likelihood ``ℓ_i(θ)`` of action ``i``'s data, the quadratic
expansion at a point ``θ₀`` is a Gaussian factor in ``θ`` with precision ``G = −∇²ℓ(θ₀)`` and
linear term ``B = G θ₀ + ∇ℓ(θ₀)``. The meTS authors take ``θ₀`` = a ridge-1e-5 MLE fitted on a
minibatch of 30 points, which (i) stops ``G`` from growing once an action has more than 30 points
(a tempered posterior) and (ii) is undefined while the action's data are separable (the MLE is
at infinity). Here ``θ₀`` is the action's MAP under its marginal prior (a strictly concave
problem, always defined), found by damped Newton on **all** of the action's data, warm-started;
``G`` sums the curvature over all of it. Where the MLE exists and dominates the prior the two
expansion points coincide, and ``B = G θ₀`` as in the authors' code; for a Gaussian likelihood
the expansion is exact at any ``θ₀``.
"""

from __future__ import annotations

import numpy as np

FAMILIES: tuple[str, ...] = ("bernoulli", "gaussian")


class GaussianStats:
    """Exact Gaussian summaries ``G = σ⁻² Σ x xᵀ``, ``B = σ⁻² Σ x y``, updated in O(d²).

    Args:
        n_replicates: ``R``.
        n_actions: ``K``.
        dim: ``d``.
        sigma: ``(R,)`` noise sds.
    """

    def __init__(self, n_replicates: int, n_actions: int, dim: int, sigma: np.ndarray) -> None:
        self.G = np.zeros((n_replicates, n_actions, dim, dim))
        self.B = np.zeros((n_replicates, n_actions, dim))
        self.prec = 1.0 / np.asarray(sigma, dtype=float) ** 2

    def add(self, rows: np.ndarray, actions: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        """Add one observation per listed replicate.

        Args:
            rows: ``(n,)`` replicate indices (distinct).
            actions: ``(n,)`` actions played.
            x: ``(n, d)`` contexts of the played actions.
            y: ``(n,)`` rewards.
        """
        w = self.prec[rows]
        self.G[rows, actions] += w[:, None, None] * x[:, :, None] * x[:, None, :]
        self.B[rows, actions] += (w * y)[:, None] * x


class LaplaceStats:
    """Laplace summaries of a GLM likelihood, refitted on all of an action's data after a pull.

    Args:
        prior_mean: ``(R, K, d)`` marginal prior means (used only to place the expansion point).
        prior_prec: ``(R, K, d, d)`` marginal prior precisions (same use).
        family: ``"bernoulli"`` (logistic link) or ``"gaussian"`` (identity link; exact).
        sigma: ``(R,)`` noise sds (gaussian family only).
        max_iter: Newton iterations per refit.
        tol: stop when the Newton step's norm is below ``tol·(1 + ‖θ‖)``.
    """

    def __init__(
        self, prior_mean: np.ndarray, prior_prec: np.ndarray, family: str = "bernoulli",
        sigma: np.ndarray | None = None, max_iter: int = 50, tol: float = 1e-9,
    ) -> None:
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
        R, K, d = prior_mean.shape
        self.family, self.max_iter, self.tol = family, max_iter, tol
        self.prior_mean, self.prior_prec = prior_mean, prior_prec
        self.noise_prec = (np.ones(R) if sigma is None else 1.0 / np.asarray(sigma) ** 2)
        self.G = np.zeros((R, K, d, d))
        self.B = np.zeros((R, K, d))
        self.D = np.zeros((R, K, d, d))  # unweighted design Σ x xᵀ (for UCB-GLM)
        self.theta0 = prior_mean.copy()
        self.iterations = np.zeros((R, K), dtype=int)
        self._X: dict[tuple[int, int], np.ndarray] = {}
        self._y: dict[tuple[int, int], np.ndarray] = {}
        self._n = np.zeros((R, K), dtype=int)

    def data(self, r: int, a: int) -> tuple[np.ndarray, np.ndarray]:
        """``(X (n, d), y (n,))``: the data of action ``a`` in replicate ``r``."""
        n = self._n[r, a]
        if n == 0:
            d = self.G.shape[-1]
            return np.zeros((0, d)), np.zeros(0)
        return self._X[r, a][:n], self._y[r, a][:n]

    def _append(self, r: int, a: int, x: np.ndarray, y: float) -> None:
        n = self._n[r, a]
        X = self._X.get((r, a))
        if X is None or n == X.shape[0]:
            cap = max(8, 2 * n)
            newX, newy = np.empty((cap, x.size)), np.empty(cap)
            if X is not None:
                newX[:n], newy[:n] = X[:n], self._y[r, a][:n]
            self._X[r, a], self._y[r, a] = newX, newy
        self._X[r, a][n], self._y[r, a][n] = x, y
        self._n[r, a] = n + 1

    def add(self, rows: np.ndarray, actions: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        """Append one observation per listed replicate and refit the played actions."""
        for r, a, xr, yr in zip(rows.tolist(), actions.tolist(), x, y):
            self._append(r, a, xr, float(yr))
            self.D[r, a] += np.outer(xr, xr)
            self._refit(r, a)

    def _terms(self, X: np.ndarray, y: np.ndarray, theta: np.ndarray, w_noise: float
               ) -> tuple[float, np.ndarray, np.ndarray]:
        """Log-likelihood, gradient and negative Hessian at ``theta``."""
        z = X @ theta
        if self.family == "bernoulli":
            p = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid without overflow
            loglik = float(y @ z - np.logaddexp(0.0, z).sum())
            grad = X.T @ (y - p)
            hess = (X * (p * (1.0 - p))[:, None]).T @ X
        else:
            resid = y - z
            loglik = float(-0.5 * w_noise * resid @ resid)
            grad = w_noise * (X.T @ resid)
            hess = w_noise * (X.T @ X)
        return loglik, grad, hess

    def _refit(self, r: int, a: int) -> None:
        """Damped Newton to the MAP, warm-started; the expansion uses the last evaluated point.

        Convergence is tested before moving (on the Newton step), so the curvature and gradient
        at the returned point are the ones already computed: typically 2-3 passes over the data.
        """
        X, y = self.data(r, a)
        m, P, w = self.prior_mean[r, a], self.prior_prec[r, a], self.noise_prec[r]
        theta = self.theta0[r, a].copy()

        def evaluate(th: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
            ll, g, H = self._terms(X, y, th, w)
            dev = th - m
            return ll - 0.5 * dev @ P @ dev, g, H

        obj, g_lik, H_lik = evaluate(theta)
        it = 0
        for it in range(1, self.max_iter + 1):  # noqa: B007  (count kept for diagnostics)
            step = np.linalg.solve(H_lik + P, g_lik - P @ (theta - m))
            if np.linalg.norm(step) <= self.tol * (1.0 + np.linalg.norm(theta)):
                break
            scale = 1.0
            for _ in range(30):  # backtracking keeps every step an ascent step
                cand = theta + scale * step
                c_obj, c_g, c_H = evaluate(cand)
                if c_obj >= obj - 1e-12 * abs(obj):
                    break
                scale *= 0.5
            theta, obj, g_lik, H_lik = cand, c_obj, c_g, c_H
        H_lik = 0.5 * (H_lik + H_lik.T)
        self.theta0[r, a] = theta
        self.G[r, a] = H_lik
        self.B[r, a] = H_lik @ theta + g_lik
        self.iterations[r, a] = it
