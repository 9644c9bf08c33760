"""Check the shipped bank's safety columns against the classifier run from scratch.

1. Precomputed MiniLM encodings of the bank (``--encodings``, the file ``score-safety`` was
   given) against a fresh encoding of 64 random rows: the largest difference.
2. The stored safety scores of 200 random rows against the classifier run on a fresh encoding
   of their texts (rounded as banks store them): the largest difference, and whether the
   ``unsafe`` flags agree.

    python benchmarks/safety_verify_bank.py --encodings bank_v1_minilm384.npy

Bank v1's columns were written by safety head v1; the shipped head is v2 (docs/safety.md), so
check them against v1's head file (its rules are stored in it):

    git show 7fdde5e:gambit_gym/data/safety_head.json > head_v1.json
    python benchmarks/safety_verify_bank.py --head head_v1.json
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from gambit_gym.text.bank import load_bank
from gambit_gym.text.safety import MiniLMSafetyClassifier, quantize
from gambit_gym.text.score_safety import check_encodings


def main() -> None:
    """Print the two checks."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bank", default=None, help="bank file (default: the shipped bank)")
    ap.add_argument("--encodings", default=None, help="precomputed encodings (.npy)")
    ap.add_argument("--head", default=None,
                    help="safety head JSON that scored the bank (default: the shipped head)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    bank = load_bank(args.bank)
    clf = MiniLMSafetyClassifier(args.head, device="cpu")
    stored = bank.safety_classifier.get("head_sha256") if bank.safety_classifier else None
    if stored and stored != clf.metadata()["head_sha256"]:
        print(f"note: the bank was scored by head {stored[:12]}, this is head "
              f"{clf.metadata()['head_sha256'][:12]} (pass --head)")
    texts = [str(t) for t in bank.texts]
    if args.encodings:
        enc = np.load(args.encodings, mmap_mode="r")
        diff = check_encodings(clf, texts, enc, rows=64, seed=3)
        print(f"max |precomputed - fresh encoding| over 64 rows: {diff:.2g}")
    assert bank.safety is not None and bank.unsafe is not None, "the bank is not scored"
    rng = np.random.default_rng(4)
    idx = np.sort(rng.choice(len(texts), 200, replace=False))
    fresh = quantize(clf.score([texts[i] for i in idx]))
    flags = (fresh >= bank.safety_thresholds.astype(np.float32)).any(axis=1)
    print(f"stored vs fresh safety scores over 200 rows: max difference "
          f"{float(np.abs(fresh - bank.safety[idx]).max()):.2g}; unsafe flags agree: "
          f"{bool((flags == bank.unsafe[idx]).all())}")


if __name__ == "__main__":
    main()
