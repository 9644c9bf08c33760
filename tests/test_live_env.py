"""GambitIHS-Live-v0 with the real packaged SmolLM2 generator and MiniLM embedder.

The models come from the session fixtures in conftest.py (each loaded once per test session).
"""

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401
from gambit_gym.envs import checks
from gambit_gym.text.generators import SamplingConfig

pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live_parts(smollm2, minilm):
    return smollm2(sampling=SamplingConfig(max_new_tokens=40)), minilm


def _make(live_parts, **kwargs):
    generator, embedder = live_parts
    return gym.make("GambitIHS-Live-v0", generator=generator, embedder=embedder, horizon=3,
                    **kwargs)


def test_live_env_generates_real_messages_deterministically(live_parts):
    _, embedder = live_parts
    checks.check_gymnasium_contract(_make(live_parts, noise_level=1))
    env = _make(live_parts, noise_level=1)
    env.reset(seed=4)
    _, reward, _, _, info = env.step(1)
    assert len(info["text"].split()) >= 3, info["text"]
    assert info["embedding"].shape == (3,) and np.isfinite(info["embedding"]).all()
    assert type(reward) is float and np.isfinite(reward)
    # the live embedding is the embedder's own score of the text, in the working dims
    full = embedder.embed([info["text"]])[0]
    idx = [list(embedder.names).index(n) for n in info["embedding_names"]]
    assert np.allclose(info["embedding"], full[idx], atol=1e-4)
    again = _make(live_parts, noise_level=1)
    again.reset(seed=4)
    _, reward2, _, _, info2 = again.step(1)
    assert info2["text"] == info["text"] and reward2 == pytest.approx(reward)


def test_live_reward_is_computed_from_the_live_messages_embedding(live_parts):
    """Noise-free, the reward is the outcome model applied to the embedder's scores of the
    generated text, not the reward of the bank message the same seed would have delivered."""
    _, embedder = live_parts
    env = _make(live_parts, noise_sd=0.0)
    bank_env = gym.make("GambitIHS-v0", noise_sd=0.0, horizon=3)
    obs, _ = env.reset(seed=11)
    bank_env.reset(seed=11)
    tables = env.unwrapped.tables
    for action in (0, 3, 4):
        context = int(env.unwrapped._context)
        _, reward, _, _, info = env.step(action)
        _, bank_reward, _, _, bank_info = bank_env.step(action)
        scores = np.asarray(embedder.embed([info["text"]]), dtype=np.float32)[0]
        names = list(embedder.names)
        z_true = scores[[names.index(n) for n in tables.true_names]]
        expected = float(tables.outcome.mean_reward(z_true[None], np.array([context]))[0])
        assert reward == pytest.approx(expected, abs=1e-4)
        assert info["text"] != bank_info["text"]
        assert abs(reward - bank_reward) > 1e-3, (reward, bank_reward)
