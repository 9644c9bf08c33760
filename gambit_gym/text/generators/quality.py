"""The quality filter: what a generator accepts as a message an app could send.

:func:`~.cleaning.clean_message` cuts raw output to the message and
:func:`~.cleaning.is_degenerate` rejects junk; this filter then judges whether a clean message
is one a step-counting app could send to its user. A draft it rejects is drawn again exactly
like a degenerate one (:class:`~.redraw.BaseGenerator`), and the reason is counted
(``BaseGenerator.rejection_reasons``, recorded by the bank builder as the bank metadata's
``rejection_reasons``). The reasons, tested in this order:

* ``length``: fewer than ``min_words`` or more than ``max_words`` words (the format asks for
  2-3 sentences);
* ``placeholder``: template debris left for a human to fill in: ``[user's name]``,
  ``{name}``, ``<insert image>``, ``(Name)``, ``___``, ``XXX``, "insert ...";
* ``meta``: text about the task instead of the message: "the user", "this notification",
  "I'm sorry, but I can't", "as an AI", dialogue labels (``A:``, ``The user:``), a message
  quoted inside the message ("How about this: ..."), or the query's wording echoed
  ("right now they are", "somewhere other than", "between 5,000 and 9,999");
* ``persona``: the writer invents an identity or tells of their own day: "I'm Sarah",
  "my name is", "I'm a fitness coach", "I just walked 3 miles", "I've been walking",
  "my dog";
* ``addressee``: written to a crowd ("everyone", "guys", "followers", hashtags, "share this
  post"), about the user in the third person ("They walked ..."), or to nobody (neither
  "you"/"your" nor an imperative such as "Take the stairs");
* ``off_topic``: not about walking or moving today: the message must name the activity
  (a keyword: walk, step, stairs, stroll, move, ...) *and* lie close to our on-topic anchor
  sentences (``gambit_gym/data/on_topic_anchors.json``) in MiniLM space: the mean of its three
  highest cosine similarities to them at least ``on_topic_threshold``. The keyword alone lets
  "I walked my dog to the party" through; the similarity alone lets generic wellness
  chatter through.

The filter judges quality only, never style: none of its tests reads the style scores, and
the anchors are neutral in tone, so the style distribution of accepted messages is what the
generator writes (less the junk). It is versioned (:attr:`QualityFilter.version`) and its
settings are part of the generator's metadata, hence of a bank build's resume fingerprint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "data"
DEFAULT_ON_TOPIC_ANCHORS = DATA_DIR / "on_topic_anchors.json"

#: Reasons a clean draft can be rejected by the filter, in the order they are tested.
QUALITY_REASONS = ("length", "placeholder", "meta", "persona", "addressee", "off_topic")

PLACEHOLDER = re.compile(
    r"\[[^\]]{0,60}\]|\{[^}]{0,60}\}|<[^>]{0,60}>|\((?:name|user(?:'s)? name|your name|date|"
    r"time|location|number|x+)\)|_{3,}|\bX{3,}\b|\binsert\b|\byour name here\b"
    r"|\buser(?:'s|’s)? name\b|\b(?:first|last) name\b",
    re.IGNORECASE,
)
_META = re.compile(
    r"\bthe user\b|\busers\b|\bthis (?:notification|message|text|post|prompt)\b"
    r"|\bthe (?:notification|message|prompt|original)\b|\bnotification\b"
    r"|\bI(?:'m|’m| am) (?:sorry|afraid),? but\b|\bas an ai\b|\blanguage model\b"
    r"|\bI (?:can(?:no|')t|cannot|am unable to|'m unable to) (?:assist|help with|provide|fulfill)"
    r"|\bplease provide\b|\brewrite\b|\brephrase\b|\bversion of\b|\btone\b"
    r"|(?:^|\s)(?:A|B|Q|User|The user|Assistant|Response)\s*:"
    r"|\bhow about (?:this|something like)\b|\"[^\"]{15,}\"|“[^”]{15,}”"
    r"|\bright now,? (?:they|you)(?: are|'re| are)\b|\bsomewhere (?:other than|else)\b"
    r"|\bbetween [\d,]+ and [\d,]+\b",
    re.IGNORECASE,
)
_PERSONA = re.compile(
    r"\b(?:I'm|I’m|I am|this is|it's|it’s) (?!Monday|Tuesday|Wednesday|Thursday|Friday"
    r"|Saturday|Sunday|I\b)[A-Z][a-z]+\b(?! (?:steps|walk))"
    r"|\bmy name is\b|\bmy name's\b"
    r"|\bI(?:'m|’m| am) (?:a|an|your|the) (?:[a-z]+ ){0,3}(?:coach|trainer|ranger|teacher|"
    r"doctor|nurse|owner|expert|instructor|runner|blogger|assistant|representative|"
    r"enthusiast|professional|friend|student|manager|writer)\b"
    r"|\bI(?:'ve| have)? just (?:walked|ran|hiked|finished|got back|returned)\b"
    r"|\bI(?:'m|’m| am) (?:going|heading|planning) (?:for|to go for|on|to take) a (?:[\w-]+ )?"
    r"(?:walk|run|hike)"
    r"|\bI (?:walked|ran|hiked|went for|had the pleasure)\b|\bmy (?:dog|wife|husband|kids|son|"
    r"daughter|boss|team|friends?|workout|walk|run|hike|family|day|commute|journey|life)\b"
    r"|\bI(?:'m|’m| am)(?: just| currently| also| now)? (?:walking|on a walk|out for a walk|"
    r"jogging|running|hiking)\b|\bI(?:'ve|’ve| have) been (?:walking|jogging|running|hiking|"
    r"working out)\b|\bmyself\b",
)
#: Third-person talk about the user ("They walked ..."), not a message to them.
_THIRD_PERSON = re.compile(r"(?:^|[.!?]\s+)(?:They|They're|They’re|She|He|She's|He's)\b")
_SECOND_PERSON = re.compile(r"\b(?:you|your|you're|you’re|yours|yourself|you've|you'll)\b",
                            re.IGNORECASE)
_IMPERATIVE = re.compile(
    r"(?:^|[.!?,]\s+)(?:Walk|Stay|Be|Take|Try|Go|Get|Step|Move|Head|Make|Add|Keep|Stand|Grab|Park|Use"
    r"|Skip|Choose|Put|Start|Aim|Hit|Let's|Don't|Remember|Consider|Enjoy|Squeeze|Fit|Find|Plan"
    r"|Join|Push|Stretch|Climb|Lace|Swap|Do|Give|Turn|Set|Pick|Break|Stroll|Hop)\b", re.IGNORECASE)
_ADDRESSEE = re.compile(
    r"\b(?:everyone|everybody|guys|folks|followers|y'all|all of you|you all|fellow)\b"
    r"|\bhey all\b|\bhi all\b|#\w+|\b(?:share|like|retweet|repost) this\b|\bcomments?\b"
    r"|\bsubscribe\b|\bour community\b|\bladies and gentlemen\b",
    re.IGNORECASE,
)
#: The activity words an on-topic message names (one is required).
ON_TOPIC_WORDS = re.compile(
    r"\b(?:walk\w*|steps?|stepp\w*|stairs?|stairway|stroll\w*|mov(?:e|es|ed|ing)|movement"
    r"|active|activity|hike|hik\w+|stride\w*|pace|jog\w*|blocks?|laps?|errands?|legs?|feet"
    r"|exercise\w*|outside|outdoors|fresh air|on foot|footsteps?|mile\w*|km|kilometers?)\b",
    re.IGNORECASE,
)


def has_placeholder(text: str) -> bool:
    """Whether ``text`` holds template debris meant for a human to fill in."""
    return bool(PLACEHOLDER.search(text))


#: Idioms that use an activity word without meaning the activity ("every step of the way").
_IDIOMS = re.compile(
    r"\bevery step of the way\b|\b(?:first|next|big|small|right|a) steps? (?:towards?|to|in)\b"
    r"|\bsteps? (?:towards?|closer|forward|up|further|back|out of your comfort zone)\b"
    r"|\btak(?:e|ing) (?:it|things) (?:a|one) step\b|\bmov(?:e|ing) forward\b|\bmoved by\b"
    r"|\bmoving (?:story|moment|words)\b|\bstep-by-step\b|\bstep by step\b",
    re.IGNORECASE,
)


def names_activity(text: str) -> bool:
    """Whether ``text`` names walking, steps or moving (the keyword half of on-topic).

    Idioms ("every step of the way", "a step towards your goals") do not count.
    """
    return bool(ON_TOPIC_WORDS.search(_IDIOMS.sub(" ", text)))


def load_on_topic_anchors(path: str | Path | None = None) -> list[str]:
    """Our on-topic anchor sentences (neutral in tone, second person, about walking today)."""
    data = json.loads(Path(path or DEFAULT_ON_TOPIC_ANCHORS).read_text(encoding="utf-8"))
    anchors = [str(a) for a in data["anchors"]]
    if len(anchors) < 3:
        raise ValueError("the on-topic anchor file needs at least 3 sentences")
    return anchors


class QualityFilter:
    """Accept or reject clean messages (see the module docstring for the tests).

    Args:
        min_words: fewest words a message may have.
        max_words: most words a message may have.
        on_topic_threshold: least mean top-3 cosine similarity to the on-topic anchors.
        encoder: an object with ``encode(texts) -> (n, d)`` unit-length embeddings (a
            :class:`~gambit_gym.text.embedder.MiniLMStyleEmbedder`); None makes a MiniLM
            encoder on ``device`` when first needed. Pass the env's or builder's embedder to
            load the model once.
        device: for the encoder made here.
        anchors_path: the on-topic anchor file (None: the shipped one).
    """

    version = "quality v1"

    def __init__(self, min_words: int = 6, max_words: int = 60,
                 on_topic_threshold: float = 0.40, encoder: Any = None,
                 device: str | None = "cpu", anchors_path: str | Path | None = None) -> None:
        if not 1 <= min_words <= max_words:
            raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
        if not -1.0 <= on_topic_threshold <= 1.0:
            raise ValueError(f"on_topic_threshold must be in [-1, 1], got {on_topic_threshold}")
        self.min_words, self.max_words = int(min_words), int(max_words)
        self.on_topic_threshold = float(on_topic_threshold)
        self.encoder = encoder
        self.device = device
        self.anchors = load_on_topic_anchors(anchors_path)
        self._anchor_enc: np.ndarray | None = None

    # ----------------------------------------------------------------- model
    def _encoder(self) -> Any:
        if self.encoder is None:
            from gambit_gym.text.embedder import MiniLMStyleEmbedder

            self.encoder = MiniLMStyleEmbedder(device=self.device)
        return self.encoder

    def load(self) -> None:
        """Load the encoder and embed the anchors (done on first use otherwise)."""
        if self._anchor_enc is None:
            self._anchor_enc = np.asarray(self._encoder().encode(self.anchors), np.float32)

    def on_topic_similarity(self, texts: Sequence[str]) -> np.ndarray:
        """Mean of each text's three highest cosine similarities to the anchors, ``(n,)``."""
        if not len(texts):
            return np.zeros(0)
        self.load()
        enc = np.asarray(self._encoder().encode(list(texts)), np.float32)
        sims = enc @ self._anchor_enc.T
        k = min(3, sims.shape[1])
        return np.sort(sims, axis=1)[:, -k:].mean(axis=1)

    # ----------------------------------------------------------------- verdicts
    def rule_reason(self, text: str) -> str | None:
        """The first failed text rule (every reason but ``off_topic``), or None."""
        n = len(re.findall(r"[A-Za-z0-9']+", text))
        if n < self.min_words or n > self.max_words:
            return "length"
        if has_placeholder(text):
            return "placeholder"
        if _META.search(text):
            return "meta"
        if _PERSONA.search(text):
            return "persona"
        if (_ADDRESSEE.search(text) or _THIRD_PERSON.search(text)
                or not (_SECOND_PERSON.search(text) or _IMPERATIVE.search(text))):
            return "addressee"
        if not names_activity(text):
            return "off_topic"
        return None

    def reasons(self, texts: Sequence[str]) -> list[str | None]:
        """Why each message is rejected (None: accepted); the encoder runs once, batched."""
        out = [self.rule_reason(t) for t in texts]
        todo = [i for i, r in enumerate(out) if r is None]
        if todo:
            sims = self.on_topic_similarity([texts[i] for i in todo])
            for i, s in zip(todo, sims):
                if s < self.on_topic_threshold:
                    out[i] = "off_topic"
        return out

    def metadata(self) -> dict[str, Any]:
        """Version and settings (part of a build's fingerprint)."""
        return {"version": self.version, "min_words": self.min_words,
                "max_words": self.max_words, "on_topic_threshold": self.on_topic_threshold,
                "anchors": len(self.anchors)}

    def __repr__(self) -> str:
        return (f"QualityFilter(min_words={self.min_words}, max_words={self.max_words}, "
                f"on_topic_threshold={self.on_topic_threshold})")
