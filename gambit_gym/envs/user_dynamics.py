"""Non-stationary users: habituation, disengagement, missing and delayed rewards, drift.

The study's simulated user is stationary, always responds and always reports the next day.
These options (env kwargs on every bank-backed GAMBIT id; all off by default) relax that. They
live in one pure function, :func:`step_user`, used by both the single env (as a batch of one)
and the native vector env, so the two agree step for step for the same seed. Every random
number comes from :mod:`gambit_gym.core.counter_rng` streams of their own (numbers 5-8 and
``STREAM_DRIFT + j``), drawn only when the option is on: with every option off, the envs take
their old code path and the existing ids' results are unchanged.

The model (``x`` is a message's true style embedding standardised over the bank, ``x̂ = x/‖x‖``,
``r`` its stationary mean reward, ``b_c`` the mean reward of all bank messages in context
``c``; the "send nothing" action of the Optional env has ``x = 0`` and is never changed):

- **habituation** ``η ≥ 0`` with memory ``λ`` (``habituation_memory``, in ``[0, 1)``): the
  user keeps a memory ``m_{t+1} = λ m_t + x̂_t`` of the messages received. A message's effect
  ``r - b_c`` is multiplied by ``exp(-η · max(0, x̂ · m_t))``: it shrinks with the message's
  similarity to recent messages and recovers as the memory decays (by ``λ`` per step, or as
  dissimilar messages are sent). The same message sent ``n`` times in a row keeps
  ``exp(-η (1 - λ^n)/(1 - λ))`` of its effect.
- **disengagement** ``κ ≥ 0`` with memory ``β`` (``burden_memory``): burden
  ``B_{t+1} = β B_t + 1[a message was sent at t]``; after step ``t`` the user disengages with
  probability ``1 - exp(-κ B_{t+1})``. ``disengage_mode="silence"`` (default): from the next
  step on, no reward is observed (the user stopped syncing; the steps themselves, and regret,
  go on). ``"terminate"``: the step returns ``terminated=True`` (single env and Gymnasium's
  sync/async vector envs only: the native vector env's replicates share one clock).
- **missing rewards** ``p`` (``missing_rate``): each step's reward is unobserved with
  probability ``p``, independently.
- **delayed rewards** ``k`` (``reward_delay``): the reward of step ``t`` is returned by step
  ``t + k``; ``info["reward_step"]`` says which step the returned reward belongs to (-1: none
  yet). Rewards of the last ``k`` steps of an episode never arrive.
- **drift**: ``drift_sd = σ`` adds ``δ_t · x`` to every message's mean reward, with
  ``δ_0 = 0`` and ``δ_{t+1} = δ_t + σ ε_t``, ``ε_t ~ N(0, I)`` (for the linear outcome, a
  Gaussian random walk of the outcome coefficients, in reward units per sd of style);
  ``change_point = τ``: from step ``τ`` on, every message's effect ``r - b_c`` changes sign (the
  best prompt becomes the worst).

So a message's mean reward at step ``t`` is ``b_c + f_t(x̂)·(s_t·(r - b_c) + δ_t·x)`` with
``f_t`` the habituation factor and ``s_t = ±1`` the change-point sign. Whenever a reward is not
observed it is reported as ``0.0`` with ``info["reward_observed"] = False``.

Regret is exact against the **one-step greedy oracle with the true state**: in the user's
current state (memory, drift, sign) it picks the prompt whose message has the highest
expected reward now, averaged exactly over the bank cell and the noise. It ignores what a
message does to future steps (habituation, burden), so it is the oracle of the reward the
agent is scored on, not a planner. ``info["regret"]`` is counted at every step, observed or not.

Habituation and disengagement follow the two behavioural variables of StepCountJITAI
(Karine and Marlin, 2024, arXiv:2411.00336): a habituation level that rises as messages are
sent and lowers their effect on step count, and a disengagement risk. The functional forms
here are ours, chosen to be simple and testable, and are not fitted to data.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from scipy.special import ndtri

from gambit_gym._validate import check_number
from gambit_gym.core import counter_rng
from gambit_gym.envs.outcomes import Standardizer
from gambit_gym.envs.safety import blocked_probability, filter_draws
from gambit_gym.text.contexts import N_CONTEXTS

STREAM_MISSING = 5
STREAM_DISENGAGE = 6
STREAM_DRIFT = 8  #: dimension ``j`` of the drift walk draws from stream ``STREAM_DRIFT + j``
DISENGAGE_MODES = ("silence", "terminate")


@dataclass(frozen=True)
class UserDynamics:
    """The user-dynamics options of a GAMBIT env (see the module docstring for the model).

    Attributes:
        habituation: η, the strength of habituation (0: off).
        habituation_memory: λ in [0, 1), the per-step decay of the habituation memory.
        disengagement: κ, the hazard per unit of burden (0: off).
        burden_memory: β in [0, 1), the per-step decay of the burden.
        disengage_mode: ``"silence"`` or ``"terminate"``.
        missing_rate: p in [0, 1), the probability that a step's reward is unobserved.
        reward_delay: k ≥ 0, steps before a reward arrives.
        drift_sd: σ ≥ 0, per-step sd of each coefficient's random walk.
        change_point: τ, the step from which message effects change sign (None: never).
    """

    habituation: float = 0.0
    habituation_memory: float = 0.8
    disengagement: float = 0.0
    burden_memory: float = 0.9
    disengage_mode: str = "silence"
    missing_rate: float = 0.0
    reward_delay: int = 0
    drift_sd: float = 0.0
    change_point: int | None = None

    def __post_init__(self) -> None:
        check_number("habituation", self.habituation, minimum=0.0)
        check_number("disengagement", self.disengagement, minimum=0.0)
        check_number("drift_sd", self.drift_sd, minimum=0.0)
        for name in ("habituation_memory", "burden_memory", "missing_rate"):
            value = check_number(name, getattr(self, name), minimum=0.0)
            if value >= 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if self.disengage_mode not in DISENGAGE_MODES:
            raise ValueError(f"disengage_mode must be one of {DISENGAGE_MODES}, got "
                             f"{self.disengage_mode!r}")
        for name in ("reward_delay", "change_point"):
            value = getattr(self, name)
            if value is None and name == "change_point":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer (steps), got {value!r}")
            object.__setattr__(self, name, int(value))

    @property
    def active(self) -> bool:
        """Whether any option is on (otherwise the envs take their stationary path)."""
        return bool(self.habituation or self.disengagement or self.missing_rate
                    or self.reward_delay or self.drift_sd or self.change_point is not None)

    @property
    def stateful_mean(self) -> bool:
        """Whether expected rewards depend on the user's state (not just the context)."""
        return bool(self.habituation or self.drift_sd or self.change_point is not None)

    @property
    def reports_observation(self) -> bool:
        """Whether some rewards can go unobserved or arrive late."""
        return bool(self.disengagement or self.missing_rate or self.reward_delay)


#: Env kwargs of the user dynamics, with their defaults (all off).
DYNAMICS_KWARGS: tuple[str, ...] = tuple(f.name for f in fields(UserDynamics))


def dynamics_from(values: dict[str, Any]) -> UserDynamics:
    """A validated :class:`UserDynamics` from any mapping holding (some of) its fields."""
    return UserDynamics(**{k: values[k] for k in DYNAMICS_KWARGS if k in values})


@dataclass(frozen=True)
class DynamicsTables:
    """Per-row arrays the dynamics need (n = rows of the env's tables).

    Attributes:
        x: standardised true embedding of each row, ``(n, d)`` (0 for "send nothing").
        x_hat: ``x / ‖x‖``, ``(n, d)`` (0 where ``x`` is 0).
        base: ``b_c`` of each row (its own reward for "send nothing"), ``(n,)``.
        effect: ``r - base``, ``(n,)``.
        is_message: whether the row is a message, ``(n,)`` bool.
        cell_rows: row ids of each (action, context) cell, padded ``(K, 12, m)``.
        cell_weights: 1/count for a cell's rows, 0 for padding, ``(K, 12, m)``.
    """

    x: np.ndarray
    x_hat: np.ndarray
    base: np.ndarray
    effect: np.ndarray
    is_message: np.ndarray
    cell_rows: np.ndarray
    cell_weights: np.ndarray


def dynamics_tables(tables: Any) -> DynamicsTables:
    """The :class:`DynamicsTables` of a :class:`~gambit_gym.envs.dynamics.GambitTables`."""
    cached = tables.derived.get("user_dynamics")  # built once, kept with the tables
    if cached is not None:
        return cached
    bank = tables.bank
    n_bank, n = len(bank), len(tables.row_reward)
    true = bank.scores[:, bank.dimension_index(tables.true_names)].astype(np.float64)
    x = np.zeros((n, true.shape[1]))
    x[:n_bank] = Standardizer.fit(true)(true)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    x_hat = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    ctx = np.asarray(bank.context_ids, dtype=np.int64)
    reward = np.asarray(tables.row_reward, dtype=np.float64)
    base_c = np.bincount(ctx, reward[:n_bank], N_CONTEXTS) / np.bincount(ctx, None, N_CONTEXTS)
    base = reward.copy()  # "send nothing" rows keep their own reward: no effect to change
    base[:n_bank] = base_c[ctx]
    is_message = np.zeros(n, dtype=bool)
    is_message[:n_bank] = True
    width = int(tables.counts.max())
    steps = np.arange(width)
    cell_rows = tables.offsets[:, :, None] + np.minimum(steps, tables.counts[:, :, None] - 1)
    cell_weights = np.where(steps < tables.counts[:, :, None], 1.0 / tables.counts[:, :, None],
                            0.0)
    st = getattr(tables, "safety", None)
    if st is not None and st.mode:
        cell_rows, cell_weights = _filtered_cells(tables, st, width)
    out = DynamicsTables(x=x, x_hat=x_hat, base=base, effect=reward - base,
                         is_message=is_message, cell_rows=cell_rows, cell_weights=cell_weights)
    for arr in (out.x, out.x_hat, out.base, out.effect, out.is_message, out.cell_rows,
                out.cell_weights):
        arr.setflags(write=False)
    tables.derived["user_dynamics"] = out
    return out


def _filtered_cells(tables: Any, st: Any, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and weights of each cell under the safety filter, ``(K, 12, width + 1)``.

    A delivered message is uniform over the cell's safe rows (weight ``(1 - β) / n_safe``)
    and the "no message" row has the blocked probability ``β`` (:mod:`.safety`).
    """
    k = tables.offsets.shape[0]
    rows = np.zeros((k, N_CONTEXTS, width + 1), dtype=np.int64)
    weights = np.zeros((k, N_CONTEXTS, width + 1))
    for a in range(k):
        for c in range(N_CONTEXTS):
            start, count = int(tables.offsets[a, c]), int(tables.counts[a, c])
            cell = np.arange(start, start + count)
            unsafe = st.row_unsafe[cell]
            q = float(unsafe.mean())
            beta = blocked_probability(q, st.mode, st.max_redraws)
            safe = cell[~unsafe]
            rows[a, c, :] = start
            weights[a, c, :len(safe)] = (1.0 - beta) / len(safe) if len(safe) else 0.0
            rows[a, c, :len(safe)] = safe
            if beta > 0:
                rows[a, c, width] = st.none_rows[c]
                weights[a, c, width] = beta
    return rows, weights


@dataclass(frozen=True)
class UserState:
    """The users' hidden state, one row per replicate (``R`` replicates, ``d`` true dims).

    Attributes:
        memory: habituation memory ``m``, ``(R, d)``.
        burden: burden ``B``, ``(R,)``.
        disengaged: whether each user has disengaged, ``(R,)`` bool.
        drift: drift ``δ``, ``(R, d)``.
        pending: rewards on their way (oldest first), ``(R, k)``.
        pending_observed: whether each pending reward was observed, ``(R, k)`` bool.
    """

    memory: np.ndarray
    burden: np.ndarray
    disengaged: np.ndarray
    drift: np.ndarray
    pending: np.ndarray
    pending_observed: np.ndarray


def initial_state(dyn: UserDynamics, dtables: DynamicsTables, replicates: int) -> UserState:
    """A fresh user: no memory, no burden, engaged, no drift, nothing pending."""
    d = dtables.x.shape[1]
    return UserState(memory=np.zeros((replicates, d)), burden=np.zeros(replicates),
                     disengaged=np.zeros(replicates, dtype=bool),
                     drift=np.zeros((replicates, d)),
                     pending=np.zeros((replicates, dyn.reward_delay)),
                     pending_observed=np.zeros((replicates, dyn.reward_delay), dtype=bool))


def _row_means(dyn: UserDynamics, dt: DynamicsTables, state: UserState, t: int,
               rows: np.ndarray) -> np.ndarray:
    """Mean reward of ``rows`` ``(R, ...)`` for each replicate's user in its current state."""
    effect = dt.effect[rows]
    if dyn.change_point is not None and t >= dyn.change_point:
        effect = -effect
    extra = rows.ndim - 1  # axes between the replicate axis and the embedding axis
    if dyn.drift_sd:
        delta = state.drift.reshape(state.drift.shape[0], *([1] * extra), -1)
        effect = effect + (dt.x[rows] * delta).sum(axis=-1)
    if dyn.habituation:
        memory = state.memory.reshape(state.memory.shape[0], *([1] * extra), -1)
        similarity = np.maximum((dt.x_hat[rows] * memory).sum(axis=-1), 0.0)
        effect = effect * np.exp(-dyn.habituation * similarity)
    return dt.base[rows] + effect


def expected_rewards(dyn: UserDynamics, tables: Any, dt: DynamicsTables, state: UserState,
                     t: int, contexts: np.ndarray) -> np.ndarray:
    """Exact expected reward of every action for each replicate's user now, ``(R, K)``.

    Averaged over the bank cell of each (action, context) and the noise; the one-step greedy
    oracle's table. Equal to ``tables.expected[contexts]`` when the mean is stationary.
    """
    if not dyn.stateful_mean:
        return tables.expected[contexts]
    out = np.empty((len(contexts), dt.cell_rows.shape[0]))
    # one group per context: the cell's rows are a fixed block (K, m), so nothing is gathered
    # per replicate; elementwise arithmetic, and each replicate's sum runs over a contiguous
    # last axis, so its numbers do not depend on how many replicates share its context (the
    # single env is a batch of one)
    for c in np.unique(contexts):
        members = np.flatnonzero(contexts == c)
        rows = dt.cell_rows[:, c]  # (K, m)
        effect = dt.effect[rows][None]  # (1, K, m)
        if dyn.change_point is not None and t >= dyn.change_point:
            effect = -effect
        if dyn.drift_sd:
            effect = effect + _dot(dt.x[rows], state.drift[members])
        if dyn.habituation:
            similarity = np.maximum(_dot(dt.x_hat[rows], state.memory[members]), 0.0)
            effect = effect * np.exp(-dyn.habituation * similarity)
        means = dt.base[rows][None] + effect  # (n_c, K, m)
        out[members] = np.ascontiguousarray(means * dt.cell_weights[:, c][None]).sum(axis=-1)
    return out


def _dot(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``x · v`` for rows ``x`` ``(K, m, d)`` and vectors ``v`` ``(n, d)``: ``(n, K, m)``.

    Written out over the (few) dims instead of a matmul, whose rounding can depend on ``n``.
    """
    out = v[:, 0, None, None] * x[None, ..., 0]
    for j in range(1, x.shape[-1]):
        out = out + v[:, j, None, None] * x[None, ..., j]
    return out


@dataclass(frozen=True)
class UserStep:
    """What :func:`step_user` returns for a batch of replicates (arrays ``(R,)``).

    Attributes:
        rows: bank row each user received.
        reward: the reward reported now (0.0 where unobserved or none has arrived).
        observed: whether ``reward`` is an observed reward.
        reward_step: the step ``reward`` belongs to (-1: none has arrived yet).
        expected: expected reward of every action now, ``(R, K)``.
        terminated: whether the user disengaged in ``"terminate"`` mode.
        next_contexts: the next decision's context ids.
        state: the users' state after the step.
        drawn: the last message drawn (``rows`` differs where the safety filter blocked it).
        redraws: the safety filter's redraws.
        tokens: tokens generated (:mod:`gambit_gym.envs.safety`).
    """

    rows: np.ndarray
    reward: np.ndarray
    observed: np.ndarray
    reward_step: np.ndarray
    expected: np.ndarray
    terminated: np.ndarray
    next_contexts: np.ndarray
    state: UserState
    drawn: np.ndarray | None = None
    redraws: np.ndarray | None = None
    tokens: np.ndarray | None = None


def step_user(dyn: UserDynamics, tables: Any, state: UserState, keys: np.ndarray, t: int,
              contexts: np.ndarray, actions: np.ndarray, noise_sd: float,
              reward_offset: float = 0.0) -> UserStep:
    """One step of non-stationary users, a pure function of its arguments.

    The message (bank row), the noise and the next context are the stationary env's draws
    (same streams); the options add their own streams.

    Args:
        dyn: the options.
        tables: the env's :class:`~gambit_gym.envs.dynamics.GambitTables`.
        state: the users' state before the step.
        keys: episode keys, uint64 ``(R,)``.
        t: the step index within the episode (shared by the batch).
        contexts: context ids of this decision, ``(R,)``.
        actions: valid actions, ``(R,)`` int64.
        noise_sd: reward noise sd.
        reward_offset: what ``center_rewards`` subtracts from observed rewards.
    """
    dt = dynamics_tables(tables)
    r = len(keys)
    draws = ((t, counter_rng.STREAM_ROW), (t + 1, counter_rng.STREAM_CONTEXT),
             (t, counter_rng.STREAM_NOISE), (t, STREAM_MISSING), (t, STREAM_DISENGAGE))
    u = counter_rng.uniforms(keys, draws)
    offsets, counts = tables.offsets[actions, contexts], tables.counts[actions, contexts]
    rows = offsets + (u[0] * counts).astype(np.int64)
    # the safety filter (gambit_gym.envs.safety): a blocked user gets the "no message" row
    rows, drawn, redraws, tokens = filter_draws(tables.safety, offsets, counts, keys, t,
                                                contexts, rows)
    next_contexts = (u[1] * N_CONTEXTS).astype(np.int64)
    expected = expected_rewards(dyn, tables, dt, state, t, contexts)
    mean = _row_means(dyn, dt, state, t, rows[:, None])[:, 0] if dyn.stateful_mean \
        else tables.row_reward[rows]
    reward_now = mean + noise_sd * ndtri(u[2]) if noise_sd else mean.astype(np.float64)
    reward_now = reward_now - reward_offset
    observed_now = ~state.disengaged
    if dyn.missing_rate:
        observed_now = observed_now & (u[3] >= dyn.missing_rate)
    if dyn.reward_delay:
        k = dyn.reward_delay
        arrived = t >= k
        reward = state.pending[:, 0].copy()
        observed = state.pending_observed[:, 0] & arrived
        reward_step = np.full(r, t - k if arrived else -1, dtype=np.int64)
        pending = np.concatenate([state.pending[:, 1:], reward_now[:, None]], axis=1)
        pending_observed = np.concatenate([state.pending_observed[:, 1:],
                                           observed_now[:, None]], axis=1)
    else:
        reward, observed = reward_now, observed_now
        reward_step = np.full(r, t, dtype=np.int64)
        pending, pending_observed = state.pending, state.pending_observed
    reward = np.where(observed, reward, 0.0)
    memory, burden, disengaged, drift = state.memory, state.burden, state.disengaged, state.drift
    if dyn.habituation:
        memory = dyn.habituation_memory * memory + dt.x_hat[rows]
    terminated = np.zeros(r, dtype=bool)
    if dyn.disengagement:
        burden = dyn.burden_memory * burden + dt.is_message[rows]
        leaves = ~disengaged & (u[4] < -np.expm1(-dyn.disengagement * burden))
        disengaged = disengaged | leaves
        if dyn.disengage_mode == "terminate":
            terminated = leaves
    if dyn.drift_sd:
        d = drift.shape[1]
        eps = ndtri(counter_rng.uniforms(keys, tuple((t, STREAM_DRIFT + j) for j in range(d))))
        drift = drift + dyn.drift_sd * eps.T
    new_state = replace(state, memory=memory, burden=burden, disengaged=disengaged,
                        drift=drift, pending=pending, pending_observed=pending_observed)
    return UserStep(rows=rows, reward=reward, observed=observed, reward_step=reward_step,
                    expected=expected, terminated=terminated, next_contexts=next_contexts,
                    state=new_state, drawn=drawn, redraws=redraws, tokens=tokens)
