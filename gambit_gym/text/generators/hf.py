"""The local Hugging Face backend: any causal LM from a model folder or a ``.gguf`` file."""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from gambit_gym.text.generators.interface import LLM_INSTALL_HINT, SamplingConfig, derive_seed
from gambit_gym.text.generators.redraw import DTYPES, BaseGenerator, resolve_device


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
            cache computed once and shared by its copies; faster on a CPU than
            ``generate``, measured by ``benchmarks/bench_fast_decode.py``); other models, or
            False, use ``transformers``' ``generate``.
        spare: with ``shared_prefix``, draw this fraction of extra drafts per query and use
            them in place of drafts the post-processing rejects (i.i.d. draws, so taking the
            first accepted ones is rejection sampling, unbiased); it saves re-running the
            query for redraws. Skipped rejected drafts are counted in ``rejections``.
        quality: a :class:`~gambit_gym.text.generators.quality.QualityFilter` (None: none).
        early_stop: with the shared-prefix sampler, return each query's first accepted draft
            and stop decoding there (:mod:`.first_accepted`; the live env sets it): same
            distribution of messages, fewer tokens decoded; ``spare`` then only sets how many
            drafts share a pass. The bank builder leaves it off.
    """

    name = "hf"

    def __init__(self, path: str | os.PathLike, device: str | None = "auto",
                 batch_size: int = 32, sampling: SamplingConfig | None = None,
                 dtype: str = "auto", shared_prefix: bool = True, spare: float = 0.3,
                 quality: Any = None, early_stop: bool = False) -> None:
        super().__init__(sampling, quality)
        self.early_stop = bool(early_stop)
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
            if self.early_stop:
                params["decoder"] = "first-accepted v1"
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

    def generate(self, prompts: list[str], seed: int) -> list[str]:
        """One cleaned message per query (see :meth:`BaseGenerator.generate`).

        With ``early_stop`` and the shared-prefix sampler, each query's first accepted draft
        (:func:`~.first_accepted.generate_first_accepted`).
        """
        if self.early_stop:
            self.load()
            if self._sampler is not None:
                from gambit_gym.text.generators.first_accepted import generate_first_accepted

                return generate_first_accepted(self, list(prompts), seed)
        return super().generate(prompts, seed)

    def _messages(self, prompt: str) -> list[dict[str, str]]:
        from gambit_gym.text.prompt_tokens import chat_messages

        return chat_messages(self.system, self.few_shot, prompt)

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
        from gambit_gym.text.prompt_tokens import render_query

        return render_query(self._tok, self.system, self.few_shot, prompt)

    def count_prompt_tokens(self, prompts: list[str]) -> np.ndarray:
        """Input tokens of each query as this generator sends it, int64 ``(n,)``.

        The system instruction, few-shot turns and prompt in the chat template: what the live
        env records as ``prompt_tokens``.
        """
        from gambit_gym.text.prompt_tokens import count_prompt_tokens

        self.load()
        return count_prompt_tokens(self._tok, self.system, self.few_shot, prompts)

    def count_tokens(self, texts: list[str]) -> np.ndarray:
        """Tokens of each message with this generator's tokenizer, int64 ``(n,)``."""
        from gambit_gym.text.tokens import count_tokens

        self.load()
        return count_tokens(texts, self._tok).astype(np.int64)

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
            decoded = [tok.batch_decode(rows, skip_special_tokens=True) for rows in drafts]
            flat = [(p, t) for (p, _, _), texts in zip(batch, decoded) for t in texts]
            verdicts = iter(self._screen([t for _, t in flat], [p for p, _ in flat]))
            for (_, idx, _), texts in zip(batch, decoded):
                reasons = [next(verdicts)[1] for _ in texts]
                order = ([j for j, r in enumerate(reasons) if r is None]
                         + [j for j, r in enumerate(reasons) if r is not None])
                chosen = order[:len(idx)]
                # rejected drafts handed back are counted by generate(); count the skipped ones
                for j in order[len(idx):]:
                    if reasons[j] is not None:
                        self._reject(reasons[j])
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
