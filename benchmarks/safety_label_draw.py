"""Repeat the draw of the labelled safety set's candidates (docs/safety_labelling_guide.md).

Prints one JSON line per candidate (row, prompt_id, context_id, source, text) of the shipped
bank, in the order the labelled set was drawn: round 1-3 with default_rng(19), round 4 with
default_rng(1919). The labels themselves were given by hand; see
gambit_gym/data/safety_labels.jsonl.

    python benchmarks/safety_label_draw.py > candidates.jsonl
"""

from __future__ import annotations

import json
import re

import numpy as np

from gambit_gym.text.bank import load_bank

ROUND3 = {
    "shaming": (
        r"\b(lazy|laziness|pathetic|shame|ashamed|embarrass\w*|disappoint\w*|no excuses?|"
        r"useless|failure|loser|couch potato|slacker|weak|pitiful|lame|stupid|ridiculous|"
        r"should be ashamed|not good enough)\b"
    ),
    "threat": (
        r"\b(die|death|dying|disease|sick|illness|heart attack|danger\w*|harm\w*|"
        r"consequences?|regret|suffer\w*|or else|warn\w*|lose (all )?(your |"
        r"their )?progress|deadly)\b"
    ),
    "unsafe_exertion": (
        r"\b(pain|push through|push yourself|injur\w*|exhaust\w*|no rest|without (rest|"
        r"stopping|water|a break)|until you drop|sprint\w*|marathon|dizz\w*|hurt\w*|"
        r"ignore|[2-9]\d,?\d{3} steps|\d+ miles|hours?)\b"
    ),
    "weight_stigma": (
        r"\b(weight|fat|obes\w*|overweight|belly|pounds?|lbs|kilos?|calories|body|slim|"
        r"thin|flab\w*|bmi|waist\w*)\b"
    ),
    "medical_claim": (
        r"\b(cure\w*|prevent\w*|cancer|diabet\w*|blood pressure|cholesterol|heart disease|"
        r"heart health|cardiovascular|metabolic|metabolism|doctors?|stud(y|ies)|"
        r"clinical\w*|immune|depression|anxiety|guidelines?|lower (your )?risk|"
        r"reduce\w* (the |your )?risk|longevity|lifespan|insulin|arthritis|\d+ minutes (a|"
        r"per) week)\b"
    ),
}

ROUND4 = {
    "shaming2": (
        r"\byou('re| are)? (so |too |being |such a )?(lazy|pathetic|weak|useless|"
        r"a failure|a loser|hopeless)|stop being|what's wrong with you|disappointed (in|"
        r"with) you|not good enough|should be ashamed|disappoint me|your fault|"
        r"embarrassing|can't even"
    ),
    "unsafe_exertion2": (
        r"\b([2-9]\d,?\d{3}|\d{3},?\d{3}) steps|\b(1\d|[2-9]\d) (miles|kilometers|km)\b|"
        r"\b([3-9]|1\d|2\d) hours|marathon|without (rest|water|a break|stopping)|"
        r"push through|ignore (the |your )?(pain|body)|even if (you('re| are)|it hurts)|"
        r"no matter how (tired|sore)"
    ),
    "medical_claim2": (
        r"\b(stud(y|ies)|research (shows|suggests)|heart health|blood pressure|diabetes|"
        r"cardiovascular disease|heart disease|mental health|depression|anxiety|"
        r"doctors? recommend|guidelines|150 minutes|risk of|lower(s)? (your )?risk|"
        r"reduce(s)? (your |the )?risk|boost(s)? your immune|burns? fat|cure)\b"
    ),
}


def main() -> None:
    """Print the candidates."""
    bank = load_bank()
    texts = [str(t) for t in bank.texts]
    rng = np.random.default_rng(19)
    taken: dict[int, str] = {}

    def take(rows, source: str) -> None:
        for i in rows:
            taken.setdefault(int(i), source)

    take(rng.choice(len(texts), 120, replace=False), "random")
    for p in (5, 6, 18, 20, 23, 32, 37, 38):
        idx = np.flatnonzero(bank.prompt_ids == p)
        take(rng.choice([i for i in idx if i not in taken], 12, replace=False), f"prompt:{p}")
    for k, pat in ROUND3.items():
        r = re.compile(pat, re.I)
        hits = [i for i, t in enumerate(texts) if r.search(t) and i not in taken]
        take(rng.choice(hits, min(45, len(hits)), replace=False), f"keyword:{k}")
    first = set(taken)
    rng = np.random.default_rng(1919)
    for k, pat in ROUND4.items():
        r = re.compile(pat, re.I)
        hits = [i for i, t in enumerate(texts) if r.search(t) and i not in taken]
        take(rng.choice(hits, min(40, len(hits)), replace=False), "keyword:" + k[:-1])
    for i in sorted(first) + sorted(set(taken) - first):
        print(json.dumps({"row": i, "prompt_id": int(bank.prompt_ids[i]),
                          "context_id": int(bank.context_ids[i]), "source": taken[i],
                          "text": texts[i]}))


if __name__ == "__main__":
    main()
