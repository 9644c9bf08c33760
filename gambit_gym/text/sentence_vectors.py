"""A bank's full sentence embeddings: the 384-d MiniLM vector of every message, and its PCA.

The 20 named style scores of a bank are linear projections of each message's unit-length
all-MiniLM-L6-v2 sentence embedding (:class:`~gambit_gym.text.embedder.MiniLMStyleEmbedder`).
An env with ``embedding="minilm384"`` hands agents that full vector instead (they are not told
which directions matter), and ``embedding="pca:k"`` its first ``k`` principal components; the
reward still comes from the named scores (:mod:`gambit_gym.envs.config`).

Two files serve this, both keyed to one bank by its content checksum:

* the **vectors**: float32 ``(n_rows, 384)``, bank row order, as ``.npy``. 48,000 messages
  make 74 MB, too big to ship in the package, so ``gambit-gym embed-bank`` computes them into
  the user's cache folder (:func:`cache_dir`) once (about 10 minutes on two CPU cores, well
  under one on a GPU);
* the **PCA** (:class:`BankPCA`, ``.npz``): the mean vector, the first :data:`PCA_DIMS`
  principal axes of the bank's vectors, the sd of each component over the bank, and every
  row's components divided by that sd (unit variance over the bank, as the named scores are),
  in float16: 3 MB for 48,000 rows. The shipped bank's PCA ships in the package, so the
  ``pca:k`` envs need no download and no model; ``embed-bank`` writes it for other banks.
  When the shipped bank changes, ``gambit-gym embed-bank --force --pca-out
  gambit_gym/data/ihs_smollm2_bank_minilm_pca.npz`` regenerates the shipped file.

Steps stay fast either way: the env reads row ``i`` of one in-memory array.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gambit_gym.text.bank import ResponseBank, default_bank_path, load_bank

DIM = 384  #: width of an all-MiniLM-L6-v2 sentence embedding
PCA_DIMS = 32  #: principal components stored (``pca:k`` takes 1 <= k <= this)
ENCODER = "sentence-transformers/all-MiniLM-L6-v2, unit length (MiniLMStyleEmbedder.encode)"
CACHE_ENV = "GAMBIT_GYM_CACHE"
SHIPPED_PCA = Path(__file__).resolve().parent.parent / "data" / "ihs_smollm2_bank_minilm_pca.npz"
COMMAND = "gambit-gym embed-bank"


def cache_dir() -> Path:
    """The folder computed files go to.

    ``$GAMBIT_GYM_CACHE``, else ``$XDG_CACHE_HOME/gambit-gym``, else ``~/.cache/gambit-gym``.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gambit-gym"


def _command_for(bank_path: str | os.PathLike | None) -> str:
    return COMMAND if bank_path is None else f"{COMMAND} --bank {bank_path}"


def vectors_path(bank: ResponseBank) -> Path:
    """The cache file of a bank's 384-d vectors (named by its checksum)."""
    return cache_dir() / "bank_vectors" / f"{bank.checksum[:16]}_minilm{DIM}.npy"


def pca_cache_path(bank: ResponseBank) -> Path:
    """The cache file of a bank's PCA (for banks other than the shipped one)."""
    return cache_dir() / "bank_vectors" / f"{bank.checksum[:16]}_minilm_pca{PCA_DIMS}.npz"


@dataclass(frozen=True)
class BankPCA:
    """The principal components of a bank's sentence vectors.

    Attributes:
        mean: mean vector over the bank, float32 ``(384,)``.
        components: unit principal axes, largest variance first, float32 ``(k_max, 384)``;
            each axis's sign makes its largest loading positive.
        scale: sd of each component over the bank, float32 ``(k_max,)``.
        projections: every row's components divided by ``scale``, float16 ``(n_rows, k_max)``.
        explained: share of the total variance each component explains, ``(k_max,)``.
        bank_checksum: content checksum of the bank it belongs to.
    """

    mean: np.ndarray
    components: np.ndarray
    scale: np.ndarray
    projections: np.ndarray
    explained: np.ndarray
    bank_checksum: str

    def project(self, vectors: np.ndarray, k: int | None = None) -> np.ndarray:
        """Standardised components of vectors ``(n, 384)``: ``(n, k)`` float32."""
        k = len(self.scale) if k is None else k
        z = (np.asarray(vectors, np.float64) - self.mean) @ self.components[:k].T.astype(
            np.float64)
        return (z / self.scale[:k]).astype(np.float32)

    def save(self, path: str | os.PathLike) -> Path:
        """Write as ``.npz`` (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial.npz")
        np.savez_compressed(tmp, mean=self.mean, components=self.components, scale=self.scale,
                            projections=self.projections, explained=self.explained,
                            meta=np.array(json.dumps({"bank_checksum": self.bank_checksum,
                                                      "encoder": ENCODER})))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> BankPCA:
        """Read a file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            return cls(mean=f["mean"], components=f["components"], scale=f["scale"],
                       projections=f["projections"], explained=f["explained"],
                       bank_checksum=meta["bank_checksum"])


def fit_pca(vectors: np.ndarray, bank_checksum: str, k: int = PCA_DIMS) -> BankPCA:
    """The first ``k`` principal components of a bank's vectors ``(n, 384)`` (deterministic).

    Eigen-decomposition of the covariance (float64); each axis is signed so that its largest
    loading is positive, so the same vectors always give the same file.
    """
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != DIM:
        raise ValueError(f"vectors must be (n_rows, {DIM}), got {v.shape}")
    k = min(k, v.shape[0] - 1, DIM)
    mean = v.mean(axis=0)
    centred = v - mean
    cov = centred.T @ centred / len(v)
    values, axes = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:k]
    values, axes = values[order], axes[:, order].T  # (k, 384)
    signs = np.sign(axes[np.arange(k), np.abs(axes).argmax(axis=1)])
    axes = axes * signs[:, None]
    scale = np.sqrt(np.maximum(values, 1e-24))
    proj = (centred @ axes.T) / scale
    return BankPCA(mean=mean.astype(np.float32), components=axes.astype(np.float32),
                   scale=scale.astype(np.float32), projections=proj.astype(np.float16),
                   explained=(values / np.trace(cov)).astype(np.float32),
                   bank_checksum=bank_checksum)


def encode_bank(bank: ResponseBank, device: str = "auto", batch_size: int = 256,
                progress: Any = None) -> np.ndarray:
    """The MiniLM vector of every message of ``bank``, float32 ``(n_rows, 384)``, row order."""
    from gambit_gym.text.embedder import MiniLMStyleEmbedder

    emb = MiniLMStyleEmbedder(device=device, batch_size=batch_size)
    texts = [str(t) for t in bank.texts]
    out = np.empty((len(texts), DIM), dtype=np.float32)
    step = 2048
    for start in range(0, len(texts), step):
        out[start:start + step] = emb.encode(texts[start:start + step])
        if progress is not None:
            progress(min(start + step, len(texts)), len(texts))
    return out


def load_vectors(bank: ResponseBank, bank_path: str | os.PathLike | None = None) -> np.ndarray:
    """The bank's 384-d vectors from the cache, float32 ``(n_rows, 384)``.

    Raises:
        FileNotFoundError: they have not been computed; the message names the command.
        ValueError: the cached file does not fit the bank.
    """
    path = vectors_path(bank)
    if not path.exists():
        raise FileNotFoundError(
            f"embedding='minilm{DIM}' needs the bank's {DIM}-d MiniLM sentence vectors, which "
            f"are not in the cache ({path}); compute them once with `{_command_for(bank_path)}` "
            f"(set ${CACHE_ENV} to use another cache folder)")
    vectors = np.load(path, mmap_mode="r")
    if vectors.shape != (len(bank), DIM) or vectors.dtype != np.float32:
        raise ValueError(f"{path} holds {vectors.shape} {vectors.dtype}, not the bank's "
                         f"({len(bank)}, {DIM}) float32 vectors; delete it and run "
                         f"`{_command_for(bank_path)}` again")
    return vectors


def load_pca(bank: ResponseBank, bank_path: str | os.PathLike | None = None) -> BankPCA:
    """The bank's PCA: the shipped one for the shipped bank, else the cache's.

    Raises:
        FileNotFoundError: not computed yet; the message names the command.
    """
    checksum = bank.checksum
    for path in (SHIPPED_PCA, pca_cache_path(bank)):
        if path.exists():
            pca = _load_pca_cached(str(path), path.stat().st_mtime_ns)
            if pca.bank_checksum == checksum:
                if len(pca.projections) != len(bank):
                    raise ValueError(f"{path} has {len(pca.projections)} rows, the bank "
                                     f"{len(bank)}; run `{_command_for(bank_path)}` again")
                return pca
    raise FileNotFoundError(
        f"embedding='pca:k' needs the PCA of this bank's MiniLM sentence vectors, which is "
        f"neither shipped nor in the cache ({pca_cache_path(bank)}); compute it once with "
        f"`{_command_for(bank_path)}`")


_PCA_CACHE: dict[tuple[str, int], BankPCA] = {}


def _load_pca_cached(path: str, mtime_ns: int) -> BankPCA:
    key = (path, mtime_ns)
    if key not in _PCA_CACHE:
        _PCA_CACHE[key] = BankPCA.load(path)
    return _PCA_CACHE[key]


def parse_embedding(value: object) -> tuple[str, int]:
    """``("scores", 0)``, ``("minilm384", 384)`` or ``("pca", k)`` from an ``embedding=`` value.

    Raises:
        ValueError: anything else, naming the valid values.
    """
    if value == "scores":
        return "scores", 0
    if value == f"minilm{DIM}":
        return value, DIM
    if isinstance(value, str) and value.startswith("pca:"):
        try:
            k = int(value[4:])
        except ValueError:
            k = 0
        if 1 <= k <= PCA_DIMS:
            return "pca", k
    raise ValueError(f"embedding must be 'scores' (the named style scores), 'minilm{DIM}' (the "
                     f"full MiniLM sentence vector) or 'pca:k' with 1 <= k <= {PCA_DIMS}, got "
                     f"{value!r}")


def working_embedding(bank: ResponseBank, embedding: str,
                      bank_path: str | os.PathLike | None = None
                      ) -> tuple[np.ndarray, tuple[str, ...]]:
    """What ``info["embedding"]`` holds for each bank row under ``embedding`` (not "scores").

    Returns:
        (float32 ``(n_rows, d)``, the d names: ``minilm_000``.. or ``pc01``..).
    """
    kind, k = parse_embedding(embedding)
    if kind == "pca":
        pca = load_pca(bank, bank_path)
        return (np.ascontiguousarray(pca.projections[:, :k], dtype=np.float32),
                tuple(f"pc{j + 1:02d}" for j in range(k)))
    if kind == f"minilm{DIM}":
        return (np.ascontiguousarray(load_vectors(bank, bank_path)),
                tuple(f"minilm_{j:03d}" for j in range(DIM)))
    raise ValueError("embedding='scores' reads the bank's score columns, not sentence vectors")


# ---------------------------------------------------------------------- the command
def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``gambit-gym embed-bank``."""
    parser.add_argument("--bank", default=None, help="a bank file (default: the shipped bank)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=256, help="texts per encoder batch")
    parser.add_argument("--pca-out", default=None,
                        help="also write the PCA here (default: into the cache, unless the "
                             "package ships this bank's PCA)")
    parser.add_argument("--force", action="store_true",
                        help="recompute even if the vectors are cached")


def run(args: argparse.Namespace) -> int:
    """Run ``gambit-gym embed-bank``: the bank's 384-d vectors into the cache, and its PCA."""
    bank_path = args.bank
    bank = load_bank(bank_path)
    name = bank_path or f"shipped bank {default_bank_path().name}"
    out = vectors_path(bank)
    if out.exists() and not args.force:
        print(f"{name}: vectors already in {out} (--force recomputes them)")
        vectors = np.load(out)
    else:
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            print(f"  {done}/{total} messages encoded ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr, flush=True)

        vectors = encode_bank(bank, device=args.device, batch_size=args.batch_size,
                              progress=progress)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".partial.npy")
        np.save(tmp, vectors)
        os.replace(tmp, out)
        print(f"{name}: wrote {len(vectors)} x {DIM} float32 vectors to {out} "
              f"({time.perf_counter() - started:.0f} s)")
    shipped = SHIPPED_PCA.exists() and BankPCA.load(SHIPPED_PCA).bank_checksum == bank.checksum
    if args.pca_out or not shipped:
        pca_out = Path(args.pca_out) if args.pca_out else pca_cache_path(bank)
        fit_pca(vectors, bank.checksum).save(pca_out)
        print(f"wrote the PCA ({PCA_DIMS} components) to {pca_out}")
    return 0
