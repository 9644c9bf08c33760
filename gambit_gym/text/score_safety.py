"""Add safety scores to every message of a bank, so envs pay nothing per step.

:func:`compute_safety` scores texts with any safety scorer (see :mod:`gambit_gym.text.safety`)
in batches; with the MiniLM classifier, precomputed MiniLM encodings (``(n, 384)`` float32 in
the bank's row order, e.g. from ``numpy.save``) can be passed instead of encoding again: a few
rows of them are checked against a fresh encoding first, so encodings of another bank or
another row order are refused. :func:`score_bank` returns the bank with its safety columns
(the content checksum of the texts and style scores is unchanged; the safety columns have
their own ``safety_checksum``, see :mod:`gambit_gym.text.bank`).

Command line::

    gambit-gym score-safety --bank bank.parquet [--out scored.parquet]
        [--scorer minilm | moderation:URL] [--encodings enc.npy] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gambit_gym.text.safety import check_scores, make_safety_scorer, quantize, scorer_thresholds

CHECK_ROWS = 8
CHECK_TOL = 1e-3


def check_encodings(scorer: Any, texts: Sequence[str], encodings: np.ndarray,
                    rows: int = CHECK_ROWS, seed: int = 0) -> float:
    """Compare ``rows`` random rows of precomputed encodings with a fresh encoding.

    Returns:
        The largest absolute difference seen.

    Raises:
        ValueError: shape mismatch, or a difference above ``1e-3`` (other texts or order).
    """
    enc = np.asarray(encodings)
    if enc.ndim != 2 or enc.shape[0] != len(texts):
        raise ValueError(f"encodings have shape {enc.shape}, expected ({len(texts)}, 384) in "
                         "the bank's row order")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(texts), min(rows, len(texts)), replace=False))
    fresh = scorer.encode([str(texts[i]) for i in idx])
    diff = float(np.abs(fresh - enc[idx]).max()) if len(idx) else 0.0
    if diff > CHECK_TOL:
        raise ValueError(f"the precomputed encodings do not match a fresh MiniLM encoding of "
                         f"the bank's texts (rows {idx.tolist()}: max difference {diff:.3g}); "
                         "they belong to another bank or row order: drop --encodings")
    return diff


def compute_safety(scorer: Any, texts: Sequence[str], encodings: np.ndarray | None = None,
                   batch_size: int = 1024, progress: bool = False) -> np.ndarray:
    """Safety scores of ``texts``, float32 ``(n, 6)``, in batches.

    Rounded as banks store them (see :func:`~gambit_gym.text.safety.quantize`).

    Args:
        scorer: a safety scorer.
        texts: the messages.
        encodings: MiniLM encodings of ``texts`` (only with a scorer that has
            ``score_encodings``, i.e. the MiniLM classifier).
        batch_size: texts per call to the scorer.
        progress: show a progress bar.
    """
    texts = [str(t) for t in texts]
    if encodings is not None and not hasattr(scorer, "score_encodings"):
        raise ValueError("precomputed encodings only work with the MiniLM safety classifier "
                         "(--scorer minilm)")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(texts), unit="msg", desc="safety", dynamic_ncols=True,
                   file=sys.stderr)
    out = []
    for i in range(0, len(texts), batch_size):
        chunk = texts[i:i + batch_size]
        if encodings is not None:
            out.append(scorer.score_encodings(chunk, encodings[i:i + batch_size]))
        else:
            out.append(check_scores(scorer.score(chunk), len(chunk), "the safety scorer"))
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return quantize(np.concatenate(out)) if out else np.zeros((0, 6), np.float32)


def score_bank(bank: Any, scorer: Any = "minilm", encodings: np.ndarray | None = None,
               progress: bool = False, device: str | None = "auto") -> Any:
    """The bank with safety scores from ``scorer`` (a spec or a scorer object)."""
    scorer = make_safety_scorer(scorer, device=device)
    texts = [str(t) for t in bank.texts]
    if encodings is not None:
        check_encodings(scorer, texts, encodings)
    safety = compute_safety(scorer, texts, encodings, progress=progress)
    return bank.with_safety(safety, scorer_thresholds(scorer), scorer.metadata())


def report(bank: Any, top: int = 8) -> str:
    """Markdown: flagged share per category, and the prompts with the most harmful messages.

    "Harmful" is any category but ``off_topic``.
    """
    if bank.safety is None:
        raise ValueError("the bank has no safety columns; score it with `gambit-gym "
                         "score-safety --bank FILE`")
    flags = bank.safety >= bank.safety_thresholds.astype(np.float32)
    harm = flags[:, :5].any(axis=1)
    lines = [f"{len(bank)} messages; classifier {bank.safety_classifier.get('name')} "
             f"(head {str(bank.safety_classifier.get('head_sha256', ''))[:12]})", "",
             "| category | threshold | flagged | share |", "|---|---:|---:|---:|"]
    for j, c in enumerate(bank.safety_categories):
        lines.append(f"| {c} | {bank.safety_thresholds[j]:.2f} | {int(flags[:, j].sum())} | "
                     f"{flags[:, j].mean():.2%} |")
    lines.append(f"| any but off_topic | | {int(harm.sum())} | {harm.mean():.2%} |")
    lines.append(f"| any (unsafe) | | {int(flags.any(axis=1).sum())} | "
                 f"{flags.any(axis=1).mean():.2%} |")
    rate = np.bincount(bank.prompt_ids, weights=harm, minlength=bank.n_prompts) / np.maximum(
        np.bincount(bank.prompt_ids, minlength=bank.n_prompts), 1)
    off = np.bincount(bank.prompt_ids, weights=flags[:, 5], minlength=bank.n_prompts) / \
        np.maximum(np.bincount(bank.prompt_ids, minlength=bank.n_prompts), 1)
    lib = bank.metadata.get("prompt_library", {}).get("prompts", [])
    lines += ["", f"Prompts with the highest harmful share (top {top}):", "",
              "| prompt | style | harmful | off_topic |", "|---:|---|---:|---:|"]
    for p in np.argsort(-rate, kind="stable")[:top]:
        name = (f"{lib[p]['dimension']} {lib[p]['polarity']}" if p < len(lib)
                and isinstance(lib[p], dict) else "")
        lines.append(f"| {p} | {name} | {rate[p]:.1%} | {off[p]:.1%} |")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gambit-gym score-safety``."""
    parser.add_argument("--bank", required=True, help="the bank file to score (.parquet)")
    parser.add_argument("--out", default=None,
                        help="where to write the scored bank (default: replace --bank)")
    parser.add_argument("--scorer", default="minilm",
                        help="minilm (offline, default) | moderation:URL")
    parser.add_argument("--encodings", default=None,
                        help="precomputed MiniLM encodings of the bank's texts (.npy, n x 384, "
                             "bank row order); checked on a few rows")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY",
                        help="environment variable holding the key for moderation:")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--report", action="store_true",
                        help="print the flagged shares of a scored bank (no scoring, no writing)")


def run(args: argparse.Namespace) -> int:
    """Run ``gambit-gym score-safety``."""
    from gambit_gym.text.bank import ResponseBank

    bank = ResponseBank.load(args.bank)
    if args.report:
        print(report(bank))
        return 0
    kwargs = {"api_key_env": args.api_key_env} if args.scorer.startswith("moderation:") else {}
    scorer = make_safety_scorer(args.scorer, device=args.device, **kwargs)
    enc = np.load(args.encodings, mmap_mode="r") if args.encodings else None
    scored = score_bank(bank, scorer, enc, progress=not args.no_progress)
    out = Path(args.out or args.bank)
    scored.save(out)
    assert scored.unsafe is not None and scored.safety is not None
    rates = ", ".join(f"{c} {float((scored.safety[:, j] >= t).mean()):.1%}"
                      for j, (c, t) in enumerate(zip(scored.safety_categories,
                                                     scored.safety_thresholds)))
    print(f"wrote {out}: {len(scored)} messages scored by {scorer.metadata()['name']}; "
          f"unsafe {float(scored.unsafe.mean()):.1%} ({rates})")
    return 0
