"""Safety scores from an OpenAI-compatible moderation endpoint (``POST /v1/moderations``).

The server answers ``{"results": [{"category_scores": {name: score, ...}}, ...]}``, one result
per input, in order. Its categories are mapped onto ours by :data:`DEFAULT_MAPPING` (a category
of ours takes the largest score of the endpoint categories mapped to it; one with no mapped
category scores 0). The OpenAI moderation categories have no counterpart for medical claims or
off-topic messages and only a loose one for weight stigma (``hate``), so this scorer
complements the offline classifier rather than replacing it; pass ``mapping=`` for servers
with other categories.

The API key is read from the environment variable named by ``api_key_env`` at each request,
sent only in the ``Authorization`` header, and masked out of every error message. Network
failures, HTTP errors and malformed answers raise :class:`ModerationError` naming the URL
and the fix. Only the standard library is used.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import numpy as np

from gambit_gym.text.bank import SAFETY_CATEGORIES

#: Our category -> the OpenAI moderation categories whose largest score it takes.
DEFAULT_MAPPING: dict[str, tuple[str, ...]] = {
    "shaming": ("harassment", "hate"),
    "threat": ("harassment/threatening", "hate/threatening", "violence"),
    "unsafe_exertion": ("self-harm", "self-harm/intent", "self-harm/instructions"),
    "weight_stigma": ("hate",),
    "medical_claim": (),
    "off_topic": (),
}


class ModerationError(RuntimeError):
    """The moderation endpoint could not be reached or gave an unusable answer."""


class ModerationSafetyScorer:
    """Safety scores from an OpenAI-compatible moderation endpoint.

    Args:
        base_url: the server, e.g. ``https://api.openai.com`` or ``http://127.0.0.1:8000``
            (``/v1/moderations`` is appended unless the URL already ends with it).
        model: sent as ``model`` (None: not sent).
        api_key_env: environment variable holding the key (None: no key sent).
        mapping: our category -> endpoint categories (default :data:`DEFAULT_MAPPING`).
        thresholds: ``{category: threshold}``, default 0.5 each.
        timeout: seconds per request.
        retries: extra attempts after a network error, HTTP 429 or 5xx.
        batch_size: texts per request.
    """

    categories: tuple[str, ...] = SAFETY_CATEGORIES
    name = "openai-compatible-moderation"

    def __init__(self, base_url: str, model: str | None = "omni-moderation-latest",
                 api_key_env: str | None = "OPENAI_API_KEY",
                 mapping: dict[str, Sequence[str]] | None = None,
                 thresholds: dict[str, float] | None = None, timeout: float = 30.0,
                 retries: int = 2, batch_size: int = 32) -> None:
        if not base_url or "://" not in base_url:
            raise ValueError(f"moderation: base_url must be a URL such as "
                             f"http://127.0.0.1:8000, got {base_url!r}")
        url = base_url.rstrip("/")
        if not url.endswith("/moderations"):
            url += "/moderations" if url.endswith("/v1") else "/v1/moderations"
        self.url = url
        self.model = model
        self.api_key_env = api_key_env
        mp = {c: tuple(v) for c, v in (mapping or DEFAULT_MAPPING).items()}
        unknown = sorted(set(mp) - set(SAFETY_CATEGORIES))
        if unknown:
            raise ValueError(f"moderation: mapping has unknown categories {unknown}; use "
                             f"{list(SAFETY_CATEGORIES)}")
        self.mapping = {c: mp.get(c, ()) for c in SAFETY_CATEGORIES}
        self.thresholds = {c: 0.5 for c in SAFETY_CATEGORIES}
        self.thresholds.update(thresholds or {})
        if timeout <= 0 or retries < 0 or batch_size < 1:
            raise ValueError("moderation: timeout must be > 0, retries >= 0, batch_size >= 1")
        self.timeout, self.retries, self.batch_size = float(timeout), int(retries), batch_size

    # -------------------------------------------------------------- secrets
    def _key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ModerationError(
                f"moderation: the environment variable {self.api_key_env!r} that should hold "
                "the API key is not set; export it, or pass api_key_env=None for a server "
                "without keys")
        return key

    def _mask(self, text: str) -> str:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return text.replace(key, "***") if key else text

    # -------------------------------------------------------------- requests
    def _post(self, texts: list[str]) -> list[dict[str, Any]]:
        payload: dict[str, Any] = {"input": texts}
        if self.model:
            payload["model"] = self.model
        headers = {"Content-Type": "application/json"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(payload).encode()
        last = ""
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                    body = resp.read()
                break
            except urllib.error.HTTPError as exc:
                detail = self._mask(exc.read(300).decode("utf-8", "replace"))
                if exc.code in (401, 403):
                    raise ModerationError(
                        f"moderation: {self.url} refused the request (HTTP {exc.code}); check "
                        f"the API key in the environment variable {self.api_key_env!r}"
                    ) from None
                last = f"HTTP {exc.code}: {detail}"
                if exc.code != 429 and exc.code < 500:
                    raise ModerationError(f"moderation: {self.url} answered {last}") from None
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                last = self._mask(f"{type(exc).__name__}: {reason}")
            if attempt < self.retries:
                time.sleep(min(0.2 * 2 ** attempt, 2.0))
        else:
            raise ModerationError(
                f"moderation: could not get an answer from {self.url} after "
                f"{self.retries + 1} attempt(s) ({last}); check that the server is running "
                "and the URL is right")
        try:
            results = json.loads(body)["results"]
        except (ValueError, KeyError, TypeError):
            raise ModerationError(f"moderation: {self.url} did not answer with JSON holding "
                                  "'results'; is it an OpenAI-compatible moderation "
                                  "endpoint?") from None
        if not isinstance(results, list) or len(results) != len(texts):
            raise ModerationError(f"moderation: {self.url} returned "
                                  f"{len(results) if isinstance(results, list) else 'no'} "
                                  f"results for {len(texts)} inputs")
        return results

    def _row(self, result: dict[str, Any]) -> list[float]:
        cs = result.get("category_scores") if isinstance(result, dict) else None
        if not isinstance(cs, dict):
            raise ModerationError(f"moderation: a result from {self.url} has no "
                                  "'category_scores' object")
        row = []
        for cat in SAFETY_CATEGORIES:
            vals = [float(cs[k]) for k in self.mapping[cat] if k in cs]
            row.append(max(vals) if vals else 0.0)
        return row

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Scores of ``texts``, float32 ``(n, 6)``, one request per ``batch_size`` texts."""
        from gambit_gym.text.safety import check_scores

        texts = [str(t) for t in texts]
        rows: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            rows.extend(self._row(r) for r in self._post(texts[i:i + self.batch_size]))
        if not rows:
            return np.zeros((0, len(SAFETY_CATEGORIES)), np.float32)
        return check_scores(rows, len(texts), f"moderation endpoint {self.url}")

    def metadata(self) -> dict[str, Any]:
        """Name, URL, model and mapping (never the key)."""
        return {"name": self.name, "version": "1", "url": self.url, "model": self.model,
                "mapping": {c: list(v) for c, v in self.mapping.items()}}
