import copy
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip = pytest.mark.skip(reason="needs a CUDA device; none is present on this machine")
    for item in items:
        if "cuda" in item.keywords and not has_cuda:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Tests that pin torch to one thread (SB3 training) must not leak it: a later test that
    compares an in-process run with a subprocess run (tests/test_sb3_example.py) needs both at
    the default thread count, or float reductions differ and PPO's actions drift."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        yield
        return
    before = torch.get_num_threads()
    yield
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ heavy models, loaded once
@pytest.fixture(scope="session")
def _smollm2_loaded():
    pytest.importorskip("transformers")
    from gambit_gym.text.generators import SmolLM2Generator

    gen = SmolLM2Generator(device="cpu")
    gen.load()
    return gen


@pytest.fixture(scope="session")
def smollm2(_smollm2_loaded):
    """``smollm2(sampling=..., batch_size=...)``: a SmolLM2Generator sharing the one model
    loaded this session (loading takes tens of seconds), with its own settings and counters."""
    from gambit_gym.text.generators import SamplingConfig

    def make(sampling=None, batch_size: int = 32):
        gen = copy.copy(_smollm2_loaded)
        gen.sampling = sampling or SamplingConfig()
        gen.batch_size = batch_size
        gen.rejections = gen.unresolved = 0
        gen.on_progress = None
        return gen

    return make


@pytest.fixture(scope="session")
def minilm():
    """The MiniLM style embedder, loaded once this session (stateless after loading)."""
    pytest.importorskip("sentence_transformers")
    from gambit_gym.text.embedder import MiniLMStyleEmbedder

    emb = MiniLMStyleEmbedder(device="cpu")
    emb.embed(["warm-up"])
    return emb
