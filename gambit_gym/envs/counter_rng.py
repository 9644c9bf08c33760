"""Moved to :mod:`gambit_gym.core.counter_rng` (shared by envs and agents); re-exported here."""

from gambit_gym.core.counter_rng import (
    STREAM_CONTEXT,
    STREAM_GENERATOR,
    STREAM_NOISE,
    STREAM_ROW,
    floor_index,
    hash64,
    new_key,
    normal,
    offset,
    uniform,
    uniforms,
)

__all__ = ["STREAM_CONTEXT", "STREAM_GENERATOR", "STREAM_NOISE", "STREAM_ROW", "floor_index",
           "hash64", "new_key", "normal", "offset", "uniform", "uniforms"]
