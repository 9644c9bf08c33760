"""The one base of batched agents: the agent protocol on top of a batched implementation.

Every built-in bandit agent (the GAMBITTS family, the classic bandits, the references and the
mixed-effect meTS family) subclasses :class:`BatchedAgent`: its state has a leading replicate
axis R and it implements ``_setup(spec)``, ``_act(obs, counter)``, ``_update(obs, actions,
rewards, info)`` and ``_probabilities(obs, counter, n_samples)`` on batches. The
single-replicate protocol (``reset / act / update / action_probabilities``) is the batched form
with R = 1, and every random draw comes from the counter-based streams
(:class:`~gambit_gym.core.streams.CounterStreams`, one key per replicate), so R single agents
seeded ``seed + r`` and one batch of R seeded ``seed`` take the same decisions by construction.

It lives in the core, beside the protocol it implements, so that the runner (bench) recognises a
batched agent by its class (``isinstance``), not by probing for methods.
``gambit_gym.agents._batched`` re-exports everything here.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np

from gambit_gym._validate import check_index, check_index_array, check_number, check_positive_int
from gambit_gym.core.description import EnvDescription
from gambit_gym.core.propensity_sampling import (
    PROPENSITY_PILOT,
    PROPENSITY_RSE,
    propensity_generator,
    sampled_probabilities,
)
from gambit_gym.core.streams import CounterStreams, replicate_keys

__all__ = ["PROPENSITY_PILOT", "PROPENSITY_RSE", "BatchedAgent", "batch_info",
           "check_positive", "propensity_generator", "sampled_probabilities"]

class BatchedAgent(abc.ABC):
    """Base class: the agent protocol on top of a batched implementation.

    Subclasses are dataclasses of their hyperparameters and implement :meth:`_setup`,
    :meth:`_act`, :meth:`_update` and :meth:`_probabilities`.

    Attributes:
        supported_envs: env ids this agent runs on; the contract tests use the first one
            (``GambitIHS-v0`` where it is empty).
    """

    supported_envs: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------ protocol
    def reset(self, spec: EnvDescription, seed: int | None = None) -> None:
        """Forget everything and prepare for ``spec`` (one replicate, seeded ``seed``)."""
        self.reset_batch(spec, seed, 1)

    def reset_batch(self, spec: EnvDescription, seed: int | None, replicates: int) -> None:
        """Prepare ``replicates`` independent copies; copy ``r`` behaves as one seeded ``seed+r``.

        Args:
            spec: the env description (the same for every replicate).
            seed: base seed, or None for fresh entropy.
            replicates: R.
        """
        if not isinstance(getattr(spec, "n_actions", None), (int, np.integer)):
            raise ValueError(f"{type(self).__name__}.reset needs the env's description "
                             f"(env.unwrapped.describe()), got {type(spec).__name__}")
        self.spec = spec
        self.replicates = check_positive_int("replicates", replicates)
        self.streams = CounterStreams(replicate_keys(seed, self.replicates))
        self.n_actions = int(spec.n_actions)
        self.t = 0
        self._prop_generator: np.random.Generator | None = None
        self._chosen_at: tuple[int, np.ndarray] | None = None
        self._setup(spec)

    def act(self, obs: Any) -> int:
        """Choose an action for one observation."""
        self._check_reset()
        return int(self.act_batch(np.asarray(obs)[None])[0])

    def update(self, obs: Any, action: int, reward: float, info: dict) -> None:
        """Learn from one step (``info`` is the env's step info)."""
        self._check_reset()
        a = check_index("action", action, self.n_actions)
        r = check_number("reward", reward)
        self.update_batch(np.asarray(obs)[None], np.array([a]), np.array([r]), batch_info(info))

    def action_probabilities(self, obs: Any, n_samples: int = 1000,
                             target_rse: float | None = PROPENSITY_RSE) -> np.ndarray:
        """``(K,)`` probabilities that :meth:`act` picks each action now.

        Args:
            obs: the observation.
            n_samples: the most Monte Carlo draws (agents whose propensities are sampled).
            target_rse: stop drawing once the probability of the action :meth:`act` is about
                to take has a relative standard error below this; None: ``n_samples`` draws.
        """
        self._check_reset()
        return self.action_probabilities_batch(np.asarray(obs)[None], n_samples, target_rse)[0]

    # ------------------------------------------------------------------ batched form
    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        """Actions ``(R,)`` int64 for observations ``(R, ...)``."""
        self._check_reset()
        obs = self._check_obs(obs)
        kept = getattr(self, "_chosen_at", None)
        if kept is not None and kept[0] == self.t and (kept[1] is obs or np.array_equal(
                kept[1], obs)):
            actions = self._chosen  # computed for the propensities: the same function
        else:
            actions = np.asarray(self._act(obs, self.t), dtype=np.int64)
        self._chosen_at = None
        self.t += 1
        return actions

    def update_batch(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                     info: dict[str, Any]) -> None:
        """Learn from one step of every replicate.

        Args:
            obs: observations the actions were taken in, ``(R, ...)``.
            actions: ``(R,)`` ints.
            rewards: ``(R,)`` floats.
            info: the vector env's info (a dict of arrays with leading axis R).
        """
        self._check_reset()
        obs = self._check_obs(obs)
        actions = check_index_array("actions", actions, self.n_actions, (self.replicates,))
        rewards = _check_rewards(rewards, self.replicates)
        self._chosen_at = None  # the state changes: a kept next action would be stale
        self._update(obs, actions, rewards, info)

    def action_probabilities_batch(self, obs: np.ndarray, n_samples: int = 1000,
                                   target_rse: float | None = PROPENSITY_RSE) -> np.ndarray:
        """``(R, K)`` propensities of the next :meth:`act_batch` call (Monte Carlo or exact).

        Sampled propensities draw from their own generators, so computing them never changes
        the decisions. They are made precise where it matters: the action the agent is about
        to take (computed here, as :meth:`act_batch` will, and kept for it) gets a relative
        standard error of at most ``target_rse`` where ``n_samples`` draws allow. Afterwards
        :attr:`propensity_se` ``(R, K)`` holds each probability's standard error (0 where
        exact) and :attr:`propensity_draws` ``(R,)`` the draws made (0 where exact).

        Args:
            obs: observations ``(R, ...)``.
            n_samples: the most Monte Carlo draws per replicate.
            target_rse: the target relative standard error of the chosen action's
                probability; None: ``n_samples`` draws.
        """
        self._check_reset()
        n_samples = check_positive_int("n_samples", n_samples)
        if target_rse is not None:
            check_positive("target_rse", target_rse)
        obs = self._check_obs(obs)
        self._target_rse = target_rse
        self.propensity_se = np.zeros((self.replicates, self.n_actions))
        self.propensity_draws = np.zeros(self.replicates, dtype=np.int64)
        self._chosen: np.ndarray | None = None
        self._obs_for_chosen = obs.copy()
        return self._probabilities(obs, self.t, n_samples)

    def _next_actions(self) -> np.ndarray:
        """The actions :meth:`act_batch` takes next (computed once, kept for it)."""
        if self._chosen is None:
            self._chosen = np.asarray(self._act(self._obs_for_chosen, self.t), dtype=np.int64)
            self._chosen_at = (self.t, self._obs_for_chosen)
        return self._chosen

    def _propensity_generator(self) -> np.random.Generator:
        """The batch's propensity generator (:func:`propensity_generator`), made on first use."""
        if getattr(self, "_prop_generator", None) is None:
            self._prop_generator = propensity_generator(self.streams.keys)
        return self._prop_generator

    def _sampled(self, noise: Any, scores: Any, n_samples: int,
                 conditional_dof: np.ndarray | None = None, accumulate: Any = None) -> np.ndarray:
        """Monte Carlo propensities (:func:`sampled_probabilities`); records their SE."""
        probs, se, drawn = sampled_probabilities(noise, scores, self._propensity_generator(),
                                                 self.replicates, self.n_actions, n_samples,
                                                 self._next_actions(), self._target_rse,
                                                 conditional_dof=conditional_dof,
                                                 accumulate=accumulate)
        self.propensity_se, self.propensity_draws = se, drawn
        return probs

    def _quadrature(self, loc: np.ndarray, tscale: np.ndarray, dof: np.ndarray,
                    kernel: Any = None) -> np.ndarray:
        """Propensities of independent Student-t arms by quadrature (no draws).

        Records the error estimates as :attr:`propensity_se` and the nodes evaluated per
        replicate as :attr:`propensity_draws`. See
        :func:`gambit_gym.core.propensity_quadrature.independent_t_probabilities`.
        """
        from gambit_gym.core.propensity_quadrature import independent_t_probabilities

        probs, err, nodes = independent_t_probabilities(loc, tscale, dof, self._next_actions(),
                                                        self._target_rse, kernel)
        self.propensity_se, self.propensity_draws = err, nodes
        return probs

    # ------------------------------------------------------------------ helpers
    def _check_reset(self) -> None:
        if not hasattr(self, "streams"):
            raise RuntimeError(f"{type(self).__name__}: call reset(spec, seed) first")

    def _check_obs(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs)
        if obs.ndim == 0 or obs.shape[0] != self.replicates:
            raise ValueError(f"expected a batch of {self.replicates} observations, got shape "
                             f"{obs.shape}")
        space = getattr(self.spec, "observation_space", None)
        shape = getattr(space, "shape", None)
        if shape is not None and (obs.shape[1:] != tuple(shape) or obs.dtype.kind not in "iuf"):
            raise ValueError(f"expected observations of shape {tuple(shape)} (numbers, from the "
                             f"env's observation_space), got {obs.shape[1:]} of dtype "
                             f"{obs.dtype}")
        return obs

    @abc.abstractmethod
    def _setup(self, spec: EnvDescription) -> None:
        """Implemented by each agent (see the module doc)."""

    @abc.abstractmethod
    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        """Implemented by each agent (see the module doc)."""

    @abc.abstractmethod
    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        """Implemented by each agent (see the module doc)."""

    @abc.abstractmethod
    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        """Implemented by each agent (see the module doc)."""


def batch_info(info: dict[str, Any]) -> dict[str, Any]:
    """A single env's step info as a batch of one (the keys agents read)."""
    out: dict[str, Any] = {}
    for key in ("embedding", "regret", "expected_reward", "optimal_action", "reward_observed",
                "reward_step", "unsafe", "redraws", "delivered", "unsafe_delivered"):
        if key in info:
            out[key] = np.asarray(info[key])[None]
    return out


def _check_rewards(rewards: Any, replicates: int) -> np.ndarray:
    """``(R,)`` finite float64 rewards, or a ValueError saying what is wrong."""
    try:
        arr = np.asarray(rewards, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"rewards must be {replicates} numbers, got {rewards!r}") from None
    if arr.size != replicates:
        raise ValueError(f"rewards must have shape ({replicates},) (one per replicate), got "
                         f"shape {arr.shape}")
    arr = arr.reshape(replicates)
    if not np.isfinite(arr).all():
        raise ValueError(f"rewards must be finite, got {arr[~np.isfinite(arr)][:5].tolist()}")
    return arr


def check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    """Raise a ValueError unless ``value`` is a finite number > 0 (or >= 0)."""
    check_number(name, value, minimum=0.0, strict=not allow_zero)
