"""Real local HTTP servers speaking the Ollama and OpenAI-compatible protocols, for tests.

Replies are deterministic functions of (prompt, seed), so builds against them are reproducible.
Run one as a script (``python tests/text_servers.py``) to print its URL and serve forever.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = ["bright", "steady", "fresh", "calm", "strong", "happy", "brisk", "gentle"]


def reply_text(prompt: str, seed: int) -> str:
    """A deterministic message with a preamble and trailing chatter to be cleaned."""
    h = int(hashlib.sha256(f"{prompt}|{seed}".encode()).hexdigest()[:8], 16)
    w1, w2 = WORDS[h % 8], WORDS[(h >> 3) % 8]
    loc = "at work" if "at work" in prompt else "at home" if "at home" in prompt else "out"
    return (f"Sure! Here is the message:\n\n\"You are {loc}, so take a {w1} walk of "
            f"{h % 50 + 5} minutes today. Every {w2} step counts toward your goal.\"\n\n"
            "I hope this helps!")


class FakeLLMServer:
    """A threaded HTTP server on 127.0.0.1 (port 0) with scriptable failures.

    Attributes:
        url: ``http://127.0.0.1:PORT``.
        requests: JSON bodies received (successful or not).
        headers: request headers received.
        fail_next: HTTP status codes to answer, one per request, before answering normally.
        delay: seconds to wait before answering.
        require_key: when set, requests without ``Authorization: Bearer <key>`` get 401.
        bad_replies: this many successful answers are a degenerate message ("ok ok"), which
            the generators' post-processing rejects and draws again.
        redirect_to: when set, every POST is answered ``307`` to this URL + the path.
        trickle: when > 0, the reply body is sent one byte every ``trickle`` seconds.
        trickle_headers: when > 0, the status line and headers are sent one byte every
            ``trickle_headers`` seconds (then the body at once).
        retry_after: ``Retry-After`` header value sent with 429 answers.
        reply: when set, ``reply(prompt, seed) -> text`` writes every successful answer
            instead of :func:`reply_text` (called under the server's lock, in arrival order).

    Successful answers report usage as the real servers do (the OpenAI ``usage`` block,
    Ollama's ``eval_count`` / ``prompt_eval_count``), counting words as tokens.

    A 401 answer echoes the ``Authorization`` header it got, as some real servers do
    ("Incorrect API key provided: sk-..."), so that tests can check the key is not repeated.
    """

    def __init__(self, delay: float = 0.0, require_key: str | None = None) -> None:
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.fail_next: list[int] = []
        self.delay = delay
        self.require_key = require_key
        self.bad_replies = 0
        self.redirect_to: str | None = None
        self.trickle = 0.0
        self.trickle_headers = 0.0
        self.retry_after: str | None = None
        self.reply = None
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    code = server.fail_next.pop(0) if server.fail_next else 200
                    bad = code == 200 and server.bad_replies > 0
                    server.bad_replies -= bad
                    scripted = None
                    if code == 200 and not bad and server.reply is not None:
                        prompt = body["prompt"] if "prompt" in body else \
                            body["messages"][-1]["content"]
                        seed = body["options"]["seed"] if "options" in body else body["seed"]
                        scripted = server.reply(prompt, seed)
                if server.delay:
                    time.sleep(server.delay)
                if server.redirect_to is not None:
                    self.send_response(307)
                    self.send_header("Location", server.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if server.require_key is not None:
                    auth = self.headers.get("Authorization", "")
                    if auth != f"Bearer {server.require_key}":
                        code = 401
                if code != 200:
                    auth = self.headers.get("Authorization", "")
                    self._send(code, {"error": {"message": f"invalid api key: {auth}"
                                                if code == 401 else "server exploded"}})
                    return
                if self.path == "/api/generate":
                    text = "ok ok" if bad else scripted if scripted is not None else \
                        reply_text(body["prompt"], body["options"]["seed"])
                    self._send(200, {"model": body["model"], "response": text, "done": True,
                                     "prompt_eval_count": len(body["prompt"].split()),
                                     "eval_count": len(text.split())})
                elif self.path == "/v1/chat/completions":
                    prompt = body["messages"][-1]["content"]
                    text = "ok ok" if bad else scripted if scripted is not None else \
                        reply_text(prompt, body["seed"])
                    words, prompt_words = len(text.split()), len(prompt.split())
                    self._send(200, {"choices": [{"index": 0, "message": {
                        "role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": prompt_words, "completion_tokens": words,
                                  "total_tokens": prompt_words + words}})
                else:
                    self._send(404, {"error": f"no route {self.path}"})

            def _send(self, code, obj):
                data = json.dumps(obj).encode()
                if server.trickle_headers > 0:
                    head = (f"HTTP/1.1 {code} OK\r\nContent-Type: application/json\r\n"
                            f"Content-Length: {len(data)}\r\n\r\n").encode()
                    try:
                        for i in range(len(head)):
                            self.wfile.write(head[i:i + 1])
                            self.wfile.flush()
                            time.sleep(server.trickle_headers)
                        self.wfile.write(data)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if code == 429 and server.retry_after is not None:
                        self.send_header("Retry-After", server.retry_after)
                    self.end_headers()
                    if server.trickle > 0:
                        for i in range(len(data)):
                            self.wfile.write(data[i:i + 1])
                            self.wfile.flush()
                            time.sleep(server.trickle)
                    else:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeLLMServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    import sys

    with FakeLLMServer(delay=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0) as s:
        print(s.url, flush=True)
        threading.Event().wait()
