"""The treatment model foGAMBITTS and ens-foGAMBITTS own: a Normal-Inverse-Wishart per cell.

Each (replicate, context, prompt) cell keeps Welford statistics of the embeddings its prompt
produced there, and with the prior ``(μ₀, κ₀, ν₀, Ψ₀)`` they give the NIW posterior of the
cell's embedding mean and covariance. Both fo agents hold one :class:`NIWTreatment` (composition:
neither borrows the other's methods); the prior set-up is written here once.
"""

from __future__ import annotations

import numpy as np

from gambit_gym.agents._rng import CounterStreams

__all__ = ["NIWTreatment", "niw_prior"]


def niw_prior(d: int, nu: float | None, var: float,
              release_compat: bool = False) -> tuple[float, np.ndarray]:
    """``(ν₀, Ψ₀)``: ν₀ = ``nu`` (None: ``d + 2``), ``Ψ₀ = var · (ν₀ - d - 1) · I``.

    So the prior mean of each cell's covariance is ``var · I`` (where ``ν₀ > d + 1``);
    ``release_compat`` gives the code release's ``ν₀ = d``, ``Ψ₀ = I``.

    Raises:
        ValueError: ``ν₀ <= d - 1`` (no proper Inverse-Wishart).
    """
    if release_compat:
        nu0, psi0 = float(d), np.eye(d)
    else:
        nu0 = float(d + 2) if nu is None else float(nu)
        psi0 = var * max(nu0 - d - 1.0, 1.0) * np.eye(d)
    if nu0 <= d - 1:
        raise ValueError(f"treatment_nu must exceed d - 1 = {d - 1}, got {nu0}")
    return nu0, psi0


class NIWTreatment:
    """NIW posteriors of every (replicate, context, prompt) cell's embedding distribution.

    Args:
        shape: ``(R, C, K)``: replicates, contexts, prompts.
        d: embedding dimension.
        mean: μ₀, the prior mean of every cell's mean embedding.
        kappa: κ₀, the prior pseudo-count of the mean.
        nu0: ν₀.
        psi0: Ψ₀, ``(d, d)``.
        keep_psi: keep each cell's ``Ψ_n`` up to date at every update (foGAMBITTS reads it at
            every decision; ens-foGAMBITTS computes it when it samples).
    """

    def __init__(self, shape: tuple[int, int, int], d: int, mean: float, kappa: float,
                 nu0: float, psi0: np.ndarray, keep_psi: bool = True) -> None:
        self.replicates, _, self.n_actions = shape
        self.d, self.mean0, self.kappa0, self.nu0, self.psi0 = d, mean, kappa, nu0, psi0
        self.count = np.zeros(shape)
        self.mean = np.zeros((*shape, d))
        self.scatter = np.zeros((*shape, d, d))  # Σ (z - z̄)(z - z̄)ᵀ, Welford
        # each cell's Ψ_n (Ψ₀ until the cell is first updated), kept so acting recomputes none
        self.psi = np.broadcast_to(psi0, (*shape, d, d)).copy() if keep_psi else None

    def update(self, contexts: np.ndarray, actions: np.ndarray,
               z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Add each replicate's embedding ``z (R, d)`` to its (context, prompt) cell.

        Returns:
            the index of the updated cells into the ``(R, C, K)`` statistics.
        """
        idx = (np.arange(self.replicates), contexts, actions)
        n = self.count[idx] + 1.0
        delta = z - self.mean[idx]
        mean = self.mean[idx] + delta / n[:, None]
        self.scatter[idx] += delta[:, :, None] * (z - mean)[:, None, :]
        self.mean[idx] = mean
        self.count[idx] = n
        if self.psi is not None:
            self.psi[idx] = self.cell_psi(idx)
        return idx

    def cell_psi(self, idx: tuple[np.ndarray, ...]) -> np.ndarray:
        """``Ψ_n`` of the cells ``idx`` (an index into the ``(R, C, K)`` statistics)."""
        n, zbar, k0 = self.count[idx], self.mean[idx], self.kappa0
        dev = zbar - self.mean0
        return self.psi0 + self.scatter[idx] + (k0 * n / (k0 + n))[..., None, None] * (
            dev[..., :, None] * dev[..., None, :])

    def cell_mean(self, idx: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        """``(m_n, κ_n, n)`` of the cells ``idx`` (an index into the ``(R, C, K)`` statistics)."""
        n, k0 = self.count[idx], self.kappa0
        kappa_n = k0 + n
        m_n = (k0 * self.mean0 + n[..., None] * self.mean[idx]) / kappa_n[..., None]
        return m_n, kappa_n, n

    def posterior(self, contexts: np.ndarray) -> tuple[np.ndarray, ...]:
        """NIW posterior ``(m_n (R,K,d), κ_n (R,K), ν_n (R,K), Ψ_n (R,K,d,d))`` in each context."""
        idx = (np.arange(self.replicates), contexts)
        m_n, kappa_n, n = self.cell_mean(idx)
        return m_n, kappa_n, self.nu0 + n, self.cell_psi(idx)

    def sample_distributions(self, streams: CounterStreams, contexts: np.ndarray, counter: int,
                             stream: int,
                             n_samples: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior draws of each arm's embedding distribution ``N(m̃, Σ̃)`` in its context.

        Returns:
            ``(m̃, Σ̃^½)``: means ``(R, [S,] K, d)`` and square-root factors
            ``(R, [S,] K, d, d)`` with ``Σ̃^½ (Σ̃^½)ᵀ = Σ̃``.
        """
        m_n, kappa_n, nu_n, psi_n = self.posterior(contexts)
        d = self.d
        if n_samples is not None:
            m_n, kappa_n, nu_n, psi_n = (x[:, None] for x in (m_n, kappa_n, nu_n, psi_n))
            lead = (n_samples, self.n_actions)
        else:
            lead = (self.n_actions,)
        upper = np.linalg.cholesky(psi_n)  # Ψ = U Uᵀ
        # Bartlett: A lower-triangular, A_ii² ~ χ²(ν - i), A_ij ~ N(0, 1) below; A Aᵀ ~ W(ν, I)
        dof = nu_n[..., None] - np.arange(d)
        dof = np.ascontiguousarray(np.broadcast_to(dof, (self.replicates, *lead, d)))
        diag = np.sqrt(2.0 * streams.gamma(counter, stream, dof / 2.0))
        a = np.tril(streams.normal(counter, stream + 4, (*lead, d, d)), -1)
        a = a + diag[..., None] * np.eye(d)
        z = streams.normal(counter, stream + 8, (*lead, d))
        # Σ̃ = U (A Aᵀ)⁻¹ Uᵀ ~ IW(Ψ, ν), with square root U A⁻ᵀ; m̃ = m + U A⁻ᵀ z / √κ
        root = upper @ np.linalg.inv(np.swapaxes(a, -1, -2))
        means = m_n + np.einsum("...ij,...j->...i", root, z) / np.sqrt(kappa_n)[..., None]
        return means, root
