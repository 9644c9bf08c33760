"""The OpenAI-compatible moderation client against a real HTTP server started by the test
(http.server in a thread): request shape, key handling, category mapping, batching, retries and
the errors a user sees when the server is down, refuses the key or answers nonsense.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from gambit_gym.text.moderation import ModerationError, ModerationSafetyScorer
from gambit_gym.text.safety import make_safety_scorer

KEY = "sk-test-SECRET-4815162342"


class ModerationServer:
    """A small moderation server: scores from words in each input, records every request.

    ``mode``: ``ok``; ``fail:N`` (HTTP 503 for the first N requests); ``garbage`` (not JSON);
    ``short`` (one result too few); ``echo401`` (HTTP 401 whose body repeats the key).
    """

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body,
                                       "auth": self.headers.get("Authorization")})
                if outer.mode.startswith("fail:") and len(outer.requests) <= int(
                        outer.mode[5:]):
                    return self._send(503, b'{"error": "overloaded"}')
                if outer.mode == "echo401":
                    return self._send(401, json.dumps({"error": f"bad key {KEY}"}).encode())
                if outer.mode == "garbage":
                    return self._send(200, b"<html>not json</html>")
                results = [outer.result(t) for t in body["input"]]
                if outer.mode == "short":
                    results = results[:-1]
                self._send(200, json.dumps({"id": "modr-1", "model": body.get("model"),
                                            "results": results}).encode())

            def _send(self, code, data):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @staticmethod
    def result(text: str) -> dict:
        t = text.lower()
        scores = {"harassment": 0.8 if "lazy" in t else 0.01,
                  "harassment/threatening": 0.02, "hate": 0.3 if "fat" in t else 0.0,
                  "hate/threatening": 0.0, "violence": 0.9 if "hurt you" in t else 0.05,
                  "self-harm": 0.0, "self-harm/intent": 0.0,
                  "self-harm/instructions": 0.7 if "ignore the pain" in t else 0.0,
                  "sexual": 0.0}
        return {"flagged": max(scores.values()) > 0.5, "categories": {},
                "category_scores": scores}

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_scores_are_mapped_batched_and_the_key_is_sent(monkeypatch):
    monkeypatch.setenv("GG_TEST_MOD_KEY", KEY)
    texts = ["you lazy fat thing", "walk today", "walk or I will hurt you",
             "ignore the pain and walk", "nice day"]
    with ModerationServer() as srv:
        scorer = ModerationSafetyScorer(srv.url, api_key_env="GG_TEST_MOD_KEY", batch_size=2)
        s = scorer.score(texts)
        reqs = srv.requests
    assert [r["path"] for r in reqs] == ["/v1/moderations"] * 3  # 2 + 2 + 1 inputs
    assert [r["body"]["input"] for r in reqs] == [texts[:2], texts[2:4], texts[4:]]
    assert all(r["auth"] == f"Bearer {KEY}" for r in reqs)
    assert reqs[0]["body"]["model"] == "omni-moderation-latest"
    assert s.shape == (5, 6) and s.dtype == np.float32
    # shaming = max(harassment, hate); threat = max(harassment/threatening, ..., violence)
    np.testing.assert_allclose(s[0], [0.8, 0.05, 0.0, 0.3, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(s[2, 1], 0.9, rtol=1e-6)
    np.testing.assert_allclose(s[3, 2], 0.7, rtol=1e-6)
    assert (s[:, 4:] == 0).all()  # no counterpart for medical claims and off-topic
    assert KEY not in json.dumps(scorer.metadata())


def test_spec_string_custom_mapping_and_no_key():
    with ModerationServer() as srv:
        scorer = make_safety_scorer(f"moderation:{srv.url}/v1", api_key_env=None, model=None,
                                    mapping={"off_topic": ["sexual"], "shaming": ["violence"]})
        s = scorer.score(["walk or I will hurt you"])
        assert srv.requests[0]["auth"] is None and "model" not in srv.requests[0]["body"]
    np.testing.assert_allclose(s, [[0.9, 0, 0, 0, 0, 0]], rtol=1e-6)


def test_retries_then_succeeds():
    with ModerationServer("fail:2") as srv:
        s = ModerationSafetyScorer(srv.url, api_key_env=None, retries=2).score(["lazy"])
        assert len(srv.requests) == 3
    assert s[0, 0] == pytest.approx(0.8)


def test_server_errors_name_the_url_and_never_leak_the_key(monkeypatch):
    monkeypatch.setenv("GG_TEST_MOD_KEY", KEY)
    with ModerationServer("echo401") as srv:
        with pytest.raises(ModerationError, match="HTTP 401.*GG_TEST_MOD_KEY") as err:
            ModerationSafetyScorer(srv.url, api_key_env="GG_TEST_MOD_KEY").score(["x"])
    assert KEY not in str(err.value)
    with ModerationServer("fail:99") as srv:
        with pytest.raises(ModerationError, match=r"after 2 attempt\(s\) \(HTTP 503") as err:
            ModerationSafetyScorer(srv.url, api_key_env="GG_TEST_MOD_KEY",
                                   retries=1).score(["x"])
    assert KEY not in str(err.value) and srv.url in str(err.value)
    with ModerationServer("garbage") as srv, pytest.raises(ModerationError,
                                                           match="OpenAI-compatible"):
        ModerationSafetyScorer(srv.url, api_key_env=None).score(["x"])
    with ModerationServer("short") as srv, pytest.raises(ModerationError,
                                                         match="1 results for 2 inputs"):
        ModerationSafetyScorer(srv.url, api_key_env=None).score(["x", "y"])


def test_server_down_and_missing_key(monkeypatch):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(ModerationError, match="server is running") as err:
        ModerationSafetyScorer(f"http://127.0.0.1:{port}", api_key_env=None, retries=1,
                               timeout=2).score(["x"])
    assert f"127.0.0.1:{port}/v1/moderations" in str(err.value)
    monkeypatch.delenv("GG_TEST_MOD_KEY_UNSET", raising=False)
    with pytest.raises(ModerationError, match="GG_TEST_MOD_KEY_UNSET.*is not set"):
        ModerationSafetyScorer("http://127.0.0.1:1", api_key_env="GG_TEST_MOD_KEY_UNSET"
                               ).score(["x"])
    with pytest.raises(ValueError, match="base_url must be a URL"):
        ModerationSafetyScorer("localhost")
