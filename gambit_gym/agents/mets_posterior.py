"""Gaussian posterior algebra of meTS and HierTS, stacked over leading axes.

Notation (algorithms.md §0, §A): per action ``i`` the likelihood summaries are
``G_i = σ⁻² Σ x xᵀ`` and ``B_i = σ⁻² Σ x y`` (or their Laplace counterparts). With the action
prior covariance ``Σ_0,i``, the prior-adjusted terms

- ``Ḡ_i = (Σ_0,i + G_i⁻¹)⁻¹ = (I + G_i Σ_0,i)⁻¹ G_i``
- ``b̄_i = (I + G_i Σ_0,i)⁻¹ B_i``

never invert ``G_i`` (valid when it is singular, 0 for an unplayed action). Once ``θ_i`` is
integrated out, action ``i``'s data are a Gaussian observation of ``W_i ψ`` with precision
``Ḡ_i``, so the effect posterior has precision ``Σ_ψ⁻¹ + Σ_i W_iᵀ Ḡ_i W_i`` and linear term
``Σ_ψ⁻¹ μ_ψ + Σ_i W_iᵀ b̄_i``. Given ``ψ`` the actions are independent with precision
``Σ_0,i⁻¹ + G_i`` and mean ``Σ̃_i (Σ_0,i⁻¹ W_i ψ + B_i)``.

Every function takes arrays with any leading (batch) axes and works on the last one or two.
"""

from __future__ import annotations

import numpy as np


def symmetrize(mat: np.ndarray) -> np.ndarray:
    """``(A + Aᵀ) / 2`` over the last two axes."""
    return 0.5 * (mat + np.swapaxes(mat, -1, -2))


def prior_adjusted(
    G: np.ndarray, B: np.ndarray, sigma_0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Stable ``Ḡ = (I + G Σ_0)⁻¹ G`` and ``b̄ = (I + G Σ_0)⁻¹ B``.

    ``I + G Σ_0`` is invertible whenever ``G`` is positive semi-definite and ``Σ_0`` positive
    definite (its eigenvalues are those of ``I + Σ_0^{½} G Σ_0^{½}``).

    Args:
        G: ``(..., d, d)`` likelihood precisions.
        B: ``(..., d)`` likelihood linear terms.
        sigma_0: ``(..., d, d)`` action prior covariances.

    Returns:
        ``(Ḡ (..., d, d), b̄ (..., d))``; ``Ḡ`` symmetrized.
    """
    d = G.shape[-1]
    A = np.eye(d) + G @ sigma_0
    Gbar = symmetrize(np.linalg.solve(A, G))
    bbar = np.linalg.solve(A, B[..., None])[..., 0]
    return Gbar, bbar


def effect_contribution(
    W: np.ndarray, Gbar: np.ndarray, bbar: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One action's terms in the effect posterior: ``W_iᵀ Ḡ_i W_i`` and ``W_iᵀ b̄_i``.

    Args:
        W: ``(..., d, p)`` mixing matrices.
        Gbar: ``(..., d, d)``.
        bbar: ``(..., d)``.

    Returns:
        ``(precision (..., p, p), linear (..., p))``.
    """
    Wt = np.swapaxes(W, -1, -2)
    return symmetrize(Wt @ Gbar @ W), (Wt @ bbar[..., None])[..., 0]


def effect_natural_params(
    W: np.ndarray, Gbar: np.ndarray, bbar: np.ndarray, mu_psi: np.ndarray,
    sigma_psi_inv: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Effect posterior precision and linear term from scratch (sum over all ``K`` actions).

    Args:
        W: ``(..., K, d, p)``.
        Gbar: ``(..., K, d, d)``.
        bbar: ``(..., K, d)``.
        mu_psi: ``(..., p)``.
        sigma_psi_inv: ``(..., p, p)``.

    Returns:
        ``(precision (..., p, p), linear (..., p))``: ``Σ̄⁻¹`` and ``Σ̄⁻¹ μ̄``.
    """
    prec_i, lin_i = effect_contribution(W, Gbar, bbar)
    precision = sigma_psi_inv + prec_i.sum(axis=-3)
    linear = (sigma_psi_inv @ mu_psi[..., None])[..., 0] + lin_i.sum(axis=-2)
    return symmetrize(precision), linear



def conditional_terms(
    G: np.ndarray, B: np.ndarray, sigma_0_inv: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Terms of the conditional action posterior ``P_i(θ | ψ) = N(M_i W_i ψ + c_i, Σ̃_i)``.

    Args:
        G: ``(..., d, d)``.
        B: ``(..., d)``.
        sigma_0_inv: ``(..., d, d)``.

    Returns:
        ``(chol (..., d, d), M (..., d, d), c (..., d))``: the Cholesky factor of
        ``Σ̃_i = (Σ_0,i⁻¹ + G_i)⁻¹``, ``M_i = Σ̃_i Σ_0,i⁻¹`` and ``c_i = Σ̃_i B_i``.
    """
    cov = symmetrize(np.linalg.inv(sigma_0_inv + G))
    return np.linalg.cholesky(cov), cov @ sigma_0_inv, (cov @ B[..., None])[..., 0]


def disjoint_terms(
    G: np.ndarray, B: np.ndarray, prior_mean: np.ndarray, prior_prec: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Independent per-action posterior ``N(mean, cov)`` under prior ``N(m, Λ_0⁻¹)``.

    Args:
        G: ``(..., d, d)``.
        B: ``(..., d)``.
        prior_mean: ``(..., d)``.
        prior_prec: ``(..., d, d)``.

    Returns:
        ``(mean (..., d), cov (..., d, d), chol (..., d, d))``.
    """
    cov = symmetrize(np.linalg.inv(prior_prec + G))
    mean = (cov @ ((prior_prec @ prior_mean[..., None])[..., 0] + B)[..., None])[..., 0]
    return mean, cov, np.linalg.cholesky(cov)


def sample_effects(
    precision: np.ndarray, linear: np.ndarray, z: np.ndarray
) -> np.ndarray:
    """Draws ``ψ = μ̄ + C⁻ᵀ z`` from ``N(Σ̄ h, Σ̄)``, ``Σ̄⁻¹ = C Cᵀ`` (no explicit inverse).

    Args:
        precision: ``(..., p, p)``.
        linear: ``(..., p)``.
        z: ``(..., p, S)`` standard normals (``S`` draws per problem).

    Returns:
        ``(..., p, S)`` draws.
    """
    C = np.linalg.cholesky(precision)
    y = np.linalg.solve(C, linear[..., None])
    return np.linalg.solve(np.swapaxes(C, -1, -2), y + z)
