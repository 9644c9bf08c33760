"""Classic bandit baselines: disjoint LinTS and LinUCB, UCB1, ε-greedy, uniform Random, Oracle.

LinTS and LinUCB keep one Bayesian linear model per action (``θ_a``, known noise), over features
``x_a`` of the observation:

- GAMBIT envs: ``x = [1, location one-hot, step-bucket one-hot]`` for every prompt, so each
  prompt has its own additive context model (context × prompt features); prior mean 77 on the
  intercept (precision 0.01), 0 elsewhere (precision 1), noise sd from the env.
- Mixed-effect envs (``describe().extra`` has loadings ``b``): ``x_a`` is action ``a``'s row of
  the observation and ``θ_a`` has the marginal prior ``N(W_a μ_ψ, Σ_0 + W_a Σ_ψ W_aᵀ)`` of the
  mixed-effect model (``W_a = b_aᵀ ⊗ I``), cross-action covariances dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from gambit_gym.agents._batched import (
    CONTEXT_ONE_HOTS,
    GAMBIT_ENVS,
    STREAM_ACT,
    STREAM_TIE,
    BatchedAgent,
    check_positive,
    gambit_contexts,
    require_contexts,
    two_arm_probabilities,
)
from gambit_gym.agents._rng import argmax_random_ties, tie_probabilities
from gambit_gym.core.description import EnvDescription


def _is_mixed_effect(spec: EnvDescription) -> bool:
    return "b" in spec.extra and "mu_psi" in spec.extra


@dataclass(eq=False)
class _DisjointLinear(BatchedAgent):
    """One Bayesian linear model per action, known noise (shared by LinTS and LinUCB)."""

    noise_sd: float | None = None
    intercept_mean: float = 77.0
    intercept_precision: float = 0.01
    prior_precision: float = 1.0

    supported_envs = (*GAMBIT_ENVS, "MixedEffectLinear-v0")

    def __post_init__(self) -> None:
        if self.noise_sd is not None:
            check_positive("noise_sd", self.noise_sd)
        check_positive("intercept_precision", self.intercept_precision)
        check_positive("prior_precision", self.prior_precision)

    def _setup(self, spec: EnvDescription) -> None:
        k = self.n_actions
        self.mixed = _is_mixed_effect(spec)
        if self.mixed:
            ex = spec.extra
            b = np.asarray(ex["b"], dtype=np.float64)
            n_eff, dim = b.shape[1], int(ex.get("dim", len(ex["mu_psi"]) // b.shape[1]))
            mu_psi = np.asarray(ex["mu_psi"], dtype=np.float64).reshape(n_eff, dim)
            sig_psi = np.asarray(ex["sigma_psi"], dtype=np.float64).reshape(n_eff, dim,
                                                                             n_eff, dim)
            sig0 = np.broadcast_to(np.asarray(ex["sigma_0"], dtype=np.float64), (k, dim, dim))
            mu0 = b @ mu_psi  # (K, d)
            cov0 = sig0 + np.einsum("al,am,limj->aij", b, b, sig_psi)
            sd = self.noise_sd if self.noise_sd is not None else ex.get("sigma", spec.noise_sd)
            self.feature_norm = float(np.sqrt(dim))
        else:
            require_contexts(spec, type(self).__name__)
            p = 1 + CONTEXT_ONE_HOTS.shape[1]
            mu0 = np.zeros((k, p))
            mu0[:, 0] = self.intercept_mean
            prec = np.full(p, self.prior_precision)
            prec[0] = self.intercept_precision
            cov0 = np.broadcast_to(np.diag(1.0 / prec), (k, p, p))
            sd = self.noise_sd if self.noise_sd is not None else spec.noise_sd
            self.feature_norm = float(np.sqrt(3.0))
        if sd is None:
            raise ValueError(f"{type(self).__name__} needs the noise sd: the env publishes none, "
                             "pass noise_sd=")
        self.sigma = max(float(sd), 1e-6)
        self.p = mu0.shape[1]
        prec0 = np.linalg.inv(cov0)
        self.prec0 = prec0
        r = self.replicates
        self.B = np.broadcast_to(prec0, (r, k, self.p, self.p)).copy()
        self.S = np.broadcast_to(np.einsum("kij,kj->ki", prec0, mu0), (r, k, self.p)).copy()
        self.mu = np.broadcast_to(mu0, (r, k, self.p)).copy()
        cov0 = 0.5 * (cov0 + np.swapaxes(cov0, -1, -2))
        self.cov = np.broadcast_to(cov0, (r, k, self.p, self.p)).copy()
        self.chol = np.broadcast_to(np.linalg.cholesky(cov0), (r, k, self.p, self.p)).copy()

    def features(self, obs: np.ndarray) -> np.ndarray:
        """Per-action features ``(R, K, p)`` of observations."""
        if self.mixed:
            return np.asarray(obs, dtype=np.float64).reshape(self.replicates, self.n_actions,
                                                             self.p)
        ctx = CONTEXT_ONE_HOTS[gambit_contexts(obs)]
        x = np.concatenate([np.ones((len(ctx), 1)), ctx], axis=1)
        return np.broadcast_to(x[:, None, :], (len(ctx), self.n_actions, self.p))

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        r = np.arange(self.replicates)
        x = self.features(obs)[r, actions]  # (R, p)
        w = 1.0 / self.sigma ** 2
        self.B[r, actions] += w * x[:, :, None] * x[:, None, :]
        self.S[r, actions] += w * rewards[:, None] * x
        cov = np.linalg.inv(self.B[r, actions])
        cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
        self.cov[r, actions] = cov
        self.chol[r, actions] = np.linalg.cholesky(cov)
        self.mu[r, actions] = np.einsum("rij,rj->ri", cov, self.S[r, actions])


@dataclass(eq=False)
class LinTS(_DisjointLinear):
    """Linear Thompson sampling, one model per action (see the module docstring).

    Args:
        noise_sd: known noise sd (default: the env's).
        intercept_mean: GAMBIT envs: prior mean of each prompt's intercept.
        intercept_precision: GAMBIT envs: its prior precision.
        prior_precision: GAMBIT envs: prior precision of the context coefficients.
    """

    def _draw_scores(self, x: np.ndarray, counter: int, stream: int,
                     n_samples: int | None) -> np.ndarray:
        if n_samples is None:
            z = self.streams.normal(counter, stream, (self.n_actions, self.p))
            theta = self.mu + np.einsum("rkij,rkj->rki", self.chol, z)
            return np.einsum("rki,rki->rk", x, theta)
        z = self.streams.normal(counter, stream, (n_samples, self.n_actions, self.p))
        theta = self.mu[:, None] + np.einsum("rkij,rskj->rski", self.chol, z)
        return np.einsum("rki,rski->rsk", x, theta)

    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        return self._draw_scores(self.features(obs), counter, STREAM_ACT, None).argmax(axis=-1)

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        """The arms' scores are independent normals: exact for two arms, else Monte Carlo."""
        x = self.features(obs)
        mean = np.einsum("rki,rki->rk", x, self.mu)
        sd = np.sqrt(np.einsum("rki,rkij,rkj->rk", x, self.cov, x))
        if self.n_actions == 2:  # independent arms: the factor is diagonal
            factor = np.zeros((self.replicates, 2, 2))
            factor[:, 0, 0], factor[:, 1, 1] = sd[:, 0], sd[:, 1]
            return two_arm_probabilities(mean, factor, None, None)

        def noise(gen: np.random.Generator, rows: np.ndarray, n: int) -> tuple[np.ndarray]:
            return (gen.standard_normal((len(rows), n, self.n_actions)),)

        def scores(rows: np.ndarray, stacked: tuple[np.ndarray]) -> np.ndarray:
            return mean[rows, None] + sd[rows, None] * stacked[0]

        return self._sampled(noise, scores, n_samples)


@dataclass(eq=False)
class LinUCB(_DisjointLinear):
    """Linear UCB, one model per action: ``xᵀμ_a + α·sqrt(xᵀΣ_a x)`` (posterior mean and sd).

    Args:
        alpha: width in posterior sds, or ``"theory"``: the meTS authors' constant width
            ``(√λ·√p + σ·sqrt(p·log((1 + nL²/λ)/δ)))/σ`` with ``λ = max_a tr(Σ_{0,a}⁻¹)/p``,
            ``n`` the horizon, ``δ = 1/n`` and ``L`` the largest feature norm.
        noise_sd, intercept_mean, intercept_precision, prior_precision: as in :class:`LinTS`.
    """

    alpha: float | str = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.alpha, str):
            if self.alpha != "theory":
                raise ValueError(f"alpha must be a number >= 0 or 'theory', got {self.alpha!r}")
        else:
            check_positive("alpha", self.alpha, allow_zero=True)

    def _setup(self, spec: EnvDescription) -> None:
        super()._setup(spec)
        if self.alpha == "theory":
            n = float(spec.horizon or 1000)
            lam = float(np.max(np.trace(self.prec0, axis1=-2, axis2=-1)) / self.p)
            lam_sigma = lam * self.sigma ** 2  # ridge λ in units where the Gram is Σ x xᵀ
            beta = np.sqrt(lam_sigma) * np.sqrt(self.p) + self.sigma * np.sqrt(
                self.p * np.log((1.0 + n * self.feature_norm ** 2 / lam_sigma) * n))
            self.width = float(beta / self.sigma)
        else:
            self.width = float(self.alpha)

    def _scores(self, obs: np.ndarray) -> np.ndarray:
        x = self.features(obs)
        mean = np.einsum("rki,rki->rk", x, self.mu)
        var = np.einsum("rki,rkij,rkj->rk", x, self.cov, x)
        return mean + self.width * np.sqrt(np.maximum(var, 0.0))

    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        u = self.streams.uniform(counter, STREAM_TIE)
        return argmax_random_ties(self._scores(obs), u)

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        return tie_probabilities(self._scores(obs))


@dataclass(eq=False)
class _Counts(BatchedAgent):
    """Per-arm reward counts and means (Welford), shared by UCB1 and ε-greedy."""

    def _setup(self, spec: EnvDescription) -> None:
        self.count = np.zeros((self.replicates, self.n_actions))
        self.mean = np.zeros((self.replicates, self.n_actions))

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        r = np.arange(self.replicates)
        self.count[r, actions] += 1.0
        self.mean[r, actions] += (rewards - self.mean[r, actions]) / self.count[r, actions]


@dataclass(eq=False)
class UCB1(_Counts):
    """UCB1 with a sub-Gaussian width: ``mean_a + scale·sqrt(2 ln t / n_a)``; unplayed arms first.

    Args:
        scale: reward scale (sub-Gaussian sd); None uses the env's noise sd (or 1 if it has
            none). Ties are broken uniformly at random.
    """

    scale: float | None = None
    supported_envs = (*GAMBIT_ENVS, "MixedEffectLinear-v0")

    def __post_init__(self) -> None:
        if self.scale is not None:
            check_positive("scale", self.scale)

    def _setup(self, spec: EnvDescription) -> None:
        super()._setup(spec)
        self.width_scale = float(self.scale if self.scale is not None else
                                 (spec.noise_sd if spec.noise_sd else 1.0))

    def _scores(self) -> np.ndarray:
        t = np.maximum(self.count.sum(axis=1, keepdims=True), 1.0)  # rewards seen so far
        with np.errstate(divide="ignore", invalid="ignore"):
            bonus = self.width_scale * np.sqrt(2.0 * np.log(t) / self.count)
        return np.where(self.count > 0, self.mean + bonus, np.inf)

    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        return argmax_random_ties(self._scores(), self.streams.uniform(counter, STREAM_TIE))

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        return tie_probabilities(self._scores())


@dataclass(eq=False)
class EpsilonGreedy(_Counts):
    """ε-greedy on empirical means (unplayed arms count as best; ties broken at random).

    Args:
        epsilon: exploration probability, in [0, 1].
    """

    epsilon: float = 0.1
    supported_envs = (*GAMBIT_ENVS, "MixedEffectLinear-v0")

    def __post_init__(self) -> None:
        if not (isinstance(self.epsilon, (int, float)) and 0.0 <= self.epsilon <= 1.0):
            raise ValueError(f"epsilon must be a number in [0, 1], got {self.epsilon!r}")

    def _greedy_scores(self) -> np.ndarray:
        return np.where(self.count > 0, self.mean, np.inf)

    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        u = self.streams.uniform(counter, STREAM_ACT, (3,))
        greedy = argmax_random_ties(self._greedy_scores(), u[:, 1])
        explore = np.minimum((u[:, 2] * self.n_actions).astype(np.int64), self.n_actions - 1)
        return np.where(u[:, 0] < self.epsilon, explore, greedy)

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        return self.epsilon / self.n_actions + (1.0 - self.epsilon) * tie_probabilities(
            self._greedy_scores())


@dataclass(eq=False)
class RandomAgent(BatchedAgent):
    """Uniformly random actions (the leaderboard's 0)."""

    supported_envs = (*GAMBIT_ENVS, "MixedEffectLinear-v0")

    def _setup(self, spec: EnvDescription) -> None:
        pass

    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        return self.streams.integers(counter, STREAM_ACT, self.n_actions)

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        pass

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        return np.full((self.replicates, self.n_actions), 1.0 / self.n_actions)


@dataclass(eq=False)
class Oracle(BatchedAgent):
    """Plays the action with the highest expected reward in each context (regret 0).

    Reads the env's oracle table ``describe().extra["expected_rewards"]`` ``(n_contexts, K)``;
    ties are broken uniformly at random. A reference, not a contender: it declares
    ``reads_oracle = True``, without which the harness removes that table from the description.
    """

    reads_oracle: ClassVar[bool] = True
    supported_envs = GAMBIT_ENVS

    def _setup(self, spec: EnvDescription) -> None:
        table = spec.extra.get("expected_rewards")
        if table is None:
            raise ValueError("Oracle needs describe().extra['expected_rewards'] (n_contexts, K), "
                             "which this env does not publish (where the oracle moves with the "
                             "user's state, as under habituation, drift or a change point, "
                             "there is no fixed table: info['regret'] is already against the "
                             "env's one-step greedy oracle)")
        self.table = np.asarray(table, dtype=np.float64)
        # a constrained env (unsafe_budget, gambit_gym.envs.safety): its oracle chooses among
        # the actions within the budget
        feasible = spec.extra.get("oracle_feasible")
        if feasible is not None:
            self.table = np.where(np.asarray(feasible, dtype=bool), self.table, -np.inf)

    def _scores(self, obs: np.ndarray) -> np.ndarray:
        return self.table[gambit_contexts(obs)]

    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        return argmax_random_ties(self._scores(obs), self.streams.uniform(counter, STREAM_TIE))

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        pass

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        return tie_probabilities(self._scores(obs))
