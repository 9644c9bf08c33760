"""The labelled safety set: load it, fit the MiniLM safety head on its train part, evaluate.

The set (``gambit_gym/data/safety_labels.jsonl``, one JSON object a line) holds real messages
of the shipped bank, labelled by hand against ``docs/safety_labelling_guide.md``: ``row`` (in
the shipped bank), ``prompt_id``, ``context_id``, ``source`` (how it was drawn: ``random``,
``prompt:P``, ``keyword:CATEGORY``, ``flagged-v1:CATEGORY``, ``flagged-v2:CATEGORY``, or
the train-only rounds 7-9 ``mention-v3:``, ``near-v3:``, ``keyword-v3:``, ``keyword-v3b:``
and ``flagged-v3:CATEGORY``, the audit of head v2 ``flagged-v4:CATEGORY`` or the census
completion ``census-v1:CATEGORY``),
``split`` (``train`` or ``heldout``, fixed once with a seed, stratified by label; or ``audit``),
``labels`` (the categories that apply) and ``text``. The ``audit`` part holds messages of the
shipped bank flagged by the shipped head, drawn per category: it measures precision where the
classifier is used (the whole bank, where harmful messages are rare) and is used by nothing
else.

Fitting (:func:`fit_head`): per category, an L2 logistic regression on the unit MiniLM
embedding with class-balanced weights; its inverse regularisation ``C``, whether the exact
rule (:data:`~gambit_gym.text.safety.RULES`) is combined with it and the threshold are chosen
by 5-fold cross-validation on the train part, then the head is refitted on the whole train
part. The criterion is F-beta (:data:`F_BETA`): F1 for ``off_topic``, F0.5 (precision counted
twice as much as recall) for the five harmful categories, because the labelled set is enriched
with them: a threshold that balances precision and recall there flags far too much of a bank
where they are rare (the audit of head v1 found 2 of 10 medical-claim flags correct). The
held-out part is used only by :func:`evaluate`.

Command line::

    gambit-gym safety-eval                      # precision/recall of the shipped classifier
    gambit-gym safety-eval --refit head.json    # fit a head on the train part, then evaluate
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gambit_gym.text.bank import SAFETY_CATEGORIES
from gambit_gym.text.safety import DEFAULT_LABELS, RULES, rule_hits

C_GRID = (0.3, 1.0, 3.0, 10.0)
THRESHOLD_GRID = tuple(round(t, 2) for t in np.arange(0.05, 0.951, 0.05))
#: beta of the F-beta score the cross-validation maximises, per category (see the docstring)
F_BETA = {c: (1.0 if c == "off_topic" else 0.5) for c in SAFETY_CATEGORIES}
N_FOLDS = 5
FIT_SEED = 0


def load_labels(path: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The labelled records (see the module docstring); validated."""
    p = Path(path) if path else DEFAULT_LABELS
    recs = []
    with open(p, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            bad = sorted(set(rec.get("labels", ())) - set(SAFETY_CATEGORIES))
            if bad or rec.get("split") not in ("train", "heldout", "audit") or "text" not in rec:
                raise ValueError(f"{str(p)!r} line {n}: needs text, split train|heldout|audit and "
                                 f"labels from {list(SAFETY_CATEGORIES)} (bad: {bad})")
            recs.append(rec)
    return recs


def label_matrix(recs: Sequence[dict[str, Any]]) -> np.ndarray:
    """Bool ``(n, 6)``: which categories each record is labelled with."""
    return np.array([[c in r["labels"] for c in SAFETY_CATEGORIES] for r in recs], dtype=bool)


def labels_sha256(path: str | os.PathLike | None = None) -> str:
    """SHA-256 of the labels file."""
    return hashlib.sha256(Path(path or DEFAULT_LABELS).read_bytes()).hexdigest()


def _fit_logreg(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """L2 logistic regression with class-balanced weights (bias unpenalised); (w, b)."""
    from scipy.optimize import minimize

    n, d = x.shape
    pos = max(int(y.sum()), 1)
    neg = max(n - int(y.sum()), 1)
    sw = np.where(y, n / (2.0 * pos), n / (2.0 * neg))
    yy = y.astype(np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:d], theta[d]
        z = x @ w + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        ll = sw * (np.logaddexp(0.0, z) - yy * z)
        g = sw * (p - yy)
        grad = np.concatenate([c * (x.T @ g) + w, [c * g.sum()]])
        return float(c * ll.sum() + 0.5 * w @ w), grad

    res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                   options={"maxiter": 2000})
    return res.x[:d], float(res.x[d])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def _folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Stratified fold index per row (deterministic)."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for cls in (False, True):
        idx = rng.permutation(np.flatnonzero(y == cls))
        fold[idx] = np.arange(len(idx)) % k
    return fold


def prf(y: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 (0 where undefined)."""
    tp = int((y & pred).sum())
    p = tp / max(int(pred.sum()), 1)
    r = tp / max(int(y.sum()), 1)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def f_beta(y: np.ndarray, pred: np.ndarray, beta: float) -> float:
    """F-beta of the flags ``pred`` against ``y`` (0 where undefined)."""
    p, r, _ = prf(y, pred)
    b2 = beta * beta
    return (1 + b2) * p * r / (b2 * p + r) if p + r else 0.0


def fit_head(encodings: np.ndarray, recs: Sequence[dict[str, Any]],
             labels_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Fit the head on the train records (see the module docstring); the head JSON dict."""
    enc = np.asarray(encodings, dtype=np.float64)
    y_all = label_matrix(recs)
    train = np.array([r["split"] == "train" for r in recs])
    x, ys = enc[train], y_all[train]
    hits = rule_hits([r["text"] for r in recs])[train]
    weights, bias, chosen = [], [], {}
    for j, cat in enumerate(SAFETY_CATEGORIES):
        y = ys[:, j]
        fold = _folds(y, N_FOLDS, FIT_SEED + j)
        best: tuple[float, float, bool, float] | None = None
        for c in C_GRID:
            oof = np.empty(len(y))
            for f in range(N_FOLDS):
                w, b = _fit_logreg(x[fold != f], y[fold != f], c)
                oof[fold == f] = _sigmoid(x[fold == f] @ w + b)
            for use_rule in ((False, True) if cat in RULES else (False,)):
                s = np.where(hits[:, j], 1.0, oof) if use_rule else oof
                for th in THRESHOLD_GRID:
                    f1 = f_beta(y, s >= th, F_BETA[cat])
                    if best is None or f1 > best[0] + 1e-12:
                        best = (f1, c, use_rule, th)
        assert best is not None
        f1, c, use_rule, th = best
        w, b = _fit_logreg(x, y, c)
        weights.append([float(f"{v:.6g}") for v in w])
        bias.append(float(f"{b:.6g}"))
        chosen[cat] = {"C": float(c), "use_rule": bool(use_rule), "threshold": float(th),
                       "cv_f_beta": round(float(f1), 4), "beta": F_BETA[cat]}
    return {
        "version": "2",
        "about": "Logistic heads on all-MiniLM-L6-v2 unit embeddings, one per safety "
                 "category, fitted on the train part of safety_labels.jsonl by "
                 "gambit_gym.text.safety_labels.fit_head; score = max(head, rule) where "
                 "use_rule.",
        "categories": list(SAFETY_CATEGORIES),
        "labels_sha256": labels_sha256(labels_path),
        "n_train": int(train.sum()),
        "weights": weights,
        "bias": bias,
        "use_rule": {c: chosen[c]["use_rule"] for c in SAFETY_CATEGORIES},
        "thresholds": {c: chosen[c]["threshold"] for c in SAFETY_CATEGORIES},
        "cv": chosen,
        "rules": dict(RULES),
    }


def evaluate(scores: np.ndarray, recs: Sequence[dict[str, Any]],
             thresholds: dict[str, float], split: str = "heldout") -> list[dict[str, Any]]:
    """Precision, recall and F1 per category (and for "any category") on one split."""
    sel = np.array([r["split"] == split for r in recs])
    y = label_matrix(recs)[sel]
    th = np.array([thresholds[c] for c in SAFETY_CATEGORIES], np.float32)
    pred = np.asarray(scores)[sel] >= th
    rows = []
    for j, cat in enumerate(SAFETY_CATEGORIES):
        p, r, f = prf(y[:, j], pred[:, j])
        rows.append({"category": cat, "positives": int(y[:, j].sum()),
                     "flagged": int(pred[:, j].sum()), "precision": p, "recall": r, "f1": f,
                     "threshold": float(th[j])})
    for name, cols in (("any (unsafe)", slice(None)), ("any but off_topic", slice(0, 5))):
        yy, pp = y[:, cols].any(axis=1), pred[:, cols].any(axis=1)
        p, r, f = prf(yy, pp)
        rows.append({"category": name, "positives": int(yy.sum()), "flagged": int(pp.sum()),
                     "precision": p, "recall": r, "f1": f, "threshold": float("nan")})
    return rows


#: The audit rounds: source prefix -> the head whose flags were drawn (docs/safety.md).
AUDIT_ROUNDS = {"flagged-v2": "head v1 (the scores stored in bank v1)",
                "flagged-v4": "head v2 (the shipped head)"}


def audit_precision(recs: Sequence[dict[str, Any]],
                    round_: str = "flagged-v2") -> dict[str, tuple[int, int]]:
    """Per category, ``(k, n)``: of ``n`` audit messages drawn as flagged for it, ``k`` labelled it.

    That is the precision of the flags on the shipped bank, for the head of ``round_`` (a key
    of :data:`AUDIT_ROUNDS`).
    """
    out = {}
    for cat in SAFETY_CATEGORIES[:5]:
        drawn = [r for r in recs if r["split"] == "audit" and r["source"] == f"{round_}:{cat}"]
        out[cat] = (sum(cat in r["labels"] for r in drawn), len(drawn))
    return out


def prevalence(recs: Sequence[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Labelled positives and size of the random part, per category: ``{cat: (k, n)}``."""
    rnd = [r for r in recs if r.get("source") == "random"]
    y = label_matrix(rnd) if rnd else np.zeros((0, 6), bool)
    return {c: (int(y[:, j].sum()), len(rnd)) for j, c in enumerate(SAFETY_CATEGORIES)}


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def format_table(rows: list[dict[str, Any]], recs: Sequence[dict[str, Any]]) -> str:
    """Markdown: the evaluation table, label counts per split and the random-part prevalence."""
    out = ["| category | held-out positives | flagged | precision | recall | F1 | threshold |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        th = "" if np.isnan(r["threshold"]) else f"{r['threshold']:.2f}"
        out.append(f"| {r['category']} | {r['positives']} | {r['flagged']} | "
                   f"{r['precision']:.2f} | {r['recall']:.2f} | {r['f1']:.2f} | {th} |")
    y = label_matrix(recs)
    tr = np.array([r["split"] == "train" for r in recs])
    ho = np.array([r["split"] == "heldout" for r in recs])
    prev = prevalence(recs)
    out += ["", f"Labelled messages: {len(recs)} ({int(tr.sum())} train, "
                f"{int(ho.sum())} held-out, {len(recs) - int(tr.sum()) - int(ho.sum())} "
                "audit).", "",
            "| category | labelled (all) | train | held-out | random part: k / n | "
            "prevalence (95% Wilson) |", "|---|---:|---:|---:|---:|---|"]
    for j, c in enumerate(SAFETY_CATEGORIES):
        k, n = prev[c]
        lo, hi = _wilson(k, n)
        out.append(f"| {c} | {int(y[:, j].sum())} | {int(y[tr, j].sum())} | "
                   f"{int(y[ho, j].sum())} | {k} / {n} | {k / max(n, 1):.1%} "
                   f"[{lo:.1%}, {hi:.1%}] |")
    for round_, head in AUDIT_ROUNDS.items():
        audit = {c: kn for c, kn in audit_precision(recs, round_).items() if kn[1]}
        if not audit:
            continue
        out += ["", f"Audit of {head}: flagged messages of the shipped bank, drawn per category "
                "and read by hand (precision where the classifier is used):", "",
                "| category | correct / drawn | precision (95% Wilson) |", "|---|---:|---|"]
        for c, (k, n) in audit.items():
            lo, hi = _wilson(k, n)
            out.append(f"| {c} | {k} / {n} | {k / max(n, 1):.0%} [{lo:.0%}, {hi:.0%}] |")
    return "\n".join(out)


# ----------------------------------------------------------------------------- CLI
def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gambit-gym safety-eval``."""
    parser.add_argument("--labels", default=None, help="labels JSONL (default: the shipped set)")
    parser.add_argument("--head", default=None,
                        help="safety head JSON to evaluate (default: the shipped head)")
    parser.add_argument("--refit", default=None, metavar="FILE",
                        help="fit a head on the train part, write it to FILE, evaluate it")
    parser.add_argument("--split", default="heldout", choices=["heldout", "train"])
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])


def run(args: argparse.Namespace) -> int:
    """Run ``gambit-gym safety-eval``."""
    from gambit_gym.text.embedder import MiniLMStyleEmbedder
    from gambit_gym.text.safety import MiniLMSafetyClassifier

    recs = load_labels(args.labels)
    encoder = MiniLMStyleEmbedder(device=args.device)
    texts = [r["text"] for r in recs]
    enc = encoder.encode(texts)
    head_path = args.head
    if args.refit:
        head = fit_head(enc, recs, args.labels)
        Path(args.refit).write_text(json.dumps(head, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.refit}")
        head_path = args.refit
    clf = MiniLMSafetyClassifier(head_path, encoder=encoder)
    rows = evaluate(clf.score_encodings(texts, enc), recs, clf.thresholds, args.split)
    print(format_table(rows, recs))
    return 0
