"""Repeat the draw of the third labelling round of the safety set (rounds 7 and 8 of
docs/safety_labelling_guide.md): candidates for the *train* part only.

Round 7 targets the medical_claim over-flagging the audit found (messages that mention doctors,
medicine or health without making a claim); round 8 the weak recall of shaming and unsafe
exertion (keyword searches for their positives). Rows already in the labelled set are
excluded; each draw uses NumPy's ``default_rng`` over the bank's row order:

* ``mention-v3:medical_claim`` (40, ``default_rng(2019)``): messages naming doctors, medicine,
  patients, diseases, therapy or health;
* ``near-v3:medical_claim`` (20, ``default_rng(2020)``): messages the head shipped before this
  round scored at least 0.5 for medical_claim (the bank's stored ``safety_medical_claim``
  column of bank v1, which that head wrote) that no earlier round labelled;
* ``keyword-v3:shaming`` (40, ``default_rng(2021)``) and ``keyword-v3:unsafe_exertion``
  (40, ``default_rng(2022)``): keyword searches below;
* ``keyword-v3b:shaming`` (40, ``default_rng(2023)``): a narrower shaming search, drawn after
  the first gave 2 positives in 40.

The labels were then given by hand against the guide (gambit_gym/data/safety_labels.jsonl,
``split`` = ``train``).

    python benchmarks/safety_label_draw_v3.py > candidates_v3.jsonl
"""

from __future__ import annotations

import json
import re

import numpy as np

from gambit_gym.text.bank import SAFETY_CATEGORIES, load_bank
from gambit_gym.text.safety_labels import load_labels

MENTION = (r"\b(doctors?|physicians?|medical|medicine|medications?|health|healthcare|patients?|"
           r"nurses?|diseases?|illness\w*|clinic\w*|hospital\w*|therap\w*|heart)\b")
SHAMING = (r"\b(lazy|laziness|disappoint\w*|shame\w*|ashamed|pathetic|excuses?|useless|"
           r"failure|weak|can't even|what's wrong|embarrass\w*|couch potato|slacker|loser|"
           r"pitiful|hopeless|guilty|blame)\b")
UNSAFE = (r"(\b[2-9]\d,?\d{3} steps|\b(1\d|[2-9]\d)(-\d+)? (miles|km|kilometers)\b|"
          r"\b([3-9]|1\d)(-\d+)? hours\b|marathon|\bpain\b|injur\w*|"
          r"without (rest|water|a break|stopping|food)|push (yourself|through)|exhaust\w*|"
          r"\bsick\b|dizz\w*|no rest|all day|non-?stop)")

#: a narrower shaming search, drawn after the first one gave 2 positives in 40 (its
#: ``excuses?`` matched "Excuse me ..." and its words matched the writer's own feelings)
SHAMING_B = (r"\b(you can't (even |seem to |just |really )?(walk|do|move|keep|handle|finish|"
             r"manage|get (it|up|out)|be bothered|remember)\b|can't even|can't seem|"
             r"you('re| are) (so |too |just |such a )?(lazy|slow|weak|useless|hopeless|pathetic|"
             r"a joke|a failure|a loser)|too lazy|lazy (habit|person|bum)|disappoint(ed|ing)|"
             r"(it's a|what a) shame|your fault|ridiculous|what's wrong|not good enough|failure|"
             r"you (never|always) )")

#: the sources of rounds 1-6, labelled before this draw
EARLIER = ("random", "prompt", "keyword", "flagged-v1", "flagged-v2")

DRAWS = (("mention-v3:medical_claim", MENTION, 40, 2019),
         ("near-v3:medical_claim", None, 20, 2020),
         ("keyword-v3:shaming", SHAMING, 40, 2021),
         ("keyword-v3:unsafe_exertion", UNSAFE, 40, 2022),
         ("keyword-v3b:shaming", SHAMING_B, 40, 2023))


def candidates() -> list[dict]:
    """The round 7-8 candidates, in draw order (rows labelled before round 7 excluded)."""
    bank = load_bank()
    texts = [str(t) for t in bank.texts]
    taken = {r["row"] for r in load_labels() if r["source"].split(":")[0] in EARLIER}
    med = bank.safety[:, SAFETY_CATEGORIES.index("medical_claim")]
    out = []
    for source, pat, n, seed in DRAWS:
        if pat is None:
            pool = [int(i) for i in np.flatnonzero(med >= 0.5) if int(i) not in taken]
        else:
            r = re.compile(pat, re.I)
            pool = [i for i, t in enumerate(texts) if i not in taken and r.search(t)]
        rows = np.random.default_rng(seed).choice(pool, min(n, len(pool)), replace=False)
        for i in sorted(int(i) for i in rows):
            taken.add(i)
            out.append({"row": i, "prompt_id": int(bank.prompt_ids[i]),
                        "context_id": int(bank.context_ids[i]), "source": source,
                        "text": texts[i]})
    return out


if __name__ == "__main__":
    for rec in candidates():
        print(json.dumps(rec))
