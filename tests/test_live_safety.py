"""The safety filter on GambitIHS-Live-v0: every generated message scored, block and redraw.

The messages come from a real local HTTP server (tests/text_servers.py) that answers with
scripted texts, so that which message is unsafe is known; the style embedder and the safety
classifier are the real packaged MiniLM ones (the session fixture, loaded once). The real
SmolLM2 path is in tests/test_live_env.py.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from text_servers import FakeLLMServer

import gambit_gym  # noqa: F401
from gambit_gym.envs.config import make_config
from gambit_gym.envs.dynamics import build_tables
from gambit_gym.text.generators import OpenAICompatibleGenerator
from gambit_gym.text.tokens import estimate_tokens

UNSAFE = "You are so lazy, and you will gain weight. Walk to the park now and take more steps."
SAFE = "Take a short walk around the block after lunch today. Every step counts toward your goal."
OUTCOME_KEYS = ("delivered", "redraws", "tokens", "prompt_tokens", "cost", "latency_s",
                "safety", "unsafe", "unsafe_delivered")


def test_the_live_oracle_is_the_filtered_oracle_of_the_scored_bank():
    """Live regret is measured against the bank's exact filtered values (the documented
    reference distribution of the same generator), the bank envs' oracle bit for bit."""
    for kwargs in ({"safety_filter": "block"}, {"safety_filter": "redraw", "max_redraws": 2},
                   {"unsafe_budget": 0.01}):
        live = build_tables(make_config("live", **kwargs))
        bank = build_tables(make_config("3d", **kwargs))
        assert np.array_equal(live.expected, bank.expected)
        assert np.array_equal(live.optimal_action, bank.optimal_action)
    plain = build_tables(make_config("live"))
    blocked = build_tables(make_config("live", safety_filter="block"))
    assert not np.array_equal(plain.expected, blocked.expected)  # the filter is in the oracle


def _make(srv, minilm, **kwargs):
    gen = OpenAICompatibleGenerator("m", base_url=srv.url + "/v1", api_key_env=None)
    return gym.make("GambitIHS-Live-v0", generator=gen, embedder=minilm, horizon=3,
                    noise_sd=0.0, **kwargs)


def _scores(minilm, text):
    from gambit_gym.text.safety import MiniLMSafetyClassifier, quantize

    return quantize(MiniLMSafetyClassifier(encoder=minilm).score([text]))[0]


@pytest.mark.slow
@pytest.mark.parametrize("setting", [None, "block", "redraw"])
def test_an_unsafe_live_message_under_each_filter(minilm, setting):
    kwargs = {} if setting is None else {"safety_filter": setting}
    if setting == "redraw":
        kwargs["max_redraws"] = 2
    with FakeLLMServer() as srv:
        srv.reply = lambda prompt, seed: UNSAFE
        env = _make(srv, minilm, **kwargs)
        env.reset(seed=3)
        c = int(env.unwrapped._context)
        _, reward, _, _, info = env.step(1)
        seeds = [body["seed"] for body in srv.requests]
    with FakeLLMServer() as plain_srv:  # the unfiltered env's draw, same seed
        plain_srv.reply = lambda prompt, seed: UNSAFE
        plain = _make(plain_srv, minilm)
        plain.reset(seed=3)
        plain.step(1)
        first_seed = plain_srv.requests[0]["seed"]
    assert all(k in info for k in OUTCOME_KEYS)
    np.testing.assert_array_equal(info["safety"], _scores(minilm, UNSAFE))
    assert info["unsafe"] and info["safety"][0] == 1.0  # shaming: the rule's "so lazy"
    assert seeds[0] == first_seed  # the first draw is the unfiltered env's
    tables = env.unwrapped.tables
    bank = gym.make("GambitIHS-v0", **kwargs).unwrapped.tables
    assert info["expected_reward"] == bank.expected[c, 1]
    assert info["regret"] == bank.regret[c, 1]
    words = len(UNSAFE.split())  # the server counts words as tokens
    if setting is None:
        assert info["delivered"] and info["unsafe_delivered"] and info["redraws"] == 0
        assert info["text"] == UNSAFE and len(seeds) == 1
        return
    # blocked (at once, or after every redraw): the no-message outcome of the bank envs
    assert not info["delivered"] and not info["unsafe_delivered"]
    assert info["text"] == "" and not info["embedding"].any()
    assert reward == pytest.approx(tables.row_reward[tables.safety.none_rows[c]])
    n = 3 if setting == "redraw" else 1
    assert info["redraws"] == n - 1 and len(seeds) == n == len(set(seeds))
    assert info["tokens"] == n * words


@pytest.mark.slow
def test_a_redraw_delivers_the_next_safe_message(minilm):
    from gambit_gym.envs.safety import CostModel

    replies = iter([UNSAFE, SAFE])
    with FakeLLMServer() as srv:
        srv.reply = lambda prompt, seed: next(replies)
        env = _make(srv, minilm, safety_filter="redraw",
                    cost_model=CostModel(price_per_1k_tokens=2.0, price_per_1k_prompt_tokens=0.5))
        env.reset(seed=5)
        c = int(env.unwrapped._context)
        _, reward, _, _, info = env.step(0)
        assert len(srv.requests) == 2
        # what the server reported for the two requests (it counts the prompt's words)
        prompt_words = sum(len(b["messages"][-1]["content"].split()) for b in srv.requests)
    assert info["redraws"] == 1 and info["delivered"] and not info["unsafe"]
    assert info["text"] == SAFE
    np.testing.assert_array_equal(info["safety"], _scores(minilm, SAFE))
    tokens = len(UNSAFE.split()) + len(SAFE.split())
    assert info["tokens"] == tokens and info["prompt_tokens"] == prompt_words
    assert info["cost"] == pytest.approx(tokens * 2.0 / 1000 + prompt_words * 0.5 / 1000)
    tables = env.unwrapped.tables
    names = list(minilm.names)
    z = np.asarray(minilm.embed([SAFE]), dtype=np.float32)[0]
    true = z[[names.index(n) for n in tables.true_names]]
    assert reward == pytest.approx(float(tables.outcome.mean_reward(true[None],
                                                                    np.array([c]))[0]), abs=1e-4)


@pytest.mark.slow
def test_the_live_vector_env_batches_its_redraws(minilm):
    """Replicates sent prompt 0 always get an unsafe message: they are redrawn together, one
    generate call per round for just them, and blocked after the last redraw."""
    with FakeLLMServer() as srv:
        gen = OpenAICompatibleGenerator("m", base_url=srv.url + "/v1", api_key_env=None)
        venv = gym.make_vec("GambitIHS-Live-v0", num_envs=4,
                            vectorization_mode="vector_entry_point", generator=gen,
                            embedder=minilm, horizon=2, noise_sd=0.0, safety_filter="redraw",
                            max_redraws=2)
        live = venv.unwrapped._live if hasattr(venv, "unwrapped") else venv._live
        arm0 = {str(p) for p in live.tables.prompt_texts[0]}
        srv.reply = lambda prompt, seed: UNSAFE if prompt in arm0 else SAFE
        calls = []
        inner = gen.generate

        def counting(prompts, seed):
            calls.append(len(prompts))
            return inner(prompts, seed)

        gen.generate = counting
        venv.reset(seed=7)
        _, rewards, _, _, info = venv.step(np.array([0, 1, 0, 2]))
    assert calls == [4, 2, 2]
    np.testing.assert_array_equal(info["redraws"], [2, 0, 2, 0])
    np.testing.assert_array_equal(info["delivered"], [False, True, False, True])
    np.testing.assert_array_equal(info["unsafe"], [True, False, True, False])
    assert not info["unsafe_delivered"].any()
    assert [str(t) for t in info["text"]] == ["", SAFE, "", SAFE]
    assert info["safety"].shape == (4, 6)
    # a batch's usage is not split by replicate: each message's estimated length
    unsafe_n, safe_n = (int(n) for n in estimate_tokens([UNSAFE, SAFE]))
    np.testing.assert_array_equal(info["tokens"], [3 * unsafe_n, safe_n, 3 * unsafe_n, safe_n])
    # and each query's stored input tokens, once per draw
    prompt_len = live.tables.safety.prompt_tokens[[0, 1, 0, 2], info["context_id"]]
    np.testing.assert_array_equal(info["prompt_tokens"], prompt_len * [3, 1, 3, 1])
