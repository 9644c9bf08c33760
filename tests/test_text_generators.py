import os
import socket
import time

import pytest
from text_servers import FakeLLMServer

from gambit_gym.text.generators import (
    GenerationError,
    HTTPConfig,
    OllamaGenerator,
    OpenAICompatibleGenerator,
    SamplingConfig,
    clean_message,
    is_degenerate,
    make_generator,
)

FAST = HTTPConfig(timeout=5, retries=2, backoff=0.01, concurrency=2)

CLEAN_CASES = [
    ("Sure! Here is the message:\n\n\"Take a short walk at lunch today. You will feel great.\"",
     "Take a short walk at lunch today. You will feel great."),
    ("Here's a mildly optimistic message: Walk a little more today. Good things are coming!",
     "Walk a little more today. Good things are coming!"),
    ("Message: Get up and walk around the block now. Your legs will thank you.\n\n"
     "Note: this message is optimistic.",
     "Get up and walk around the block now. Your legs will thank you."),
    ("Take the stairs today and add a few steps. You can do it! I hope this helps.",
     "Take the stairs today and add a few steps. You can do it!"),
    ("Walk ten minutes after dinner tonight. It adds up fast. Every step you take",
     "Walk ten minutes after dinner tonight. It adds up fast."),
    ("Yesterday the user walked between 0 and 4,999 steps. Go for a walk now, it is sunny "
     "and lovely outside.", "Go for a walk now, it is sunny and lovely outside."),
    ("", ""),
]


@pytest.mark.parametrize("raw,expected", CLEAN_CASES)
def test_clean_message_table(raw, expected):
    echo = ["Yesterday the user walked between 0 and 4,999 steps. Right now they are at home."]
    assert clean_message(raw, echo) == expected


@pytest.mark.parametrize("text,bad", [
    ("Walk.", True),
    ("walk walk walk walk walk walk walk walk walk walk walk walk", True),
    ("Go go go now. Go go go now. Go go go now. Go go go now.", True),
    ("<|im_start|> assistant walk more today please friend", True),
    ("Take a ten minute walk after lunch; you will feel better.", False),
])
def test_is_degenerate_table(text, bad):
    assert is_degenerate(text) is bad


def test_ollama_generates_cleaned_and_deterministic():
    with FakeLLMServer() as srv:
        gen = OllamaGenerator("tiny", base_url=srv.url, http=FAST,
                              sampling=SamplingConfig(system="be nice"))
        prompts = ["Right now the user is at work. Write.", "Right now the user is at home."]
        a = gen.generate(prompts, seed=3)
        b = gen.generate(prompts, seed=3)
        c = gen.generate(prompts, seed=4)
        assert a == b and a != c
        assert a[0].startswith("You are at work, so take a") and "hope" not in a[0]
        body = srv.requests[0]
        assert body["system"] == "be nice" and body["stream"] is False
        assert body["options"]["num_predict"] == gen.sampling.max_new_tokens
        meta = gen.metadata()
        assert meta["name"] == "ollama" and meta["model"] == "tiny"


def test_ollama_retries_server_errors_then_succeeds():
    with FakeLLMServer() as srv:
        srv.fail_next = [500, 503]
        gen = OllamaGenerator("tiny", base_url=srv.url, http=HTTPConfig(
            timeout=5, retries=2, backoff=0.01, concurrency=1))
        out = gen.generate(["Right now the user is out."], seed=0)
        assert len(out) == 1 and gen.retried == 2 and len(srv.requests) == 3


def test_ollama_persistent_500_is_a_clear_error():
    with FakeLLMServer() as srv:
        srv.fail_next = [500] * 10
        gen = OllamaGenerator("tiny", base_url=srv.url, http=HTTPConfig(
            timeout=5, retries=1, backoff=0.01, concurrency=1))
        with pytest.raises(GenerationError, match=r"failed after 2 tries: HTTP 500.*exploded"):
            gen.generate(["x"], seed=0)


def test_timeout_is_retried_then_reported():
    with FakeLLMServer(delay=1.0) as srv:
        gen = OllamaGenerator("tiny", base_url=srv.url, http=HTTPConfig(
            timeout=0.2, retries=1, backoff=0.01, concurrency=1))
        t = time.perf_counter()
        with pytest.raises(GenerationError, match="timeout"):
            gen.generate(["x"], seed=0)
        assert time.perf_counter() - t < 3


def test_connection_refused_names_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    gen = OllamaGenerator("tiny", base_url=url, http=HTTPConfig(
        timeout=1, retries=1, backoff=0.01, concurrency=1))
    with pytest.raises(GenerationError, match=rf"connection refused.*{url}.*ollama serve"):
        gen.generate(["x"], seed=0)


def test_openai_compatible_sends_key_and_never_leaks_it(monkeypatch):
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("GG_TEST_KEY", secret)
    with FakeLLMServer(require_key=secret) as srv:
        gen = OpenAICompatibleGenerator("m", base_url=srv.url + "/v1", api_key_env="GG_TEST_KEY",
                                        http=FAST)
        out = gen.generate(["Right now the user is at home."], seed=1)
        assert out[0].startswith("You are at home")
        assert srv.headers[0]["Authorization"] == f"Bearer {secret}"
        assert secret not in repr(gen) and secret not in str(gen.metadata())
        assert not any(secret in str(v) for v in vars(gen).values())
        # a wrong key: 401, not retried, and the message names the variable, not the key (the
        # server's 401 body echoes the key it got, so the body is not shown)
        monkeypatch.setenv("GG_TEST_KEY", "sk-wrong-key-98765")
        n = len(srv.requests)
        with pytest.raises(GenerationError) as info:
            gen.generate(["x"], seed=1)
        msg = str(info.value)
        assert "401" in msg and "GG_TEST_KEY" in msg and "invalid api key" not in msg
        assert "sk-wrong-key-98765" not in msg and secret not in msg
        assert len(srv.requests) == n + 1


def test_openai_missing_key_variable(monkeypatch):
    monkeypatch.delenv("GG_MISSING_KEY", raising=False)
    gen = OpenAICompatibleGenerator("m", base_url="http://127.0.0.1:9/v1",
                                    api_key_env="GG_MISSING_KEY", http=FAST)
    with pytest.raises(GenerationError, match="GG_MISSING_KEY.*not set"):
        gen.generate(["x"], seed=0)


def test_rejected_drafts_are_redrawn_and_counted():
    with FakeLLMServer() as srv:
        gen = OllamaGenerator("tiny", base_url=srv.url, http=FAST)
        calls = {"n": 0}
        real = gen._draft

        def flaky(prompts, seed):
            calls["n"] += 1
            return ["ok ok" for _ in prompts] if calls["n"] == 1 else real(prompts, seed)

        gen._draft = flaky
        out = gen.generate(["Right now the user is at home.", "at work"], seed=0)
        assert gen.rejections == 2 and all(len(m.split()) > 5 for m in out)
        assert gen.rejection_reasons == {"empty": 2}  # counted by reason, summing to the total


@pytest.mark.parametrize("concurrency", [1, 3])
def test_progress_reports_every_draft_and_redraw(concurrency):
    with FakeLLMServer() as srv:
        srv.bad_replies = 3
        gen = OllamaGenerator("tiny", base_url=srv.url,
                              http=HTTPConfig(timeout=5, concurrency=concurrency))
        events = []
        gen.on_progress = lambda drafted, queued: events.append((drafted, queued))
        out = gen.generate([f"Right now the user is at home ({i})." for i in range(6)], seed=0)
        n_requests = len(srv.requests)
    assert gen.rejections == 3 and not any(is_degenerate(m) for m in out)
    # the first attempt queues all six queries, the second the three rejected ones
    assert [q for _, q in events if q] == [6, 3]
    # each draft is reported as it comes back, not once per attempt
    assert [d for d, _ in events if d] == [1] * 9 == [1] * n_requests


@pytest.mark.parametrize("spec,kwargs,err,pattern", [
    ("gpt", {}, ValueError, "unknown generator"),
    ("ollama:", {}, ValueError, "unknown generator"),
    ("hf:/no/such/model", {}, FileNotFoundError, "does not exist"),
    ("ollama:m", {"base_url": "127.0.0.1:11434"}, ValueError, "http://"),
])
def test_make_generator_errors(spec, kwargs, err, pattern):
    with pytest.raises(err, match=pattern):
        make_generator(spec, **kwargs)


def test_sampling_config_validation():
    for kwargs in ({"max_new_tokens": 0}, {"temperature": 0}, {"top_p": 1.5},
                   {"max_attempts": 0}):
        with pytest.raises(ValueError):
            SamplingConfig(**kwargs)


@pytest.mark.slow
def test_smollm2_real_model_generates_messages(smollm2):
    from gambit_gym.text.prompts import load_prompt_library

    lib = load_prompt_library()
    gen = smollm2(batch_size=2, sampling=SamplingConfig(max_new_tokens=40, system=lib.system))
    prompts = [lib.render(0, 0), lib.render(1, 5)]
    events = []
    gen.on_progress = lambda drafted, queued: events.append((drafted, queued))
    out = gen.generate(prompts, seed=7)
    assert len(out) == 2 and all(isinstance(m, str) and m for m in out)
    assert all(not is_degenerate(m) or gen.unresolved for m in out)
    drafted, queued = (sum(e[i] for e in events) for i in (0, 1))
    assert drafted == queued >= 2 and queued - 2 <= gen.rejections
    meta = gen.metadata()
    assert meta["model"] == "SmolLM2-135M-Instruct" and "transformers_version" in meta
    assert os.environ.get("OPENAI_API_KEY", "unset-key") not in str(meta)


def test_hf_generator_records_the_dtype_it_runs_in():
    """"auto" is bfloat16 on CUDA and float32 on a CPU: the metadata (a build's resume
    fingerprint) holds the resolved dtype, so a CPU build is not resumed on a GPU in bfloat16."""
    from gambit_gym.text.generators import SmolLM2Generator

    assert SmolLM2Generator(device="cpu").metadata()["dtype"] == "float32"
    assert SmolLM2Generator(device="cpu", dtype="bfloat16").metadata()["dtype"] == "bfloat16"
    with pytest.raises(ValueError, match="dtype must be one of"):
        SmolLM2Generator(device="cpu", dtype="fp32")
    # so a build started with "auto" on a CPU resumes with --dtype float32 (e.g. on a GPU),
    # and not in bfloat16
    from gambit_gym.text.builder import output_settings

    auto = output_settings(SmolLM2Generator(device="cpu").metadata())
    assert auto == output_settings(SmolLM2Generator(device="cpu", dtype="float32").metadata())
    assert auto != output_settings(SmolLM2Generator(device="cpu", dtype="bfloat16").metadata())
