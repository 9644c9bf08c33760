"""Agents for non-stationary users (``gambit_gym.envs.user_dynamics``; docs/user_dynamics.md).

Two ideas, each an agent that its unaware counterpart can be compared with:

- **Credit each reward to its own step, and only when it was observed.** With missing rewards
  an env reports 0.0 with ``info["reward_observed"] = False``; with delayed rewards the reward
  returned at step t belongs to step ``info["reward_step"]``. An agent that ignores both learns
  from zeros, and credits each reward to whatever it did last. :class:`ArrivalLog` remembers
  every step's (cell, action) and turns an update into the list of rewards that arrived, each
  with the step it belongs to. Without those info keys (stationary envs) it is the usual
  update: this step's reward, observed.
- **Forget.** Under drift or a change point, old rewards describe a user who is gone.
  :class:`DiscountedTS` is Gaussian Thompson sampling whose sufficient statistics decay by
  ``gamma`` every step (discounted TS with Gaussian priors: Qi, Wang and Zhu, 2023,
  arXiv:2305.10718), so its posterior tracks the recent past (effective memory
  ``1/(1 - gamma)`` steps).

:class:`StdTSObserved` and :class:`POGambitTSObserved` are the study's StdTS and poGAMBITTS
with the first idea only; :class:`DiscountedTS` has both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

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
from gambit_gym.agents.gambitts import POGambitTS
from gambit_gym.agents.stdts import StdTS
from gambit_gym.core.description import EnvDescription


class ArrivalLog:
    """Each replicate's (cell, action) at every step, to credit late and missing rewards.

    Step numbers count updates since the agent's reset, which is the env's step within the
    episode when the episode starts at the reset (as in the benchmark harness).
    """

    def __init__(self, replicates: int, payload_dim: int = 0) -> None:
        self.replicates = replicates
        self.cells = np.zeros((replicates, 64), dtype=np.int64)
        self.actions = np.zeros((replicates, 64), dtype=np.int64)
        self.payload = np.zeros((replicates, 64, payload_dim))
        self.step = 0

    def arrivals(self, cells: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                 info: dict[str, Any], payload: np.ndarray | None = None
                 ) -> tuple[np.ndarray, ...]:
        """Record this step; return the rewards that arrived with it.

        Args:
            cells: each replicate's cell of this step, ``(R,)``.
            actions: this step's actions, ``(R,)``.
            rewards: the rewards the env returned, ``(R,)``.
            info: the step info (batched: arrays with leading axis R).
            payload: what else to remember of this step, ``(R, payload_dim)`` (e.g. the
                embedding of the message), returned with the rewards that belong to it.

        Returns:
            ``(replicates, cells, actions, rewards, lags)`` of the observed rewards that
            arrived now, each credited to the (cell, action) of the step it belongs to;
            ``lags`` is how many steps late each came (0 without delay); with a payload, its
            rows of those steps as a sixth element.
        """
        t = self.step
        if t >= self.cells.shape[1]:
            grow = self.cells.shape[1]
            self.cells = np.pad(self.cells, ((0, 0), (0, grow)))
            self.actions = np.pad(self.actions, ((0, 0), (0, grow)))
            self.payload = np.pad(self.payload, ((0, 0), (0, grow), (0, 0)))
        self.cells[:, t], self.actions[:, t] = cells, actions
        if payload is not None:
            self.payload[:, t] = payload
        self.step += 1
        r = self.replicates
        observed = np.ones(r, dtype=bool) if info.get("reward_observed") is None else \
            np.asarray(info["reward_observed"], dtype=bool).reshape(r)
        step = np.full(r, t, dtype=np.int64) if info.get("reward_step") is None else \
            np.asarray(info["reward_step"], dtype=np.int64).reshape(r)
        if np.any(observed & (step > t)):
            raise ValueError(f"info['reward_step'] names a step after this one ({t}): the "
                             "agent must be reset when the episode starts")
        rows = np.flatnonzero(observed & (step >= 0))
        src = step[rows]
        out = (rows, self.cells[rows, src], self.actions[rows, src], rewards[rows], t - src)
        return out if payload is None else (*out, self.payload[rows, src])


@dataclass(eq=False)
class StdTSObserved(StdTS):
    """:class:`StdTS` that learns only from observed rewards, each credited to its own step.

    The same Normal-Inverse-Gamma posterior per prompt; an unobserved reward (0.0 with
    ``info["reward_observed"]`` False: missing, silenced, not yet arrived) is skipped, and a
    delayed one updates the prompt chosen at ``info["reward_step"]``. On envs without those
    keys it makes StdTS's decisions exactly. Same arguments as :class:`StdTS`.
    """

    supported_envs: ClassVar[tuple[str, ...]] = ("GambitIHS-Delayed-v0",
                                                 "GambitIHS-Missing-v0", *GAMBIT_ENVS)

    def _setup(self, spec: EnvDescription) -> None:
        super()._setup(spec)
        self.log = ArrivalLog(self.replicates)

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        rows, cells, acts, ys, _ = self.log.arrivals(self._cells(obs), actions, rewards, info)
        idx = (rows, cells, acts)
        n = self.count[idx] + 1.0
        delta = ys - self.mean[idx]
        mean = self.mean[idx] + delta / n
        self.ss[idx] += delta * (ys - mean)
        self.mean[idx] = mean
        self.count[idx] = n


@dataclass(eq=False)
class DiscountedTS(BatchedAgent):
    """Gaussian Thompson sampling with discounted statistics, for drifting users.

    Every step each replicate's discounted counts ``n`` and reward sums ``s`` are multiplied
    by ``gamma``, then the rewards that arrived are added (observed ones only, each to the
    prompt of its own step, see :class:`ArrivalLog`, weighted ``gamma^lag`` as if it had come
    on time). An arm's mean is drawn from its Gaussian posterior under the prior
    ``N(m, prior_sd²)``: precision ``1/prior_sd² + n/sigma²``, mean
    ``(m/prior_sd² + s/sigma²)/precision`` (Qi, Wang and Zhu, 2023). An arm left alone
    forgets its data and returns to the wide prior, so it is tried again.

    Args:
        gamma: discount per step, in (0, 1]; 1 is undiscounted Gaussian TS.
        m: prior mean of each arm's mean reward.
        prior_sd: prior sd of each arm's mean reward.
        sigma: reward sd assumed by the posterior; None: ``sqrt(noise_sd² + 1)`` from the env
            description (its noise plus a unit for the spread of the messages themselves).
        contextual: one posterior per (context, prompt) instead of per prompt.
    """

    supported_envs: ClassVar[tuple[str, ...]] = ("GambitIHS-Missing-v0",
                                                 "GambitIHS-ChangePoint-v0",
                                                 "GambitIHS-Drift-v0", *GAMBIT_ENVS)

    gamma: float = 0.99
    m: float = 77.0
    prior_sd: float = 10.0
    sigma: float | None = None
    contextual: bool = False

    def __post_init__(self) -> None:
        gamma = check_number("gamma", self.gamma, minimum=0.0, maximum=1.0, strict=True)
        self.gamma = gamma
        check_number("m", self.m)
        check_positive("prior_sd", self.prior_sd)
        if self.sigma is not None:
            check_positive("sigma", self.sigma)
        if not isinstance(self.contextual, bool):
            raise ValueError(f"contextual must be True or False, got {self.contextual!r}")

    def _setup(self, spec: EnvDescription) -> None:
        if self.contextual:
            require_contexts(spec, type(self).__name__)
        cells = spec.n_contexts if self.contextual else 1
        self.count = np.zeros((self.replicates, cells, self.n_actions))
        self.total = np.zeros((self.replicates, cells, self.n_actions))
        noise = float(spec.noise_sd or 0.0)
        self.sd = float(self.sigma if self.sigma is not None else np.sqrt(noise ** 2 + 1.0))
        self.log = ArrivalLog(self.replicates)

    def _cells(self, obs: np.ndarray) -> np.ndarray:
        if self.contextual:
            return gambit_contexts(obs)
        return np.zeros(len(obs), dtype=np.int64)

    def posterior(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and sd of every arm's mean in each replicate's cell, ``(R, K)``."""
        r = np.arange(self.replicates)
        n, s = self.count[r, cells], self.total[r, cells]
        precision = 1.0 / self.prior_sd ** 2 + n / self.sd ** 2
        return (self.m / self.prior_sd ** 2 + s / self.sd ** 2) / precision, \
            1.0 / np.sqrt(precision)

    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        mean, sd = self.posterior(self._cells(obs))
        z = self.streams.normal(counter, STREAM_ACT, (self.n_actions,))
        return (mean + sd * z).argmax(axis=-1)

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        mean, sd = self.posterior(self._cells(obs))

        def noise(gen: np.random.Generator, rows: np.ndarray, n: int) -> tuple[np.ndarray]:
            return (gen.standard_normal((len(rows), n, self.n_actions)),)

        def scores(rows: np.ndarray, stacked: tuple[np.ndarray]) -> np.ndarray:
            return mean[rows, None] + sd[rows, None] * stacked[0]

        return self._sampled(noise, scores, n_samples)

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        self.count *= self.gamma
        self.total *= self.gamma
        rows, cells, acts, ys, lags = self.log.arrivals(self._cells(obs), actions, rewards,
                                                        info)
        weight = self.gamma ** lags  # as if it had arrived on time and been discounted since
        np.add.at(self.count, (rows, cells, acts), weight)
        np.add.at(self.total, (rows, cells, acts), weight * ys)


@dataclass(eq=False)
class POGambitTSObserved(POGambitTS):
    """:class:`POGambitTS` that learns only from observed rewards, each with its own message.

    The same Bayesian linear reward model of the message's embedding; an unobserved reward is
    skipped, and a delayed one updates the model with the embedding and context of the step it
    belongs to (:class:`ArrivalLog`). On envs without ``reward_observed`` / ``reward_step`` it
    makes poGAMBITTS's decisions exactly. Same arguments as :class:`POGambitTS`.
    """

    supported_envs: ClassVar[tuple[str, ...]] = ("GambitIHS-Delayed-v0",
                                                 "GambitIHS-Missing-v0", *GAMBIT_ENVS)

    def _setup(self, spec: EnvDescription) -> None:
        super()._setup(spec)
        self.log = ArrivalLog(self.replicates, payload_dim=self.d + 1)

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        if "embedding" not in info:
            raise KeyError(f"{type(self).__name__}.update needs info['embedding'] (the working "
                           "embedding of the message the user received)")
        z = np.asarray(info["embedding"], dtype=np.float64).reshape(self.replicates, self.d)
        contexts = gambit_contexts(obs)
        payload = np.concatenate([z, contexts[:, None].astype(np.float64)], axis=1)
        rows, _, _, ys, _, kept = self.log.arrivals(contexts, actions, rewards, info, payload)
        if len(rows) == self.replicates and np.array_equal(rows, np.arange(self.replicates)) \
                and np.array_equal(kept, payload):
            self.model.update(self.features(contexts, z), rewards)  # poGAMBITTS's own update
            return
        # A zero feature row adds nothing to the posterior (precision, S, the noise scale b);
        # only the noise shape a counts it, which is taken back.
        phi = np.zeros((self.replicates, self.model.p))
        y = np.zeros(self.replicates)
        phi[rows] = self.features(kept[:, -1].astype(np.int64), kept[:, :-1])
        y[rows] = ys
        self.model.update(phi, y)
        if self.model.noise_var is None:
            skipped = np.ones(self.replicates, dtype=bool)
            skipped[rows] = False
            self.model.a[skipped] -= 0.5
