"""Config bookkeeping: the table cache is keyed by value, bounded, and its key is derived."""

from dataclasses import fields, replace

import gymnasium as gym

import gambit_gym  # noqa: F401
from gambit_gym.envs import dynamics
from gambit_gym.envs.config import NOT_IN_TABLES, GambitConfig, make_config
from gambit_gym.envs.gambit_env import simulator_for


def test_table_key_covers_every_field_not_declared_irrelevant():
    config = make_config("3d")
    keyed = {name for name, _ in config.table_key()}
    assert keyed == {f.name for f in fields(GambitConfig)} - NOT_IN_TABLES
    assert config.table_key() == replace(config, noise_level=3, horizon=7).table_key()
    assert config.table_key() != replace(config, n_prompts=4).table_key()


def test_table_cache_is_bounded_and_shares_by_value():
    a = gym.make("GambitIHS-v0", n_prompts=2).unwrapped
    b = gym.make("GambitIHS-v0", n_prompts=2, noise_level=2, horizon=9).unwrapped
    assert a._tables is b._tables  # same tables, one simulator kept with them
    assert simulator_for(a._tables) is a.simulator is b.simulator
    for k in range(1, dynamics.MAX_TABLE_SETS + 3):
        gym.make("GambitIHS-v0", n_prompts=k)
    assert len(dynamics._TABLES) <= dynamics.MAX_TABLE_SETS
