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
from gambit_gym.agents.gambitts import POGambitTS, received_embeddings
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
        z = received_embeddings(self, info, self.d)
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


@dataclass(eq=False)
class POGambitTSBurden(POGambitTSObserved):
    """Burden-aware poGAMBITTS: it discounts a message's effect by its similarity to recent ones.

    The agent keeps its own memory of what it sent, ``m ← λm + ẑ``, with ``ẑ`` the received
    message's embedding centred and scaled by the arms' messages (the simulator's cells) and
    cut to unit length (0 for "send nothing"), and the similarity ``s = max(0, ẑ·m)`` of a
    message to the memory before it. Its linear reward model sees the embedding with the
    message's departure from the arms' mean shrunk by ``exp(-η s)``:
    ``z̃ = z̄ + exp(-η s)(z - z̄)``, both when it learns (the message received, its similarity
    then) and when it acts (each prompt's expected ``z̃`` now, averaged over its cell's
    messages from the simulator), so a prompt the user has heard too often is scored by what
    it still does. This is the form of the
    env's habituation (:mod:`gambit_gym.envs.user_dynamics`) with the agent's own guesses of
    η and λ; with ``habituation=0`` it is :class:`POGambitTSObserved` exactly. Rewards are
    credited as there (unobserved ones skipped, late ones to their own message), so a user
    who stops reporting (disengagement, silence) is not learned from as if she walked 0
    steps. It does not trade a message now against future burden: against the env's one-step
    greedy oracle, a message not sent is regret now, whatever it saves later.

    Args:
        habituation: η ≥ 0, the agent's guess of the habituation strength.
        memory: λ in [0, 1), its guess of the per-step decay of the memory.
        (and the arguments of :class:`POGambitTS`)
    """

    supported_envs: ClassVar[tuple[str, ...]] = ("GambitIHS-Disengage-v0",
                                                 "GambitIHS-Habituation-v0",
                                                 "GambitIHS-Missing-v0", *GAMBIT_ENVS)

    habituation: float = 1.0
    memory: float = 0.8

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("habituation", self.habituation, minimum=0.0)
        value = check_number("memory", self.memory, minimum=0.0)
        if value >= 1.0:
            raise ValueError(f"memory must be in [0, 1), got {value!r}")

    def _setup(self, spec: EnvDescription) -> None:
        super()._setup(spec)
        sim = spec.simulator
        cells = [[np.asarray(sim.cell_embeddings(a, c), dtype=np.float64)
                  for a in range(self.n_actions)] for c in range(spec.n_contexts)]
        rows = np.concatenate([z for row in cells for z in row if np.any(z)])  # messages only
        self.center = rows.mean(axis=0)
        sd = rows.std(axis=0)
        self.spread = np.where(sd > 1e-12, sd, 1.0)
        width = max(len(z) for row in cells for z in row)
        self.cell_z = np.zeros((spec.n_contexts, self.n_actions, width, self.d))
        self.cell_w = np.zeros((spec.n_contexts, self.n_actions, width))
        for c, row in enumerate(cells):
            for a, z in enumerate(row):
                self.cell_z[c, a, :len(z)] = z
                self.cell_w[c, a, :len(z)] = 1.0 / len(z)
        self.cell_u = self.unit(self.cell_z)
        self.recent = np.zeros((self.replicates, self.d))

    def unit(self, z: np.ndarray) -> np.ndarray:
        """``ẑ``: centred, scaled and cut to unit length (0 for the zero "send nothing")."""
        sent = np.any(z != 0, axis=-1, keepdims=True)
        x = np.where(sent, (z - self.center) / self.spread, 0.0)
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
        return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)

    def kept(self, u: np.ndarray, memory: np.ndarray) -> np.ndarray:
        """``exp(-η s)`` of unit embeddings ``(R, ..., d)`` given memories ``(R, d)``."""
        m = memory.reshape(memory.shape[0], *([1] * (u.ndim - 2)), -1)
        return np.exp(-self.habituation * np.maximum((u * m).sum(axis=-1), 0.0))

    def _arm_embeddings(self, contexts: np.ndarray) -> np.ndarray:
        """Each prompt's expected ``z̃`` now: the average over its cell's messages (simulator)."""
        u, z, w = self.cell_u[contexts], self.cell_z[contexts], self.cell_w[contexts]
        weight = w * self.kept(u, self.recent)  # (R, K, m)
        sent = np.any(z != 0, axis=-1)  # "send nothing" keeps its zero embedding
        shrunk = self.center + np.einsum("rkm,rkmd->rkd", weight, z - self.center)
        return np.where(sent.any(axis=-1)[..., None], shrunk, 0.0)

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        z = received_embeddings(self, info, self.d)
        u = self.unit(z)
        kept = self.kept(u, self.recent)[:, None]
        sent = np.any(z != 0, axis=-1, keepdims=True)
        seen = dict(info, embedding=np.where(sent, self.center + kept * (z - self.center), z))
        self.recent = self.memory * self.recent + u
        super()._update(obs, actions, rewards, seen)
