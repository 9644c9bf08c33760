"""The HTTP generators against real local servers that misbehave as hostile or broken ones do.

Each server is a real HTTP server on 127.0.0.1 started by the test (tests/text_servers.py):
a redirect to another port, a 401 whose body echoes the key, a reply trickled a byte at a time,
429 then success. The API key must never reach another host or appear in an error, a repr, the
metadata, or a bank written with the generator.
"""

from __future__ import annotations

import time

import pytest
from text_servers import FakeLLMServer

from gambit_gym.text.generators import (
    BaseGenerator,
    GenerationError,
    HTTPConfig,
    OllamaGenerator,
    OpenAICompatibleGenerator,
    SamplingConfig,
)

SECRET = "sk-test-SECRET-5f3a9c0e11"
HOME = "Right now the user is at home."


def _http(**kw):
    return HTTPConfig(**{"timeout": 5, "retries": 2, "backoff": 0.01, "concurrency": 1, **kw})


def _openai(url, **kw):
    return OpenAICompatibleGenerator("m", base_url=url + "/v1", api_key_env="GG_HTTP_KEY",
                                     http=_http(**kw))


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("GG_HTTP_KEY", SECRET)
    return SECRET


def _no_secret(*texts):
    for text in texts:
        assert SECRET not in str(text)


# ------------------------------------------------------------------ redirects
def test_redirect_to_another_port_is_refused_and_the_key_stays_home(key):
    with FakeLLMServer() as other, FakeLLMServer() as first:
        first.redirect_to = other.url
        gen = _openai(first.url)
        with pytest.raises(GenerationError, match=r"redirected to another host .*not sent there"
                           ) as info:
            gen.generate([HOME], seed=0)
        assert other.requests == [] and other.headers == []
        assert first.headers[0]["Authorization"] == f"Bearer {SECRET}"
        assert len(first.requests) == 1  # not retried
        _no_secret(info.value, repr(gen), gen.metadata())


def test_same_origin_307_is_followed(key):
    with FakeLLMServer() as srv:
        # the redirect goes to the same server: follow it once, then answer normally
        srv.redirect_to = srv.url
        original = srv.requests

        def clear_after_first():
            while not original:
                time.sleep(0.001)
            srv.redirect_to = None

        import threading

        t = threading.Thread(target=clear_after_first)
        t.start()
        out = _openai(srv.url).generate([HOME], seed=0)
        t.join()
        assert out[0].startswith("You are at home")
        assert all(h["Authorization"] == f"Bearer {SECRET}" for h in srv.headers)


# ------------------------------------------------------------------ errors carry no key
def test_401_body_echoing_the_key_is_not_shown(key, monkeypatch):
    with FakeLLMServer(require_key="the-right-one") as srv:
        gen = _openai(srv.url)
        with pytest.raises(GenerationError, match=r"HTTP 401.*GG_HTTP_KEY") as info:
            gen.generate([HOME], seed=0)
        assert len(srv.requests) == 1  # a 401 is not retried
        _no_secret(info.value, repr(gen), gen.metadata())


@pytest.mark.parametrize("url, pattern", [
    ("http://user:sk-pw@127.0.0.1:9/v1", r"must not hold credentials"),
    ("ftp://127.0.0.1/v1", r"must start with http:// or https://"),
    (None, r"must start with http:// or https://"),
])
def test_bad_base_urls(url, pattern):
    with pytest.raises(ValueError, match=pattern):
        OpenAICompatibleGenerator("m", base_url=url)


# ------------------------------------------------------------------ total deadline
def test_trickling_reply_is_cut_at_the_total_deadline():
    with FakeLLMServer() as srv:
        srv.trickle = 0.05  # a ~300-byte reply would take ~15 s
        gen = OllamaGenerator("tiny", base_url=srv.url, http=_http(timeout=0.8, retries=1))
        start = time.monotonic()
        with pytest.raises(GenerationError, match=r"failed after 2 tries: no complete answer "
                                                  r"within 0.8 s"):
            gen.generate([HOME], seed=0)
        took = time.monotonic() - start
        assert took < 2 * 0.8 + 1.5, f"a trickling server held the call {took:.1f} s"


def test_trickling_headers_are_cut_at_the_total_deadline():
    with FakeLLMServer() as srv:
        srv.trickle_headers = 0.05  # ~80 header bytes: ~4 s, never 0.05 s of silence
        gen = OllamaGenerator("tiny", base_url=srv.url, http=_http(timeout=0.8, retries=0))
        start = time.monotonic()
        with pytest.raises(GenerationError, match=r"no complete answer within 0.8 s"):
            gen.generate([HOME], seed=0)
        took = time.monotonic() - start
        assert took < 0.8 + 1.0, f"a server trickling its headers held the call {took:.1f} s"


def test_a_slow_but_steady_reply_within_the_deadline_is_read():
    with FakeLLMServer() as srv:
        srv.trickle_headers = 0.002
        gen = OllamaGenerator("tiny", base_url=srv.url, http=_http(timeout=5, retries=0))
        assert gen.generate([HOME], seed=0)[0].startswith("You are at home")


# ------------------------------------------------------------------ retries
@pytest.mark.parametrize("fails, retries, tries, ok", [
    ([429], 2, 2, True),
    ([429, 503], 2, 3, True),
    ([500, 502, 503], 2, 3, False),
    ([404], 3, 1, False),   # other 4xx: not retried
    ([400], 3, 1, False),
])
def test_retries_only_429_and_5xx(fails, retries, tries, ok):
    with FakeLLMServer() as srv:
        srv.fail_next = list(fails)
        gen = OllamaGenerator("tiny", base_url=srv.url, http=_http(retries=retries))
        if ok:
            assert gen.generate([HOME], seed=0)[0].startswith("You are at home")
        else:
            with pytest.raises(GenerationError):
                gen.generate([HOME], seed=0)
        assert len(srv.requests) == tries


def test_retry_after_of_a_429_is_honoured():
    with FakeLLMServer() as srv:
        srv.fail_next, srv.retry_after = [429], "0.6"
        gen = OllamaGenerator("tiny", base_url=srv.url, http=_http())
        start = time.monotonic()
        gen.generate([HOME], seed=0)
        assert time.monotonic() - start >= 0.6 and gen.retried == 1


# ------------------------------------------------------------------ settings
@pytest.mark.parametrize("kwargs, pattern", [
    ({"timeout": 0}, r"timeout must be a finite number > 0"),
    ({"timeout": True}, r"timeout must be a finite number"),
    ({"timeout": float("inf")}, r"timeout must be a finite number"),
    ({"retries": -1}, r"retries must be an integer >= 0"),
    ({"retries": 1.5}, r"retries must be an integer >= 0"),
    ({"concurrency": 0}, r"concurrency must be a positive integer"),
    ({"backoff": "1"}, r"backoff must be a finite number >= 0"),
])
def test_http_config_refuses(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        HTTPConfig(**kwargs)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"temperature": True}, r"temperature must be a finite number > 0"),
    ({"top_p": 0}, r"top_p must be a finite number > 0 and <= 1"),
    ({"max_attempts": 2.0}, r"max_attempts must be a positive integer"),
    ({"max_new_tokens": 0}, r"max_new_tokens must be a positive integer"),
    ({"system": 3}, r"system must be a string or None"),
])
def test_sampling_config_refuses(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        SamplingConfig(**kwargs)


# ------------------------------------------------------------------ no canned text
class _Scripted(BaseGenerator):
    """A backend whose drafts are given (a stand-in for a model that returns them)."""

    name = "scripted"

    def __init__(self, drafts, max_attempts=3):
        super().__init__(SamplingConfig(max_attempts=max_attempts))
        self.drafts = drafts

    def _draft(self, prompts, seed):
        return [self.drafts(p) for p in prompts]


def test_all_drafts_empty_raises_instead_of_a_canned_message():
    gen = _Scripted(lambda p: "")
    with pytest.raises(GenerationError, match=r"no usable message for query 0 after 3 drafts"):
        gen.generate(["q"], seed=0)


def test_all_drafts_rejected_keeps_a_real_draft_and_counts_it():
    gen = _Scripted(lambda p: "walk walk walk walk walk walk")
    out = gen.generate(["q", "r"], seed=0)
    assert out == ["walk walk walk walk walk walk"] * 2
    assert gen.unresolved == 2 and gen.rejections == 6


# ------------------------------------------------------------------ a bank built through it
def test_bank_metadata_has_no_key(key, tmp_path):
    import json

    from gambit_gym.text.builder import build_bank, read_texts_file
    from gambit_gym.text.prompts import load_prompt_library

    with FakeLLMServer(require_key=SECRET) as srv:
        gen = _openai(srv.url)
        out = tmp_path / "texts.parquet"
        build_bank(gen, None, load_prompt_library(), per_pair=1, out=out, seed=0,
                   prompt_ids=[0], context_ids=[0], texts_only=True, progress=False)
    texts, *_, meta = read_texts_file(out)
    assert len(texts) == 1 and meta["generator"]["api_key_env"] == "GG_HTTP_KEY"
    _no_secret(json.dumps(meta))
    data = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert SECRET.encode() not in data
