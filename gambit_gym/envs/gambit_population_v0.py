"""``gambit_population_v0``: N GAMBIT users sharing one generator (PettingZoo module convention).

>>> from gambit_gym.envs import gambit_population_v0
>>> par = gambit_population_v0.parallel_env(n_users=4)        # ParallelEnv
>>> aec = gambit_population_v0.env(n_users=4)                 # AEC, with the usual wrappers
>>> sorted(par.possible_agents) == sorted(aec.possible_agents)
True

The environment is parallel by nature (every active user gets a message each step), so the
AEC form is PettingZoo's conversion of it: users act one after another within a step, and the
step is taken when the last one has acted. ``raw_env`` is that AEC env without wrappers;
``env`` adds PettingZoo's usual ``AssertOutOfBoundsWrapper`` and ``OrderEnforcingWrapper``.
Every function takes :class:`~gambit_gym.envs.population.GambitPopulationEnv`'s arguments
(``max_cycles`` among them, PettingZoo's name for the episode length).
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils import wrappers
from pettingzoo.utils.conversions import parallel_to_aec_wrapper
from pettingzoo.utils.env import AECEnv

from gambit_gym.envs.population import GambitPopulationEnv


def parallel_env(**kwargs: Any) -> GambitPopulationEnv:
    """The population env as a PettingZoo ``ParallelEnv`` (kwargs: see GambitPopulationEnv)."""
    return GambitPopulationEnv(**kwargs)


def raw_env(**kwargs: Any) -> AECEnv:
    """The population env as an AEC env, without wrappers (PettingZoo's conversion)."""
    return parallel_to_aec_wrapper(parallel_env(**kwargs))


def env(**kwargs: Any) -> AECEnv:
    """The AEC env with PettingZoo's usual wrappers (bounds checks, call-order checks)."""
    aec = raw_env(**kwargs)
    aec = wrappers.AssertOutOfBoundsWrapper(aec)
    return wrappers.OrderEnforcingWrapper(aec)


__all__ = ["env", "parallel_env", "raw_env"]
