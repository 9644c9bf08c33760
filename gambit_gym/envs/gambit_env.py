"""The GAMBIT environment: an LLM-written message per chosen prompt, reward from its style."""

from __future__ import annotations

import dataclasses
from typing import Any, TypedDict

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gambit_gym._validate import check_index, check_seed, unexpected_kwargs_error
from gambit_gym.core import counter_rng
from gambit_gym.core.description import EnvDescription
from gambit_gym.envs.config import GambitConfig, make_config, valid_kwargs
from gambit_gym.envs.dynamics import (
    GambitSimulator,
    GambitTables,
    build_tables,
    context_id_of,
    initial_contexts,
    reward_offset,
    step_outcome,
)
from gambit_gym.envs.episode import horizon_with_spec_limit, requested_max_episode_steps
from gambit_gym.envs.live import LiveTreatment
from gambit_gym.envs.render import (
    RENDER_MODES,
    check_render_mode,
    notification_card,
    notification_text,
)
from gambit_gym.envs.safety import feasible_actions, outcome_info
from gambit_gym.envs.user_dynamics import (
    UserState,
    dynamics_tables,
    initial_state,
    step_user,
)
from gambit_gym.envs.user_dynamics import expected_rewards as user_expected_rewards
from gambit_gym.text.contexts import CONTEXT_NAMES, LOCATIONS, STEP_BUCKETS


class _ScoredBankInfo(TypedDict, total=False):
    """The step-info keys present only where the bank has safety scores."""

    safety: np.ndarray  # (6,) float32
    unsafe: np.ndarray  # 0-d bool
    unsafe_delivered: np.ndarray  # 0-d bool


class GambitStepInfo(_ScoredBankInfo):
    """The ``info`` dict of :meth:`GambitEnv.step`.

    Every value is a numpy scalar, a numpy array or a ``np.str_`` (a ``str``), so Gymnasium's
    vector envs batch it into plain arrays, ``DictInfoToList`` splits it back, and torchrl's
    default info reader stores it without a custom reader.

    Two parts: what a deployed app would see (``text``, ``prompt_id``, ``prompt``,
    ``embedding``, ``embedding_names``, ``context``, and ``context_id``: the id 0..11 of the
    context the action was taken in, so no caller decodes it from the observation) and the
    evaluation-only oracle fields (``expected_reward``, ``optimal_action``,
    ``optimal_expected_reward``, ``regret``). Agents run by the benchmark harness get only the
    first part (``gambit_gym.bench.agent_view``). With user dynamics on
    (:mod:`gambit_gym.envs.user_dynamics`) the first part also has ``reward_observed`` (a 0-d
    bool array, which Gymnasium's vector envs batch into a bool array: False when the reward
    is missing, silenced or not yet arrived, and then reported as 0.0) and ``reward_step``
    (``np.int64``: the step the returned reward belongs to, -1 for none). The deployed-app
    part also has the safety and cost outcomes of :mod:`gambit_gym.envs.safety`:
    ``delivered``, ``redraws``, ``tokens`` (completion tokens), ``prompt_tokens`` (input
    tokens), ``cost``, ``latency_s`` always, and ``safety``,
    ``unsafe``, ``unsafe_delivered`` where the bank has safety scores (and always in
    ``GambitIHS-Live-v0``, which scores each generated message).
    """

    text: np.str_
    prompt_id: np.int64
    prompt: np.str_
    embedding: np.ndarray
    embedding_names: np.ndarray
    context: np.str_
    context_id: np.int64
    delivered: np.ndarray  # 0-d bool
    redraws: np.int64
    tokens: np.int64  # completion (output) tokens of the step's generations
    prompt_tokens: np.int64  # input tokens of the step's generations
    cost: np.float64
    latency_s: np.float64
    expected_reward: np.float64
    optimal_action: np.int64
    optimal_expected_reward: np.float64
    regret: np.float64


def simulator_for(tables: GambitTables) -> GambitSimulator:
    """The simulator of a table set (built once, kept with the tables and shared like them)."""
    sim = tables.derived.get("simulator")
    if sim is None:
        sim = tables.derived["simulator"] = GambitSimulator(tables)
    return sim


def validate_action(action: Any, n_actions: int) -> int:
    """The action as an int, or a ValueError saying what a valid action is (one prompt index).

    See :func:`gambit_gym._validate.check_index`: Python and numpy integers (and a one-element
    integer array) pass; floats, strings, booleans and out-of-range values are refused.
    """
    return check_index("action", action, n_actions)


class GambitEnv(gym.Env):
    """A generator-mediated bandit on the Intern Health Study setting.

    ## Description
    Each step a user is in one of 12 contexts (location × yesterday's step bucket). The agent
    picks one of K prompts; an LLM's message for that prompt and context is drawn from a
    response bank of real SmolLM2 generations (the treatment: random, observed); the reward
    is an outcome model of the message's true style embedding plus Gaussian noise. This is the
    GAMBITTS study's simulation (Algorithm 6), calibrated to its fitted coefficients and noise
    ladders (see :mod:`gambit_gym.envs.outcomes`).

    ## Action Space
    ``Discrete(K)``: the prompt to send. In ``GambitIHS-Optional-v0``, action 0 sends nothing
    and actions 1..K are the prompts.

    ## Observation Space
    ``MultiDiscrete([3, 4])``: ``[location, step_bucket]`` of the next decision; location
    in (home, work, other), step bucket in (0-4,999; 5,000-9,999; 10,000-15,000; >15,000).

    ## Rewards
    ``outcome(true embedding of the message[, context]) + N(0, noise_sd²)``, on the scale of
    square-root daily steps (about 83). ``info["regret"]`` is the expected regret
    ``E[Y | c, best] - E[Y | c, chosen]``, exact over the bank and the noise: an
    evaluation-only field, like the other oracle keys, which agents run by the harness never see.

    ## Generator
    The bank (default: shipped, SmolLM2-135M-Instruct, MiniLM style axes). ``GambitIHS-Live-v0``
    calls a real generator and embedder every step instead: both load when the env is made
    (a progress message on stderr), and every message passes the bank's quality filter
    (:mod:`gambit_gym.envs.live`).

    ## Episode End
    Never terminates (except with ``disengagement`` and ``disengage_mode="terminate"``: the
    user leaves); truncates after ``horizon`` steps. ``gym.make(id, max_episode_steps=N)``
    with no ``horizon`` sets the horizon to N; with a smaller ``horizon`` it is an error (see
    :mod:`gambit_gym.envs.episode`). Episode semantics: ``docs/ecosystem.md``.

    ## Arguments
    ``noise_level`` (0-4, the study's ladder) or ``noise_sd``; ``n_prompts`` (K) or
    ``prompt_ids``; ``horizon``; ``bank`` (a bank file); ``no_message_reward`` (Optional env);
    ``generator``, ``embedder``, ``device`` (Live env); the user dynamics ``habituation``,
    ``habituation_memory``, ``disengagement``, ``burden_memory``, ``disengage_mode``,
    ``missing_rate``, ``reward_delay``, ``drift_sd``, ``change_point`` (all off by default; the
    model, and the oracle regret is exact against, in :mod:`gambit_gym.envs.user_dynamics`);
    ``safety_filter`` (None, ``"block"``, ``"redraw"``), ``max_redraws``, ``unsafe_budget``,
    ``unsafe_categories``,
    ``no_message_reward`` (the outcome of a blocked message) and ``cost_model`` (a
    :class:`~gambit_gym.envs.safety.CostModel` or a dict of its fields), see
    :mod:`gambit_gym.envs.safety` (the oracle stays exact under each filter);
    ``center_rewards`` (subtract the mean
    expected reward over contexts and actions from every reward and expected reward, so rewards
    sit near 0; regret and arm order unchanged); ``render_mode``: ``"ansi"`` (the
    notification as text: context, prompt, message, reward) or ``"rgb_array"`` (an image of
    the notification card with the style scores as bars). Unknown kwargs raise Python's
    ``TypeError`` ("GambitEnv.__init__() got an unexpected keyword argument 'x'"), listing the
    valid ones, so builders that retry without a kwarg (SB3's ``make_vec_env``, torchrl's
    ``GymEnv``) work.

    >>> import gymnasium as gym, gambit_gym
    >>> env = gym.make("GambitIHS-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(0)
    >>> sorted(info)[:3]
    ['context', 'embedding', 'embedding_names']

    ## Version History
    * v0: initial release.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 4}

    def __init__(self, preset: str = "3d", render_mode: str | None = None,
                 generator: Any = None, embedder: Any = None, device: str | None = None,
                 **kwargs: Any) -> None:
        check_render_mode("GambitEnv", render_mode, self.metadata["render_modes"])
        if not preset.startswith("live"):
            for name, value in (("generator", generator), ("embedder", embedder),
                                ("device", device)):
                if value is not None:
                    raise unexpected_kwargs_error(
                        "GambitEnv.__init__", [name], valid_kwargs(preset),
                        f" (GAMBIT preset {preset!r}; {name}= is for GambitIHS-Live-v0)")
        self.config: GambitConfig = make_config(preset, **kwargs)
        self._horizon_given = "horizon" in kwargs  # for gym.make's max_episode_steps
        self.render_mode = render_mode
        self._tables = build_tables(self.config)
        self._cost = self.config.cost_model
        self.simulator = simulator_for(self._tables)
        self.noise_sd = self.config.effective_noise_sd
        #: what ``center_rewards=True`` subtracts from every reward (0.0 otherwise)
        self.reward_offset = reward_offset(self.config, self._tables)
        self._n_actions, self._horizon = self.config.n_actions, self.config.horizon
        self.action_space = spaces.Discrete(self.config.n_actions)
        self.observation_space = spaces.MultiDiscrete([len(LOCATIONS), len(STEP_BUCKETS)])
        self._live = LiveTreatment(
            self._tables, generator, embedder, device, safety_filter=self.config.safety_filter,
            max_redraws=self.config.max_redraws,
            unsafe_categories=self.config.unsafe_categories) if self.config.live else None
        self._dynamics = self.config.dynamics if self.config.dynamics.active else None
        self._user: UserState | None = None
        self._terminated = False
        self._key = 0
        self._t = 0
        self._context = 0
        self._last: tuple[Any, ...] | None = None  # what the last step showed, for render()
        limit = requested_max_episode_steps()  # gym.make(..., max_episode_steps=N)
        if limit is not None:
            self.apply_episode_limit(limit)

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: draw its random key from ``np_random`` and the first context."""
        super().reset(seed=check_seed("seed", seed))
        self._key = counter_rng.new_key(self.np_random)
        self._t = 0
        self._context = initial_contexts(self._key)
        self._last = None
        self._terminated = False
        if self._dynamics is not None:
            self._user = initial_state(self._dynamics, dynamics_tables(self._tables), 1)
        return self._tables.observations[self._context].copy(), {
            "context": self._tables.context_labels[self._context],
            "context_id": np.int64(self._context)}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, GambitStepInfo]:
        """Send the chosen prompt's message to the user and observe the reward."""
        a = validate_action(action, self._n_actions)
        if self._t >= self._horizon:
            raise RuntimeError("the episode is over (truncated at the horizon): call reset()")
        if self._terminated:
            raise RuntimeError("the episode is over (the user disengaged: terminated): call "
                               "reset()")
        if self._dynamics is not None:
            return self._step_dynamic(a)
        tables, c = self._tables, self._context
        row, reward, next_ctx, drawn, redraws, tokens = step_outcome(
            tables, self._key, self._t, c, a, self.noise_sd)
        if self._live is not None:
            texts, z, rewards, live_out = self._live.draw(
                np.array([a]), np.array([c]), np.array([self._key], dtype=np.uint64), self._t,
                self.noise_sd, self._cost)
            text, z_working, reward = texts[0], z[0], float(rewards[0])
            outcome = self._live.step_info(live_out)
        else:
            text, z_working = tables.texts[row], tables.working[row].copy()
            outcome = outcome_info(tables.safety, self._cost, row, drawn, redraws, tokens,
                                   tables.safety.prompt_tokens_py[a][c])
        # numpy scalars straight from the tables: what the info hands out (see GambitStepInfo)
        expected = tables.expected[c, a]
        optimal = tables.optimal_reward[c]
        regret = tables.regret[c, a]  # from the raw values: centring leaves it exact
        if self.reward_offset:
            reward, expected, optimal = (reward - self.reward_offset,
                                         expected - self.reward_offset,
                                         optimal - self.reward_offset)
        info: GambitStepInfo = {
            "text": np.str_(text),
            "prompt_id": tables.arm_prompts[a],
            "prompt": tables.prompt_texts[a, c],
            "embedding": z_working,
            "embedding_names": tables.working_names_array.copy(),
            "context": tables.context_labels[c],
            "context_id": np.int64(c),
            **outcome,
            "expected_reward": expected,
            "optimal_action": tables.optimal_action[c],
            "optimal_expected_reward": optimal,
            "regret": regret,
        }
        self._t += 1
        self._context = next_ctx
        self._last = (info["context"], info["prompt"], info["text"], float(reward),
                      info["regret"], z_working)
        truncated = self._t >= self._horizon
        return self._tables.observations[self._context].copy(), float(reward), False, \
            truncated, info

    def _step_dynamic(self, a: int) -> tuple[np.ndarray, float, bool, bool, GambitStepInfo]:
        """A step with user dynamics on: :func:`step_user` on a batch of one."""
        tables, c = self._tables, self._context
        out = step_user(self._dynamics, tables, self._user,
                        np.array([self._key], dtype=np.uint64), self._t,
                        np.array([c], dtype=np.int64), np.array([a], dtype=np.int64),
                        self.noise_sd, self.reward_offset)
        self._user = out.state
        row = int(out.rows[0])
        outcome = outcome_info(tables.safety, self._cost, row, int(out.drawn[0]),
                               int(out.redraws[0]), int(out.tokens[0]),
                               tables.safety.prompt_tokens_py[a][c])
        expected_all = out.expected[0]
        best = int(np.argmax(expected_all))
        expected, optimal = float(expected_all[a]), float(expected_all[best])
        regret = max(optimal - expected, 0.0)
        reward = float(out.reward[0])
        z_working = tables.working[row].copy()
        info = {
            "text": np.str_(tables.texts[row]),
            "prompt_id": np.int64(tables.arm_prompts[a]),
            "prompt": np.str_(tables.prompt_texts[a, c]),
            "embedding": z_working,
            "embedding_names": tables.working_names_array.copy(),
            "context": tables.context_labels[c],
            "context_id": np.int64(c),
            # a 0-d bool array, not np.bool_: Gymnasium's vector envs batch it into a bool array
            "reward_observed": np.array(bool(out.observed[0])),
            "reward_step": np.int64(out.reward_step[0]),
            **outcome,
            "expected_reward": np.float64(expected - self.reward_offset),
            "optimal_action": np.int64(best),
            "optimal_expected_reward": np.float64(optimal - self.reward_offset),
            "regret": np.float64(regret),
        }
        self._t += 1
        self._context = int(out.next_contexts[0])
        self._last = (info["context"], info["prompt"], info["text"], reward, info["regret"],
                      z_working)
        self._terminated = bool(out.terminated[0])
        truncated = self._t >= self._horizon
        return self._tables.observations[self._context].copy(), reward, self._terminated, \
            truncated, info  # type: ignore[return-value]

    @property
    def user_state(self) -> UserState | None:
        """The simulated user's hidden state (None without user dynamics): for tests, plots."""
        return self._user

    def render(self) -> str | np.ndarray | None:
        """Draw the last notification (before any step: the context of the next decision).

        ``ansi``: a string with the context, prompt, message and reward. ``rgb_array``: a
        ``(H, 480, 3)`` uint8 image of the notification card on a phone, its style scores as
        bars (see :mod:`gambit_gym.envs.render`). None without a render mode.
        """
        if self.render_mode is None:
            return None
        if self._last is None:
            context, prompt, text, reward, regret, z = (
                self._tables.context_labels[self._context], None, None, None, None, None)
        else:
            context, prompt, text, reward, regret, z = self._last
        if self.render_mode == "ansi":
            return notification_text(context, prompt, text, reward, regret)
        return notification_card(context, text, z, self._tables.working_names, reward)

    def apply_episode_limit(self, max_episode_steps: int) -> None:
        """Take ``gym.make(..., max_episode_steps=N)`` into account (see :mod:`.episode`)."""
        horizon = horizon_with_spec_limit(max_episode_steps, self.config.horizon,
                                          self._horizon_given)
        if horizon != self.config.horizon:
            self.config = dataclasses.replace(self.config, horizon=horizon)
            self._horizon = horizon

    # ------------------------------------------------------------------ simulator and oracle
    def simulate(self, action: int, context: Any, n: int,
                 rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
        """``n`` (text, working embedding) draws that no user sees (see GambitSimulator)."""
        return self.simulator.simulate(action, context, n, rng)

    def expected_rewards(self, context: Any) -> np.ndarray:
        """The oracle: expected reward of every action in a context, ``(K,)``.

        ``context`` is what the user holds: ``info["context"]``, an observation, an id or a
        ``Context``. With ``center_rewards=True`` the values are centred like the rewards. With
        habituation, drift or a change point, the values for the user's current state (the
        one-step greedy oracle's table for the next step).
        """
        c = context_id_of(context)
        if self._user is not None and self._dynamics.stateful_mean:
            return user_expected_rewards(self._dynamics, self._tables,
                                         dynamics_tables(self._tables), self._user, self._t,
                                         np.array([c]))[0] - self.reward_offset
        return self._tables.expected[c] - self.reward_offset

    @property
    def tables(self) -> GambitTables:
        """The shared dynamics tables (read-only arrays)."""
        return self._tables

    def describe(self) -> EnvDescription:
        """What an agent may know before it acts (see :class:`EnvDescription`)."""
        return describe_env(self.config, self._tables, self.simulator, self.noise_sd,
                            self.action_space, self.observation_space)


def describe_env(config: GambitConfig, tables: GambitTables, simulator: GambitSimulator,
                 noise_sd: float, action_space: gym.Space,
                 observation_space: gym.Space) -> EnvDescription:
    """The :class:`EnvDescription` of a GAMBIT configuration (single or vector env)."""
    extra = {"preset": config.preset, "optional": config.optional,
             "arm_prompts": tables.arm_prompts.copy(),
             "expected_rewards": tables.expected - reward_offset(config, tables),
             "reward_offset": reward_offset(config, tables),
             # the safety side (gambit_gym.envs.safety): filter, budget, whether scored
             "safety_filter": config.safety_filter, "unsafe_budget": config.unsafe_budget,
             "unsafe_categories": config.unsafe_categories,
             "safety_scored": bool(tables.safety is not None and tables.safety.scored)}
    if config.unsafe_budget is not None:  # the constrained oracle's choice set (evaluation-only)
        extra["oracle_feasible"] = feasible_actions(tables.safety.delivery_unsafe_rate,
                                                    config.unsafe_budget)
    if config.dynamics.stateful_mean:
        # habituation, drift, a change point: the oracle moves with the user's state, so there
        # is no fixed table to publish (info["regret"] is against the one-step greedy oracle)
        del extra["expected_rewards"]
    return EnvDescription(
        n_actions=config.n_actions, action_space=action_space,
        observation_space=observation_space, embedding_names=tables.working_names,
        context_names=CONTEXT_NAMES, n_contexts=len(tables.observations), simulator=simulator,
        noise_sd=noise_sd, horizon=config.horizon, extra=extra,
    )
