"""Mixed-effect Thompson sampling (meTS), HierTS and disjoint baselines for mixed-effect bandits.

Registered names: ``meTS-Lin``, ``meTS-GLM``, ``meTS-Fa``, ``HierTS``, ``LinTS-Disjoint``,
``LinUCB-Disjoint``, ``GLM-TS``, ``UCB-GLM``. Every agent works on an observation of shape
``(K, d)`` (one context per action, as in ``MixedEffectLinear-v0``) and reads the structure
(loadings, priors, noise) from ``spec.extra`` or from ``structure=``.

Every agent is a :class:`~gambit_gym.core.batched.BatchedAgent`, like the GAMBITTS and classic
agents: ``reset_batch(spec, seed, R)`` (or one description per replicate), ``act_batch(obs (R, K,
d)) -> (R,)`` and ``update_batch(obs, actions, rewards, info)``; every draw comes from the
counter-based streams, so replicate ``r`` takes the same decisions as a single agent reset with
seed ``seed + r``. Propensities use separate generators, so asking for them never changes the
decisions. (Before the move onto the shared base these agents drew from one
``np.random.default_rng(seed + r)`` per replicate: the same seed now gives other, equally
distributed, decisions; docs/architecture.md.)

>>> import gymnasium as gym, gambit_gym
>>> from gambit_gym import agents
>>> env = gym.make("MixedEffectLinear-v0", n_actions=20, horizon=50)
>>> obs, _ = env.reset(seed=0)
>>> agent = agents.make("meTS-Lin")
>>> agent.reset(env.unwrapped.describe(), seed=0)
>>> for _ in range(50):
...     action = agent.act(obs)
...     next_obs, reward, _, truncated, info = env.step(action)
...     agent.update(obs, action, reward, info)
...     obs = next_obs
>>> round(float(agent.action_probabilities(obs, n_samples=200).sum()), 6)
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from gambit_gym._validate import check_positive_int
from gambit_gym.agents._batched import STREAM_ACT
from gambit_gym.agents.mets_glm import GaussianStats, LaplaceStats
from gambit_gym.agents.mets_posterior import (
    conditional_terms,
    disjoint_terms,
    effect_contribution,
    prior_adjusted,
    sample_effects,
    symmetrize,
)
from gambit_gym.agents.mets_structure import (
    MixedEffectStructure,
    gambit_features,
    gambit_structure,
)
from gambit_gym.core.batched import BatchedAgent
from gambit_gym.core.description import EnvDescription

LIKELIHOODS: tuple[str, ...] = ("gaussian", "logistic", "auto")


@dataclass
class _MixedEffectAgent(BatchedAgent):
    """What the meTS family shares: the structure, the likelihood, contexts ``(R, K, d)``.

    A :class:`~gambit_gym.core.batched.BatchedAgent` like every built-in agent: state with a
    leading replicate axis, draws from the counter-based streams (``self.streams``, one key per
    replicate), so replicate ``r`` of a batch takes the decisions of a single agent seeded
    ``seed + r``. One extension of the base's ``reset_batch``: ``spec`` may be a sequence of
    descriptions, one per replicate (the mixed-effect envs draw a new problem per seed).

    Attributes:
        sigma: noise sd override (else the env's ``extra["sigma"]``).
        structure: structure override (e.g. from :func:`structure_from_embeddings`), used for
            every replicate instead of ``spec.extra``.
        likelihood: ``"gaussian"`` (exact), ``"logistic"`` (Laplace) or ``"auto"`` (from
            ``spec.extra["link"]``).
        n_effects: number of effects when the structure is learnt from a GAMBIT env's
            simulator (:func:`gambit_structure`); ignored otherwise.
    """

    sigma: float | None = None
    structure: MixedEffectStructure | None = None
    likelihood: str = "gaussian"
    n_effects: int | None = None

    def __post_init__(self) -> None:
        if self.sigma is not None and not self.sigma > 0:
            raise ValueError(f"sigma must be positive, got {self.sigma}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.structure is not None and not isinstance(self.structure, MixedEffectStructure):
            raise TypeError("structure must be a MixedEffectStructure")

    # --- the base's protocol, with one description per replicate allowed ---------------------
    def reset_batch(self, spec: EnvDescription | Sequence[EnvDescription], seed: int | None,
                    replicates: int | None = None) -> None:
        """Prepare R replicates; replicate ``r`` behaves as a single agent seeded ``seed + r``.

        Args:
            spec: one description (shared) or one per replicate.
            seed: base seed, or None for fresh entropy.
            replicates: R (default: the number of descriptions).
        """
        if isinstance(spec, EnvDescription):
            if replicates is None:
                raise ValueError("reset_batch(spec, seed, replicates) needs replicates with one "
                                 "description")
            specs = [spec] * check_positive_int("replicates", replicates)
        else:
            specs = list(spec)
            if not specs or not all(isinstance(s, EnvDescription) for s in specs):
                raise ValueError(f"{type(self).__name__}.reset_batch needs an EnvDescription "
                                 "(env.unwrapped.describe()) or one per replicate")
            if replicates is not None and replicates != len(specs):
                raise ValueError(f"need {replicates} env descriptions, got {len(specs)}")
        self._specs = specs
        super().reset_batch(specs[0], seed, len(specs))

    def _setup(self, spec: EnvDescription) -> None:
        specs = self._specs
        structures = []
        for sp in specs:
            st = self.structure or self._structure_for(sp)
            if self.sigma is not None and st.sigma != self.sigma:
                st = MixedEffectStructure(st.b, st.mu_psi, st.sigma_psi, st.sigma_0, self.sigma)
            if st.n_actions != sp.n_actions:
                raise ValueError(f"structure has {st.n_actions} actions, env {sp.n_actions}")
            structures.append(st)
        if len({(s.n_actions, s.dim) for s in structures}) != 1:
            raise ValueError("all replicates must have the same K and d")
        links = {sp.extra.get("link", "linear") for sp in specs}
        self._link = self.likelihood if self.likelihood != "auto" else (
            "logistic" if links == {"logistic"} else "gaussian")
        self._K, self._d = structures[0].n_actions, structures[0].dim
        space = spec.observation_space
        self._featurize = gambit_features if (
            isinstance(space, spaces.MultiDiscrete) and space.shape == (2,)) else None
        self._prepare(structures)

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        x = self._contexts(obs)
        rows = np.arange(self.replicates)
        self._lik.add(rows, actions, x[rows, actions], rewards)
        self._refresh(rows, actions)

    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        return self._choose(self._contexts(obs), counter)

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        """Monte Carlo over the agent's own randomisation (separate generators; see the base)."""
        x = self._contexts(obs)
        return self._sampled(self._noise, lambda rows, numbers: self._scores(x, rows, numbers),
                             n_samples)

    # --- helpers -----------------------------------------------------------------------------
    def _structure_for(self, spec: EnvDescription) -> MixedEffectStructure:
        sim = spec.simulator
        if "b" not in (spec.extra or {}) and sim is not None and hasattr(sim, "mean_embeddings"):
            st = gambit_structure(spec, self.n_effects)
            if self.sigma is not None:
                st = MixedEffectStructure(st.b, st.mu_psi, st.sigma_psi, st.sigma_0, self.sigma)
            return st
        return MixedEffectStructure.from_description(spec, sigma=self.sigma)

    def _contexts(self, obs: np.ndarray) -> np.ndarray:
        """``(R, K, d)`` per-action contexts of observations ``(R, ...)``."""
        if self._featurize is not None:
            feats = self._featurize(np.asarray(obs).reshape(self.replicates, -1))
            return np.repeat(feats[:, None, :], self._K, axis=1)
        obs = np.asarray(obs, dtype=float)
        shape = (self.replicates, self._K, self._d)
        if obs.shape != shape:
            raise ValueError(f"observations must have shape {shape}, got {obs.shape}")
        return obs

    def _make_likelihood(self, prior_mean: np.ndarray, prior_cov: np.ndarray,
                         sigma: np.ndarray) -> GaussianStats | LaplaceStats:
        R, K, d = prior_mean.shape
        if self._link == "gaussian":
            return GaussianStats(R, K, d, sigma)
        return LaplaceStats(prior_mean, np.linalg.inv(prior_cov), family="bernoulli")

    # --- to implement ------------------------------------------------------------------------
    def _prepare(self, structures: list[MixedEffectStructure]) -> None:
        raise NotImplementedError

    def _refresh(self, rows: np.ndarray, actions: np.ndarray) -> None:
        raise NotImplementedError

    def _choose(self, x: np.ndarray, counter: int) -> np.ndarray:
        """``(R,)`` actions for contexts ``x`` ``(R, K, d)`` at decision ``counter``."""
        raise NotImplementedError

    def _noise(self, generator: np.random.Generator, rows: np.ndarray, n: int
               ) -> tuple[np.ndarray, ...]:
        """The random numbers of ``n`` propensity draws for replicates ``rows``."""
        raise NotImplementedError

    def _scores(self, x: np.ndarray, rows: np.ndarray, numbers: tuple[np.ndarray, ...]
                ) -> np.ndarray:
        """``(len(rows), n, K)`` sampled scores from :meth:`_noise`'s numbers."""
        raise NotImplementedError


@dataclass
class MeTS(_MixedEffectAgent):
    """Mixed-effect Thompson sampling (Aouali, Kveton and Katariya, AISTATS 2023).

    Each round: draw ``ψ`` from its posterior (joint over the ``L`` effects, or factored), then
    every ``θ_i`` from its conditional posterior given ``ψ``, then play the argmax of
    ``x_iᵀθ_i``. The effect posterior's natural parameters are updated incrementally (only the
    played action's term is swapped, O(d³ + L²d²)); the conditional factors of an action are
    refreshed only when it is played; a round costs O(L³d³ + K d²).

    Attributes:
        factored: use only the diagonal blocks of the effect precision (meTS-Fa; needs a
            block-diagonal ``Σ_ψ``).
        single_effect: collapse the structure to one effect (HierTS).
    """

    factored: bool = False
    single_effect: bool = False

    def _prepare(self, structures: list[MixedEffectStructure]) -> None:
        if self.single_effect:
            structures = [s.single_effect() for s in structures]
        if self.factored and not all(s.is_block_diagonal() for s in structures):
            raise ValueError("the factored posterior (meTS-Fa) needs a block-diagonal sigma_psi")
        if len({s.n_effects for s in structures}) != 1:
            raise ValueError("all replicates must have the same number of effects")
        R, K, d, L = self.replicates, self._K, self._d, structures[0].n_effects
        p = L * d
        self._W = np.stack([s.mixing() for s in structures])  # (R, K, d, p)
        self._S0 = np.stack([s.sigma_0 for s in structures])  # (R, K, d, d)
        self._S0inv = symmetrize(np.linalg.inv(self._S0))
        sigma_psi_inv = symmetrize(np.linalg.inv(np.stack([s.sigma_psi for s in structures])))
        mu_psi = np.stack([s.mu_psi for s in structures])
        self._P = sigma_psi_inv.copy()  # Σ̄⁻¹, (R, p, p)
        self._h = (sigma_psi_inv @ mu_psi[..., None])[..., 0]  # Σ̄⁻¹ μ̄, (R, p)
        self._mask = np.kron(np.eye(L), np.ones((d, d))) if self.factored else None
        self._Gbar = np.zeros((R, K, d, d))
        self._bbar = np.zeros((R, K, d))
        self._chol, self._M, self._c = conditional_terms(
            np.zeros((R, K, d, d)), np.zeros((R, K, d)), self._S0inv)
        self._p = p
        marginals = [s.marginal_prior() for s in structures]
        self._lik = self._make_likelihood(np.stack([m for m, _ in marginals]),
                                          np.stack([c for _, c in marginals]),
                                          np.array([s.sigma for s in structures]))

    def _refresh(self, rows: np.ndarray, actions: np.ndarray) -> None:
        W = self._W[rows, actions]
        old_prec, old_lin = effect_contribution(W, self._Gbar[rows, actions],
                                                self._bbar[rows, actions])
        G, B = self._lik.G[rows, actions], self._lik.B[rows, actions]
        Gbar, bbar = prior_adjusted(G, B, self._S0[rows, actions])
        new_prec, new_lin = effect_contribution(W, Gbar, bbar)
        self._P[rows] = symmetrize(self._P[rows] - old_prec + new_prec)
        self._h[rows] = self._h[rows] - old_lin + new_lin
        self._Gbar[rows, actions], self._bbar[rows, actions] = Gbar, bbar
        chol, M, c = conditional_terms(G, B, self._S0inv[rows, actions])
        self._chol[rows, actions], self._M[rows, actions], self._c[rows, actions] = chol, M, c

    def effect_precision(self) -> np.ndarray:
        """``(R, p, p)`` precision of the effect posterior as used to sample (masked if Fa)."""
        return self._P * self._mask if self._mask is not None else self._P.copy()

    def effect_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean (R, p), cov (R, p, p))`` of the effect posterior ``Q_t`` used to sample."""
        P = self.effect_precision()
        cov = symmetrize(np.linalg.inv(P))
        return (cov @ self._h[..., None])[..., 0], cov

    def conditional_posterior(self, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mean (R, K, d), cov (R, K, d, d))`` of ``θ_i | ψ`` for ``psi`` of shape (R, p)."""
        prior = (self._W @ psi[:, None, :, None])
        mean = (self._M @ prior)[..., 0] + self._c
        return mean, self._chol @ np.swapaxes(self._chol, -1, -2)

    def _theta(self, rows: Any, psi: np.ndarray, z: np.ndarray) -> np.ndarray:
        """``θ`` draws ``(n, K, d, S)`` from ``ψ`` ``(n, p, S)`` and normals ``(n, K, d, S)``."""
        prior = self._W[rows] @ psi[:, None]
        return self._M[rows] @ prior + self._c[rows][..., None] + self._chol[rows] @ z

    def _choose(self, x: np.ndarray, counter: int) -> np.ndarray:
        K, d, p = self._K, self._d, self._p
        z_psi = self.streams.normal(counter, STREAM_ACT, (p,))[..., None]
        z_theta = self.streams.normal(counter, STREAM_ACT + 1, (K, d))[..., None]
        psi = sample_effects(self.effect_precision(), self._h, z_psi)
        theta = self._theta(slice(None), psi, z_theta)[..., 0]
        return np.einsum("rkd,rkd->rk", x, theta).argmax(axis=1)

    def _noise(self, generator: np.random.Generator, rows: np.ndarray, n: int
               ) -> tuple[np.ndarray, ...]:
        m, K, d, p = len(rows), self._K, self._d, self._p
        return generator.standard_normal((m, p, n)), generator.standard_normal((m, K, d, n))

    def _scores(self, x: np.ndarray, rows: np.ndarray, numbers: tuple[np.ndarray, ...]
                ) -> np.ndarray:
        z_psi, z_theta = numbers
        psi = sample_effects(self.effect_precision()[rows], self._h[rows], z_psi)
        theta = self._theta(rows, psi, z_theta)  # (m, K, d, n)
        return np.einsum("mkd,mkdn->mnk", x[rows], theta)


@dataclass
class MeTSLin(MeTS):
    """meTS with exact Gaussian posteriors (``meTS-Lin``; on 0/1 rewards, linear meTS)."""

    likelihood: str = "gaussian"


@dataclass
class MeTSGLM(MeTS):
    """meTS with a Laplace step per action on all of its data (``meTS-GLM``, logistic link)."""

    likelihood: str = "logistic"


@dataclass
class MeTSFa(MeTS):
    """meTS with a factored effect posterior (``meTS-Fa``); likelihood follows the env."""

    factored: bool = True
    likelihood: str = "auto"


@dataclass
class HierTS(MeTS):
    """Hierarchical TS with one shared effect (Hong et al., AISTATS 2022).

    The meTS-paper baseline: effect mean = average of the ``μ_ψ,l``, covariance
    ``Σ_l Σ_ψ,ll / L²``, every loading 1 (misspecified when the true loadings differ).
    """

    single_effect: bool = True
    likelihood: str = "auto"


@dataclass
class _Disjoint(_MixedEffectAgent):
    """Independent per-action posteriors under the marginal prior (cross-action terms dropped)."""

    _UCB: ClassVar[bool] = False

    def _prepare(self, structures: list[MixedEffectStructure]) -> None:
        marginals = [s.marginal_prior() for s in structures]
        self._m = np.stack([m for m, _ in marginals])
        cov = np.stack([c for _, c in marginals])
        self._P0 = symmetrize(np.linalg.inv(cov))
        self._lik = self._make_likelihood(self._m, cov, np.array([s.sigma for s in structures]))
        self._mean, self._cov, self._chol = disjoint_terms(
            self._lik.G, self._lik.B, self._m, self._P0)
        self._width_cov = self._cov.copy()
        self._alpha = self._ucb_width(structures)

    def _ucb_width(self, structures: list[MixedEffectStructure]) -> np.ndarray:
        return np.zeros(self.replicates)

    def _refresh(self, rows: np.ndarray, actions: np.ndarray) -> None:
        mean, cov, chol = disjoint_terms(self._lik.G[rows, actions], self._lik.B[rows, actions],
                                         self._m[rows, actions], self._P0[rows, actions])
        self._mean[rows, actions], self._cov[rows, actions] = mean, cov
        self._chol[rows, actions] = chol
        self._width_cov[rows, actions] = self._width_matrix(rows, actions, cov)

    def _width_matrix(self, rows: np.ndarray, actions: np.ndarray, cov: np.ndarray
                      ) -> np.ndarray:
        return cov

    def _ucb_scores(self, obs: np.ndarray) -> np.ndarray:
        mean = np.einsum("rkd,rkd->rk", obs, self._mean)
        var = np.einsum("rkd,rkde,rke->rk", obs, self._width_cov, obs)
        return mean + self._alpha[:, None] * np.sqrt(np.maximum(var, 0.0))

    def _choose(self, x: np.ndarray, counter: int) -> np.ndarray:
        if self._UCB:
            return self._ucb_scores(x).argmax(axis=1)
        z = self.streams.normal(counter, STREAM_ACT, (self._K, self._d))
        theta = self._mean + (self._chol @ z[..., None])[..., 0]
        return np.einsum("rkd,rkd->rk", x, theta).argmax(axis=1)

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        if self._UCB:  # deterministic: the argmax it takes, exactly
            return np.eye(self._K)[self._choose(self._contexts(obs), counter)]
        return super()._probabilities(obs, counter, n_samples)

    def _noise(self, generator: np.random.Generator, rows: np.ndarray, n: int
               ) -> tuple[np.ndarray, ...]:
        return (generator.standard_normal((len(rows), self._K, self._d, n)),)

    def _scores(self, x: np.ndarray, rows: np.ndarray, numbers: tuple[np.ndarray, ...]
                ) -> np.ndarray:
        theta = self._mean[rows][..., None] + self._chol[rows] @ numbers[0]  # (m, K, d, n)
        return np.einsum("mkd,mkdn->mnk", x[rows], theta)


@dataclass
class MixedLinTS(_Disjoint):
    """Disjoint linear TS per action with the marginal prior (reported as LinTS)."""

    likelihood: str = "gaussian"


@dataclass
class MixedLinUCB(_Disjoint):
    """Disjoint LinUCB per action with the marginal prior (reported as LinUCB).

    Width as in the meTS code: ``α = √λ·√d + σ·√(d·log((1 + n·X²/λ)/δ))`` with
    ``λ = max_i tr(Σ_i⁻¹)/d``, ``δ = 1/n``, ``n`` the horizon and ``X`` the largest context norm.

    Attributes:
        alpha: fixed width, overriding the formula.
    """

    likelihood: str = "gaussian"
    alpha: float | None = None
    _UCB: ClassVar[bool] = True

    def _ucb_width(self, structures: list[MixedEffectStructure]) -> np.ndarray:
        if self.alpha is not None:
            return np.full(self.replicates, float(self.alpha))
        out = []
        for r, s in enumerate(structures):
            spec = self._specs[r]
            n = spec.horizon or 5000
            space = spec.observation_space
            high = np.maximum(np.abs(np.asarray(getattr(space, "low", -1.0))),
                              np.abs(np.asarray(getattr(space, "high", 1.0))))
            x_max = float(np.sqrt((np.broadcast_to(high, (self._K, self._d)) ** 2).sum(1).max()))
            lam = float(np.trace(self._P0[r], axis1=-2, axis2=-1).max() / self._d)
            delta = 1.0 / n
            out.append(np.sqrt(lam) * np.sqrt(self._d) + s.sigma * np.sqrt(
                self._d * np.log((1.0 + n * x_max**2 / lam) / delta)))
        return np.array(out)


@dataclass
class GLMTS(_Disjoint):
    """Disjoint GLM Thompson sampling: per-action Laplace posterior at the MAP (``GLM-TS``)."""

    likelihood: str = "logistic"


@dataclass
class UCBGLM(_Disjoint):
    """UCB-GLM (Li et al., 2017) per action: MAP plus ``ρ·‖x‖_{V⁻¹}``, ``V = Σ_i⁻¹ + Σ x xᵀ``.

    ``ρ = (0.5/0.25)·√((d/2)·log(1 + 2n/d) + log(1/δ))``, ``δ = 1/n``, as in the meTS code.

    Attributes:
        alpha: fixed width, overriding the formula.
    """

    likelihood: str = "logistic"
    alpha: float | None = None
    _UCB: ClassVar[bool] = True

    def _ucb_width(self, structures: list[MixedEffectStructure]) -> np.ndarray:
        if self.alpha is not None:
            return np.full(self.replicates, float(self.alpha))
        out = []
        for spec in self._specs:
            n, d = spec.horizon or 5000, self._d
            out.append(0.5 / 0.25 * np.sqrt(d / 2 * np.log(1 + 2 * n / d) + np.log(n)))
        return np.array(out)

    def _prepare(self, structures: list[MixedEffectStructure]) -> None:
        super()._prepare(structures)
        self._width_cov = symmetrize(np.linalg.inv(self._P0))

    def _width_matrix(self, rows: np.ndarray, actions: np.ndarray, cov: np.ndarray
                      ) -> np.ndarray:
        D = getattr(self._lik, "D", None)
        if D is None:
            return cov
        return symmetrize(np.linalg.inv(self._P0[rows, actions] + D[rows, actions]))


__all__ = [
    "GLMTS",
    "HierTS",
    "MeTS",
    "MeTSFa",
    "MeTSGLM",
    "MeTSLin",
    "MixedLinTS",
    "MixedLinUCB",
    "UCBGLM",
]
