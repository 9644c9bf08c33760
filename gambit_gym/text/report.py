"""Bank report: how much the prompts move the style scores of a response bank.

For every dimension ``d``: the share of the variance of ``d`` that lies between the 40 prompts
(eta squared of a one-way split by prompt); ``P(high > low)``, the chance that a message of
``d``'s high prompt scores higher on ``d`` than a message of its low prompt in the same context
(averaged over contexts); and the mean difference high − low. Then the correlation matrix of
optimism, formality, severity, clarity and encouragement over all messages, beside Table 1 of
the GAMBITTS study, and sample messages for each prompt.

Command line::

    gambit-gym bank-report --bank gambit_gym/data/ihs_smollm2_bank.parquet --out docs/bank_report.md
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from gambit_gym.text.contexts import ALL_CONTEXTS

TABLE1_ORDER = ("optimism", "formality", "severity", "clarity", "encouragement")
# Table 1 of Brooks et al. (2025), GAMBITTS: correlations of the study's VAE style scores
# (its optimism axis points toward pessimism, per the study).
TABLE1 = np.array([
    [1.000, -0.095, 0.787, 0.184, -0.960],
    [-0.095, 1.000, -0.568, -0.248, -0.121],
    [0.787, -0.568, 1.000, 0.066, -0.644],
    [0.184, -0.248, 0.066, 1.000, -0.201],
    [-0.960, -0.121, -0.644, -0.201, 1.000],
])


def _auc(hi: np.ndarray, lo: np.ndarray) -> float:
    """P(a draw of ``hi`` > a draw of ``lo``), ties counted one half."""
    lo_sorted = np.sort(lo)
    below = np.searchsorted(lo_sorted, hi, side="left")
    not_above = np.searchsorted(lo_sorted, hi, side="right")
    return float((below + 0.5 * (not_above - below)).sum() / (len(hi) * len(lo)))


def bank_statistics(bank: Any) -> dict[str, Any]:
    """Per-dimension separation statistics of a bank built from the 40-prompt library.

    Returns:
        ``{"dimensions": [{name, between_share, p_high_gt_low, mean_diff, passes}, ...],
        "n_pass": int, "correlation": (5, 5) list, "corr_names": [...]}``.
    """
    lib = bank.metadata.get("prompt_library", {})
    prompts = lib.get("prompts", [])
    scores = bank.scores.astype(np.float64)
    rows = []
    for j, name in enumerate(bank.dimensions):
        x = scores[:, j]
        means = np.array([x[bank.prompt_ids == p].mean() for p in range(bank.n_prompts)])
        counts = np.bincount(bank.prompt_ids, minlength=bank.n_prompts)
        between = float((counts * (means - x.mean()) ** 2).sum() / max(((x - x.mean()) ** 2)
                                                                        .sum(), 1e-12))
        hi = next((p["id"] for p in prompts if p["dimension"] == name
                   and p["polarity"] == "high"), None)
        lo = next((p["id"] for p in prompts if p["dimension"] == name
                   and p["polarity"] == "low"), None)
        row: dict[str, Any] = {"name": name, "between_share": between}
        if hi is not None and lo is not None and max(hi, lo) < bank.n_prompts:
            aucs, diffs = [], []
            for c in ALL_CONTEXTS:
                if bank.counts[hi, c.id] and bank.counts[lo, c.id]:
                    h = bank.embeddings(hi, c.id)[:, j]
                    low = bank.embeddings(lo, c.id)[:, j]
                    aucs.append(_auc(h, low))
                    diffs.append(float(h.mean() - low.mean()))
            row["p_high_gt_low"] = float(np.mean(aucs))
            row["mean_diff"] = float(np.mean(diffs))
            row["passes"] = row["mean_diff"] > 0
        rows.append(row)
    idx = [bank.dimensions.index(n) for n in TABLE1_ORDER if n in bank.dimensions]
    corr = np.corrcoef(scores[:, idx], rowvar=False) if len(idx) == 5 else np.eye(len(idx))
    return {"dimensions": rows, "n_pass": sum(bool(r.get("passes")) for r in rows),
            "correlation": corr.tolist(), "corr_names": list(TABLE1_ORDER),
            "mean_between_share": float(np.mean([r["between_share"] for r in rows])),
            **quality_statistics(bank)}


def quality_statistics(bank: Any) -> dict[str, Any]:
    """Text-quality shares of a bank, from the text alone (no model).

    ``on_topic_share``: messages that name walking, steps or moving (the keyword test of
    :func:`~gambit_gym.text.generators.quality.names_activity`, idioms such as "every step of
    the way" not counting); ``placeholder_share``: messages with template debris
    (:func:`~gambit_gym.text.generators.quality.has_placeholder`); ``rejection_reasons``:
    the builder's count of rejected drafts by reason (empty for banks built before it).
    """
    from gambit_gym.text.generators.quality import has_placeholder, names_activity

    texts = [str(t) for t in bank.texts]
    n = max(len(texts), 1)
    return {"on_topic_share": sum(map(names_activity, texts)) / n,
            "placeholder_share": sum(map(has_placeholder, texts)) / n,
            "rejection_reasons": dict(bank.metadata.get("rejection_reasons", {}))}


#: In an existing report file, everything from this line on is kept when it is regenerated.
KEEP_MARKER = "<!-- kept on regeneration: everything below -->"

#: The bank-v2 targets (issue 18) the report checks.
TARGETS = {"on_topic_share": 0.95, "placeholder_share": 0.005, "mean_between_share": 0.14,
           "min_between_share": 0.05, "min_p_high_gt_low": 0.60}


def target_checks(stats: dict[str, Any]) -> dict[str, tuple[float, bool]]:
    """Each bank-v2 target: ``(measured value, met)``."""
    dims = stats["dimensions"]
    p = [r.get("p_high_gt_low", float("nan")) for r in dims]
    measured = {"on_topic_share": stats["on_topic_share"],
                "placeholder_share": stats["placeholder_share"],
                "mean_between_share": stats["mean_between_share"],
                "min_between_share": min(r["between_share"] for r in dims),
                "min_p_high_gt_low": float(np.nanmin(p)) if p else float("nan")}
    return {k: (v, v <= TARGETS[k] if k == "placeholder_share" else v >= TARGETS[k])
            for k, v in measured.items()}


def summary_line(stats: dict[str, Any]) -> str:
    """One line: the target figures (used by the pilot table and the CLI)."""
    checks = target_checks(stats)
    parts = [f"{k} {v:.3f}{'' if ok else ' (miss)'}" for k, (v, ok) in checks.items()]
    return "; ".join(parts)


def _matrix(m: np.ndarray, names: tuple[str, ...] | list[str]) -> list[str]:
    out = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for i, n in enumerate(names):
        out.append(f"| {n} | " + " | ".join(f"{v:+.2f}" for v in m[i]) + " |")
    return out


def render_report(bank: Any, stats: dict[str, Any] | None = None, samples: int = 2,
                  seed: int = 0, title: str = "Response bank report") -> str:
    """The report as Markdown."""
    stats = stats or bank_statistics(bank)
    meta = bank.metadata
    gen = meta.get("generator", {})
    emb = meta.get("embedder", {})
    lines = [f"# {title}", ""]
    lines += [
        f"- messages: {len(bank)} ({bank.n_prompts} prompts x {bank.n_contexts} contexts, "
        f"{meta.get('per_pair', '?')} per pair)",
        f"- generator: {gen.get('name', '?')} ({gen.get('model', '')}), sampling "
        f"{gen.get('sampling', {})}",
        f"- drafts rejected by post-processing and drawn again: {meta.get('rejections', '?')}"
        + (f" (by reason: {', '.join(f'{k} {v}' for k, v in stats['rejection_reasons'].items())})"
           if stats.get("rejection_reasons") else ""),
        f"- on topic (names walking, steps or moving): {stats['on_topic_share']:.1%}; "
        f"placeholders: {stats['placeholder_share']:.1%}; mean between-prompt share: "
        f"{stats['mean_between_share']:.3f}",
        f"- embedder: {emb.get('name', '?')} v{emb.get('version', '?')} "
        f"(scores are z-scores over the reference set; high = more of the dimension)",
        f"- prompt library: {meta.get('prompt_library', {}).get('name', '?')} "
        f"v{meta.get('prompt_library', {}).get('version', '?')}, seed {meta.get('seed', '?')}",
        "",
        "Build a bank with `gambit-gym build-bank --generator smollm2 --per-pair N "
        "--out FILE --seed 0` (`--device cuda --batch-size 2048` on a GPU), then "
        "`gambit-gym bank-report --bank FILE`. A build keeps its chunks in `FILE.chunks` and "
        "resumes from them only with the same settings (they are its fingerprint); this "
        f"bank's were batch size {gen.get('batch_size', '?')}, "
        f"`--max-new-tokens {gen.get('sampling', {}).get('max_new_tokens', '?')}`, dtype "
        f"{gen.get('dtype', '?')} and decoder {gen.get('decoder', '?')!r}.",
        "",
        "## Do the prompts move the scores?",
        "",
        "`between` is the share of a dimension's variance that lies between the 40 prompts; "
        "`P(high>low)` the chance that a message of the dimension's high prompt scores higher "
        "on it than one of its low prompt in the same context; `high−low` the mean difference "
        "(z units).",
        "",
        "| dimension | between | P(high>low) | high−low | high > low |",
        "|---|---|---|---|---|",
    ]
    for r in stats["dimensions"]:
        lines.append(
            f"| {r['name']} | {r['between_share']:.3f} | {r.get('p_high_gt_low', float('nan')):.2f}"
            f" | {r.get('mean_diff', float('nan')):+.3f} | {'yes' if r.get('passes') else 'no'} |"
        )
    lines += ["", f"**{stats['n_pass']} of {len(stats['dimensions'])} dimensions** have their "
              "high prompt scoring higher on average than their low prompt.", ""]
    names = stats["corr_names"]
    lines += ["## Correlations beside the study's Table 1", "",
              "Ours (over all messages of this bank):", ""]
    lines += _matrix(np.asarray(stats["correlation"]), names)
    lines += ["", "The study's Table 1 (its VAE scores over Llama 3.1 8B messages; its optimism "
              "axis points toward pessimism, so signs in its optimism row and column are "
              "flipped relative to ours):", ""]
    lines += _matrix(TABLE1, TABLE1_ORDER)
    lines += ["", "## Sample messages", ""]
    rng = np.random.default_rng(seed)
    prompts = meta.get("prompt_library", {}).get("prompts", [])
    for p in range(bank.n_prompts):
        label = (f"{prompts[p]['dimension']} / {prompts[p]['polarity']}" if p < len(prompts)
                 else "")
        lines.append(f"**{p}: {label}**")
        lines.append("")
        for c in rng.choice(bank.n_contexts, size=samples, replace=False):
            if bank.counts[p, c]:
                row = bank.sample(p, int(c), rng)
                ctx = ALL_CONTEXTS[int(c)]
                lines.append(f"- ({ctx.location_name}, {ctx.step_bucket_name}) {row.text}")
        lines.append("")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gambit-gym bank-report``."""
    parser.add_argument("--bank", default=None, help="a bank file (default: the shipped bank)")
    parser.add_argument("--out", default="docs/bank_report.md", help="Markdown file to write")
    parser.add_argument("--samples", type=int, default=2, help="sample messages per prompt")


def run(args: argparse.Namespace) -> int:
    """Run ``gambit-gym bank-report``."""
    from gambit_gym.text.bank import default_bank_path, load_bank

    bank = load_bank(args.bank)
    stats = bank_statistics(bank)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    name = Path(args.bank).name if args.bank else f"shipped: {default_bank_path().name}"
    text = render_report(bank, stats, samples=args.samples,
                         title=f"Response bank report ({name})")
    if out.exists():  # sections written by hand after the marker survive a regeneration
        old = out.read_text(encoding="utf-8")
        if KEEP_MARKER in old:
            text = text.rstrip("\n") + "\n\n" + old[old.index(KEEP_MARKER):]
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}: {stats['n_pass']} of {len(stats['dimensions'])} dimensions have "
          "high > low")
    print(f"targets: {summary_line(stats)}")
    return 0
