"""Bandit agents and the agent protocol.

>>> from gambit_gym import agents
>>> agent = agents.make("StdTS")  # doctest: +SKIP
"""

from gambit_gym.agents.base import Agent, EnvDescription, make, names, register, resolve

__all__ = ["Agent", "EnvDescription", "make", "names", "register", "resolve"]
