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
        gen.rejection_reasons = {}
        gen.quality, gen.few_shot, gen.system = None, (), None
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


# ------------------------------------------------------------ sentence vectors (embed-bank)
@pytest.fixture(scope="session")
def vector_bank(tmp_path_factory):
    """A small bank (6 prompts x 12 contexts x 5 messages of the shipped bank) whose 384-d
    MiniLM vectors and PCA ``gambit-gym embed-bank`` has computed into a session cache folder
    ($GAMBIT_GYM_CACHE points there for the rest of the session). Ids that need the vectors
    (embedding="minilm384") run on it in the shared tests: the shipped bank's 48,000 vectors
    take minutes to encode on a CPU."""
    pytest.importorskip("sentence_transformers")
    from gambit_gym.cli import main
    from gambit_gym.text.bank import ResponseBank, load_bank
    from gambit_gym.text.sentence_vectors import CACHE_ENV

    root = tmp_path_factory.mktemp("vector_bank")
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(root / "cache")
    bank = load_bank()
    rows = [bank.offsets[p, c] + j for p in range(6) for c in range(12) for j in range(5)]
    small = ResponseBank.from_arrays(bank.texts[rows], bank.prompt_ids[rows],
                                     bank.context_ids[rows], bank.scores[rows],
                                     bank.dimensions, bank.metadata)
    path = small.save(root / "small_bank.parquet")
    assert main(["embed-bank", "--bank", str(path), "--device", "cpu"]) == 0
    yield str(path)
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


@pytest.fixture
def env_kwargs(request):
    """``env_kwargs(env_id)``: the kwargs the shared tests make ``env_id`` with: ``bank=`` the
    small :func:`vector_bank` for ids whose agents see the full MiniLM vector, else none."""
    from gambit_gym.envs.registration import ENV_IDS

    needs = {row[0] for row in ENV_IDS if row[3].get("embedding") == "minilm384"}

    def kwargs(env_id):
        return {"bank": request.getfixturevalue("vector_bank")} if env_id in needs else {}

    return kwargs
