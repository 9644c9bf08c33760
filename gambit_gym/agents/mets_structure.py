"""The mixed-effect prior structure that meTS agents use, and how to learn it offline.

A :class:`MixedEffectStructure` holds the loadings ``b`` ``(K, L)``, the effect prior
``N(μ_ψ, Σ_ψ)`` over ``ψ ∈ R^{L·d}`` (``ψ_1`` first), the action prior covariances ``Σ_0``
``(K, d, d)`` and the noise sd ``σ``. It is read from an env's ``describe().extra``
(:meth:`MixedEffectStructure.from_description`) or fitted to offline action embeddings with a
Gaussian mixture (:func:`structure_from_embeddings`, the recipe of the meTS authors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gambit_gym._validate import check_number
from gambit_gym.core.description import EnvDescription


def _spd(name: str, mat: np.ndarray) -> None:
    if not np.all(np.isfinite(mat)):
        raise ValueError(f"{name} has non-finite entries")
    if not np.allclose(mat, np.swapaxes(mat, -1, -2), atol=1e-10):
        raise ValueError(f"{name} must be symmetric")
    if np.linalg.eigvalsh(mat).min() <= 0:
        raise ValueError(f"{name} must be positive definite")


@dataclass(frozen=True, eq=False)
class MixedEffectStructure:
    """Loadings and priors of a mixed-effect model ``θ_i | ψ ~ N(Σ_l b_il ψ_l, Σ_0,i)``.

    Attributes:
        b: ``(K, L)`` loadings.
        mu_psi: ``(L*d,)`` effect prior mean, ``ψ_1`` first.
        sigma_psi: ``(L*d, L*d)`` effect prior covariance.
        sigma_0: ``(K, d, d)`` action prior covariances (a ``(d, d)`` input is broadcast).
        sigma: reward noise sd used by Gaussian likelihoods.
    """

    b: np.ndarray
    mu_psi: np.ndarray
    sigma_psi: np.ndarray
    sigma_0: np.ndarray
    sigma: float = 1.0

    def __post_init__(self) -> None:
        b = np.atleast_2d(np.asarray(self.b, dtype=float))
        mu = np.asarray(self.mu_psi, dtype=float).ravel()
        cov_psi = np.asarray(self.sigma_psi, dtype=float)
        cov_0 = np.asarray(self.sigma_0, dtype=float)
        K, L = b.shape
        if mu.size % L:
            raise ValueError(f"mu_psi has {mu.size} entries, not a multiple of L = {L}")
        d = mu.size // L
        if cov_psi.shape != (L * d, L * d):
            raise ValueError(f"sigma_psi must be ({L * d}, {L * d}), got {cov_psi.shape}")
        if cov_0.shape == (d, d):
            cov_0 = np.broadcast_to(cov_0, (K, d, d)).copy()
        if cov_0.shape != (K, d, d):
            raise ValueError(f"sigma_0 must be ({d}, {d}) or ({K}, {d}, {d}), got {cov_0.shape}")
        if not np.all(np.isfinite(b)) or not np.all(np.isfinite(mu)):
            raise ValueError("b and mu_psi must be finite")
        _spd("sigma_psi", cov_psi)
        _spd("sigma_0", cov_0)
        check_number("sigma", self.sigma, minimum=0.0, strict=True)
        for name, value in (("b", b), ("mu_psi", mu), ("sigma_psi", cov_psi),
                            ("sigma_0", cov_0)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "sigma", float(self.sigma))

    @property
    def n_actions(self) -> int:
        """Number of actions ``K``."""
        return self.b.shape[0]

    @property
    def n_effects(self) -> int:
        """Number of effects ``L``."""
        return self.b.shape[1]

    @property
    def dim(self) -> int:
        """Parameter dimension ``d``."""
        return self.mu_psi.size // self.n_effects

    def mixing(self) -> np.ndarray:
        """``(K, d, L*d)`` matrices ``W_i = b_iᵀ ⊗ I_d`` with ``E[θ_i | ψ] = W_i ψ``."""
        return np.einsum("kl,de->kdle", self.b, np.eye(self.dim)).reshape(
            self.n_actions, self.dim, self.n_effects * self.dim
        )

    def marginal_prior(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-action marginal prior ``N(W_i μ_ψ, Σ_0,i + W_i Σ_ψ W_iᵀ)``, cross terms dropped.

        Returns:
            ``(means (K, d), covariances (K, d, d))``.
        """
        W = self.mixing()
        means = W @ self.mu_psi
        covs = self.sigma_0 + W @ self.sigma_psi @ np.swapaxes(W, 1, 2)
        return means, 0.5 * (covs + np.swapaxes(covs, 1, 2))

    def single_effect(self) -> MixedEffectStructure:
        """The HierTS structure: one effect, mean of the ``μ_ψ,l``, covariance ``Σ_l Σ_ψ,ll / L²``.

        Equivalent to meTS with ``b_il = 1/L``; misspecified by construction when the true
        loadings differ.
        """
        L, d = self.n_effects, self.dim
        mu = self.mu_psi.reshape(L, d).mean(axis=0)
        blocks = [self.sigma_psi[l * d:(l + 1) * d, l * d:(l + 1) * d] for l in range(L)]
        return MixedEffectStructure(
            b=np.ones((self.n_actions, 1)), mu_psi=mu, sigma_psi=sum(blocks) / L**2,
            sigma_0=self.sigma_0, sigma=self.sigma,
        )

    def is_block_diagonal(self) -> bool:
        """Whether ``Σ_ψ`` has no cross-effect blocks (needed by the factored posterior)."""
        L, d = self.n_effects, self.dim
        mask = np.kron(np.eye(L), np.ones((d, d))).astype(bool)
        return bool(np.all(self.sigma_psi[~mask] == 0.0))

    @classmethod
    def from_description(cls, spec: EnvDescription, sigma: float | None = None
                         ) -> MixedEffectStructure:
        """Read the structure from ``spec.extra``, as the mixed-effect envs' ``describe()`` give it.

        Keys: ``b``, ``mu_psi``, ``sigma_psi``, ``sigma_0`` and optionally ``sigma``.

        Args:
            spec: the env description.
            sigma: override of the noise sd (else ``extra["sigma"]``, else ``spec.noise_sd``,
                else 1).

        Raises:
            ValueError: if a key is missing.
        """
        extra = spec.extra or {}
        missing = [k for k in ("b", "mu_psi", "sigma_psi", "sigma_0") if k not in extra]
        if missing:
            raise ValueError(
                f"the env description lacks the mixed-effect structure ({missing} missing from "
                "extra); pass structure= explicitly, e.g. from structure_from_embeddings()"
            )
        if sigma is None:
            sigma = extra.get("sigma", spec.noise_sd)
        return cls(b=extra["b"], mu_psi=extra["mu_psi"], sigma_psi=extra["sigma_psi"],
                   sigma_0=extra["sigma_0"], sigma=1.0 if sigma is None else float(sigma))


def structure_from_embeddings(
    embeddings: np.ndarray,
    n_effects: int,
    *,
    effect_share: float = 0.75,
    sigma: float = 1.0,
    seed: int | None = 0,
    param_dim: int | None = None,
    param_prior_mean: float | np.ndarray = 0.0,
    param_prior_var: float | np.ndarray = 1.0,
    gmm_kwargs: dict[str, Any] | None = None,
) -> MixedEffectStructure:
    """Fit a mixed-effect structure to offline action embeddings with a Gaussian mixture.

    The meTS authors' recipe (algorithms.md §A.7): fit a diagonal-covariance GMM with ``L``
    components to the ``K`` embeddings; ``b_il = p(l | e_i)`` (rows sum to 1); ``μ_ψ,l`` = the
    centre of component ``l``; ``Σ_ψ,l = share·diag(v)``, ``Σ_0 = (1 − share)·diag(v)`` with ``v``
    the per-dimension variance of the embeddings. Only the offline embeddings are used: nothing
    about the true action parameters enters (the authors' code computes ``b`` from the vectors
    used as the true θ; do not).

    When the embeddings do not live in the parameter space (``param_dim`` given, e.g. GAMBIT
    prompts, whose style embeddings cluster the prompts but whose parameters act on context
    features), only the memberships ``b`` are kept: every effect gets mean ``param_prior_mean``
    and covariance ``share·diag(param_prior_var)`` (so an action that belongs to one component
    has marginal prior variance ``param_prior_var``), and
    ``Σ_0 = (1 − share)·diag(param_prior_var)``.

    Args:
        embeddings: ``(K, e)`` offline embeddings, one row per action.
        n_effects: number of mixture components ``L``.
        effect_share: the part of the prior variance given to the effects, in (0, 1).
        sigma: reward noise sd stored in the structure.
        seed: seed of the mixture fit.
        param_dim: parameter dimension when it differs from the embedding space (see above).
        param_prior_mean: prior mean of the parameters in that case (float or ``(param_dim,)``).
        param_prior_var: prior variance of the parameters in that case (float or
            ``(param_dim,)``).
        gmm_kwargs: extra arguments of ``sklearn.mixture.GaussianMixture``.

    Returns:
        The fitted structure.

    Raises:
        ValueError: on bad shapes or arguments.
    """
    from sklearn.mixture import GaussianMixture

    emb = np.asarray(embeddings, dtype=float)
    if emb.ndim != 2 or emb.shape[0] < n_effects:
        raise ValueError(f"embeddings must be (K, e) with K >= n_effects, got {emb.shape}")
    if not 0.0 < effect_share < 1.0:
        raise ValueError(f"effect_share must be in (0, 1), got {effect_share}")
    kwargs = {"covariance_type": "diag", "n_init": 5, "reg_covar": 1e-6, **(gmm_kwargs or {})}
    gmm = GaussianMixture(n_components=n_effects, random_state=seed, **kwargs).fit(emb)
    b = gmm.predict_proba(emb)
    K = emb.shape[0]
    if param_dim is None:
        v = np.maximum(emb.var(axis=0), 1e-12)
        d = emb.shape[1]
        mu = gmm.means_.ravel()
        sigma_psi = np.kron(np.eye(n_effects), np.diag(effect_share * v))
        sigma_0 = np.diag((1.0 - effect_share) * v)
    else:
        d = int(param_dim)
        mean = np.broadcast_to(np.asarray(param_prior_mean, dtype=float), (d,))
        var = np.broadcast_to(np.asarray(param_prior_var, dtype=float), (d,))
        mu = np.tile(mean, n_effects)
        sigma_psi = np.kron(np.eye(n_effects), np.diag(effect_share * var))
        sigma_0 = np.diag((1.0 - effect_share) * var)
    return MixedEffectStructure(b=b, mu_psi=mu, sigma_psi=sigma_psi,
                                sigma_0=np.broadcast_to(sigma_0, (K, d, d)), sigma=sigma)


GAMBIT_FEATURE_NAMES: tuple[str, ...] = (
    "intercept", "location=work", "location=other", "steps=5k-10k", "steps=10k-15k",
    "steps>15k",
)


def gambit_features(obs: np.ndarray) -> np.ndarray:
    """Features ``(..., 6)`` of GAMBIT observations ``(..., 2)`` = (location, step bucket).

    An intercept plus one-hot location (home is the baseline) and one-hot step bucket (the
    lowest is the baseline): the additive context model, shared by every action
    (``X_{t,i} = φ(c_t)``).
    """
    obs = np.asarray(obs)
    if obs.shape[-1] != 2:
        raise ValueError(f"GAMBIT observations are (location, step_bucket), got shape {obs.shape}")
    loc, bucket = obs[..., 0].astype(int), obs[..., 1].astype(int)
    out = np.zeros(obs.shape[:-1] + (len(GAMBIT_FEATURE_NAMES),))
    out[..., 0] = 1.0
    for j in (1, 2):
        out[..., j] = loc == j
    for j in (1, 2, 3):
        out[..., 2 + j] = bucket == j
    return out


def gambit_structure(
    spec: EnvDescription,
    n_effects: int | None = None,
    *,
    prior_mean: float = 77.0,
    intercept_var: float = 100.0,
    coef_var: float = 25.0,
    effect_share: float = 0.75,
    seed: int | None = 0,
) -> MixedEffectStructure:
    """A meTS structure for a GAMBIT env: prompts are actions, clustered by their style.

    The offline embedding of a prompt is its mean working style embedding, averaged over the
    12 contexts, from the env's simulator (the response bank, never the rewards); a GMM over
    them gives the loadings (:func:`structure_from_embeddings` with ``param_dim`` = 6 context
    features, :func:`gambit_features`). The parameter prior is weak and generic: intercept
    ``N(prior_mean, intercept_var)``, context coefficients ``N(0, coef_var)``.

    Args:
        spec: a GAMBIT env description with ``simulator.mean_embeddings``.
        n_effects: mixture components ``L``; default ``min(5, max(1, K // 8))``.
        prior_mean: prior mean of the intercept (the reward scale, e.g. 77 in the study).
        intercept_var: prior variance of the intercept.
        coef_var: prior variance of each context coefficient.
        effect_share: part of the prior variance given to the effects.
        seed: seed of the mixture fit.

    Raises:
        ValueError: if the description has no simulator with ``mean_embeddings``.
    """
    sim = spec.simulator
    if sim is None or not hasattr(sim, "mean_embeddings"):
        raise ValueError("the env description has no simulator with mean_embeddings(context)")
    K = spec.n_actions
    emb = np.mean([np.asarray(sim.mean_embeddings(c), dtype=float)
                   for c in range(spec.n_contexts or 12)], axis=0)
    if emb.shape[0] != K:
        raise ValueError(f"simulator gives {emb.shape[0]} arms, the env has {K}")
    L = min(5, max(1, K // 8)) if n_effects is None else int(n_effects)
    if L == 1:
        b = np.ones((K, 1))
    else:
        emb = (emb - emb.mean(0)) / np.maximum(emb.std(0), 1e-12)
        b = structure_from_embeddings(emb, L, seed=seed).b
    d = len(GAMBIT_FEATURE_NAMES)
    var = np.array([intercept_var] + [coef_var] * (d - 1))
    mean = np.array([prior_mean] + [0.0] * (d - 1))
    return MixedEffectStructure(
        b=b, mu_psi=np.tile(mean, L), sigma_psi=np.kron(np.eye(L), np.diag(effect_share * var)),
        sigma_0=np.diag((1.0 - effect_share) * var),
        sigma=float(spec.noise_sd) if spec.noise_sd else 1.0)
