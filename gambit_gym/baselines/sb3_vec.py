"""An SB3 ``VecEnv`` over the native GAMBIT vector env: R replicates per numpy call.

stable-baselines3's ``DummyVecEnv`` steps R Python envs one after another and
``SubprocVecEnv`` R processes; :class:`GambitSB3VecEnv` hands SB3's PPO, A2C and DQN the
native vector env (:class:`gambit_gym.envs.gambit_vector.GambitVectorEnv`), which steps all R
replicates in one call. For the same seed it returns what ``make_vec_env(id, n_envs=R)``
returns: SB3 seeds env ``i`` with ``seed + i``, as the native env seeds replicate ``r``, and
both reset a finished episode within the step (the native env in ``same_step`` mode).

>>> from stable_baselines3 import PPO  # doctest: +SKIP
>>> from gambit_gym.baselines.sb3_vec import make_sb3_vec_env
>>> venv = make_sb3_vec_env("GambitIHS-v0", n_envs=8, seed=0, center_rewards=True)  # doctest: +SKIP
>>> PPO("MlpPolicy", venv, gamma=0.0).learn(4096)  # doctest: +SKIP

stable-baselines3 is imported when this module is, so ``import gambit_gym`` never pulls it in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

_SKIP = ("final_obs", "final_info")


class GambitSB3VecEnv(VecEnv):
    """SB3's ``VecEnv`` API over a Gymnasium vector env that autoresets in the same step.

    Args:
        venv: a native gambit-gym vector env built with ``autoreset_mode="same_step"`` (see
            :func:`make_sb3_vec_env`), or any Gymnasium ``VectorEnv`` in that mode whose info
            is a dict of arrays.

    Raises:
        ValueError: the vector env does not autoreset in the same step (SB3 expects the
            returned observation of a finished episode to be the next one's first).
    """

    def __init__(self, venv: gym.vector.VectorEnv) -> None:
        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"SB3 vector envs reset a finished episode within the step; build "
                             f"the vector env with autoreset_mode='same_step' (got {mode!r}), "
                             "or use make_sb3_vec_env")
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space,
                         venv.single_action_space)
        self.render_mode = venv.render_mode
        self.metadata = dict(venv.metadata)
        self._actions: np.ndarray | None = None

    # ------------------------------------------------------------------ stepping
    def reset(self) -> np.ndarray:
        """Reset every replicate, with the seeds given to :meth:`seed` (used once)."""
        seeds = self._seeds if any(s is not None for s in self._seeds) else None
        options = self._options[0] if self._options and self._options[0] else None
        obs, info = self.venv.reset(seed=seeds, options=options)
        self.reset_infos = _split(info, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step all replicates in one call; SB3's ``(obs, rewards, dones, infos)``."""
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        infos = _split(info, self.num_envs)
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        for i in np.flatnonzero(~dones):
            infos[i]["TimeLimit.truncated"] = False
        if dones.any():
            self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        """Close the vector env."""
        self.venv.close()

    # ------------------------------------------------------------------ SB3's other verbs
    def get_images(self) -> Sequence[np.ndarray | None]:
        """One ``rgb_array`` frame per replicate (the vector env's ``render_mode``)."""
        if self.render_mode != "rgb_array":
            return [None] * self.num_envs
        return list(self.venv.render())

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The vector env's attribute, once per selected replicate (they share it)."""
        return [getattr(self.venv.unwrapped, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute of the vector env (shared by every replicate)."""
        setattr(self.venv.unwrapped, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None,
                   **method_kwargs: Any) -> list[Any]:
        """Call a method of the vector env once, reported for each selected replicate."""
        result = getattr(self.venv.unwrapped, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        """No replicate is a wrapped single env."""
        return [False] * len(self._indices(indices))

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)


def _split(info: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """A vector info dict of arrays as one dict per replicate (masks and final_* dropped)."""
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, value in info.items():
        if key.startswith("_") or key in _SKIP:
            continue
        mask = info.get(f"_{key}")
        rows: Iterable[int] = range(n) if mask is None else np.flatnonzero(mask)
        if isinstance(value, dict):
            parts = _split(value, n)
            for i in rows:
                out[i][key] = parts[i]
        else:
            for i in rows:
                out[i][key] = value[i]
    return out


def make_sb3_vec_env(env_id: str, n_envs: int, seed: int | None = None,
                     **env_kwargs: Any) -> GambitSB3VecEnv:
    """An SB3 ``VecEnv`` of ``n_envs`` replicates of a registered id with a native vector env.

    Args:
        env_id: a registered id with a vector entry point (every bank-backed ``GambitIHS-*``).
        n_envs: R.
        seed: replicate r is seeded ``seed + r`` at the first reset (as ``make_vec_env``).
        **env_kwargs: the env's kwargs (``center_rewards=True`` is advisable, see
            docs/ecosystem.md).
    """
    if gym.spec(env_id).vector_entry_point is None:
        raise ValueError(f"{env_id} has no native vector env; use SB3's make_vec_env instead")
    venv = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="vector_entry_point",
                        autoreset_mode="same_step", **env_kwargs)
    out = GambitSB3VecEnv(venv)
    if seed is not None:
        out.seed(seed)
    return out
