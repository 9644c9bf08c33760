"""The pilot table of docs/bank_report.md: bank-v2 prompt designs compared on small banks.

Each pilot bank is built with ``gambit-gym build-bank`` on a few contexts and a few messages
per cell (the commands are in docs/bank_report.md). For each bank this prints one Markdown row:
on-topic and placeholder shares, drafts rejected per message kept (and the filter's reasons),
the mean between-prompt share over the 20 dimensions, the least one, the least
``P(high>low)``, and the number of dimensions under 0.60; ``pass filter rules`` is the share of
messages that pass the quality filter's text rules (every test but the MiniLM similarity).
With few messages per prompt the between-prompt share (eta squared) is biased upward, so the
table adds omega squared (``(SSB - (k-1) MSW) / (SST + MSW)``, nearly unbiased for the
population share) and a ``v1`` reference row: the shipped bank cut to the same cells and the
same number of messages per cell (first rows of each cell), measured the same way.

Run: ``python benchmarks/bank_pilot_table.py A=pilot_A.parquet B=pilot_B.parquet``.
"""

from __future__ import annotations

import sys

import numpy as np

from gambit_gym.text.bank import ResponseBank, load_bank
from gambit_gym.text.generators.quality import QualityFilter
from gambit_gym.text.report import bank_statistics


def omega_squared(x: np.ndarray, groups: np.ndarray) -> float:
    """Omega squared of a one-way split of ``x`` by ``groups``."""
    labels = np.unique(groups)
    k, n = len(labels), len(x)
    grand = x.mean()
    ssb = sum((groups == g).sum() * (x[groups == g].mean() - grand) ** 2 for g in labels)
    sst = ((x - grand) ** 2).sum()
    msw = (sst - ssb) / max(n - k, 1)
    return float((ssb - (k - 1) * msw) / (sst + msw))


def cut_like(bank: ResponseBank, like: ResponseBank) -> ResponseBank:
    """``bank`` cut to the cells of ``like`` and its messages per cell (first rows)."""
    keep = []
    for p in range(like.n_prompts):
        for c in range(like.n_contexts):
            n = int(like.counts[p, c])
            if n:
                start = int(bank.offsets[p, c])
                keep.extend(range(start, start + n))
    keep = np.array(keep)
    return ResponseBank.from_arrays(bank.texts[keep], bank.prompt_ids[keep],
                                    bank.context_ids[keep], bank.scores[keep], bank.dimensions,
                                    {k: v for k, v in bank.metadata.items()
                                     if k not in ("rejections", "rejection_reasons")})


def row(name: str, bank: ResponseBank) -> str:
    """One Markdown row of the pilot table."""
    s = bank_statistics(bank)
    dims = s["dimensions"]
    omega = [omega_squared(bank.scores[:, j].astype(np.float64), bank.prompt_ids)
             for j in range(len(bank.dimensions))]
    p = [d["p_high_gt_low"] for d in dims]
    rej = bank.metadata.get("rejections")
    reasons = s["rejection_reasons"]
    top = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
    per = f"{rej / len(bank):.2f}" if isinstance(rej, int) else "n/a"
    rules = QualityFilter(encoder=object())  # text rules only: no model is loaded
    passing = np.mean([rules.rule_reason(str(t)) is None for t in bank.texts])
    return (f"| {name} | {len(bank)} | {s['on_topic_share']:.1%} | {s['placeholder_share']:.1%}"
            f" | {passing:.1%}"
            f" | {per} ({top or '-'}) | {s['mean_between_share']:.3f} | {np.mean(omega):.3f}"
            f" | {min(omega):.3f} | {np.mean(p):.2f} | {min(p):.2f} "
            f"| {sum(v < 0.60 for v in p)} |")


def main(argv: list[str]) -> None:
    """Print the table for ``NAME=BANK`` arguments."""
    print("| design | messages | on topic | placeholders | pass filter rules "
          "| rejected per kept (top reasons) "
          "| between (eta²) | between (ω²) | least ω² | mean P(high>low) | least P(high>low) "
          "| dims P < 0.60 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    first = None
    for arg in argv:
        name, _, path = arg.partition("=")
        bank = ResponseBank.load(path)
        first = first or bank
        print(row(name, bank))
    if first is not None:
        print(row("v1 (shipped, same cells and size)", cut_like(load_bank("v1"), first)))
    print(row("v1 (shipped, all)", load_bank("v1")))
    per_dimension([(a.partition("=")[0], ResponseBank.load(a.partition("=")[2])) for a in argv]
                  + [("v1 all", load_bank("v1"))])


def per_dimension(banks: list[tuple[str, ResponseBank]]) -> None:
    """A second table: omega squared and P(high>low) of every dimension in every bank."""
    stats = [(name, bank, bank_statistics(bank)) for name, bank in banks]
    print()
    print("| dimension | " + " | ".join(f"{n} ω² | {n} P(high>low)" for n, _, _ in stats) + " |")
    print("|---|" + "---|---|" * len(stats))
    for j, dim in enumerate(stats[0][1].dimensions):
        cells = []
        for _, bank, st in stats:
            om = omega_squared(bank.scores[:, j].astype(np.float64), bank.prompt_ids)
            cells.append(f"{om:.3f} | {st['dimensions'][j]['p_high_gt_low']:.2f}")
        print(f"| {dim} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
