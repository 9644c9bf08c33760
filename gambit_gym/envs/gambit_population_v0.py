"""``gambit_population_v0``: N GAMBIT users sharing one generator (PettingZoo module convention).

>>> from gambit_gym.envs import gambit_population_v0
>>> par = gambit_population_v0.parallel_env(n_users=4)        # ParallelEnv
>>> aec = gambit_population_v0.env(n_users=4)                 # AEC, via parallel_to_aec
>>> sorted(par.possible_agents) == sorted(aec.possible_agents)
True

The environment is parallel by nature (every active user gets a message each step), so
``raw_env`` is the :class:`~gambit_gym.envs.population.GambitPopulationEnv` class itself and the
AEC form is PettingZoo's conversion of it. See that class for the arguments.
"""

from __future__ import annotations

from typing import Any

from pettingzoo.utils.conversions import parallel_to_aec

from gambit_gym.envs.population import GambitPopulationEnv

raw_env = GambitPopulationEnv


def parallel_env(**kwargs: Any) -> GambitPopulationEnv:
    """The population env as a PettingZoo ``ParallelEnv`` (kwargs: see GambitPopulationEnv)."""
    return GambitPopulationEnv(**kwargs)


def env(**kwargs: Any) -> Any:
    """The population env as a PettingZoo AEC env (``parallel_to_aec`` of :func:`parallel_env`).

    Users act one after another within a step; the step is taken when the last one has acted.
    """
    return parallel_to_aec(parallel_env(**kwargs))


__all__ = ["env", "parallel_env", "raw_env"]
