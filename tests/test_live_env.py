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


@pytest.fixture(scope="module")
def live_default_parts(smollm2, minilm):
    """The shared model with the live env's own defaults (48 tokens, drafts LIVE_DRAFTS at a
    time, stopped at the first accepted one)."""
    from gambit_gym.envs.live import LIVE_MAX_NEW_TOKENS, LIVE_SPARE

    gen = smollm2(sampling=SamplingConfig(max_new_tokens=LIVE_MAX_NEW_TOKENS))
    gen.spare, gen.early_stop = LIVE_SPARE, True
    return gen, minilm


def test_live_step_passes_the_banks_quality_filter(live_default_parts):
    """A real live step on the CPU: the generator carries the bank's quality filter, and the
    delivered message passes it (no draft was kept unresolved)."""
    generator, embedder = live_default_parts
    env = _make(live_default_parts, noise_level=1)
    live = env.unwrapped._live
    quality = live.generator.quality
    assert quality is not None and quality.encoder is embedder  # MiniLM loaded once
    env.reset(seed=2)
    unresolved = live.generator.unresolved
    for action in (0, 3):
        _, _, _, _, info = env.step(action)
        assert quality.reasons([str(info["text"])]) == [None], info["text"]
    assert live.generator.unresolved == unresolved
    assert sum(live.generator.rejection_reasons.values()) == live.generator.rejections


def test_live_vector_env_writes_every_replicates_message_in_one_call(live_default_parts):
    generator, embedder = live_default_parts
    venv = gym.make_vec("GambitIHS-Live-v0", num_envs=3, vectorization_mode="vector_entry_point",
                        generator=generator, embedder=embedder, horizon=2, noise_sd=0.0)
    live = venv.unwrapped._live if hasattr(venv, "unwrapped") else venv._live
    calls = []
    inner = live.generator.generate

    def counting(prompts, seed):
        calls.append(len(prompts))
        return inner(prompts, seed)

    live.generator.generate = counting
    try:
        venv.reset(seed=5)
        _, rewards, _, _, info = venv.step(np.array([0, 2, 4]))
    finally:
        del live.generator.generate
    assert calls == [3]
    texts = [str(t) for t in info["text"]]
    assert len(set(texts)) == 3
    assert live.generator.quality.reasons(texts) == [None] * 3
    full = embedder.embed(texts)
    idx = [list(embedder.names).index(n) for n in info["embedding_names"][0]]
    assert np.allclose(info["embedding"], full[:, idx], atol=1e-4)
    assert np.isfinite(rewards).all()


def test_the_live_id_passes_the_shipped_checker(live_default_parts):
    """check_gambit_env, as a user would call it on the live id, with the real SmolLM2 and
    MiniLM (loaded once this session; the live env's own sampling defaults) passed as env
    kwargs and short rollouts (steps=2: each live step generates a message); its determinism
    check is skipped because the id is registered nondeterministic, and says so."""
    generator, embedder = live_default_parts
    ran = checks.check_gambit_env("GambitIHS-Live-v0", generator=generator, embedder=embedder,
                                  horizon=3, steps=2, verbose=False)
    assert [line.split(":")[0] for line in ran] == [
        "spaces", "gymnasium", "step types and info", "determinism", "invalid actions",
        "pickle"]
    assert ran[3] == "determinism: skipped (the id is registered nondeterministic)"


def test_live_filters_a_real_smollm2_message_as_the_unfiltered_env_scored_it(
        live_default_parts):
    """One real step per setting, same seed: the first draw is the unfiltered env's message,
    scored by the packaged classifier on the embedder's own MiniLM; ``block`` withholds it
    exactly when it is unsafe, ``redraw`` replaces it only then (all six categories count, so
    SmolLM2's frequent off-topic messages make a redraw likely)."""
    from gambit_gym.text.safety import MiniLMSafetyClassifier, quantize

    generator, embedder = live_default_parts
    infos = {}
    for setting in (None, "block", "redraw"):
        kwargs = {"safety_filter": setting, "max_redraws": 1} if setting == "redraw" else \
            {"safety_filter": setting}
        env = _make(live_default_parts, noise_sd=0.0, **kwargs)
        assert env.unwrapped._live.safety._encoder is embedder  # MiniLM loaded once
        env.reset(seed=8)
        infos[setting] = env.step(2)[4]
    plain, block, redraw = infos[None], infos["block"], infos["redraw"]
    scores = quantize(MiniLMSafetyClassifier(encoder=embedder).score([str(plain["text"])]))[0]
    np.testing.assert_array_equal(plain["safety"], scores)
    unsafe = bool(plain["unsafe"])
    assert plain["delivered"] and bool(plain["unsafe_delivered"]) == unsafe
    np.testing.assert_array_equal(block["safety"], plain["safety"])
    assert bool(block["delivered"]) != unsafe and not block["unsafe_delivered"]
    assert block["text"] == ("" if unsafe else plain["text"])
    assert redraw["redraws"] == int(unsafe)
    if not unsafe:
        assert redraw["text"] == plain["text"] and redraw["delivered"]
    else:
        assert bool(redraw["delivered"]) != bool(redraw["unsafe"])
        assert redraw["tokens"] > plain["tokens"]
    assert not redraw["unsafe_delivered"]
