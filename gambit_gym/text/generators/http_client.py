"""The HTTP client the server backends share: httpx (lazily imported) with a total deadline.

Retries, the deadline that also bounds a server trickling its reply, redirects kept on one
origin, and error bodies shortened without secrets.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

HTTPX_HINT = "pip install 'gambit-gym[llm]' (or pip install httpx)"
_MAX_REDIRECTS = 5
_MAX_RETRY_AFTER = 60.0


@dataclass
class HTTPConfig:
    """Network settings of the HTTP backends.

    Attributes:
        timeout: total seconds one request may take, from connecting to the last byte of the
            reply (a server that trickles its reply is cut off at this deadline, not after
            ``timeout`` seconds of silence).
        retries: further tries after a failed request (timeouts, connection errors, HTTP 429
            and 5xx; never other 4xx such as 401).
        backoff: seconds before the first retry, doubled on each further one (a 429's
            ``Retry-After`` is honoured up to 60 s).
        concurrency: requests in flight at once.
    """

    timeout: float = 60.0
    retries: int = 3
    backoff: float = 1.0
    concurrency: int = 4

    def __post_init__(self) -> None:
        from gambit_gym._validate import check_number, check_positive_int

        self.timeout = check_number("timeout", self.timeout, minimum=0.0, strict=True)
        self.backoff = check_number("backoff", self.backoff, minimum=0.0)
        self.retries = check_positive_int("retries", self.retries, minimum=0)
        self.concurrency = check_positive_int("concurrency", self.concurrency)


def _httpx() -> Any:
    """The ``httpx`` module, imported on first use so that ``import gambit_gym`` stays light."""
    try:
        import httpx
    except ImportError:
        raise ImportError(f"the HTTP generators need httpx: {HTTPX_HINT}") from None
    return httpx


class _Retry(Exception):
    """A failed try that may be retried (429, 5xx, timeout, connection error)."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def _deadline_backend(deadline: float) -> Any:
    """An ``httpcore`` network backend whose every connect, read and write ends by ``deadline``.

    httpx's timeouts are per operation: a server that sends one byte of its headers or body
    every few seconds never trips them. Each operation here gets at most the time left until the
    call's deadline (``time.monotonic()`` clock), and none starts after it, so one call is
    bounded in total, headers included.
    """
    import httpcore

    def left(timeout: float | None, exc: type[Exception]) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise exc("the request's total deadline has passed")
        return remaining if timeout is None else min(timeout, remaining)

    class Stream(httpcore.NetworkStream):
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self._inner.read(max_bytes, left(timeout, httpcore.ReadTimeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._inner.write(buffer, left(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self._inner.close()

        def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                      timeout: float | None = None) -> Any:
            return Stream(self._inner.start_tls(ssl_context, server_hostname,
                                                left(timeout, httpcore.ConnectTimeout)))

        def get_extra_info(self, info: str) -> Any:
            return self._inner.get_extra_info(info)

    class Backend(httpcore.NetworkBackend):
        def __init__(self) -> None:
            self._inner = httpcore.SyncBackend()

        def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                        local_address: str | None = None, socket_options: Any = None) -> Any:
            return Stream(self._inner.connect_tcp(host, port, left(timeout,
                                                                   httpcore.ConnectTimeout),
                                                  local_address, socket_options))

        def connect_unix_socket(self, path: str, timeout: float | None = None,
                                socket_options: Any = None) -> Any:
            return Stream(self._inner.connect_unix_socket(
                path, left(timeout, httpcore.ConnectTimeout), socket_options))

        def sleep(self, seconds: float) -> None:
            self._inner.sleep(seconds)

    return Backend()


def _transport(httpx: Any, deadline: float) -> Any:
    """An httpx transport (no proxies, no .netrc) whose network operations end by ``deadline``.

    httpx has no public hook for the network backend of its default transport; the pool's
    backend attribute is set where it exists, and otherwise the deadline is still enforced
    between received chunks (see :meth:`_HTTPGenerator._try`).
    """
    transport = httpx.HTTPTransport(trust_env=False)
    pool = getattr(transport, "_pool", None)
    if pool is not None and hasattr(pool, "_network_backend"):
        pool._network_backend = _deadline_backend(deadline)
    return transport


def _origin(url: Any) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)



def _error_detail(body: bytes) -> str:
    """The ``error.message`` of a JSON error reply, else the start of its text."""
    text = body.decode("utf-8", "replace")
    try:
        err = json.loads(text).get("error", text)
        if isinstance(err, dict):
            err = err.get("message", str(err))
        text = str(err)
    except (ValueError, AttributeError):
        pass
    return " ".join(text.split())[:200]
