"""Linear GAMBITTS agents: poGAMBITTS (uses the simulator) and foGAMBITTS (learns the treatment).

Both regress the reward on ``φ(c, z) = [z, location one-hot, step-bucket one-hot, 1]`` (the
working embedding ``z`` of the message the user received, the context, an intercept) with a
Bayesian linear model (:class:`gambit_gym.agents._batched.BayesLinReg`). At action time they need
each prompt's expected embedding in the current context:

- **poGAMBITTS** reads it from the simulator: the exact mean of the bank cell (default), or the
  mean of ``n_sim_draws`` draws per cell made once at reset (the study's database-size
  experiment).
- **foGAMBITTS** learns it: a Normal-Inverse-Wishart posterior per (context, prompt) on the
  observed embeddings, from which each arm's mean embedding is sampled at action time.

Fixes to the study's code release (see ``algorithms.md`` D.1-D.2): the prior mean survives the
first update (``S₀ = B₀μ₀``); the noise variance is learned (Normal-Inverse-Gamma, default) or
taken from the env (``noise="env"``), not fixed at 1; the NIW prior is proper
(``ν₀ = d + 2``). ``release_compat=True`` restores the release's behaviour (``v = 1``,
``S₀ = 0``, no context features, ``ν₀ = d``) so its numbers can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gambit_gym._validate import check_number, check_positive_int
from gambit_gym.agents._batched import (
    CONTEXT_ONE_HOTS,
    GAMBIT_ENVS,
    N_CONTEXT_FEATURES,
    STREAM_ACT,
    STREAM_RESET,
    STREAM_TREAT,
    BatchedAgent,
    BayesLinReg,
    check_positive,
    gambit_contexts,
    polar_t_base,
    polar_t_unit,
    require_contexts,
    require_simulator,
    shared_theta_noise,
    two_arm_probabilities,
)
from gambit_gym.agents.niw_treatment import NIWTreatment, niw_prior
from gambit_gym.core.description import EnvDescription


def received_embeddings(agent: Any, info: dict[str, Any], width: int) -> np.ndarray:
    """The embeddings of the messages the users received this step, ``(R, width)`` float64.

    One place for the check every embedding-learning agent makes: ``info["embedding"]`` must be
    there (an env that hides it cannot be learned from by a GAMBITTS agent).
    """
    if "embedding" not in info:
        raise KeyError(f"{type(agent).__name__}.update needs info['embedding'] (the working "
                       "embedding of the message the user received)")
    return np.asarray(info["embedding"], dtype=np.float64).reshape(agent.replicates, width)


@dataclass(eq=False)
class _LinearGambitts(BatchedAgent):
    """Shared reward model of the linear GAMBITTS agents (see the module docstring)."""

    supported_envs = GAMBIT_ENVS
    noise: str | float = "learn"
    prior_mean: float = 0.0
    prior_precision: float = 1.0
    intercept_mean: float = 77.0
    intercept_precision: float = 0.01
    noise_a0: float = 1.0
    noise_b0: float = 10.0
    context_features: bool | None = None
    release_compat: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.noise, str):
            if self.noise not in ("learn", "env"):
                raise ValueError(f"noise must be 'learn', 'env' or a noise sd > 0, got "
                                 f"{self.noise!r}")
        else:
            check_positive("noise", self.noise)
        for name in ("prior_precision", "intercept_precision", "noise_a0", "noise_b0"):
            check_positive(name, getattr(self, name))
        for name in ("prior_mean", "intercept_mean"):
            check_number(name, getattr(self, name))
        if self.release_compat and self.noise != "learn":
            raise ValueError("release_compat=True fixes the noise variance at 1 (the release's "
                             "v2); do not also pass noise=")

    @property
    def uses_context_features(self) -> bool:
        """Whether φ includes the context one-hots."""
        if self.context_features is None:
            return not self.release_compat
        return bool(self.context_features)

    def _setup_reward_model(self, spec: EnvDescription) -> None:
        require_contexts(spec, type(self).__name__)
        d = len(spec.embedding_names)
        if d == 0:
            raise ValueError(f"{type(self).__name__} needs an env with a working embedding "
                             "(EnvDescription.embedding_names is empty)")
        self.d = d
        n_ctx = N_CONTEXT_FEATURES if self.uses_context_features else 0
        p = d + n_ctx + 1
        mu0 = np.full(p, float(self.prior_mean))
        prec0 = np.full(p, float(self.prior_precision))
        mu0[-1], prec0[-1] = self.intercept_mean, self.intercept_precision
        if self.release_compat:
            noise_var: float | None = 1.0
        elif self.noise == "learn":
            noise_var = None
        elif self.noise == "env":
            if spec.noise_sd is None:
                raise ValueError("noise='env' but this env publishes no noise_sd; use "
                                 "noise='learn'")
            noise_var = max(float(spec.noise_sd) ** 2, 1e-8)
        else:
            noise_var = float(self.noise) ** 2
        self.model = BayesLinReg(self.replicates, mu0, prec0, noise_var, self.noise_a0,
                                 self.noise_b0, zero_s0=self.release_compat)
        self._n_ctx = n_ctx

    def features(self, contexts: np.ndarray, z: np.ndarray) -> np.ndarray:
        """``φ`` of embeddings ``z`` ``(..., d)`` in contexts ``(...)``: ``(..., p)``."""
        parts = [z]
        if self._n_ctx:
            parts.append(np.broadcast_to(CONTEXT_ONE_HOTS[contexts],
                                         (*z.shape[:-1], N_CONTEXT_FEATURES)))
        parts.append(np.ones((*z.shape[:-1], 1)))
        return np.concatenate(parts, axis=-1)

    def _score(self, theta: np.ndarray, contexts: np.ndarray, zbar: np.ndarray) -> np.ndarray:
        """Scores ``(R, [S,] K)`` of θ ``(R, [S,] p)`` at arm embeddings ``(R, [S,] K, d)``."""
        d = self.d
        rest = theta[..., d:d + self._n_ctx]
        base = theta[..., -1]
        if self._n_ctx:
            onehot = CONTEXT_ONE_HOTS[contexts]  # (R, 7)
            if theta.ndim == 3:
                onehot = onehot[:, None, :]
            base = base + np.sum(rest * onehot, axis=-1)
        return np.einsum("...kd,...d->...k", zbar, theta[..., :d]) + base[..., None]

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        z = received_embeddings(self, info, self.d)
        contexts = gambit_contexts(obs)
        self.model.update(self.features(contexts, z), rewards)
        self._update_treatment(contexts, actions, z)

    def _update_treatment(self, contexts: np.ndarray, actions: np.ndarray,
                          z: np.ndarray) -> None:
        """Hook for foGAMBITTS."""


@dataclass(eq=False)
class POGambitTS(_LinearGambitts):
    """poGAMBITTS, linear: Thompson sampling on a reward model of the message's embedding.

    Args:
        n_sim_draws: simulator draws per (prompt, context) cell used to estimate each prompt's
            mean embedding, drawn once at reset; None (default) uses the exact cell mean.
        noise: ``"learn"`` (Normal-Inverse-Gamma on the weights, default), ``"env"`` (the env's
            noise sd) or a known noise sd.
        prior_mean: prior mean of the embedding and context coefficients (study: 0).
        prior_precision: their prior precision (study: 1).
        intercept_mean: prior mean of the intercept (study: 77).
        intercept_precision: its prior precision (study: 0.01).
        noise_a0: Inverse-Gamma shape of the noise variance (learned noise).
        noise_b0: Inverse-Gamma scale of the noise variance (learned noise).
        context_features: include location and step-bucket one-hots (default: yes, unless
            ``release_compat``).
        release_compat: reproduce the code release: noise variance fixed at 1 and ``S₀ = 0``.
    """

    n_sim_draws: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("n_sim_draws", self.n_sim_draws, allow_none=True)

    def _setup(self, spec: EnvDescription) -> None:
        sim = require_simulator(spec, "poGAMBITTS")
        self._setup_reward_model(spec)
        table = np.asarray(sim.mean_embedding_table, dtype=np.float64)  # (12, K, d)
        if self.n_sim_draws is None:
            self.zbar = np.broadcast_to(table, (self.replicates, *table.shape))
        else:
            self.zbar = self._subsampled_means(sim, table.shape)

    def _subsampled_means(self, sim: Any, shape: tuple[int, ...]) -> np.ndarray:
        n_ctx, k, d = shape
        n = int(self.n_sim_draws)
        out = np.empty((self.replicates, n_ctx, k, d))
        for a in range(k):
            for c in range(n_ctx):
                cell = np.asarray(sim.cell_embeddings(a, c), dtype=np.float64)
                rows = self.streams.integers(a * n_ctx + c, STREAM_RESET, len(cell), (n,))
                out[:, c, a] = cell[rows].mean(axis=1)
        return out

    def _arm_embeddings(self, contexts: np.ndarray) -> np.ndarray:
        return self.zbar[np.arange(self.replicates), contexts]  # (R, K, d)

    def _allowed(self, contexts: np.ndarray) -> np.ndarray | None:
        """Actions the agent may take now, ``(R, K)`` bool, or None (all): a subclass hook."""
        return None

    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        contexts = gambit_contexts(obs)
        theta = self.model.sample(self.streams, counter, STREAM_ACT)
        scores = self._score(theta, contexts, self._arm_embeddings(contexts))
        allowed = self._allowed(contexts)
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        return scores.argmax(axis=-1)

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        """Monte Carlo over θ's posterior (exact for two arms), scoring the arms directly.

        The scores ``Φθ`` (``Φ`` the arms' features, ``K × p``) are ``Φμ + √v·(Φ·root)z``:
        the ``K × p`` factor is formed once per step, then each draw is ``p`` normals and one
        noise variance ``v = b/g``, ``g ~ Gamma(a)`` (``v = 1`` with known noise). With two
        arms the score difference is a scalar Student-t (normal with known noise), so the
        probability is its CDF at 0.
        """
        contexts = gambit_contexts(obs)
        zbar = self._arm_embeddings(contexts)  # (R, K, d)
        phi = self.features(np.broadcast_to(contexts[:, None], zbar.shape[:2]), zbar)
        model = self.model
        mean = np.einsum("rkp,rp->rk", phi, model.mu)
        factor = np.matmul(phi, model.root)  # (R, K, p)
        learned = model.noise_var is None
        allowed = self._allowed(contexts)
        if self.n_actions == 2 and allowed is None:
            return two_arm_probabilities(mean, factor, model.a if learned else None,
                                         model.b if learned else None)

        def noise(gen: np.random.Generator, rows: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
            return shared_theta_noise(gen, model, rows, n)

        def scores(rows: np.ndarray, stacked: tuple[np.ndarray, ...]) -> np.ndarray:
            spread = np.matmul(stacked[0], np.swapaxes(factor[rows], -1, -2))  # (r, n, K)
            if learned:
                spread *= np.sqrt(stacked[1])[..., None]
            spread += mean[rows, None]
            return spread if allowed is None else np.where(allowed[rows, None], spread, -np.inf)

        return self._sampled(noise, scores, n_samples)


@dataclass(eq=False)
class FOGambitTS(_LinearGambitts):
    """foGAMBITTS, linear: the treatment model is learned online, no simulator needed.

    Each (context, prompt) cell has a Normal-Inverse-Wishart posterior on the mean and covariance
    of its embeddings: prior ``μ₀ = treatment_mean``, ``κ₀``, ``ν₀`` (default ``d + 2``, so the
    prior mean of the covariance exists) and ``Ψ₀ = treatment_var · (ν₀ - d - 1) · I`` (so that
    ``E[Σ] = treatment_var · I``). At action time θ is drawn once and each arm's mean embedding
    ``m̃ ~ N(m_n, Σ̃/κ_n)``, ``Σ̃ ~ IW(Ψ_n, ν_n)``, drawn directly from its marginal, the
    multivariate Student-t ``t_{ν_n-d+1}(m_n, Ψ_n / (κ_n (ν_n - d + 1)))``. Since the score
    ``θᵀφ(c, m̃)`` is linear in ``m̃``, acting draws each arm's score directly from its scalar
    Student-t given θ (two random numbers per arm); ``Ψ_n`` is kept per (replicate, context,
    prompt) and only the updated cell's is recomputed, so acting factorises and inverts nothing.

    Args:
        treatment_mean: prior mean of every cell's mean embedding.
        treatment_kappa: κ₀, the prior pseudo-count of the mean.
        treatment_nu: ν₀ (None: ``d + 2``; must exceed ``d - 1``).
        treatment_var: prior mean of the embedding variance per dimension.
        noise, prior_mean, prior_precision, intercept_mean, intercept_precision, noise_a0,
            noise_b0, context_features, release_compat: as in :class:`POGambitTS`
            (``release_compat`` also sets ``ν₀ = d`` and ``Ψ₀ = I``, the release's values).
    """

    treatment_mean: float = 0.0
    treatment_kappa: float = 1.0
    treatment_nu: float | None = None
    treatment_var: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive("treatment_kappa", self.treatment_kappa)
        check_positive("treatment_var", self.treatment_var)
        if self.treatment_nu is not None:
            check_positive("treatment_nu", self.treatment_nu)

    def _setup(self, spec: EnvDescription) -> None:
        self._setup_reward_model(spec)
        nu0, psi0 = niw_prior(self.d, self.treatment_nu, self.treatment_var, self.release_compat)
        #: the treatment model this agent owns (ens-foGAMBITTS owns one too)
        self.treatment = NIWTreatment((self.replicates, spec.n_contexts, self.n_actions), self.d,
                                      self.treatment_mean, self.treatment_kappa, nu0, psi0)

    def _update_treatment(self, contexts: np.ndarray, actions: np.ndarray,
                          z: np.ndarray) -> None:
        self.treatment.update(contexts, actions, z)

    def treatment_posterior(self, contexts: np.ndarray) -> tuple[np.ndarray, ...]:
        """NIW posterior ``(m_n (R,K,d), κ_n (R,K), ν_n (R,K), Ψ_n (R,K,d,d))`` in each context."""
        return self.treatment.posterior(contexts)

    def _mean_posterior(self, contexts: np.ndarray,
                        n_samples: int | None) -> tuple[np.ndarray, ...]:
        """``(m_n, κ_n, ν', Ψ_n)`` of every arm in each replicate's context, ``ν' = ν_n - d + 1``.

        With ``n_samples``, all but ``Ψ_n`` get a sample axis: ``m_n (R,1,K,d)``, ``κ_n (R,1,K)``
        and ``ν' (R,S,K)``; otherwise ``(R,K,d)``, ``(R,K)``, ``(R,K)``. ``Ψ_n`` is ``(R,K,d,d)``.
        """
        idx = (np.arange(self.replicates), contexts)
        m_n, kappa_n, n = self.treatment.cell_mean(idx)
        psi = self.treatment.psi[idx]
        dof = self.treatment.nu0 + n - self.d + 1.0
        if n_samples is not None:
            m_n, kappa_n = m_n[:, None], kappa_n[:, None]
            dof = np.broadcast_to(dof[:, None], (self.replicates, n_samples, self.n_actions))
        return m_n, kappa_n, np.ascontiguousarray(dof), psi

    def _sample_arm_means(self, contexts: np.ndarray, counter: int, stream: int,
                          n_samples: int | None) -> np.ndarray:
        """Draws of each arm's mean embedding, ``(R, [S,] K, d)``, from the NIW marginal.

        The NIW posterior's marginal of the mean is the multivariate Student-t
        ``t_ν'(m_n, Ψ_n/(κ_n ν'))`` with ``ν' = ν_n - d + 1``, i.e. ``m̃ = m_n + L z / √(κ_n g)``
        with ``L Lᵀ = Ψ_n``, ``z ~ N(0, I_d)`` and ``g ~ χ²(ν')``: the same distribution as the
        two-stage draw of :meth:`sample_arm_distributions`, with ``d + 1`` random numbers per
        arm and no inversion. (Acting needs less still: see :meth:`_sample_arm_scores`.)
        """
        m_n, kappa_n, dof, psi = self._mean_posterior(contexts, n_samples)
        chol = np.linalg.cholesky(psi if n_samples is None else psi[:, None])
        half, z = self.streams.gamma_and_normal(counter, stream, dof / 2.0, stream + 4,
                                                (*dof.shape[1:], self.d))
        g = 2.0 * half
        step = np.einsum("...ij,...j->...i", chol, z)
        return m_n + step / np.sqrt(kappa_n * g)[..., None]

    def _sample_arm_scores(self, theta: np.ndarray, contexts: np.ndarray, counter: int,
                           stream: int, n_samples: int | None) -> np.ndarray:
        """Thompson scores ``θᵀφ(c, m̃_k)`` ``(R, [S,] K)`` for θ ``(R, [S,] p)``.

        Why not draw ``m̃_k`` first: the score is linear in ``m̃_k``, whose NIW marginal is
        ``t_ν'(m_n, Ψ_n/(κ_n ν'))``, so given θ the score is the scalar Student-t
        ``θᵀφ(c, m_n) + √(θ_zᵀ Ψ_n θ_z / (κ_n g)) ξ`` with ``g ~ χ²(ν')``, ``ξ ~ N(0, 1)``,
        independent across arms: the same decisions in distribution as scoring the drawn
        means, with 2 random numbers per arm instead of ``d + 1`` (or a Wishart draw).
        """
        m_n, kappa_n, dof, psi = self._mean_posterior(contexts, n_samples)
        tz = theta[..., :self.d]
        if n_samples is None:  # θ_zᵀΨθ_z as (R,K,d²)·(R,d²): one batched matmul
            outer = (tz[:, :, None] * tz[:, None, :]).reshape(self.replicates, -1, 1)
            quad = np.matmul(psi.reshape(self.replicates, self.n_actions, -1), outer)[..., 0]
        else:
            quad = np.einsum("rkij,rsi,rsj->rsk", psi, tz, tz)
        half, xi = self.streams.gamma_and_normal(counter, stream, dof / 2.0, stream + 4,
                                                 dof.shape[1:])
        g = 2.0 * half
        spread = np.sqrt(np.maximum(quad, 0.0) / (kappa_n * g)) * xi
        return self._score(theta, contexts, m_n) + spread

    def sample_arm_distributions(self, contexts: np.ndarray, counter: int, stream: int,
                                 n_samples: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior draws of each arm's ``N(m̃, Σ̃)`` (see :class:`.NIWTreatment`)."""
        return self.treatment.sample_distributions(self.streams, contexts, counter, stream,
                                                   n_samples)

    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        contexts = gambit_contexts(obs)
        theta = self.model.sample(self.streams, counter, STREAM_ACT)
        return self._sample_arm_scores(theta, contexts, counter, STREAM_TREAT,
                                       None).argmax(axis=-1)

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        """Monte Carlo over θ and each arm's Student-t mean embedding, as :meth:`_act` draws."""
        contexts = gambit_contexts(obs)
        m_n, kappa_n, dof, psi = self._mean_posterior(contexts, None)
        model, k, d = self.model, self.n_actions, self.d
        learned = model.noise_var is None
        psi_flat = np.swapaxes(psi.reshape(self.replicates, k, d * d), 1, 2)  # (R, d², K)
        inv_root_kappa = 1.0 / np.sqrt(kappa_n)
        # θ = μ + √v·root·z enters twice: the arms' linear scores θᵀφ(c, m_n) and θ_z (the
        # embedding weights, for the spread). Both are linear in z: one (K + d) × p map per
        # replicate, formed once per step, instead of θ itself (p × p) per draw.
        phi = self.features(np.broadcast_to(contexts[:, None], m_n.shape[:2]), m_n)  # (R, K, p)
        mean = np.einsum("rkp,rp->rk", phi, model.mu)
        maps = np.concatenate([np.matmul(phi, model.root), model.root[:, :d]], axis=1)
        maps_t = np.swapaxes(maps, 1, 2)  # (R, p, K + d)
        mu_z = model.mu[:, :d]

        def noise(gen: np.random.Generator, rows: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
            return (*shared_theta_noise(gen, model, rows, n), *polar_t_base(gen, (n, k)))

        def scores(rows: np.ndarray, stacked: tuple[np.ndarray, ...]) -> np.ndarray:
            z, v, a, log_w = stacked
            mapped = np.matmul(z, maps_t[rows])  # (r, n, K + d)
            if learned:
                mapped *= np.sqrt(v)[..., None]
            tz = mapped[..., k:] + mu_z[rows, None]
            outer = (tz[..., :, None] * tz[..., None, :]).reshape(*tz.shape[:2], d * d)
            quad = np.matmul(outer, psi_flat[rows])  # θ_zᵀΨθ_z, (r, n, K)
            np.maximum(quad, 0.0, out=quad)
            # √(quad/(κ g))·ξ with g ~ χ²_ν' is √(quad/κ)·T/√ν', T ~ t_ν' (polar method)
            spread = np.sqrt(quad, out=quad)
            spread *= inv_root_kappa[rows, None]
            loc = mapped[..., :k]
            loc += mean[rows, None]
            t_scale = spread / np.sqrt(dof[rows, None])  # each arm's t scale given θ
            out = polar_t_unit((a, log_w), dof[rows, None])
            out *= spread
            out += loc
            return out, loc, t_scale

        from gambit_gym.agents import _propensity_kernels as _kernels  # numba: imported late

        accumulate = None
        if _kernels.available() and _kernels.supported(dof):
            chosen = self._next_actions()
            psi_c = np.ascontiguousarray(psi_flat)
            maps_c = np.ascontiguousarray(maps_t)

            def accumulate(rows: np.ndarray, numbers: tuple[np.ndarray, ...],
                           need: np.ndarray) -> tuple[np.ndarray, ...]:
                z, v, a, log_w = numbers
                counts = np.zeros((len(rows), k))
                sums, squares = np.zeros(len(rows)), np.zeros(len(rows))
                _kernels.linear_t(maps_c[rows], mean[rows], mu_z[rows], psi_c[rows],
                                  inv_root_kappa[rows], dof[rows], chosen[rows], z,
                                  np.ascontiguousarray(v, dtype=np.float64), a, log_w, need,
                                  counts, sums, squares)
                return counts, sums, squares

        # given θ the arms' scores are independent Student-t: the conditional estimator
        return self._sampled(noise, scores, n_samples, conditional_dof=dof,
                             accumulate=accumulate)
