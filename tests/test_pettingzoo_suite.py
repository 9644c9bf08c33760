"""PettingZoo's own test suite on the population env (real PettingZoo), plus its conventions."""

import pytest

pytest.importorskip("pettingzoo")
from pettingzoo.test import (  # noqa: E402
    api_test,
    max_cycles_test,
    parallel_api_test,
    parallel_seed_test,
    performance_benchmark,
    render_test,
    seed_test,
)
from pettingzoo.test.state_test import test_state as state_test  # noqa: E402
from pettingzoo.test.state_test import test_state_space as state_space_test  # noqa: E402

from gambit_gym.envs import gambit_population_v0  # noqa: E402

SMALL = {"n_users": 4, "horizon": 30}


def test_api_test_on_the_wrapped_aec_env():
    api_test(gambit_population_v0.env(**SMALL), num_cycles=40)


def test_parallel_api_test():
    parallel_api_test(gambit_population_v0.parallel_env(**SMALL), num_cycles=40)


def test_seed_tests():
    seed_test(lambda: gambit_population_v0.env(**SMALL), num_cycles=40)
    parallel_seed_test(lambda: gambit_population_v0.parallel_env(**SMALL), num_cycles=40)


def test_max_cycles_test():
    max_cycles_test(gambit_population_v0)


def test_max_cycles_is_the_horizon():
    env = gambit_population_v0.parallel_env(n_users=2, max_cycles=3)
    assert env.max_cycles == 3 and env.horizon == 3
    with pytest.raises(ValueError, match="max_cycles=3 and horizon=5 disagree"):
        gambit_population_v0.parallel_env(max_cycles=3, horizon=5)
    with pytest.raises(ValueError, match="max_cycles must be a positive integer"):
        gambit_population_v0.parallel_env(max_cycles=0)


def test_render_test():
    render_test(lambda render_mode=None: gambit_population_v0.env(render_mode=render_mode,
                                                                  **SMALL))


def test_ansi_render_shows_each_users_notification():
    env = gambit_population_v0.parallel_env(n_users=2, horizon=5, render_mode="ansi")
    env.reset(seed=0)
    assert "no notification sent yet" in env.render()
    _, rewards, _, _, infos = env.step({a: 1 for a in env.agents})
    text = env.render()
    for agent, info in infos.items():
        assert f"[{agent}]" in text and info["text"] in text
        assert f"{rewards[agent]:.3f}" in text


def test_state_and_state_space():
    aec = gambit_population_v0.env(**SMALL)
    state_space_test(aec)
    state_test(aec, num_cycles=20)
    par = gambit_population_v0.parallel_env(**SMALL)
    par.reset(seed=1)
    state = par.state()
    assert par.state_space.contains(state) and state.shape == (4,)
    obs, _ = par.reset(seed=1)
    assert [int(o[0]) * 4 + int(o[1]) for o in obs.values()] == state.tolist()


@pytest.mark.slow
def test_performance_benchmark(capsys):
    performance_benchmark(gambit_population_v0.env(**SMALL))  # runs for 5 s
    out = capsys.readouterr().out
    assert "Finished performance benchmark" in out
    turns_per_second = float(out.split(" turns per second")[0].split()[-1])
    assert turns_per_second > 100  # it ran full cycles, resets included (thousands here)
