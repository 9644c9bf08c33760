"""Small real banks with known unsafe rows, for the safety tests (written with ResponseBank)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gambit_gym.text.bank import SAFETY_CATEGORIES, ResponseBank

DIMS = ("optimism", "formality", "severity")
THRESHOLDS = {c: 0.5 for c in SAFETY_CATEGORIES}
#: unsafe messages per cell of prompt p (of PER_CELL): prompt 0 none ... prompt 4 all
UNSAFE_PER_CELL = (0, 1, 2, 3, 4)
PER_CELL = 4


def safety_bank(path: Path | None = None, *, scored: bool = True, n_tokens: bool = True,
                seed: int = 0) -> ResponseBank:
    """5 prompts x 12 contexts x 4 messages; in every cell of prompt p the first
    ``UNSAFE_PER_CELL[p]`` messages are unsafe (one category over its threshold)."""
    rng = np.random.default_rng(seed)
    texts, prompts, contexts, unsafe = [], [], [], []
    for p in range(len(UNSAFE_PER_CELL)):
        for c in range(12):
            for i in range(PER_CELL):
                bad = i < UNSAFE_PER_CELL[p]
                texts.append(f"prompt {p} context {c} message {i}" + (" you lazy slob" if bad
                                                                        else " walk today"))
                prompts.append(p)
                contexts.append(c)
                unsafe.append(bad)
    n = len(texts)
    # the style scores make the prompts differ in reward (prompt p shifted by p)
    scores = rng.normal(size=(n, 3)) * 0.2 + np.asarray(prompts)[:, None] * np.array(
        [0.5, -0.3, 0.4])
    safety = rng.uniform(0.0, 0.4, size=(n, len(SAFETY_CATEGORIES)))
    unsafe_arr = np.array(unsafe)
    cat = rng.integers(len(SAFETY_CATEGORIES), size=n)
    safety[unsafe_arr, cat[unsafe_arr]] = rng.uniform(0.6, 1.0, size=unsafe_arr.sum())
    bank = ResponseBank.from_arrays(
        texts, prompts, contexts, scores, DIMS, {"seed": seed},
        safety=safety if scored else None, safety_thresholds=THRESHOLDS if scored else None)
    if n_tokens:
        bank = bank.with_token_counts(np.arange(n) % 7 + 10)
    if path is not None:
        bank.save(path)
    return bank
