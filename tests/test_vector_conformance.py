"""The native vector env against Gymnasium's own vector envs and wrappers (real Gymnasium)."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers import vector as vw

import gambit_gym  # noqa: F401  (registers the ids)
from gambit_gym.envs.registration import ENV_IDS

# GambitIHS-Live-v0 has a native vector env too, but it writes all replicates' messages in one
# batched call (a replicate's text depends on the batch), so it is not step-for-step equal to a
# sync vector of single envs; tests/test_live_env.py tests it with the real models
NATIVE_IDS = [row[0] for row in ENV_IDS if row[2] is not None and row[0] != "GambitIHS-Live-v0"]


def _same(a, b, where="info"):
    """Exact equality of two step outputs: dict keys, array shapes, dtypes and values."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {set(a) ^ set(b)}"
        for key in a:
            _same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), f"{where}: {type(b)} is not an array"
        assert a.shape == b.shape and a.dtype == b.dtype, \
            f"{where}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
        if a.dtype == object:
            for x, y in zip(a.ravel(), b.ravel()):
                _same(x, y, where)
        else:
            assert np.array_equal(a, b), f"{where}: {a} != {b}"
    else:
        assert type(a) is type(b) or (isinstance(a, str) and isinstance(b, str)), \
            f"{where}: {type(a)} vs {type(b)}"
        assert a == b, f"{where}: {a!r} != {b!r}"


def _trajectory(env_id, mode, autoreset, steps=11, r=3, **kwargs):
    if mode == "vector_entry_point":
        vec = gym.make_vec(env_id, r, vectorization_mode=mode, horizon=4,
                           autoreset_mode=autoreset, **kwargs)
    else:
        vec = gym.make_vec(env_id, r, vectorization_mode=mode, horizon=4,
                           vector_kwargs={"autoreset_mode": autoreset}, **kwargs)
    assert vec.metadata["autoreset_mode"] == autoreset
    out = [vec.reset(seed=21)]
    rng = np.random.default_rng(0)
    for _ in range(steps):
        out.append(vec.step(rng.integers(vec.single_action_space.n, size=r)))
    vec.close()
    return out


@pytest.mark.parametrize("env_id", ["GambitIHS-v0", "GambitIHS-Optional-v0",
                                    "GambitIHS-Misspec-Clarity-v0", "GambitIHS-Habituation-v0",
                                    "GambitIHS-Disengage-v0", "GambitIHS-Missing-v0",
                                    "GambitIHS-Delayed-v0", "GambitIHS-Drift-v0",
                                    "GambitIHS-ChangePoint-v0"])
@pytest.mark.parametrize("autoreset", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_native_sync_and_async_give_identical_streams(env_id, autoreset):
    """Same seed: identical obs, rewards, flags and info over several episode boundaries."""
    native = _trajectory(env_id, "vector_entry_point", autoreset, center_rewards=True)
    for mode in ("sync", "async"):
        other = _trajectory(env_id, mode, autoreset, center_rewards=True)
        for t, (a, b) in enumerate(zip(native, other)):
            assert len(a) == len(b)
            if autoreset == AutoresetMode.SAME_STEP and "final_info" in b[-1]:
                # the native top level also keeps the step's keys; final_* are as sync's
                for key in ("final_obs", "_final_obs", "final_info", "_final_info"):
                    _same(a[-1][key], b[-1][key], f"{mode} step {t} info[{key!r}]")
                a, b = a[:-1], b[:-1]
            for name, x, y in zip(("obs", "reward", "terminated", "truncated", "info"), a, b):
                _same(x, y, f"{mode} step {t} {name}")
    truncated_steps = [t for t, out in enumerate(native[1:], 1) if out[3].any()]
    assert truncated_steps == [4, 9] if autoreset == AutoresetMode.NEXT_STEP else [4, 8]
    if autoreset == AutoresetMode.NEXT_STEP:  # the step after the boundary only resets
        _, rewards, _, _, info = native[5]
        assert np.all(rewards == 0) and set(info) == {"context", "_context",
                                                     "context_id", "_context_id"}


def test_autoreset_mode_is_declared_and_chosen_by_kwarg():
    vec = gym.make_vec("GambitIHS-v0", 2, vectorization_mode="vector_entry_point")
    assert vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP  # Gymnasium's default
    assert type(vec.unwrapped).metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    same = gym.make_vec("GambitIHS-v0", 2, vectorization_mode="vector_entry_point",
                        autoreset_mode="same_step")
    assert same.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    off = gym.make_vec("GambitIHS-v0", 2, vectorization_mode="vector_entry_point",
                       autoreset_mode=AutoresetMode.DISABLED, horizon=2)
    off.reset(seed=0)
    off.step(np.zeros(2, dtype=int))
    assert off.step(np.zeros(2, dtype=int))[3].all()
    with pytest.raises(RuntimeError, match="call reset"):
        off.step(np.zeros(2, dtype=int))
    with pytest.raises(ValueError, match="autoreset_mode must be"):
        gym.make_vec("GambitIHS-v0", 2, vectorization_mode="vector_entry_point",
                     autoreset_mode="sometimes")


@pytest.mark.parametrize("env_id", NATIVE_IDS)
def test_gymnasium_vector_wrappers_run_on_the_native_env(env_id, env_kwargs):
    vec = gym.make_vec(env_id, 3, vectorization_mode="vector_entry_point", horizon=3,
                       **env_kwargs(env_id))
    single_box = spaces.Box(0.0, 3.0, (2,), np.float32)
    vec = vw.TransformObservation(vec, lambda o: o.astype(np.float32),
                                  spaces.Box(0.0, 3.0, (3, 2), np.float32), single_box)
    vec = vw.NormalizeObservation(vec)
    vec = vw.NormalizeReward(vec, gamma=0.0)
    vec = vw.RecordEpisodeStatistics(vec, buffer_length=10)
    vec = vw.DictInfoToList(vec)
    obs, infos = vec.reset(seed=0)
    assert obs.dtype == np.float32 and isinstance(infos, list) and len(infos) == 3
    episodes = 0
    for _ in range(8):
        obs, rewards, _, truncated, infos = vec.step(np.array([0, 1, 0]))
        assert np.isfinite(obs).all() and np.isfinite(rewards).all()
        assert all(isinstance(i, dict) for i in infos)
        if truncated.any():
            episodes += 1
            assert all(i["episode"]["l"] == 3 for i in infos)
            assert all("regret" in i for i in infos)
    assert episodes == 2


def test_native_env_renders_one_frame_per_replicate():
    vec = gym.make_vec("GambitIHS-v0", 2, vectorization_mode="vector_entry_point",
                       render_mode="ansi")
    vec.reset(seed=3)
    assert all("no notification" in f for f in vec.render())
    _, _, _, _, info = vec.step(np.array([0, 1]))
    frames = vec.render()
    assert len(frames) == 2 and all(info["text"][i] in frames[i] for i in range(2))
    pic = gym.make_vec("GambitIHS-v0", 2, vectorization_mode="vector_entry_point",
                       render_mode="rgb_array")
    pic.reset(seed=3)
    pic.step(np.array([0, 1]))
    assert all(f.dtype == np.uint8 and f.shape[2] == 3 for f in pic.render())


def test_the_runner_still_uses_same_step_and_its_results_are_unchanged():
    from gambit_gym.bench import run

    a = run("GambitIHS-v0", "StdTS", horizon=12, replicates=3, seed=5, progress=False)
    envs = gym.make_vec("GambitIHS-v0", 3, vectorization_mode="vector_entry_point",
                        horizon=12, autoreset_mode="same_step")
    envs.reset(seed=5)
    regret = np.array([envs.step(a.actions[:, t])[4]["regret"] for t in range(12)]).T
    np.testing.assert_array_equal(regret, a.regret)
    # a horizon shorter than the run: every step still carries a decision and its regret
    short = run("GambitIHS-v0", "StdTS", horizon=12, replicates=3, seed=5, progress=False,
                env_kwargs={"horizon": 5})
    assert np.isfinite(short.regret).all() and short.regret.shape == (3, 12)
