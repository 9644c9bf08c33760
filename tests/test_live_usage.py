"""GambitIHS-Live-v0 records what the endpoint reports: prompt and completion tokens, the time.

A real HTTP server started by the test (tests/text_servers.py, which reports usage as the
OpenAI and Ollama servers do) and the real MiniLM embedder.
"""

from __future__ import annotations

import gymnasium as gym
import pytest
from text_servers import FakeLLMServer, reply_text

import gambit_gym  # noqa: F401
from gambit_gym.envs.safety import CostModel
from gambit_gym.text.generators import OllamaGenerator, OpenAICompatibleGenerator

pytestmark = pytest.mark.slow  # the real MiniLM embedder


@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_live_env_reports_the_endpoints_usage_and_wall_time(minilm, kind):
    with FakeLLMServer(delay=0.05) as srv:
        gen = OpenAICompatibleGenerator("m", base_url=srv.url + "/v1", api_key_env=None) \
            if kind == "openai" else OllamaGenerator("m", base_url=srv.url)
        env = gym.make("GambitIHS-Live-v0", generator=gen, embedder=minilm, horizon=3,
                       cost_model=CostModel(price_per_1k_tokens=2.0,
                                            price_per_1k_prompt_tokens=0.25))
        env.reset(seed=0)
        for _ in range(3):
            seen = len(srv.requests)
            info = env.step(0)[4]
            # what the server sent for this step's requests (raw replies, before the
            # generator's cleaning; words count as tokens), every draft of the step included
            sent = sum(len(reply_text(*_query(kind, body)).split())
                       for body in srv.requests[seen:])
            # and the prompts' words it reported as input tokens
            read = sum(len(_query(kind, body)[0].split()) for body in srv.requests[seen:])
            assert info["tokens"] == sent > 0 and info["prompt_tokens"] == read > 0
            assert info["cost"] == pytest.approx(sent * 2.0 / 1000 + read * 0.25 / 1000)
            assert info["latency_s"] >= 0.05  # the server's delay, measured
            assert info["delivered"] and info["redraws"] == 0
        assert gen.usage["calls"] == len(srv.requests) >= 3


def _query(kind, body):
    if kind == "openai":
        return body["messages"][-1]["content"], body["seed"]
    return body["prompt"], body["options"]["seed"]
