"""The native vector GAMBIT env: R independent replicates stepped in one numpy call.

Replicate ``r`` reproduces exactly what ``gym.make(id)`` reset with seed ``seed + r`` does
(the same convention as Gymnasium's sync and async vector envs), because both step through the
same pure function, :func:`gambit_gym.envs.dynamics.step_dynamics`, and draw their episode
keys the same way. All replicates share one horizon, so they truncate and auto-reset together
(same-step autoreset: the returned observation is the new episode's first, the last one is in
``info["final_obs"]``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from gambit_gym._validate import check_positive_int
from gambit_gym.envs import counter_rng
from gambit_gym.envs.config import make_config
from gambit_gym.envs.dynamics import (
    build_tables,
    initial_contexts,
    reward_offset,
    step_dynamics,
)
from gambit_gym.envs.gambit_env import simulator_for
from gambit_gym.text.contexts import LOCATIONS, STEP_BUCKETS


class GambitVectorEnv(gym.vector.VectorEnv):
    """R replicates of a GAMBIT env (see :class:`gambit_gym.envs.gambit_env.GambitEnv`).

    Info is Gymnasium's dict of arrays (leading dim R, with ``_key`` masks): ``text`` (object),
    ``prompt_id``, ``prompt``, ``embedding`` ``(R, d_w)``, ``embedding_names``, ``context``
    (a dict of name arrays), ``expected_reward``, ``optimal_action``,
    ``optimal_expected_reward`` and ``regret``.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, preset: str = "3d", render_mode: str | None = None,
                 **kwargs: Any) -> None:
        if render_mode is not None:
            raise ValueError("the native GAMBIT vector env does not render")
        if preset == "live":
            raise ValueError("GambitIHS-Live-v0 has no native vector env; use "
                             "vectorization_mode='sync'")
        self.num_envs = check_positive_int("num_envs", num_envs)
        self.config = make_config(preset, **kwargs)
        self.render_mode = None
        self._tables = build_tables(self.config)
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
        self._mask = np.ones(self.num_envs, dtype=bool)
        self._mask.setflags(write=False)
        names = np.empty(self.num_envs, dtype=object)
        names[:] = [self._tables.working_names] * self.num_envs
        self._names = names

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every replicate; replicate r is seeded ``seed + r`` (or ``seed[r]``)."""
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + r for r in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} replicates")
        for r, s in enumerate(seeds):
            if s is not None or self._rngs[r] is None:
                self._rngs[r] = seeding.np_random(s)[0]
        self._new_episodes()
        obs = self._tables.observations[self._contexts]
        return obs, {"context": self._context_info(self._contexts), "_context": self._mask}

    def _new_episodes(self) -> None:
        self._keys = np.array([counter_rng.new_key(rng) for rng in self._rngs], dtype=np.uint64)
        self._contexts = initial_contexts(self._keys)
        self._t = 0

    def _context_info(self, contexts: np.ndarray) -> dict[str, np.ndarray]:
        return {"location": self._tables.location_names[contexts],
                "step_bucket": self._tables.bucket_names[contexts],
                "_location": self._mask, "_step_bucket": self._mask}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                          dict[str, Any]]:
        """Step every replicate with its action, ``actions`` of shape ``(R,)``."""
        if self._rngs[0] is None:
            raise RuntimeError("call reset() before step()")
        acts = self._validate(actions)
        tables, ctx = self._tables, self._contexts
        rows, rewards, next_ctx = step_dynamics(tables, self._keys, self._t, ctx, acts,
                                                self.noise_sd)
        expected = tables.expected[ctx, acts]
        optimal = tables.optimal_reward[ctx]
        regret = np.maximum(optimal - expected, 0.0)  # raw values: centring leaves it exact
        if self.reward_offset:
            rewards = rewards - self.reward_offset
            expected = expected - self.reward_offset
            optimal = optimal - self.reward_offset
        m = self._mask
        info: dict[str, Any] = {
            "text": tables.texts[rows], "_text": m,
            "prompt_id": tables.arm_prompts[acts], "_prompt_id": m,
            "prompt": tables.prompt_texts[acts, ctx], "_prompt": m,
            "embedding": tables.working[rows], "_embedding": m,
            "embedding_names": self._names, "_embedding_names": m,
            "context": self._context_info(ctx), "_context": m,
            "expected_reward": expected, "_expected_reward": m,
            "optimal_action": tables.optimal_action[ctx], "_optimal_action": m,
            "optimal_expected_reward": optimal, "_optimal_expected_reward": m,
            "regret": regret, "_regret": m,
        }
        self._t += 1
        self._contexts = next_ctx
        obs = tables.observations[next_ctx]
        terminated = np.zeros(self.num_envs, dtype=bool)
        if self._t >= self.config.horizon:
            truncated = np.ones(self.num_envs, dtype=bool)
            info["final_obs"], info["_final_obs"] = obs, m
            info["final_info"], info["_final_info"] = dict(info), m
            self._new_episodes()
            obs = tables.observations[self._contexts]
        else:
            truncated = np.zeros(self.num_envs, dtype=bool)
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

    def expected_rewards(self, context: Any) -> np.ndarray:
        """The oracle: expected reward of every action in a context, ``(K,)``."""
        from gambit_gym.envs.dynamics import context_id_of

        return self._tables.expected[context_id_of(context)] - self.reward_offset

    @property
    def tables(self):  # noqa: D102 - same as GambitEnv.tables
        return self._tables

    def describe(self):
        """The per-replicate :class:`EnvDescription` (identical for every replicate)."""
        from gambit_gym.envs.gambit_env import describe_env

        return describe_env(self.config, self._tables, self.simulator, self.noise_sd,
                            self.single_action_space, self.single_observation_space)
