"""The server backends: Ollama and OpenAI-compatible endpoints over :mod:`.http_client`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gambit_gym.text.generators.http_client import (
    _MAX_REDIRECTS,
    _MAX_RETRY_AFTER,
    HTTPConfig,
    _error_detail,
    _httpx,
    _origin,
    _Retry,
    _transport,
)
from gambit_gym.text.generators.interface import GenerationError, SamplingConfig, derive_seed
from gambit_gym.text.generators.redraw import BaseGenerator


class _HTTPGenerator(BaseGenerator):
    """Shared request logic: JSON POST with a total deadline, bounded retries, clear errors.

    Requests go through ``httpx`` with redirects handled here: a redirect to the same scheme,
    host and port (307/308, which keep the POST) is followed; one to any other origin is refused,
    so the ``Authorization`` header never reaches a host the user did not name. Error texts
    never carry the API key: a 401/403 reply's body is not shown, and any other body shown is
    cut to 200 characters with the key masked. Proxy variables and ``.netrc`` are not read
    (``trust_env=False``): the request goes to the base URL's host and nowhere else.
    """

    hint = ""

    def __init__(self, base_url: str, model: str, sampling: SamplingConfig | None,
                 http: HTTPConfig | None) -> None:
        super().__init__(sampling)
        if not isinstance(base_url, str) or not re.match(r"^https?://", base_url):
            raise ValueError(f"base URL must start with http:// or https://, got {base_url!r}")
        if "@" in base_url.split("/")[2]:
            raise ValueError("base URL must not hold credentials (user:password@host); give the "
                             "key through an environment variable (api_key_env)")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.http = http or HTTPConfig()
        self.retried = 0
        #: the endpoint's reported usage, summed over every request (``calls`` counts the
        #: replies that reported any): what the live env's ``info["tokens"]`` reads
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0}
        self._usage_lock = threading.Lock()

    def _headers(self) -> dict[str, str]:
        return {}

    def _secrets(self) -> list[str]:
        """Values that must never appear in an error (the API key)."""
        return []

    def _mask(self, text: str) -> str:
        for secret in self._secrets():
            if secret:
                text = text.replace(secret, "***")
        return text

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        httpx = _httpx()
        url = self.base_url + path
        headers = {"Content-Type": "application/json", **self._headers()}
        data = json.dumps(payload).encode()
        last = ""
        for attempt in range(self.http.retries + 1):
            try:
                body = self._try(httpx, url, headers, data)
            except _Retry as exc:
                last = exc.reason
                if attempt < self.http.retries:
                    self.retried += 1
                    wait = self.http.backoff * 2 ** attempt
                    if exc.wait is not None:
                        wait = max(wait, min(exc.wait, _MAX_RETRY_AFTER))
                    time.sleep(wait)
                continue
            try:
                return json.loads(body)
            except ValueError:
                raise GenerationError(
                    f"{self.name}: {url} answered with something that is not JSON: "
                    f"{self._mask(repr(body[:200]))}") from None
        raise GenerationError(
            f"{self.name}: request to {url} failed after {self.http.retries + 1} tries: {last}; "
            f"is the server running and reachable at {self.base_url}?{self.hint}"
        )

    def _try(self, httpx: Any, url: str, headers: dict[str, str], data: bytes) -> bytes:
        """One request (following same-origin redirects) within ``http.timeout`` seconds.

        Raises:
            _Retry: a failure worth retrying.
            GenerationError: any other failure.
        """
        limit = self.http.timeout
        deadline = time.monotonic() + limit
        too_slow = f"no complete answer within {limit:g} s (timeout)"
        target = httpx.URL(url)
        with httpx.Client(transport=_transport(httpx, deadline), follow_redirects=False,
                          trust_env=False) as client:
            for _ in range(_MAX_REDIRECTS + 1):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Retry(too_slow)
                try:
                    with client.stream("POST", target, content=data, headers=headers,
                                       timeout=httpx.Timeout(left)) as resp:
                        if resp.is_redirect:
                            target = self._redirect(httpx, target, resp)
                            continue
                        chunks = []
                        for chunk in resp.iter_raw():
                            chunks.append(chunk)
                            if time.monotonic() > deadline:
                                raise _Retry(too_slow)
                        body = b"".join(chunks)
                        status = resp.status_code
                        retry_after = resp.headers.get("Retry-After")
                except httpx.TimeoutException:
                    raise _Retry(too_slow) from None
                except httpx.TransportError as exc:
                    text = str(exc)
                    if isinstance(exc, httpx.ConnectError) and "refused" in text.lower():
                        raise _Retry("connection refused") from None
                    raise _Retry(f"connection failed ({type(exc).__name__}: "
                                 f"{self._mask(text)[:200]})") from None
                return self._check_status(url, status, body, retry_after)
        raise GenerationError(f"{self.name}: {url} redirected more than {_MAX_REDIRECTS} times")

    def _redirect(self, httpx: Any, target: Any, resp: Any) -> Any:
        """The next URL of a redirect, refused unless it is a POST-keeping same-origin one."""
        location = resp.headers.get("Location", "")
        nxt = target.join(location)
        if _origin(nxt) != _origin(target):
            raise GenerationError(
                f"{self.name}: {target} redirected to another host ({nxt.scheme}://{nxt.host}"
                f"{':' + str(nxt.port) if nxt.port else ''}); the request (and its API key) is "
                "not sent there. If that server is the right one, give its address as the base "
                "URL")
        if resp.status_code not in (307, 308):
            raise GenerationError(
                f"{self.name}: {target} answered HTTP {resp.status_code} (redirect to "
                f"{nxt.path}), which would turn the POST into a GET; give the final address as "
                "the base URL")
        return nxt

    def _check_status(self, url: str, status: int, body: bytes, retry_after: str | None) -> bytes:
        if 200 <= status < 300:
            return body
        if status in (401, 403):  # the body may echo the key: never shown
            raise GenerationError(f"{self.name}: {url} refused the request (HTTP {status}); "
                                  f"{self._auth_hint()}")
        detail = self._mask(_error_detail(body))
        if status == 429 or status >= 500:
            wait = None
            if retry_after is not None:
                with contextlib.suppress(ValueError):
                    wait = max(float(retry_after), 0.0)
            raise _Retry(f"HTTP {status}: {detail}", wait)
        raise GenerationError(
            f"{self.name}: {url} answered HTTP {status}: {detail}; check the model "
            f"name {self.model!r} and the base URL{self.hint}"
        )

    def _auth_hint(self) -> str:
        return "check the server's access settings"

    def _record_usage(self, prompt_tokens: Any, completion_tokens: Any) -> None:
        """Add one reply's reported token usage (ignored where the server reports none)."""
        if not isinstance(completion_tokens, int) or isinstance(completion_tokens, bool):
            return
        with self._usage_lock:
            self.usage["completion_tokens"] += completion_tokens
            if isinstance(prompt_tokens, int) and not isinstance(prompt_tokens, bool):
                self.usage["prompt_tokens"] += prompt_tokens
            self.usage["calls"] += 1

    def _one(self, prompt: str, seed: int) -> str:
        raise NotImplementedError

    def _draft(self, prompts: list[str], seed: int) -> list[str]:
        """One request per query, ``http.concurrency`` at a time, answers in query order."""
        seeds = [derive_seed(seed, i) for i in range(len(prompts))]
        out: list[str] = []
        with contextlib.ExitStack() as stack:
            mapper: Any = map
            if self.http.concurrency > 1 and len(prompts) > 1:
                mapper = stack.enter_context(ThreadPoolExecutor(self.http.concurrency)).map
            for text in mapper(self._one, prompts, seeds):  # in order, as they complete
                out.append(text)
                self._report(drafted=1)
        return out

    def _params(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url,
                "timeout": self.http.timeout, "retries": self.http.retries}




class OllamaGenerator(_HTTPGenerator):
    """An Ollama server (``POST /api/generate``, non-streaming, seeded per query).

    Query ``i`` of a call with seed ``s`` is sent with ``options.seed = derive_seed(s, i)``, so
    with a deterministic server the output is a function of (queries, seed).

    Args:
        model: the Ollama model name, e.g. ``"llama3.1:8b"``.
        base_url: the server, default ``http://127.0.0.1:11434``.
        sampling: sampling settings.
        http: timeouts, retries, concurrency.
    """

    name = "ollama"
    hint = " (start it with `ollama serve`, and `ollama pull MODEL` the model)"

    def __init__(self, model: str, base_url: str = "http://127.0.0.1:11434",
                 sampling: SamplingConfig | None = None, http: HTTPConfig | None = None) -> None:
        super().__init__(base_url, model, sampling, http)

    def _one(self, prompt: str, seed: int) -> str:
        payload: dict[str, Any] = {
            "model": self.model, "prompt": prompt, "stream": False,
            "options": {"seed": seed, "temperature": self.sampling.temperature,
                        "top_p": self.sampling.top_p,
                        "num_predict": self.sampling.max_new_tokens},
        }
        if self.system:
            payload["system"] = self.system
        reply = self._post("/api/generate", payload)
        if isinstance(reply, dict):  # Ollama reports eval_count / prompt_eval_count
            self._record_usage(reply.get("prompt_eval_count"), reply.get("eval_count"))
        if "response" not in reply:
            raise GenerationError(f"ollama: reply from {self.base_url} has no 'response' field"
                                  f": {str(reply)[:200]}")
        return str(reply["response"])


class OpenAICompatibleGenerator(_HTTPGenerator):
    """Any OpenAI-compatible chat endpoint (``POST {base_url}/chat/completions``).

    The API key is read from the environment variable named by ``api_key_env`` each time a
    request is made; it is never stored on the object, shown in ``repr``, metadata or errors.

    Args:
        model: the model name the endpoint expects.
        base_url: e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8000/v1``.
        api_key_env: name of the environment variable holding the key (None: no key sent).
        sampling: sampling settings.
        http: timeouts, retries, concurrency.
    """

    name = "openai"

    def __init__(self, model: str, base_url: str = "https://api.openai.com/v1",
                 api_key_env: str | None = "OPENAI_API_KEY",
                 sampling: SamplingConfig | None = None, http: HTTPConfig | None = None) -> None:
        super().__init__(base_url, model, sampling, http)
        self.api_key_env = api_key_env

    def _headers(self) -> dict[str, str]:
        if not self.api_key_env:
            return {}
        key = os.environ.get(self.api_key_env)
        if not key:
            raise GenerationError(
                f"openai: the environment variable {self.api_key_env!r} that should hold the "
                "API key is not set; export it, or pass api_key_env=None for a server without "
                "keys"
            )
        return {"Authorization": f"Bearer {key}"}

    def _secrets(self) -> list[str]:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return [key] if key else []

    def _auth_hint(self) -> str:
        if self.api_key_env:
            return f"check the API key in the environment variable {self.api_key_env!r}"
        return "the server wants an API key: pass api_key_env=NAME_OF_VARIABLE"

    def _one(self, prompt: str, seed: int) -> str:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        for user, assistant in self.few_shot:
            messages += [{"role": "user", "content": user},
                         {"role": "assistant", "content": assistant}]
        messages.append({"role": "user", "content": prompt})
        reply = self._post("/chat/completions", {
            "model": self.model, "messages": messages, "seed": seed,
            "temperature": self.sampling.temperature, "top_p": self.sampling.top_p,
            "max_tokens": self.sampling.max_new_tokens,
        })
        usage = reply.get("usage") if isinstance(reply, dict) else None
        if isinstance(usage, dict):  # the OpenAI usage block
            self._record_usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        try:
            return str(reply["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError):
            raise GenerationError(f"openai: reply from {self.base_url} has no "
                                  f"choices[0].message.content: {str(reply)[:200]}") from None

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "api_key_env": self.api_key_env}


# ----------------------------------------------------------------------------- factory
