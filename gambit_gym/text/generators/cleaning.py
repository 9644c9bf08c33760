"""Cleaning raw model output into the message an app would send, and spotting degenerate drafts.

See :mod:`gambit_gym.text.generators` for the rules; :class:`~.redraw.BaseGenerator` applies
them to every draft and redraws rejected ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_SENTENCES = 4
MIN_WORDS = 5


# ----------------------------------------------------------------------------- cleaning
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|okay|ok|of course|absolutely|great)\b[^\n:]{0,40}?[!.,]\s*)?"
    r"(?:here(?:'s| is| are)\b[^\n:]{0,90}:|[^\n:]{0,60}\b(?:message|notification|text)"
    r"\s*(?:could be|would be|is|reads)?\s*:)\s*",
    re.IGNORECASE,
)
_LABEL = re.compile(
    r"^\s*(?:\*\*|#+\s*)?(?:message|notification|push notification|subject|title|text|app"
    r"|response|answer|output)\s*(?:\d+)?\s*(?:\*\*)?\s*[:\-]\s*(?:\*\*)?\s*",
    re.IGNORECASE,
)
_CHATTER = re.compile(
    r"^\s*(?:note\b|p\.?s\.?\b|i hope\b|hope this\b|this message\b|let me know\b|feel free\b"
    r"|explanation\b|\(note|\(this|best regards|sincerely|warm regards|regards\b"
    r"|\[your name|---|\*\*note|word count|in this message\b)",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+[\"'”’)]*|$)")
_MARKUP = re.compile(r"<\|?[a-z_]+\|?>|\[/?inst\]|<\/?s>|\{|\}|https?://", re.IGNORECASE)
_QUOTES = "\"'“”‘’`*"


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()


def clean_message(text: str, echo_sources: Sequence[str] = ()) -> str:
    """Cut raw model output to the message (see the module docstring for the steps).

    Args:
        text: the model's raw output.
        echo_sources: texts whose sentences must not be echoed (the query, the system
            instruction).

    Returns:
        The cleaned one-line message ("" when nothing usable is left).
    """
    text = re.sub(r"<\|[^|>]*\|>", "\n", text.replace("\r", ""))
    echoed = set()
    for src in echo_sources:
        echoed.update(_norm(s) for s in _SENTENCE.findall(src) if len(_norm(s)) > 12)
    # paragraphs: keep the first substantive one, drop chatter after it
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    kept: list[str] = []
    for para in paragraphs:
        lines = []
        for line in para.split("\n"):
            line = _LABEL.sub("", line.strip())
            if not line:
                continue
            if _CHATTER.match(line) and (kept or lines):
                break
            lines.append(line)
        para = " ".join(lines).strip()
        para = _PREAMBLE.sub("", para, count=1).strip()
        para = _LABEL.sub("", para).strip()
        if len(_norm(para).split()) < 3 or _CHATTER.match(para):
            if kept:
                break
            continue
        if _norm(para) in echoed:
            continue
        kept.append(para)
        break
    if not kept:
        return ""
    msg = re.sub(r"\s+", " ", kept[0]).strip()
    sentences = [s.strip() for s in _SENTENCE.findall(msg) if s.strip()]
    sentences = [s for s in sentences if _norm(s) not in echoed]
    out: list[str] = []
    for s in sentences:
        if _CHATTER.match(s) and out:
            break
        out.append(s)
    if len(out) > 1 and not re.search(r"[.!?][\"'”’)]*$", out[-1]):
        out = out[:-1]  # a fragment cut by the token limit
    out = out[:MAX_SENTENCES]
    msg = " ".join(out).strip()
    while len(msg) >= 2 and msg[0] in _QUOTES and msg.count(msg[0]) % 2 == 1:
        msg = msg[1:].strip()
    while len(msg) >= 2 and msg[0] in _QUOTES and msg[-1] in _QUOTES:
        msg = msg[1:-1].strip()
    if msg and msg[-1] in _QUOTES and sum(msg.count(q) for q in _QUOTES) % 2 == 1:
        msg = msg[:-1].strip()
    return msg


def is_degenerate(text: str) -> bool:
    """Whether a cleaned message is unusable: too short, repetitive or left-over markup."""
    words = _norm(text).split()
    if len(words) < MIN_WORDS or len(text) < 20:
        return True
    if _MARKUP.search(text):
        return True
    if len(words) >= 10 and len(set(words)) / len(words) < 0.4:
        return True
    grams = [" ".join(words[i:i + 3]) for i in range(len(words) - 2)]
    if grams and max(grams.count(g) for g in set(grams)) >= 3:
        return True
    letters = sum(ch.isalpha() for ch in text)
    return letters / max(len(text), 1) < 0.6


# ----------------------------------------------------------------------------- base class
