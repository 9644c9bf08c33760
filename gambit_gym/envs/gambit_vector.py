"""The native vector GAMBIT env: R independent replicates stepped in one numpy call.

Replicate ``r`` reproduces exactly what ``gym.make(id)`` reset with seed ``seed + r`` does
(the same convention as Gymnasium's sync and async vector envs), because both step through the
same pure function, :func:`gambit_gym.envs.dynamics.step_dynamics`, and draw their episode
keys the same way. All replicates share one horizon, so they truncate together.

Autoreset follows Gymnasium's vector API (``metadata["autoreset_mode"]``):

- ``NEXT_STEP`` (the default, as Gymnasium's sync and async vector envs): the step that
  reaches the horizon returns the episode's last observation with ``truncated`` True; the next
  ``step`` ignores its actions, starts new episodes and returns their first observations with
  reward 0, both flags False and the reset info. Observations, rewards, flags and info equal
  those of ``gym.make_vec(id, R, vectorization_mode="sync")`` for the same seed.
- ``SAME_STEP``: the step that reaches the horizon already returns the new episodes' first
  observations; the last ones are in ``info["final_obs"]`` and that step's info in
  ``info["final_info"]``, as Gymnasium's sync env in this mode lays them out; unlike it, the
  top level of that step's info also keeps the step's own keys (``regret``...), so a loop that
  reads them every step needs no special case. The benchmark runner uses this mode.
- ``DISABLED``: a step after the horizon raises until ``reset()`` is called.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from gambit_gym._validate import check_positive_int, check_seed
from gambit_gym.core import counter_rng
from gambit_gym.envs.config import make_config
from gambit_gym.envs.dynamics import (
    build_tables,
    context_id_of,
    initial_contexts,
    reward_offset,
    step_outcome,
)
from gambit_gym.envs.episode import horizon_with_spec_limit
from gambit_gym.envs.gambit_env import simulator_for
from gambit_gym.envs.render import (
    RENDER_MODES,
    check_render_mode,
    notification_card,
    notification_text,
)
from gambit_gym.envs.safety import outcome_info
from gambit_gym.envs.user_dynamics import dynamics_tables, initial_state, step_user
from gambit_gym.text.contexts import LOCATIONS, STEP_BUCKETS


def _autoreset_mode(value: Any) -> AutoresetMode:
    """An :class:`AutoresetMode` from itself, its value (``"NextStep"``) or its name."""
    if isinstance(value, AutoresetMode):
        return value
    wanted = str(value).lower().replace("_", "").replace("-", "")
    for mode in AutoresetMode:
        if wanted in (mode.value.lower(), mode.name.lower().replace("_", "")):
            return mode
    raise ValueError(f"autoreset_mode must be 'next_step', 'same_step' or 'disabled' (or a "
                     f"gymnasium.vector.AutoresetMode), got {value!r}")


class GambitVectorEnv(gym.vector.VectorEnv):
    """R replicates of a GAMBIT env (see :class:`gambit_gym.envs.gambit_env.GambitEnv`).

    Info is Gymnasium's dict of arrays (leading dim R, each with its ``_key`` mask), the
    batched form of the single env's step info: ``text``, ``prompt`` and ``context`` (object
    arrays of strings), ``prompt_id``, ``embedding`` ``(R, d_w)``, ``embedding_names``
    ``(R, d_w)``, ``expected_reward``, ``optimal_action``, ``optimal_expected_reward`` and
    ``regret``. After a reset (and at a ``NEXT_STEP`` autoreset) it holds only ``context``.

    Args:
        num_envs: R, the number of replicates.
        preset: the GAMBIT preset (set by the registered id).
        render_mode: ``"ansi"`` or ``"rgb_array"``; :meth:`render` returns one frame per
            replicate.
        autoreset_mode: ``"next_step"`` (default), ``"same_step"`` or ``"disabled"`` (or a
            :class:`gymnasium.vector.AutoresetMode`); see the module docstring.
        max_episode_steps: the horizon (``gym.make_vec`` passes it here); larger than an
            explicitly given ``horizon`` it is an error, as for the single env.
        **kwargs: the GAMBIT env kwargs (``noise_level``, ``horizon``, ``center_rewards``...).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": list(RENDER_MODES)}

    def __init__(self, num_envs: int = 1, preset: str = "3d", render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 max_episode_steps: int | None = None, generator: Any = None,
                 embedder: Any = None, device: str | None = None, **kwargs: Any) -> None:
        check_render_mode("GambitVectorEnv", render_mode, self.metadata["render_modes"])
        if preset != "live":
            for name, value in (("generator", generator), ("embedder", embedder),
                                ("device", device)):
                if value is not None:
                    raise TypeError(f"GambitVectorEnv.__init__() got an unexpected keyword "
                                    f"argument {name!r} ({name}= is for GambitIHS-Live-v0)")
        self.num_envs = check_positive_int("num_envs", num_envs)
        self.config = make_config(preset, "GambitVectorEnv.__init__",
                                  ("num_envs", "autoreset_mode", "max_episode_steps"), **kwargs)
        if max_episode_steps is not None:  # gym.make_vec(..., max_episode_steps=N)
            limit = check_positive_int("max_episode_steps", max_episode_steps)
            # larger than a given horizon: the error the single env gives; otherwise it is the
            # horizon (no TimeLimit wraps a native vector env, and replicates end together)
            horizon_with_spec_limit(limit, self.config.horizon, "horizon" in kwargs)
            self.config = dataclasses.replace(self.config, horizon=limit)
        dyn = self.config.dynamics
        if dyn.disengagement and dyn.disengage_mode == "terminate":
            raise ValueError("disengage_mode='terminate' ends replicates at different steps, and "
                             "the native vector env's replicates share one clock: use "
                             "disengage_mode='silence', or gym.make_vec(..., "
                             "vectorization_mode='sync')")
        self._dynamics = dyn if dyn.active else None
        self._user = None
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = render_mode
        self._tables = build_tables(self.config)
        self._live = None
        if self.config.live:  # every replicate's message in one generate call per step
            from gambit_gym.envs.live import LiveTreatment

            self._live = LiveTreatment(
                self._tables, generator, embedder, device,
                safety_filter=self.config.safety_filter, max_redraws=self.config.max_redraws,
                unsafe_categories=self.config.unsafe_categories)
        self.simulator = simulator_for(self._tables)
        self.noise_sd = self.config.effective_noise_sd
        self.reward_offset = reward_offset(self.config, self._tables)  # center_rewards
        k = self.config.n_actions
        self.single_action_space = spaces.Discrete(k)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = spaces.MultiDiscrete([len(LOCATIONS), len(STEP_BUCKETS)])
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._keys = np.zeros(self.num_envs, dtype=np.uint64)
        self._contexts = np.zeros(self.num_envs, dtype=np.int64)
        self._t = 0
        self._needs_reset = False  # the last step ended the episodes (NEXT_STEP / DISABLED)
        self._names = np.broadcast_to(self._tables.working_names_array,
                                      (self.num_envs, len(self._tables.working_names)))
        self._last: tuple[np.ndarray, ...] | None = None  # for render()

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every replicate; replicate r is seeded ``seed + r`` (or ``seed[r]``)."""
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif not isinstance(seed, (list, tuple, np.ndarray)):
            seeds = [check_seed("seed", seed) + r for r in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} replicates")
            seeds = [check_seed(f"seed[{r}]", s) for r, s in enumerate(seeds)]
        for r, s in enumerate(seeds):
            if s is not None or self._rngs[r] is None:
                self._rngs[r] = seeding.np_random(s)[0]
        return self._start_episodes()

    def _start_episodes(self) -> tuple[np.ndarray, dict[str, Any]]:
        """New episode keys and first contexts for every replicate: (obs, reset info)."""
        self._keys = np.array([counter_rng.new_key(rng) for rng in self._rngs], dtype=np.uint64)
        self._contexts = initial_contexts(self._keys)
        if self._dynamics is not None:
            self._user = initial_state(self._dynamics, dynamics_tables(self._tables),
                                       self.num_envs)
        self._t = 0
        self._needs_reset = False
        self._last = None
        obs = self._tables.observations[self._contexts]
        return obs, {"context": self._tables.context_labels[self._contexts],
                     "_context": self._mask(),
                     "context_id": self._contexts.astype(np.int64),
                     "_context_id": self._mask()}

    def _mask(self) -> np.ndarray:
        return np.ones(self.num_envs, dtype=np.bool_)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                          dict[str, Any]]:
        """Step every replicate with its action, ``actions`` of shape ``(R,)``."""
        if self._rngs[0] is None:
            raise RuntimeError("call reset() before step()")
        acts = self._validate(actions)
        r = self.num_envs
        if self._needs_reset:
            if self.autoreset_mode == AutoresetMode.DISABLED:
                raise RuntimeError("the episodes are over (truncated at the horizon) and "
                                   "autoreset is disabled: call reset()")
            obs, info = self._start_episodes()  # NEXT_STEP: this step only resets
            return obs, np.zeros(r), np.zeros(r, dtype=np.bool_), np.zeros(r, dtype=np.bool_), \
                info
        tables, ctx = self._tables, self._contexts
        extra: tuple[tuple[str, np.ndarray], ...] = ()
        if self._dynamics is not None:  # the same pure function as the single env's
            out = step_user(self._dynamics, tables, self._user, self._keys, self._t, ctx, acts,
                            self.noise_sd, self.reward_offset)
            self._user = out.state
            rows, rewards, next_ctx = out.rows, out.reward, out.next_contexts
            best = out.expected.argmax(axis=1)
            expected = out.expected[np.arange(r), acts]
            optimal = out.expected[np.arange(r), best]
            regret = np.maximum(optimal - expected, 0.0)
            expected, optimal = expected - self.reward_offset, optimal - self.reward_offset
            extra = (("reward_observed", out.observed.astype(np.bool_)),
                     ("reward_step", out.reward_step))
            drawn, redraws, tokens = out.drawn, out.redraws, out.tokens
        else:
            rows, rewards, next_ctx, drawn, redraws, tokens = step_outcome(
                tables, self._keys, self._t, ctx, acts, self.noise_sd)
            best = tables.optimal_action[ctx]
            expected = tables.expected[ctx, acts]
            optimal = tables.optimal_reward[ctx]
            regret = tables.regret[ctx, acts]  # raw values: centring leaves it exact
            if self._live is not None:
                texts, z_live, rewards, live_outcome = self._live.draw(
                    acts, ctx, self._keys, self._t, self.noise_sd, self.config.cost_model)
                extra = (("text", np.array(texts, dtype=object)), ("embedding", z_live))
            if self.reward_offset:
                rewards = rewards - self.reward_offset
                expected = expected - self.reward_offset
                optimal = optimal - self.reward_offset
        live = dict(extra) if self._live is not None else {}
        live_outcome = live_outcome if live else {}
        if live:
            extra = ()
        info: dict[str, Any] = {}
        for key, value in (
                ("text", live.get("text", tables.texts[rows])),
                ("prompt_id", tables.arm_prompts[acts].astype(np.int64, copy=False)),
                ("prompt", tables.prompt_texts[acts, ctx]),
                ("embedding", live.get("embedding", tables.working[rows])),
                ("embedding_names", self._names.copy()),
                ("context", tables.context_labels[ctx]),
                ("context_id", ctx.astype(np.int64)),
                *extra,
                *(live_outcome if live else outcome_info(
                    tables.safety, self.config.cost_model, rows, drawn, redraws,
                    tokens, tables.safety.prompt_tokens[acts, ctx])).items(),
                ("expected_reward", expected),
                ("optimal_action", best.astype(np.int64, copy=False)),
                ("optimal_expected_reward", optimal),
                ("regret", regret)):
            info[key], info[f"_{key}"] = value, self._mask()
        self._last = (ctx, acts, rows, rewards, regret)
        self._t += 1
        self._contexts = next_ctx
        obs = tables.observations[next_ctx]
        terminated = np.zeros(r, dtype=np.bool_)
        truncated = np.full(r, self._t >= self.config.horizon, dtype=np.bool_)
        if truncated[0]:
            if self.autoreset_mode == AutoresetMode.SAME_STEP:
                # final_obs and final_info laid out as Gymnasium's SyncVectorEnv lays them out
                # (an object array of each replicate's last observation; the step's info);
                # unlike it, the top level keeps the step's info too, so a loop that reads
                # info["regret"] every step (the runner's) needs no special case
                last, final_obs = self._last, np.empty(r, dtype=object)
                for i in range(r):
                    final_obs[i] = obs[i]
                step_info = dict(info)
                info["final_obs"], info["_final_obs"] = final_obs, self._mask()
                info["final_info"], info["_final_info"] = step_info, self._mask()
                obs, _ = self._start_episodes()
                self._last = last
            else:
                self._needs_reset = True
        return obs, rewards, terminated, truncated, info

    def _validate(self, actions: Any) -> np.ndarray:
        acts = np.asarray(actions)
        if acts.shape != (self.num_envs,) or not np.issubdtype(acts.dtype, np.integer):
            raise ValueError(
                f"actions must be an integer array of shape ({self.num_envs},), got "
                f"{acts.dtype} array of shape {acts.shape}"
            )
        k = self.config.n_actions
        acts = acts.astype(np.int64, copy=False)
        if (acts.view(np.uint64) >= k).any():  # one pass: negatives read as unsigned are >= k
            raise ValueError(f"actions must be in 0..{k - 1}, got values "
                             f"{acts.min()}..{acts.max()}")
        return acts

    def render(self) -> tuple[Any, ...] | None:
        """One frame per replicate, as the single env draws it (see ``GambitEnv.render``)."""
        if self.render_mode is None:
            return None
        tables = self._tables
        frames = []
        for i in range(self.num_envs):
            if self._last is None:
                args = (tables.context_labels[self._contexts[i]], None, None, None, None, None)
            else:
                ctx, acts, rows, rewards, regret = self._last
                args = (tables.context_labels[ctx[i]], tables.prompt_texts[acts[i], ctx[i]],
                        tables.texts[rows[i]], float(rewards[i]), float(regret[i]),
                        tables.working[rows[i]])
            context, prompt, text, reward, reg, z = args
            if self.render_mode == "ansi":
                frames.append(notification_text(context, prompt, text, reward, reg))
            else:
                frames.append(notification_card(context, text, z, tables.working_names, reward))
        return tuple(frames)

    def expected_rewards(self, context: Any) -> np.ndarray:
        """The oracle: expected reward of every action in a context, ``(K,)``.

        ``context``: one replicate's ``info["context"][r]``, an observation row, an id or a
        ``Context``; centred like the rewards under ``center_rewards=True``.
        The stationary table: with habituation, drift or a change point each replicate's
        oracle depends on its user's state, and is in the step info.
        """
        return self._tables.expected[context_id_of(context)] - self.reward_offset

    @property
    def user_state(self):
        """The users' hidden state, one row per replicate (None without user dynamics)."""
        return self._user

    @property
    def tables(self):  # noqa: D102 - same as GambitEnv.tables
        return self._tables

    def describe(self):
        """The per-replicate :class:`EnvDescription` (identical for every replicate)."""
        from gambit_gym.envs.gambit_env import describe_env

        return describe_env(self.config, self._tables, self.simulator, self.noise_sd,
                            self.single_action_space, self.single_observation_space)
