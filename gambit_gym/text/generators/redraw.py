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
