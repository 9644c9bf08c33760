"""A population of users sharing one generator: the multi-user GAMBIT env (PettingZoo Parallel).

Each user is a GAMBIT user (:class:`~gambit_gym.envs.gambit_env.GambitEnv`): their own context
stream, their own outcome coefficients, and the same response bank. The step goes through the
shared pure step function :func:`~gambit_gym.envs.dynamics.step_outcome` (one batch over the
users who act), and a user's reward adds their random-effect deviation to the population's:
``E[Y_u | z, c] = intercept + (coef + δ_u) · standardise(z) + context term``. The oracle, and
hence the regret, is each user's own.

The safety filter and the budget of the single env carry over (:mod:`gambit_gym.envs.safety`):
``safety_filter="block"`` or ``"redraw"`` decides on the bank message a user drew, and a blocked
user gets the context's no-message outcome, which has no style and so no random effect (every
user gets ``no_message_reward``). Under the filter a user's exact expected reward of a prompt is
``(1 - β) (m_safe + δ_u · s_safe) + β b_c``, with ``s_safe`` the cell's mean standardised style
over its safe messages (the single env's value plus the user's deviation); ``unsafe_budget``
restricts each user's oracle to the prompts within the budget, the same prompts for every user
(their unsafe-delivery rates do not depend on the user).

Import it the PettingZoo way: ``from gambit_gym.envs import gambit_population_v0``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv

from gambit_gym._validate import check_positive_int, check_seed
from gambit_gym.core import counter_rng
from gambit_gym.core.description import EnvDescription
from gambit_gym.envs.config import GambitConfig, make_config
from gambit_gym.envs.dynamics import GambitTables, build_tables, reward_offset, step_outcome
from gambit_gym.envs.gambit_env import describe_env, simulator_for, validate_action
from gambit_gym.envs.outcomes import LinearOutcome
from gambit_gym.envs.render import check_render_mode, notification_text
from gambit_gym.envs.safety import blocked_probability, feasible_actions, outcome_info
from gambit_gym.text.contexts import LOCATIONS, N_CONTEXTS, STEP_BUCKETS

Schedule = Mapping[str, tuple[int, int | None]] | Sequence[tuple[int, int | None]] | None


@dataclass(frozen=True)
class PopulationConfig:
    """The population's settings (the per-user GAMBIT settings live in ``gambit``).

    Attributes:
        gambit: the GAMBIT configuration every user shares (bank, arms, noise, horizon).
        n_users: N, the number of users (agents ``user_0`` … ``user_{N-1}``).
        spread: size of the users' random effects relative to the population coefficients:
            ``δ_u ~ N(0, (spread · ‖coef‖ / √d)² I)``; 0 makes every user the same.
        schedule: ``(start, stop)`` per user: the user acts at steps ``start <= t < stop``
            (stop None: until the horizon).
        population_seed: if set, the users' coefficients are drawn from it once and kept
            across resets; if None (default), every reset draws a new population from the
            reset's seed.
    """

    gambit: GambitConfig
    n_users: int = 10
    spread: float = 0.5
    schedule: tuple[tuple[int, int], ...] = ()
    population_seed: int | None = None

    def __post_init__(self) -> None:
        check_positive_int("n_users", self.n_users)
        if not np.isfinite(self.spread) or self.spread < 0:
            raise ValueError(f"spread must be a finite number >= 0, got {self.spread!r}")
        if self.gambit.outcome != "linear":
            raise ValueError("the population env needs a linear outcome (random effects are "
                             f"on its coefficients); preset {self.gambit.preset!r} is "
                             f"{self.gambit.outcome!r}")
        if self.gambit.optional or self.gambit.live:
            raise ValueError(f"preset {self.gambit.preset!r} is not supported by the population "
                             "env; use a bank-backed preset such as '3d'")
        if len(self.schedule) != self.n_users:
            raise ValueError(f"schedule has {len(self.schedule)} entries for {self.n_users} users")


def agent_names(n_users: int) -> list[str]:
    """``["user_0", …, "user_{n-1}"]``."""
    return [f"user_{i}" for i in range(n_users)]


def parse_schedule(active: Schedule, n_users: int, horizon: int) -> tuple[tuple[int, int], ...]:
    """Normalise an ``active`` kwarg to one ``(start, stop)`` per user.

    Args:
        active: None (everyone from 0 to the horizon), a sequence of ``(start, stop)`` per user,
            or a mapping ``{"user_i": (start, stop)}`` for the users that differ.
        n_users: N.
        horizon: the episode length.

    Raises:
        ValueError: an unknown user, a wrong length, or an interval outside ``0..horizon``.
    """
    names = agent_names(n_users)
    table = [(0, horizon)] * n_users
    if active is None:
        return tuple(table)
    if isinstance(active, Mapping):
        unknown = sorted(set(active) - set(names))
        if unknown:
            raise ValueError(f"active names unknown users {unknown}; users are user_0.."
                             f"user_{n_users - 1}")
        items = [(names.index(k), v) for k, v in active.items()]
    else:
        active = list(active)
        if len(active) != n_users:
            raise ValueError(f"active has {len(active)} (start, stop) pairs for {n_users} users")
        items = list(enumerate(active))
    for i, pair in items:
        try:
            start, stop = pair
        except (TypeError, ValueError):
            raise ValueError(f"active entry for user_{i} must be (start, stop), got {pair!r}") \
                from None
        stop = horizon if stop is None else stop
        if not (isinstance(start, (int, np.integer)) and isinstance(stop, (int, np.integer))
                and 0 <= start < stop <= horizon):
            raise ValueError(f"active entry for user_{i} must satisfy 0 <= start < stop <= "
                             f"horizon ({horizon}), got {pair!r}")
        table[i] = (int(start), int(stop))
    return tuple(table)


def make_population_config(n_users: int = 10, spread: float = 0.5, active: Schedule = None,
                           population_seed: int | None = None, preset: str = "3d",
                           **gambit_kwargs: Any) -> PopulationConfig:
    """A validated :class:`PopulationConfig` from the env's keyword arguments."""
    gambit = make_config(preset, "GambitPopulationEnv.__init__",
                         ("n_users", "spread", "active", "population_seed", "preset",
                          "max_cycles"), **gambit_kwargs)
    if gambit.dynamics.active:
        raise ValueError("the population env does not model user dynamics (habituation, "
                         "disengagement, missing_rate, reward_delay, drift_sd, change_point) "
                         "yet: use GambitIHS-* ids with these kwargs (docs/user_dynamics.md)")
    n_users = check_positive_int("n_users", n_users)
    return PopulationConfig(gambit=gambit, n_users=n_users, spread=float(spread),
                            schedule=parse_schedule(active, n_users, gambit.horizon),
                            population_seed=population_seed)


class UserOutcomes:
    """Per-user expected rewards of a linear GAMBIT configuration with random effects.

    Args:
        tables: the shared dynamics tables.
    """

    def __init__(self, tables: GambitTables) -> None:
        outcome = tables.outcome
        if not isinstance(outcome, LinearOutcome):
            raise TypeError("random effects need a LinearOutcome")
        self.coef = np.asarray(outcome.coef, dtype=np.float64)
        bank = tables.bank
        true_scores = bank.scores[:, bank.dimension_index(tables.true_names)]
        #: standardised true embedding of every row, ``(n, d_true)``: zeros for the "no
        #: message" rows a safety filter delivers (no style, so no random effect)
        self.row_std = np.zeros((len(tables.row_reward), self.coef.size))
        self.row_std[:len(bank)] = outcome.standardizer(true_scores)
        st = tables.safety
        mode = st.mode if st is not None else 0
        k = tables.offsets.shape[0]
        cell_std = np.zeros((N_CONTEXTS, k, self.coef.size))
        for a in range(k):
            for c in range(N_CONTEXTS):
                start, count = tables.offsets[a, c], tables.counts[a, c]
                std = self.row_std[start:start + count]
                if not mode:
                    cell_std[c, a] = std.mean(axis=0)
                    continue
                unsafe = st.row_unsafe[start:start + count]
                q = float(unsafe.mean())
                beta = blocked_probability(q, mode, st.max_redraws)
                if (~unsafe).any():  # a delivered message is a uniform draw of the safe ones
                    cell_std[c, a] = (1.0 - beta) * std[~unsafe].mean(axis=0)
        #: exact expected standardised true embedding delivered per cell, ``(12, K, d_true)``
        #: (the cell mean without a filter; ``(1 - β)`` times the safe messages' mean with one)
        self.cell_std = cell_std
        self.base_expected = np.asarray(tables.expected, dtype=np.float64)

    def draw_deltas(self, rng: np.random.Generator, n_users: int, spread: float) -> np.ndarray:
        """Random effects ``δ_u`` ``(N, d_true)``, sd ``spread · ‖coef‖ / √d`` per entry."""
        scale = spread * float(np.linalg.norm(self.coef)) / np.sqrt(self.coef.size)
        return scale * rng.standard_normal((n_users, self.coef.size))

    def expected(self, deltas: np.ndarray) -> np.ndarray:
        """Each user's expected reward per (context, action), ``(N, 12, K)``."""
        return self.base_expected[None] + np.einsum("ckd,nd->nck", self.cell_std, deltas)


class GambitPopulationEnv(ParallelEnv):
    """N users of a GAMBIT study sharing one generator, as a PettingZoo ``ParallelEnv``.

    ## Description
    Every step, each active user is in one of 12 contexts and the agent picks a prompt for
    each; the message each user receives is drawn from the shared response bank and their
    reward is *their* outcome model of its true style embedding plus noise. Users differ by
    random effects on the outcome coefficients (``spread``), so what is learned about one
    user is informative, but not exact, for another: the setting for pooled and mixed-effect
    learners (see :mod:`gambit_gym.agents.pooled`).

    ## Action Space
    Per agent ``Discrete(K)``, as ``GambitIHS-v0``.

    ## Observation Space
    Per agent ``MultiDiscrete([3, 4])``: ``[location, step_bucket]`` of that user's next
    decision.

    ## Rewards
    ``intercept + (coef + δ_u) · standardise(z_true) + context term + N(0, noise_sd²)``. Each
    agent's ``info`` has the GAMBIT step keys (``text``, ``prompt_id``, ``prompt``,
    ``embedding``, ``embedding_names``, ``context``, ``expected_reward``, ``optimal_action``,
    ``optimal_expected_reward``, ``regret``) computed with that user's own oracle, and the
    safety and cost outcomes of :mod:`gambit_gym.envs.safety` (``delivered``, ``redraws``,
    ``tokens``, ``cost``, ``latency_s`` always; ``safety``, ``unsafe``, ``unsafe_delivered``
    on a scored bank), as the single env's.

    ## Generator
    The shared response bank (default: the shipped SmolLM2 bank).

    ## Episode End
    A user is truncated after their last scheduled step (``active``) or at the horizon; the
    episode ends when no user is left. Users scheduled to start later join ``agents`` after
    the step before their first decision, with their first observation, a reward of 0 and an
    info holding only their context.

    ## Arguments
    ``n_users`` (10), ``spread`` (0.5), ``active`` (None: everyone for the whole horizon; or
    ``(start, stop)`` per user, or a dict of them by name), ``population_seed`` (None: a new
    population at every reset), ``preset`` (a linear GAMBIT preset, "3d"), ``max_cycles``
    (PettingZoo's name for ``horizon``), ``render_mode`` (``"ansi"`` or ``"human"``: each
    user's last notification as text), and the GAMBIT kwargs ``noise_level`` / ``noise_sd``,
    ``n_prompts`` / ``prompt_ids``, ``horizon``, ``bank``, ``center_rewards``, and the safety
    kwargs ``safety_filter``, ``max_redraws``, ``unsafe_budget``, ``unsafe_categories``,
    ``no_message_reward`` (a blocked message's outcome), ``cost_model``.

    ## State
    ``state()`` is every user's current context id (-1 for a user not acting now), in
    ``state_space = Box(-1, 11, (N,), int64)``.

    >>> from gambit_gym.envs import gambit_population_v0
    >>> env = gambit_population_v0.parallel_env(n_users=3, horizon=5)
    >>> obs, infos = env.reset(seed=0)
    >>> sorted(obs)
    ['user_0', 'user_1', 'user_2']
    >>> obs, rewards, terms, truncs, infos = env.step({a: 0 for a in env.agents})
    >>> float(infos["user_0"]["regret"]) >= 0
    True

    ## Version History
    * v0: initial release.
    """

    metadata = {"render_modes": ["ansi", "human"], "name": "gambit_population_v0",
                "is_parallelizable": True, "render_fps": 4}

    def __init__(self, n_users: int = 10, spread: float = 0.5, active: Schedule = None,
                 population_seed: int | None = None, preset: str = "3d",
                 render_mode: str | None = None, max_cycles: int | None = None,
                 **gambit_kwargs: Any) -> None:
        check_render_mode("GambitPopulationEnv", render_mode, self.metadata["render_modes"])
        if max_cycles is not None:  # PettingZoo's name for the episode length
            max_cycles = check_positive_int("max_cycles", max_cycles)
            if gambit_kwargs.setdefault("horizon", max_cycles) != max_cycles:
                raise ValueError(f"max_cycles={max_cycles} and horizon="
                                 f"{gambit_kwargs['horizon']} disagree: they are the same "
                                 "thing (steps per episode); pass one of them")
        self.config = make_population_config(n_users, spread, active, population_seed, preset,
                                             **gambit_kwargs)
        self.max_cycles = self.config.gambit.horizon
        self.render_mode = render_mode
        gambit = self.config.gambit
        self._tables = build_tables(gambit)
        self.simulator = simulator_for(self._tables)
        self.noise_sd = gambit.effective_noise_sd
        self.reward_offset = reward_offset(gambit, self._tables)  # center_rewards
        self.horizon = gambit.horizon
        self.possible_agents = agent_names(self.config.n_users)
        self._index = {name: i for i, name in enumerate(self.possible_agents)}
        self._outcomes = UserOutcomes(self._tables)
        self._obs_space = spaces.MultiDiscrete([len(LOCATIONS), len(STEP_BUCKETS)])
        self._act_space = spaces.Discrete(gambit.n_actions)
        self._obs_spaces = {a: self._obs_space for a in self.possible_agents}
        #: every user's current context id, -1 for a user not acting now (see :meth:`state`)
        self.state_space = spaces.Box(-1, N_CONTEXTS - 1, (self.config.n_users,), np.int64)
        self._act_spaces = {a: self._act_space for a in self.possible_agents}
        self._start = np.array([s for s, _ in self.config.schedule], dtype=np.int64)
        self._stop = np.array([s for _, s in self.config.schedule], dtype=np.int64)
        self._fixed_deltas = None
        if self.config.population_seed is not None:
            self._fixed_deltas = self._outcomes.draw_deltas(
                np.random.default_rng(self.config.population_seed), self.config.n_users,
                self.config.spread)
        self.agents: list[str] = []
        self._np_random: np.random.Generator | None = None
        self._keys = np.zeros(self.config.n_users, dtype=np.uint64)
        self.deltas = np.zeros((self.config.n_users, self._outcomes.coef.size))
        self.user_expected = np.zeros((self.config.n_users, N_CONTEXTS, gambit.n_actions))
        #: the actions each user's oracle chooses among per context, ``(12, K)`` (all of them
        #: without ``unsafe_budget``; the same for every user)
        self.oracle_feasible = feasible_actions(self._tables.safety.delivery_unsafe_rate,
                                                gambit.unsafe_budget)
        self._t = 0
        self._last_step: dict[str, tuple[Any, ...]] = {}  # per user, for render()

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> spaces.Space:
        """``MultiDiscrete([3, 4])`` (the same object every call)."""
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        """``Discrete(K)`` (the same object every call)."""
        return self._act_spaces[agent]

    # ------------------------------------------------------------------ PettingZoo API
    def reset(self, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray],
                                                               dict[str, dict[str, Any]]]:
        """Start a study: draw each user's key and (unless fixed) random effects."""
        seed = check_seed("seed", seed)
        if seed is not None or self._np_random is None:
            self._np_random, _ = seeding.np_random(seed)
        rng = self._np_random
        n = self.config.n_users
        self._keys = np.array([counter_rng.new_key(rng) for _ in range(n)], dtype=np.uint64)
        deltas = self._outcomes.draw_deltas(rng, n, self.config.spread)
        self.deltas = self._fixed_deltas if self._fixed_deltas is not None else deltas
        self.user_expected = self._outcomes.expected(self.deltas) - self.reward_offset
        self._t = 0
        self._last_step = {}
        self.agents = [a for a in self.possible_agents if self._start[self._index[a]] == 0]
        return ({a: self._observation(a) for a in self.agents},
                {a: self._context_info(a) for a in self.agents})

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Send each acting user the message of their chosen prompt; observe their rewards."""
        if self._np_random is None:
            raise RuntimeError("call reset() before step()")
        unknown = sorted(set(actions) - set(self.agents))
        if unknown:
            raise ValueError(f"actions for users not in env.agents: {unknown}; active now: "
                             f"{self.agents}")
        acting = [a for a in self.agents if a in actions]
        idx = np.array([self._index[a] for a in acting], dtype=np.int64)
        t = self._t
        k = self.config.gambit.n_actions
        acts = np.array([validate_action(actions[a], k) for a in acting], dtype=np.int64)
        contexts = self._contexts_at(idx, t)
        obs, rewards, terms, truncs, infos = {}, {}, {}, {}, {}
        if len(acting):
            rows, base_rewards, _, drawn, redraws, tokens = step_outcome(
                self._tables, self._keys[idx], t, contexts, acts, self.noise_sd)
            user_rewards = base_rewards - self.reward_offset + np.einsum(
                "nd,nd->n", self._outcomes.row_std[rows], self.deltas[idx])
            outcome = outcome_info(self._tables.safety, self.config.gambit.cost_model, rows,
                                   drawn, redraws, tokens,
                                   self._tables.safety.prompt_tokens[acts, contexts])
            for j, name in enumerate(acting):
                infos[name] = self._info(idx[j], int(acts[j]), int(contexts[j]), int(rows[j]),
                                         {k: v[j] for k, v in outcome.items()})
                rewards[name] = float(user_rewards[j])
                info = infos[name]
                self._last_step[name] = (info["context"], info["prompt"], info["text"],
                                         rewards[name], float(info["regret"]))
        self._t = t + 1
        live_next = [a for a in self.possible_agents
                     if self._start[self._index[a]] <= self._t < self._stop[self._index[a]]]
        for name in acting:
            obs[name] = self._observation(name)
            terms[name] = False
            truncs[name] = name not in live_next
        for name in live_next:
            if name not in acting and name not in self.agents:  # joining now
                obs[name] = self._observation(name)
                rewards[name], terms[name], truncs[name] = 0.0, False, False
                infos[name] = self._context_info(name)
        self.agents = live_next
        return obs, rewards, terms, truncs, infos

    def render(self) -> str | None:
        """``ansi``: the last notification of each user (context, prompt, message, reward).

        ``human``: the same text, printed. Before the first step: each user's context.
        """
        if self.render_mode is None:
            return None
        lines = []
        for agent in self.possible_agents:
            if agent in self._last_step:
                context, prompt, text, reward, regret = self._last_step[agent]
                body = notification_text(context, prompt, text, reward, regret)
            elif agent in self.agents:
                body = notification_text(self._context_info(agent)["context"], None, None, None)
            else:
                continue
            lines.append(f"[{agent}]\n{body}")
        out = "\n".join(lines)
        if self.render_mode == "human":
            print(out)
            return None
        return out

    def close(self) -> None:
        """Nothing to release."""

    def state(self) -> np.ndarray:
        """The global state: every user's current context id (-1 where not acting), ``(N,)``.

        In :attr:`state_space`, ``Box(-1, 11, (N,), int64)``.
        """
        out = np.full(self.config.n_users, -1, dtype=np.int64)
        for a in self.agents:
            i = self._index[a]
            out[i] = int(self._contexts_at(np.array([i]), self._t)[0])
        return out

    # ------------------------------------------------------------------ simulator and oracle
    def describe(self) -> EnvDescription:
        """What an agent may know before acting (as a single GAMBIT env, plus population facts).

        ``extra`` adds ``n_users``, ``agents`` (``possible_agents``) and ``spread``.
        """
        base = describe_env(self.config.gambit, self._tables, self.simulator, self.noise_sd,
                            self._act_space, self._obs_space)
        extra = {**base.extra, "n_users": self.config.n_users,
                 "agents": tuple(self.possible_agents), "spread": self.config.spread}
        return EnvDescription(
            n_actions=base.n_actions, action_space=base.action_space,
            observation_space=base.observation_space, embedding_names=base.embedding_names,
            context_names=base.context_names, n_contexts=base.n_contexts,
            simulator=base.simulator, noise_sd=base.noise_sd, horizon=base.horizon, extra=extra)

    def expected_rewards(self, agent: str, context: Any) -> np.ndarray:
        """A user's oracle: expected reward of every action in a context, ``(K,)``."""
        from gambit_gym.envs.dynamics import context_id_of

        return self.user_expected[self._index[agent], context_id_of(context)].copy()

    # ------------------------------------------------------------------ internals
    def _contexts_at(self, idx: np.ndarray, t: int) -> np.ndarray:
        """Context ids of users ``idx`` at step ``t`` (a pure function of key and step)."""
        u = counter_rng.uniform(self._keys[idx], t, counter_rng.STREAM_CONTEXT)
        return (u * N_CONTEXTS).astype(np.int64)

    def _observation(self, agent: str) -> np.ndarray:
        c = int(self._contexts_at(np.array([self._index[agent]]), self._t)[0])
        return self._tables.observations[c].copy()

    def _context_info(self, agent: str) -> dict[str, Any]:
        """The reset / joining info of ``agent``: its current context's label and id."""
        c = int(self._contexts_at(np.array([self._index[agent]]), self._t)[0])
        return {"context": self._tables.context_labels[c], "context_id": np.int64(c)}

    def _info(self, i: int, a: int, c: int, row: int,
              outcome: dict[str, Any]) -> dict[str, Any]:
        tables = self._tables
        expected = self.user_expected[i, c]
        best = int(np.where(self.oracle_feasible[c], expected, -np.inf).argmax())
        return {
            "text": np.str_(tables.texts[row]),
            "prompt_id": np.int64(tables.arm_prompts[a]),
            "prompt": np.str_(tables.prompt_texts[a, c]),
            "embedding": tables.working[row].copy(),
            "embedding_names": tables.working_names_array.copy(),
            "context": tables.context_labels[c],
            "context_id": np.int64(c),
            **_scalars(outcome),
            "expected_reward": np.float64(expected[a]),
            "optimal_action": np.int64(best),
            "optimal_expected_reward": np.float64(expected[best]),
            "regret": np.float64(max(expected[best] - expected[a], 0.0)),
        }


def _scalars(outcome: dict[str, Any]) -> dict[str, Any]:
    """One user's safety and cost entries as the single env's info holds them.

    0-d bool arrays for the flags, numpy scalars for the counts, the ``(6,)`` scores.
    """
    out: dict[str, Any] = {}
    for key, value in outcome.items():
        if key in ("delivered", "unsafe", "unsafe_delivered"):
            out[key] = np.array(bool(value))
        elif key == "safety":
            out[key] = np.array(value, dtype=np.float32)
        elif key in ("redraws", "tokens", "prompt_tokens"):
            out[key] = np.int64(value)
        else:
            out[key] = np.float64(value)
    return out
