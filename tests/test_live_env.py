"""GambitIHS-Live-v0 with the real packaged SmolLM2 generator and MiniLM embedder."""

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401
from gambit_gym.envs import checks

pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def live_parts():
    from gambit_gym.text.embedder import MiniLMStyleEmbedder
    from gambit_gym.text.generators import SamplingConfig, SmolLM2Generator

    generator = SmolLM2Generator(device="cpu", sampling=SamplingConfig(max_new_tokens=40))
    return generator, MiniLMStyleEmbedder(device="cpu")


@pytest.mark.slow
def test_live_env_generates_real_messages_deterministically(live_parts):
    generator, embedder = live_parts

    def make():
        return gym.make("GambitIHS-Live-v0", generator=generator, embedder=embedder,
                        horizon=3, noise_level=1)

    checks.check_gymnasium_contract(make())
    env = make()
    env.reset(seed=4)
    _, reward, _, _, info = env.step(1)
    assert len(info["text"].split()) >= 3, info["text"]
    assert info["embedding"].shape == (3,) and np.isfinite(info["embedding"]).all()
    assert type(reward) is float and np.isfinite(reward)
    # the live embedding is the embedder's own score of the text, in the working dims
    full = embedder.embed([info["text"]])[0]
    idx = [list(embedder.names).index(n) for n in info["embedding_names"]]
    assert np.allclose(info["embedding"], full[idx], atol=1e-4)
    again = make()
    again.reset(seed=4)
    _, reward2, _, _, info2 = again.step(1)
    assert info2["text"] == info["text"] and reward2 == pytest.approx(reward)
