"""The shared integer-argument check, and that envs, agents and the runner use it alike."""

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401
from gambit_gym._validate import check_positive_int
from gambit_gym.agents import make
from gambit_gym.bench import run


def test_accepts_integers_and_returns_python_ints():
    assert check_positive_int("n", 3) == 3
    value = check_positive_int("n", np.int64(7))
    assert value == 7 and type(value) is int
    assert check_positive_int("n", 0, minimum=0) == 0
    assert check_positive_int("n", None, allow_none=True) is None


@pytest.mark.parametrize("value", [0, -2, 2.0, "3", True, None, np.float64(4.0)])
def test_refuses_what_is_not_a_positive_integer(value):
    with pytest.raises(ValueError, match=r"^n_things must be a positive integer, got "):
        check_positive_int("n_things", value)


def test_messages_say_what_is_allowed():
    with pytest.raises(ValueError, match=r"burn_in must be an integer >= 0, got -1"):
        check_positive_int("burn_in", -1, minimum=0)
    with pytest.raises(ValueError, match=r"chunk must be a positive integer or None, got 0"):
        check_positive_int("chunk", 0, allow_none=True)


@pytest.mark.parametrize("call, name", [
    (lambda: gym.make("GambitIHS-v0", horizon=True), "horizon"),
    (lambda: gym.make("GambitIHS-v0", n_prompts=0), "n_prompts"),
    (lambda: gym.make("MixedEffectLinear-v0", n_actions=2.5), "n_actions"),
    (lambda: make("ens-poGAMBITTS", burn_in=-1), "burn_in"),
    (lambda: run("GambitIHS-v0", "Random", horizon=10, replicates=False, seed=0), "replicates"),
])
def test_envs_agents_and_runner_say_the_same(call, name):
    with pytest.raises(ValueError, match=rf"{name} must be (a positive integer|an integer >= 0)"):
        call()
