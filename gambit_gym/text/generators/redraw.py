"""The shared generator base: cleaning every draft and redrawing rejected ones, plus devices.

:class:`BaseGenerator` turns a backend's ``_draft`` into ``generate``: it cleans each draft
(:mod:`.cleaning`), redraws rejected ones with seeds derived from (seed, attempt), and keeps the
rejection counts the builder records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from gambit_gym.text.generators.cleaning import clean_message, is_degenerate
from gambit_gym.text.generators.interface import GenerationError, SamplingConfig, derive_seed
from gambit_gym.text.generators.quality import QualityFilter


class BaseGenerator:
    """Shared ``generate``: raw drafts from the backend, cleaning, rejection and redraws.

    Subclasses implement :meth:`_draft` (raw outputs for a list of queries and one seed) and
    :meth:`_params`, and call :meth:`_report` as drafts come back.

    Args:
        sampling: sampling settings.
        quality: a :class:`~.quality.QualityFilter` that every clean draft must also pass
            (None: only cleaning and the degeneracy test).

    Attributes:
        rejection_reasons: rejected drafts so far by reason: ``empty``, ``degenerate`` and the
            filter's reasons (:data:`~.quality.QUALITY_REASONS`); they sum to ``rejections``.
        on_progress: optional ``callback(drafted, queued)``: ``queued`` queries were just
            handed to the backend (each attempt of :meth:`generate` queues the queries still
            without an accepted message), ``drafted`` more of them came back. The bank builder
            uses it to move its bar within a chunk, which on a CPU takes many minutes.
    """

    name = "base"

    def __init__(self, sampling: SamplingConfig | None = None,
                 quality: QualityFilter | None = None) -> None:
        self.sampling = sampling or SamplingConfig()
        self.quality = quality
        self.rejections = 0
        self.unresolved = 0
        self.rejection_reasons: dict[str, int] = {}
        #: example turns ``(user, assistant)`` sent before every query (backends with chat
        #: messages); the builder sets them from the prompt library.
        self.few_shot: tuple[tuple[str, str], ...] = ()
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
            screened = self._screen(raw, [prompts[i] for i in todo])
            for i, (msg, reason) in zip(todo, screened):
                if reason is None:
                    result[i] = msg
                else:
                    self._reject(reason)
                    if msg and len(msg) > len(fallback[i]):
                        fallback[i] = msg
                    still.append(i)
            todo = still
        return self._settle(prompts, result, fallback, todo, self.sampling.max_attempts)

    def _settle(self, prompts: list[str], result: list[str | None], fallback: list[str],
                todo: list[int], drafts: int) -> list[str]:
        """The messages, once the queries in ``todo`` have had all ``drafts`` drafts rejected.

        Each such query keeps its longest real (cleaned, non-empty) draft and is counted in
        ``unresolved``; one whose drafts were all empty raises :class:`GenerationError`.
        Shared by the sequential loop above and the live env's early-stop path
        (:mod:`~gambit_gym.text.generators.first_accepted`).
        """
        for i in todo:
            if not fallback[i]:
                raise GenerationError(
                    f"{self.name}: no usable message for query {i} after "
                    f"{drafts} drafts (all empty after cleaning); check the "
                    f"model and its settings, or raise max_attempts. Query: {prompts[i][:120]!r}")
            self.unresolved += 1
            result[i] = fallback[i]
        return [str(r) for r in result]

    def _clean(self, raw: str, prompt: str) -> tuple[str, bool]:
        """``(cleaned message, passes cleaning)`` for one raw draft of the query ``prompt``.

        The quality filter is not applied here (see :meth:`_screen`).
        """
        # sentences echoed from the query, the system instruction or a few-shot turn are dropped
        # (a copied example is no message of this prompt's)
        echo = [prompt, *([self.system] if self.system else []),
                *(text for turn in self.few_shot for text in turn)]
        msg = clean_message(raw, echo)
        return msg, bool(msg) and not is_degenerate(msg)

    def _screen(self, raws: list[str], prompts: list[str]) -> list[tuple[str, str | None]]:
        """``(cleaned message, rejection reason or None)`` for each raw draft.

        Cleaning and the degeneracy test first (reasons ``empty``, ``degenerate``), then the
        quality filter, batched over the drafts that are left. Counts nothing.
        """
        out: list[tuple[str, str | None]] = []
        for raw, prompt in zip(raws, prompts):
            msg, ok = self._clean(raw, prompt)
            out.append((msg, None if ok else ("degenerate" if msg else "empty")))
        if self.quality is not None:
            todo = [i for i, (_, r) in enumerate(out) if r is None]
            verdicts = self.quality.reasons([out[i][0] for i in todo])
            for i, reason in zip(todo, verdicts):
                out[i] = (out[i][0], reason)
        return out

    def _reject(self, reason: str, n: int = 1) -> None:
        """Count ``n`` rejected drafts for ``reason``."""
        self.rejections += n
        self.rejection_reasons[reason] = self.rejection_reasons.get(reason, 0) + n

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
            **({"quality": self.quality.metadata()} if self.quality is not None else {}),
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
