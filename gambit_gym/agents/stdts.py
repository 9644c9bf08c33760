"""Standard Thompson sampling: a Normal-Inverse-Gamma model per prompt (or per context and prompt).

The study's one-stage baseline (its ``OneStageThompsonSampling``): rewards of arm ``a`` (in
context ``c`` for the contextual version) are ``N(μ, σ²)`` with ``μ | σ² ~ N(m, σ²/ν)`` and
``σ² ~ IG(α, β)``. The posterior after ``N`` rewards with mean ``ȳ`` and sum of squared
deviations ``SS`` is ``α_N = α + N/2``, ``β_N = β + SS/2 + Nν(ȳ - m)²/(2(N + ν))``,
``m_N = (νm + Nȳ)/(ν + N)``, ``ν_N = ν + N``. ``ȳ`` and ``SS`` are kept with Welford's update, not
as ``Σy² - Nȳ²``, which cancels catastrophically at rewards near 80.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gambit_gym._validate import check_number
from gambit_gym.agents._batched import (
    GAMBIT_ENVS,
    STREAM_ACT,
    BatchedAgent,
    check_positive,
    gambit_contexts,
    require_contexts,
)
from gambit_gym.core.description import EnvDescription


@dataclass(eq=False)
class StdTS(BatchedAgent):
    """Thompson sampling with a Normal-Inverse-Gamma posterior per prompt.

    Args:
        m: prior mean of each arm's mean reward (study: 77).
        nu: prior pseudo-count of the mean (study: 5).
        alpha: Inverse-Gamma shape of the noise variance (study: 1).
        beta: Inverse-Gamma scale of the noise variance (study: 10).

    >>> import gymnasium as gym, gambit_gym
    >>> from gambit_gym.agents import make
    >>> env = gym.make("GambitIHS-v0")
    >>> agent = make("StdTS")
    >>> agent.reset(env.unwrapped.describe(), seed=0)
    >>> obs, _ = env.reset(seed=0)
    >>> a = agent.act(obs)
    >>> obs2, reward, *_, info = env.step(a)
    >>> agent.update(obs, a, reward, info)
    """

    supported_envs = GAMBIT_ENVS

    m: float = 77.0
    nu: float = 5.0
    alpha: float = 1.0
    beta: float = 10.0

    contextual = False

    def __post_init__(self) -> None:
        check_number("m", self.m)
        for name in ("nu", "alpha", "beta"):
            check_positive(name, getattr(self, name))

    def _setup(self, spec: EnvDescription) -> None:
        if self.contextual:
            require_contexts(spec, type(self).__name__)
        cells = spec.n_contexts if self.contextual else 1
        shape = (self.replicates, cells, self.n_actions)
        self.count = np.zeros(shape)
        self.mean = np.zeros(shape)
        self.ss = np.zeros(shape)  # sum of squared deviations from the mean (Welford)

    def _cells(self, obs: np.ndarray) -> np.ndarray:
        if self.contextual:
            return gambit_contexts(obs)
        return np.zeros(len(obs), dtype=np.int64)

    def posterior(self, cells: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(m_N, ν_N, α_N, β_N)``, each ``(R, K)``, of every arm in each replicate's cell."""
        r = np.arange(self.replicates)
        n, ybar, ss = self.count[r, cells], self.mean[r, cells], self.ss[r, cells]
        nu_n = self.nu + n
        m_n = (self.nu * self.m + n * ybar) / nu_n
        alpha_n = self.alpha + 0.5 * n
        beta_n = self.beta + 0.5 * ss + n * self.nu * (ybar - self.m) ** 2 / (2.0 * nu_n)
        return m_n, nu_n, alpha_n, beta_n

    def _draw_means(self, cells: np.ndarray, counter: int, stream: int,
                    n_samples: int | None) -> np.ndarray:
        m_n, nu_n, alpha_n, beta_n = self.posterior(cells)
        if n_samples is not None:
            m_n, nu_n, alpha_n, beta_n = (x[:, None, :] for x in (m_n, nu_n, alpha_n, beta_n))
            shape = (n_samples, self.n_actions)
            alpha_n = np.broadcast_to(alpha_n, (self.replicates, *shape))
        else:
            shape = (self.n_actions,)
        g, z = self.streams.gamma_and_normal(counter, stream, np.ascontiguousarray(alpha_n),
                                             stream + 4, shape)
        var = beta_n / g
        return m_n + np.sqrt(var / nu_n) * z

    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        return self._draw_means(self._cells(obs), counter, STREAM_ACT, None).argmax(axis=-1)

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        """By quadrature: the arms' marginal means are independent Student-t.

        ``m_N + √(β_N/(ν_N g))·z`` with ``g ~ Gamma(α_N)`` is ``m_N + √(β_N/(α_N ν_N))·t``
        with ``t ~ t_{2α_N}`` (the distribution of :meth:`_act`'s draw), so the chosen arm's
        probability is a one-dimensional integral
        (:func:`gambit_gym.core.propensity_quadrature.independent_t_probabilities`): no
        draws, no random numbers, ``n_samples`` unused.
        """
        m_n, nu_n, alpha_n, beta_n = self.posterior(self._cells(obs))
        dof = 2.0 * alpha_n
        t_scale = np.sqrt(beta_n / (alpha_n * nu_n))

        from gambit_gym.agents import _propensity_kernels as _kernels  # numba: imported late

        kernel = None
        if _kernels.available() and _kernels.supported(dof):
            kernel = _kernels.independent_t_quadrature
        return self._quadrature(m_n, t_scale, dof, kernel)

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        idx = (np.arange(self.replicates), self._cells(obs), actions)
        n = self.count[idx] + 1.0
        delta = rewards - self.mean[idx]
        mean = self.mean[idx] + delta / n
        self.ss[idx] += delta * (rewards - mean)
        self.mean[idx] = mean
        self.count[idx] = n


@dataclass(eq=False)
class StdTSContextual(StdTS):
    """:class:`StdTS` with an independent posterior per (context, prompt): 12·K cells.

    The study's "CB" configuration. Same arguments as :class:`StdTS`.
    """

    contextual = True
