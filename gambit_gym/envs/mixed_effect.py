"""Mixed-effect contextual bandits: the synthetic environments of the meTS paper.

Two registered ids share one class hierarchy and one pure reward function
(:func:`expected_rewards`):

- ``MixedEffectLinear-v0``: Gaussian rewards ``N(x_iᵀθ_i, σ²)``, loadings ``b_il ~ U(-1, 1)``.
- ``MixedEffectLogistic-v0``: Bernoulli rewards ``Bernoulli(sigmoid(x_iᵀθ_i))``,
  loadings ``b_il ~ U(-1, 2)``.

The structure (loadings, effect prior, action prior, noise) is published to agents through
:meth:`MixedEffectEnv.describe`; the drawn parameters ``ψ`` and ``θ`` stay hidden.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gambit_gym._validate import (
    check_index,
    check_number,
    check_positive_int,
    check_seed,
    unexpected_kwargs_error,
)
from gambit_gym.core.description import EnvDescription
from gambit_gym.envs.episode import horizon_with_spec_limit, requested_max_episode_steps
from gambit_gym.envs.render import (
    RENDER_MODES,
    arm_values_image,
    arm_values_text,
    check_render_mode,
)

LINKS: tuple[str, ...] = ("linear", "logistic")
BERNOULLI_SIGMA: float = 0.5
"""Noise sd published to linear agents on the logistic env (the largest Bernoulli sd)."""


def _as_tuple(value: Any) -> float | tuple:
    """Convert to a float or a (nested) tuple of floats, hashable in a frozen dataclass."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return float(arr)
    if arr.ndim == 1:
        return tuple(float(v) for v in arr)
    if arr.ndim == 2:
        return tuple(tuple(float(v) for v in row) for row in arr)
    raise ValueError(f"expected a float, a vector or a matrix, got shape {arr.shape}")


@dataclass(frozen=True)
class MixedEffectConfig:
    """Configuration of a mixed-effect bandit; validated on construction.

    Attributes:
        n_actions: number of actions ``K``.
        n_effects: number of latent effects ``L``.
        dim: context and parameter dimension ``d``.
        sigma: reward noise sd (linear env only; None means 1.0 there).
        b_low: lower end of the uniform distribution of the loadings ``b_il``.
        b_high: upper end of that distribution.
        mu_psi: effect prior mean: a float (every entry), or an ``(L, d)`` / ``(L*d,)`` array.
        sigma_psi: effect prior covariance: a float ``s`` (``s·I``) or an ``(L*d, L*d)`` matrix.
        sigma_0: action prior covariance around ``Σ_l b_il ψ_l``: a float ``s`` (``s·I``) or a
            ``(d, d)`` matrix.
        n_contexts: size of the pool of contexts drawn from ``U[-1, 1]^d`` at reset.
        horizon: rounds per episode (the env truncates itself).
        link: ``"linear"`` (Gaussian rewards) or ``"logistic"`` (Bernoulli rewards); fixed by the
            env id.
    """

    n_actions: int = 100
    n_effects: int = 3
    dim: int = 2
    sigma: float | None = None
    b_low: float = -1.0
    b_high: float = 1.0
    mu_psi: Any = 0.0
    sigma_psi: Any = 3.0
    sigma_0: Any = 1.0
    n_contexts: int = 100
    horizon: int = 5000
    link: str = "linear"

    def __post_init__(self) -> None:
        for name in ("n_actions", "n_effects", "dim", "n_contexts", "horizon"):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name)))
        if self.n_actions < 2:
            raise ValueError(f"n_actions must be at least 2, got {self.n_actions}")
        if self.link not in LINKS:
            raise ValueError(f"link must be one of {LINKS}, got {self.link!r}")
        if self.link == "logistic" and self.sigma is not None:
            raise ValueError("sigma applies to the linear env only; Bernoulli rewards have none")
        check_number("sigma", self.sigma, minimum=0.0, strict=True, allow_none=True)
        check_number("b_low", self.b_low)
        check_number("b_high", self.b_high)
        if not self.b_low < self.b_high:
            raise ValueError(f"need finite b_low < b_high, got {self.b_low}, {self.b_high}")
        for name in ("mu_psi", "sigma_psi", "sigma_0"):
            try:
                object.__setattr__(self, name, _as_tuple(getattr(self, name)))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must be a float or an array of floats: {exc}") from None
        p = self.n_effects * self.dim
        mu = np.asarray(self.mu_psi, dtype=float)
        if mu.ndim > 0 and mu.size != p:
            raise ValueError(f"mu_psi must be a float or have L*d = {p} entries, got {mu.size}")
        self._check_cov("sigma_psi", p)
        self._check_cov("sigma_0", self.dim)

    def _check_cov(self, name: str, size: int) -> None:
        cov = np.asarray(getattr(self, name), dtype=float)
        if cov.ndim == 0:
            if not (np.isfinite(cov) and cov > 0):
                raise ValueError(f"{name} must be a positive float, got {float(cov)}")
            return
        if cov.shape != (size, size):
            raise ValueError(
                f"{name} must be a float or a ({size}, {size}) matrix, got shape {cov.shape}"
            )
        if not np.allclose(cov, cov.T) or np.linalg.eigvalsh(cov).min() <= 0:
            raise ValueError(f"{name} must be symmetric positive definite")

    @classmethod
    def from_kwargs(cls, owner: str = "MixedEffectEnv.__init__", /,
                    **kwargs: Any) -> MixedEffectConfig:
        """Build a config, rejecting unknown keyword arguments with the list of valid ones.

        Args:
            owner: the callable named in the error, as Python would name it.
            **kwargs: the config's fields.

        Raises:
            TypeError: an unknown keyword, in Python's wording ("got an unexpected keyword
                argument 'x'"), listing the valid ones.
        """
        valid = [f.name for f in dataclasses.fields(cls) if f.name != "link"]
        unknown = [k for k in kwargs if k not in valid and k != "link"]
        if unknown:
            raise unexpected_kwargs_error(owner, unknown, valid + ["render_mode"])
        return cls(**kwargs)

    @property
    def noise_sd(self) -> float:
        """The reward noise sd (linear), or :data:`BERNOULLI_SIGMA` (logistic)."""
        if self.link == "logistic":
            return BERNOULLI_SIGMA
        return 1.0 if self.sigma is None else float(self.sigma)

    def prior_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mu_psi (L*d,), sigma_psi (L*d, L*d), sigma_0 (d, d))`` as float64 arrays."""
        p = self.n_effects * self.dim
        mu = np.broadcast_to(np.asarray(self.mu_psi, dtype=float).ravel(), (p,)).copy()
        cov_psi = np.asarray(self.sigma_psi, dtype=float)
        cov_psi = cov_psi * np.eye(p) if cov_psi.ndim == 0 else cov_psi.copy()
        cov_0 = np.asarray(self.sigma_0, dtype=float)
        cov_0 = cov_0 * np.eye(self.dim) if cov_0.ndim == 0 else cov_0.copy()
        return mu, cov_psi, cov_0


def expected_rewards(contexts: np.ndarray, theta: np.ndarray, link: str) -> np.ndarray:
    """Mean reward of every action: ``x_iᵀθ_i`` or ``sigmoid(x_iᵀθ_i)``.

    Args:
        contexts: ``(..., K, d)`` contexts, one per action.
        theta: ``(..., K, d)`` action parameters.
        link: ``"linear"`` or ``"logistic"``.

    Returns:
        ``(..., K)`` expected rewards.
    """
    z = np.einsum("...kd,...kd->...k", contexts, theta)
    return z if link == "linear" else 1.0 / (1.0 + np.exp(-z))


def validate_action(action: Any, n_actions: int) -> int:
    """Return ``action`` as an int in ``0..n_actions-1`` or raise a ValueError saying why.

    The same check as every other env (:func:`gambit_gym._validate.check_index`).
    """
    return check_index("action", action, n_actions)


class MixedEffectEnv(gym.Env):
    """A K-armed contextual bandit whose arm parameters share a few latent effects.

    ## Description

    The mixed-effect model of meTS (Aouali, Kveton and Katariya, AISTATS 2023). ``L`` latent
    effects ``ψ = (ψ_1, …, ψ_L) ~ N(μ_ψ, Σ_ψ)`` (each in ``R^d``) drive ``K`` actions:
    ``θ_i | ψ ~ N(Σ_l b_il ψ_l, Σ_0)``. At every reset a new problem is drawn from the prior:
    loadings ``b_il ~ U(b_low, b_high)``, ``ψ``, the ``θ_i``, and a pool of ``n_contexts``
    contexts from ``U[-1, 1]^d``. Each round every action gets its own context, drawn uniformly
    from the pool.

    ## Action Space

    ``Discrete(K)``: the action to play. Anything other than an integer in ``0..K-1``
    (a float, a NaN, a bool, an array) raises a ValueError.

    ## Observation Space

    ``Box(-1, 1, (K, d), float32)``: row ``i`` is the context ``x_i`` of action ``i`` this round.

    ## Rewards

    Linear: ``N(x_Aᵀθ_A, σ²)``. Logistic: ``Bernoulli(sigmoid(x_Aᵀθ_A))``. The step ``info`` holds
    ``expected_reward`` (of the action played), ``optimal_action``, ``optimal_expected_reward``
    and ``regret`` (their difference, ≥ 0): pseudo-regret from the true parameters.

    ## Episode End

    Never terminated; truncated after ``horizon`` rounds (``gym.make(id, max_episode_steps=N)``
    with no ``horizon`` sets it to N; with a smaller ``horizon``, ``reset`` raises).

    ## Arguments

    ``n_actions`` (K, 100), ``n_effects`` (L, 3), ``dim`` (d, 2), ``sigma`` (linear only, 1.0),
    ``b_low`` / ``b_high`` (loading range), ``mu_psi`` (0), ``sigma_psi`` (3·I), ``sigma_0``
    (I), ``n_contexts`` (100), ``horizon`` (5000), ``render_mode`` (``"ansi"`` or
    ``"rgb_array"``). Unknown arguments raise Python's ``TypeError`` ("got an unexpected keyword
    argument 'x'"), listing the valid ones. ``env.unwrapped.describe()`` gives agents the structure
    (``extra``: ``b``, ``mu_psi``, ``sigma_psi``, ``sigma_0``, ``sigma``, ``link``).

    >>> import gymnasium as gym, gambit_gym
    >>> env = gym.make("MixedEffectLinear-v0", n_actions=10, horizon=3)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape
    (10, 2)
    >>> best = int(env.unwrapped.expected_rewards().argmax())
    >>> _, reward, terminated, truncated, info = env.step(best)
    >>> info["regret"]
    0.0

    ## Version History

    * v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": list(RENDER_MODES), "render_fps": 4}
    _LINK: ClassVar[str] = "linear"
    _DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        """Build the env; see the class docstring for the arguments."""
        owner = f"{type(self).__name__}.__init__"
        check_render_mode(type(self).__name__, render_mode, self.metadata["render_modes"])
        if "link" in kwargs:
            raise TypeError("link is fixed by the env class; use the other env id instead")
        self.config = MixedEffectConfig.from_kwargs(owner, **{**self._DEFAULTS,
                                                              "link": self._LINK, **kwargs})
        cfg = self.config
        self._horizon_given = "horizon" in kwargs
        limit = requested_max_episode_steps()  # gym.make(..., max_episode_steps=N)
        if limit is not None:
            self.apply_episode_limit(limit)
            cfg = self.config
        self.render_mode = render_mode
        self._last: tuple[Any, ...] | None = None  # (means, action, reward, regret) for render
        self.action_space = spaces.Discrete(cfg.n_actions)
        self.observation_space = spaces.Box(-1.0, 1.0, (cfg.n_actions, cfg.dim), np.float32)
        self._mu_psi, self._sigma_psi, self._sigma_0 = cfg.prior_arrays()
        self._b: np.ndarray | None = None
        self._psi: np.ndarray | None = None
        self._theta: np.ndarray | None = None
        self._pool: np.ndarray | None = None
        self._contexts: np.ndarray | None = None
        self._t = 0

    # --- the problem ------------------------------------------------------------------------
    def _draw_problem(self) -> None:
        cfg, rng = self.config, self.np_random
        K, L, d = cfg.n_actions, cfg.n_effects, cfg.dim
        self._b = rng.uniform(cfg.b_low, cfg.b_high, size=(K, L))
        self._psi = rng.multivariate_normal(self._mu_psi, self._sigma_psi, method="cholesky")
        means = self._b @ self._psi.reshape(L, d)
        chol_0 = np.linalg.cholesky(self._sigma_0)
        self._theta = means + rng.standard_normal((K, d)) @ chol_0.T
        # float32-representable contexts, so agents see exactly what the rewards use
        pool = rng.uniform(-1.0, 1.0, size=(cfg.n_contexts, d))
        self._pool = pool.astype(np.float32).astype(np.float64)

    def _draw_contexts(self) -> np.ndarray:
        idx = self.np_random.integers(self.config.n_contexts, size=self.config.n_actions)
        self._contexts = self._pool[idx]
        return self._contexts.astype(np.float32)

    def expected_rewards(self) -> np.ndarray:
        """``(K,)`` mean rewards of every action for this round's contexts (the oracle)."""
        self._require_reset()
        return expected_rewards(self._contexts, self._theta, self.config.link)

    @property
    def theta(self) -> np.ndarray:
        """``(K, d)`` true action parameters of the current problem (for tests and oracles)."""
        self._require_reset()
        return self._theta.copy()

    def describe(self) -> EnvDescription:
        """Describe what an agent may know: spaces, horizon, the structure (never ψ or θ)."""
        self._require_reset()
        cfg = self.config
        return EnvDescription(
            n_actions=cfg.n_actions,
            action_space=self.action_space,
            observation_space=self.observation_space,
            context_names=tuple(f"x{j}" for j in range(cfg.dim)),
            n_contexts=0,
            noise_sd=cfg.noise_sd if cfg.link == "linear" else None,
            horizon=cfg.horizon,
            extra={
                "b": self._b.copy(),
                "mu_psi": self._mu_psi.copy(),
                "sigma_psi": self._sigma_psi.copy(),
                "sigma_0": self._sigma_0.copy(),
                "sigma": cfg.noise_sd,
                "link": cfg.link,
                "n_effects": cfg.n_effects,
                "dim": cfg.dim,
            },
        )

    def apply_episode_limit(self, max_episode_steps: int) -> None:
        """Take ``gym.make(..., max_episode_steps=N)`` into account (see ``envs.episode``)."""
        horizon = horizon_with_spec_limit(max_episode_steps, self.config.horizon,
                                          self._horizon_given)
        if horizon != self.config.horizon:
            self.config = dataclasses.replace(self.config, horizon=horizon)

    def _require_reset(self) -> None:
        if self._theta is None:
            raise RuntimeError("call reset() first: the problem is drawn at reset")

    # --- gymnasium API -----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw a new problem from the prior and the first round's contexts."""
        super().reset(seed=check_seed("seed", seed))
        self._draw_problem()
        self._t = 0
        self._last = None
        return self._draw_contexts(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Play ``action`` on this round's contexts; return the next round's contexts."""
        self._require_reset()
        if self._t >= self.config.horizon:
            raise RuntimeError("the episode is over (truncated at the horizon); call reset()")
        a = validate_action(action, self.config.n_actions)
        means = self.expected_rewards()
        best = int(np.argmax(means))
        if self.config.link == "linear":
            reward = float(means[a] + self.config.noise_sd * self.np_random.standard_normal())
        else:
            reward = float(self.np_random.random() < means[a])
        info = {
            "expected_reward": float(means[a]),
            "optimal_action": best,
            "optimal_expected_reward": float(means[best]),
            "regret": float(max(means[best] - means[a], 0.0)),
        }
        self._last = (means, a, reward, info["regret"])
        self._t += 1
        truncated = bool(self._t >= self.config.horizon)
        return self._draw_contexts(), reward, False, truncated, info

    def render(self) -> str | np.ndarray | None:
        """Draw the last round (see :mod:`gambit_gym.envs.render`).

        ``ansi``: the action played, its reward, the best action and the regret.
        ``rgb_array``: a ``(320, 480, 3)`` uint8 bar chart of every action's expected reward
        that round, the played one in blue and the best in green. None without a render mode.
        """
        if self.render_mode is None:
            return None
        means, action, reward, regret = self._last if self._last is not None else (
            None, None, None, None)
        if self.render_mode == "ansi":
            return arm_values_text(self._t, means, action, reward, regret)
        return arm_values_image(means, action, f"{type(self).__name__}, round {self._t}")


class MixedEffectLinearEnv(MixedEffectEnv):
    """``MixedEffectLinear-v0``: Gaussian rewards, loadings ``b_il ~ U(-1, 1)``.

    The manual follows (shared with ``MixedEffectLogistic-v0``).
    """

    _LINK = "linear"
    _DEFAULTS = {"b_low": -1.0, "b_high": 1.0}


class MixedEffectLogisticEnv(MixedEffectEnv):
    """``MixedEffectLogistic-v0``: Bernoulli rewards, loadings ``b_il ~ U(-1, 2)``.

    The manual follows (shared with ``MixedEffectLinear-v0``); linear agents read
    ``describe().extra["sigma"] = 0.5``, the largest sd of a Bernoulli reward.
    """

    _LINK = "logistic"
    _DEFAULTS = {"b_low": -1.0, "b_high": 2.0}


for _cls, _id in ((MixedEffectLinearEnv, "MixedEffectLinear-v0"),
                  (MixedEffectLogisticEnv, "MixedEffectLogistic-v0")):
    _cls.__doc__ = (_cls.__doc__ or "") + (MixedEffectEnv.__doc__ or "").replace(
        '"MixedEffectLinear-v0"', f'"{_id}"'
    )


__all__ = [
    "MixedEffectConfig",
    "MixedEffectEnv",
    "MixedEffectLinearEnv",
    "MixedEffectLogisticEnv",
    "expected_rewards",
    "validate_action",
]
