"""Mixed-effect Thompson sampling (meTS), HierTS and disjoint baselines for mixed-effect bandits.

Registered names: ``meTS-Lin``, ``meTS-GLM``, ``meTS-Fa``, ``HierTS``, ``LinTS-Disjoint``,
``LinUCB-Disjoint``, ``GLM-TS``, ``UCB-GLM``. Every agent works on an observation of shape
``(K, d)`` (one context per action, as in ``MixedEffectLinear-v0``) and reads the structure
(loadings, priors, noise) from ``spec.extra`` or from ``structure=``.

Every agent is batched: ``cls.batched(R, **kwargs)`` (or ``n_replicates=R``) runs ``R``
independent replicates with ``reset_batch(specs, seed)``, ``act_batch(obs (R, K, d)) -> (R,)``
and ``update_batch(obs, actions, rewards, infos)``; replicate ``r`` takes the same decisions as a
single agent reset with seed ``seed + r``. Propensities use a separate random stream, so asking
for them never changes the decisions.

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
from gambit_gym.agents._rng import argmax_random_ties
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
from gambit_gym.core.description import EnvDescription

LIKELIHOODS: tuple[str, ...] = ("gaussian", "logistic", "auto")
_PROPENSITY_CHUNK = 512


@dataclass
class _MixedEffectAgent:
    """Shared machinery: seeding, replicate bookkeeping, the single/batched protocol.

    Attributes:
        n_replicates: number of independent replicates ``R`` (1 for the single-agent protocol).
        sigma: noise sd override (else the env's ``extra["sigma"]``).
        structure: structure override (e.g. from :func:`structure_from_embeddings`), used for
            every replicate instead of ``spec.extra``.
        likelihood: ``"gaussian"`` (exact), ``"logistic"`` (Laplace) or ``"auto"`` (from
            ``spec.extra["link"]``).
        n_effects: number of effects when the structure is learnt from a GAMBIT env's
            simulator (:func:`gambit_structure`); ignored otherwise.
    """

    n_replicates: int = 1
    sigma: float | None = None
    structure: MixedEffectStructure | None = None
    likelihood: str = "gaussian"
    n_effects: int | None = None

    def __post_init__(self) -> None:
        check_positive_int("n_replicates", self.n_replicates)
        if self.sigma is not None and not self.sigma > 0:
            raise ValueError(f"sigma must be positive, got {self.sigma}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.structure is not None and not isinstance(self.structure, MixedEffectStructure):
            raise TypeError("structure must be a MixedEffectStructure")
        self._ready = False

    @classmethod
    def batched(cls, n_replicates: int, **kwargs: Any) -> _MixedEffectAgent:
        """An agent running ``n_replicates`` independent replicates (see the module doc)."""
        return cls(n_replicates=n_replicates, **kwargs)

    # --- protocol ----------------------------------------------------------------------------
    def reset(self, spec: EnvDescription, seed: int | None = None) -> None:
        """Forget everything; prepare for ``spec``; seed all randomness from ``seed``."""
        if self.n_replicates != 1:
            raise ValueError("a batched agent is reset with reset_batch(specs, seed)")
        self.reset_batch([spec], seed)

    def act(self, obs: Any) -> int:
        """Choose an action for the ``(K, d)`` contexts ``obs``."""
        self._require_single()
        return int(self.act_batch(np.asarray(obs)[None])[0])

    def update(self, obs: Any, action: int, reward: float, info: dict | None = None) -> None:
        """Learn from one step (``obs`` is the observation the action was chosen for)."""
        self._require_single()
        self.update_batch(np.asarray(obs)[None], np.array([action]), np.array([reward]),
                          [info or {}])

    def action_probabilities(self, obs: Any, n_samples: int = 1000) -> np.ndarray:
        """``(K,)`` probabilities that :meth:`act` picks each action now (Monte Carlo)."""
        self._require_single()
        return self.action_probabilities_batch(np.asarray(obs)[None], n_samples)[0]

    # --- batched protocol --------------------------------------------------------------------
    def reset_batch(self, specs: EnvDescription | Sequence[EnvDescription],
                    seed: int | None = None, replicates: int | None = None) -> None:
        """Reset all replicates; replicate ``r`` gets ``specs[r]`` and seed ``seed + r``.

        Args:
            specs: one description (shared) or one per replicate.
            seed: base seed, or None for fresh entropy.
            replicates: number of replicates ``R`` (resets :attr:`n_replicates`; default: the
                length of ``specs``, else :attr:`n_replicates`).
        """
        if replicates is None and not isinstance(specs, EnvDescription):
            replicates = len(specs)
        if replicates is not None:
            self.n_replicates = check_positive_int("replicates", replicates)
        R = self.n_replicates
        if isinstance(specs, EnvDescription):
            specs = [specs] * R
        specs = list(specs)
        if len(specs) != R:
            raise ValueError(f"need {R} env descriptions, got {len(specs)}")
        if seed is not None and (isinstance(seed, bool) or int(seed) != seed or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        self._rngs = [np.random.default_rng(None if seed is None else seed + r) for r in range(R)]
        self._prop_rngs = [np.random.default_rng(None if seed is None else [seed + r, 0x5EED])
                           for r in range(R)]
        structures = []
        for spec in specs:
            st = self.structure or self._structure_for(spec)
            if self.sigma is not None and st.sigma != self.sigma:
                st = MixedEffectStructure(st.b, st.mu_psi, st.sigma_psi, st.sigma_0, self.sigma)
            if st.n_actions != spec.n_actions:
                raise ValueError(f"structure has {st.n_actions} actions, env {spec.n_actions}")
            structures.append(st)
        if len({(s.n_actions, s.dim) for s in structures}) != 1:
            raise ValueError("all replicates must have the same K and d")
        links = {spec.extra.get("link", "linear") for spec in specs}
        self._link = self.likelihood if self.likelihood != "auto" else (
            "logistic" if links == {"logistic"} else "gaussian")
        self._K, self._d = structures[0].n_actions, structures[0].dim
        self._specs = specs
        space = specs[0].observation_space
        self._featurize = gambit_features if (
            isinstance(space, spaces.MultiDiscrete) and space.shape == (2,)) else None
        self._prepare(structures)
        self._t = 0
        self._ready = True

    def act_batch(self, obs_batch: Any) -> np.ndarray:
        """``(R,)`` actions for ``(R, K, d)`` contexts."""
        obs = self._check_obs(obs_batch)
        actions = self._act(obs)
        return actions.astype(np.int64)

    def update_batch(self, obs_batch: Any, actions: Any, rewards: Any,
                     infos: Sequence[dict] | None = None) -> None:
        """Learn from one step of every replicate.

        Args:
            obs_batch: ``(R, K, d)`` contexts the actions were chosen for.
            actions: ``(R,)`` actions.
            rewards: ``(R,)`` rewards.
            infos: step infos (unused; accepted for the protocol).
        """
        obs = self._check_obs(obs_batch)
        actions = np.asarray(actions).reshape(-1)
        rewards = np.asarray(rewards, dtype=float).reshape(-1)
        R = self.n_replicates
        if actions.shape != (R,) or rewards.shape != (R,):
            raise ValueError(f"need {R} actions and rewards, got {actions.shape}, {rewards.shape}")
        if not np.issubdtype(actions.dtype, np.integer) or actions.min() < 0 \
                or actions.max() >= self._K:
            raise ValueError(f"actions must be integers in 0..{self._K - 1}, got {actions}")
        if not np.all(np.isfinite(rewards)):
            raise ValueError("rewards must be finite")
        rows = np.arange(R)
        self._lik.add(rows, actions, obs[rows, actions], rewards)
        self._refresh(rows, actions)
        self._t += 1

    def action_probabilities_batch(self, obs_batch: Any, n_samples: int = 1000) -> np.ndarray:
        """``(R, K)`` propensities by Monte Carlo over the agent's own randomisation.

        The argmax frequencies of ``n_samples`` repeats, from a separate random stream, so the
        decisions are unaffected; standard error ``√(π(1 − π)/n_samples)``. The action each
        replicate's :meth:`act_batch` takes next (found by acting once and restoring the
        agent's random streams) gets the add-one estimate ``(C + 1)/(S + 1)``, never 0, as in
        the other built-in agents: with K = 100 actions a chosen action is often missing from
        the draws, and the runner refuses a chosen action of probability 0. The other actions
        share the rest in proportion to their counts.
        """
        obs = self._check_obs(obs_batch)
        if int(n_samples) < 1:
            raise ValueError(f"n_samples must be positive, got {n_samples}")
        states = [rng.bit_generator.state for rng in self._rngs]
        try:
            chosen = np.asarray(self._act(obs), dtype=np.int64).reshape(-1)
        finally:
            for rng, state in zip(self._rngs, states):
                rng.bit_generator.state = state
        counts = np.zeros((self.n_replicates, self._K))
        for r in range(self.n_replicates):
            rng = self._prop_rngs[r]
            done = 0
            while done < n_samples:
                s = min(_PROPENSITY_CHUNK, n_samples - done)
                scores = self._sample_scores(r, obs[r], s, rng).T  # (s, K)
                ties = (scores == scores.max(axis=-1, keepdims=True)).sum(axis=-1) > 1
                # a uniform per draw only when some draw has tied scores (as before)
                picks = (argmax_random_ties(scores, rng.random(ties.shape)) if ties.any()
                         else scores.argmax(axis=-1))
                counts[r] += np.bincount(picks, minlength=self._K)
                done += s
        rows = np.arange(self.n_replicates)
        hits = counts[rows, chosen]
        p_chosen = (hits + 1.0) / (n_samples + 1.0)
        others = n_samples - hits
        share = np.divide(1.0 - p_chosen, others, out=np.zeros_like(p_chosen), where=others > 0)
        probs = counts * share[:, None]
        probs[rows, chosen] = p_chosen
        return probs

    # --- helpers -----------------------------------------------------------------------------
    def _require_single(self) -> None:
        if self.n_replicates != 1:
            raise ValueError("this agent is batched; use act_batch / update_batch")

    def _structure_for(self, spec: EnvDescription) -> MixedEffectStructure:
        sim = spec.simulator
        if "b" not in (spec.extra or {}) and sim is not None and hasattr(sim, "mean_embeddings"):
            st = gambit_structure(spec, self.n_effects)
            if self.sigma is not None:
                st = MixedEffectStructure(st.b, st.mu_psi, st.sigma_psi, st.sigma_0, self.sigma)
            return st
        return MixedEffectStructure.from_description(spec, sigma=self.sigma)

    def _check_obs(self, obs_batch: Any) -> np.ndarray:
        if not self._ready:
            raise RuntimeError("call reset() (or reset_batch()) before acting")
        if self._featurize is not None:
            feats = self._featurize(np.asarray(obs_batch).reshape(self.n_replicates, -1))
            return np.repeat(feats[:, None, :], self._K, axis=1)
        obs = np.asarray(obs_batch, dtype=float)
        shape = (self.n_replicates, self._K, self._d)
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

    def _act(self, obs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _sample_scores(self, r: int, obs: np.ndarray, n: int, rng: np.random.Generator
                       ) -> np.ndarray:
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
        R, K, d, L = self.n_replicates, self._K, self._d, structures[0].n_effects
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

    def _act(self, obs: np.ndarray) -> np.ndarray:
        K, d, p = self._K, self._d, self._p
        z_psi = np.stack([rng.standard_normal(p) for rng in self._rngs])[..., None]
        z_theta = np.stack([rng.standard_normal((K, d)) for rng in self._rngs])[..., None]
        psi = sample_effects(self.effect_precision(), self._h, z_psi)
        theta = self._theta(slice(None), psi, z_theta)[..., 0]
        return np.einsum("rkd,rkd->rk", obs, theta).argmax(axis=1)

    def _sample_scores(self, r: int, obs: np.ndarray, n: int, rng: np.random.Generator
                       ) -> np.ndarray:
        K, d, p = self._K, self._d, self._p
        z_psi = rng.standard_normal((1, p, n))
        z_theta = rng.standard_normal((1, K, d, n))
        psi = sample_effects(self.effect_precision()[r:r + 1], self._h[r:r + 1], z_psi)
        theta = self._theta(slice(r, r + 1), psi, z_theta)[0]
        return np.einsum("kd,kds->ks", obs, theta)


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
        return np.zeros(self.n_replicates)

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

    def _act(self, obs: np.ndarray) -> np.ndarray:
        if self._UCB:
            return self._ucb_scores(obs).argmax(axis=1)
        K, d = self._K, self._d
        z = np.stack([rng.standard_normal((K, d)) for rng in self._rngs])
        theta = self._mean + (self._chol @ z[..., None])[..., 0]
        return np.einsum("rkd,rkd->rk", obs, theta).argmax(axis=1)

    def _sample_scores(self, r: int, obs: np.ndarray, n: int, rng: np.random.Generator
                       ) -> np.ndarray:
        if self._UCB:
            # deterministic: every "sample" is the UCB score; ties split by the caller
            scores = self._ucb_scores(np.broadcast_to(obs, (self.n_replicates,) + obs.shape))[r]
            return np.repeat(scores[:, None], n, axis=1)
        z = rng.standard_normal((self._K, self._d, n))
        theta = self._mean[r][..., None] + self._chol[r] @ z
        return np.einsum("kd,kds->ks", obs, theta)


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
            return np.full(self.n_replicates, float(self.alpha))
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
            return np.full(self.n_replicates, float(self.alpha))
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
