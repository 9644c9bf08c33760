"""Every medical_claim flag of the shipped bank, for head v1 and head v2, against the labels.

Head v1's flags are bank v1's stored scores (it wrote them). Head v2's flags need MiniLM
encodings, and encoding all 48,000 messages takes about 100 minutes on two shared CPU cores, so
the candidates are screened first: the rows the rule matches, and the rows whose head score
*approximated* from the shipped 32-component PCA of the bank's encodings
(``ihs_smollm2_bank_minilm_pca.npz``) is within ``--margin`` logits (default 2) of the
threshold; on the 880 labelled messages the approximation errs by at most 1.7 logits. The
screened rows (about 200) are encoded and scored exactly. Every flagged message is then looked
up in the labelled set (``gambit_gym/data/safety_labels.jsonl``: rounds 1-9, the audit and
census records of docs/safety.md); unlabelled ones are printed.

    python benchmarks/safety_medical_census.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gambit_gym.text.bank import SAFETY_CATEGORIES, load_bank
from gambit_gym.text.safety import MiniLMSafetyClassifier, rule_hits
from gambit_gym.text.safety_labels import _wilson, load_labels

PCA = Path(__file__).resolve().parent.parent / "gambit_gym" / "data" / \
    "ihs_smollm2_bank_minilm_pca.npz"


def census(flags: np.ndarray, labels: dict[int, dict], name: str) -> None:
    """Print precision of the flagged rows against the labels."""
    known = [int(i) for i in flags if int(i) in labels]
    ok = sum("medical_claim" in labels[i]["labels"] for i in known)
    print(f"{name}: {len(flags)} flagged, {len(known)} labelled, {ok} of them medical claims",
          end="")
    if len(known) == len(flags):
        lo, hi = _wilson(ok, len(flags))
        print(f"; precision {ok / max(len(flags), 1):.0%} [{lo:.0%}, {hi:.0%}] (95% Wilson)")
    else:
        print(f"; unlabelled rows: {sorted(set(map(int, flags)) - set(known))}")


def main() -> None:
    """Print both censuses."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--margin", type=float, default=2.0)
    args = ap.parse_args()
    bank = load_bank()
    texts = [str(t) for t in bank.texts]
    labels = {r["row"]: r for r in load_labels()}
    j = SAFETY_CATEGORIES.index("medical_claim")
    census(np.flatnonzero(bank.safety[:, j] >= bank.safety_thresholds[j]), labels,
           "head v1 (bank v1's stored scores)")
    clf = MiniLMSafetyClassifier(device="cpu")
    th = clf.thresholds["medical_claim"]
    z = np.load(PCA)
    x = z["mean"] + (z["projections"].astype(np.float64) * z["scale"]) @ z["components"]
    approx = x @ clf.weights[j] + clf.bias[j]
    cand = np.flatnonzero((approx >= np.log(th / (1 - th)) - args.margin)
                          | rule_hits(texts, clf.rules)[:, j])
    scores = clf.score([texts[i] for i in cand])[:, j]
    flags = cand[scores >= th]
    print(f"head v2: {len(cand)} rows screened (margin {args.margin} logits)")
    census(flags, labels, "head v2 (the shipped head)")
    for i in flags:
        r = labels.get(int(i))
        print(json.dumps({"row": int(i), "split": r and r["split"], "source": r and r["source"],
                          "medical_claim": r and "medical_claim" in r["labels"],
                          "text": texts[i]}))


if __name__ == "__main__":
    main()
