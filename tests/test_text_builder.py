import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from text_servers import FakeLLMServer

from gambit_gym.text.bank import BankFormatError, ResponseBank, load_bank
from gambit_gym.text.builder import (
    ChunkPlan,
    build_bank,
    chunk_dir_for,
    embed_texts_file,
    read_texts_file,
)
from gambit_gym.text.contexts import context_definitions
from gambit_gym.text.generators import HTTPConfig, OllamaGenerator
from gambit_gym.text.prompts import load_prompt_library

ROOT = Path(__file__).resolve().parent.parent
FAST = HTTPConfig(timeout=5, retries=1, backoff=0.01, concurrency=4)


@pytest.fixture(scope="module")
def server():
    with FakeLLMServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def embedder(minilm):
    return minilm


def _gen(srv):
    return OllamaGenerator("tiny", base_url=srv.url, http=FAST)


def test_chunk_plan_covers_every_row_once():
    plan = ChunkPlan((0, 1, 2), tuple(range(12)), per_pair=7, reps_per_chunk=3)
    items = [it for k in range(plan.n_chunks) for it in plan.items(k)]
    assert plan.n_chunks == 3 and len(items) == len(set(items)) == plan.n_rows == 3 * 12 * 7
    with pytest.raises(ValueError, match="per_pair"):
        ChunkPlan((0,), (0,), 0, 1)
    with pytest.raises(ValueError, match="context ids"):
        ChunkPlan((0,), (12,), 1, 1)


def test_build_round_trip_and_metadata(server, embedder, tmp_path):
    out = tmp_path / "bank.parquet"
    bank = build_bank(_gen(server), embedder, per_pair=2, out=out, seed=5, batch_size=24,
                      prompt_ids=[0, 1], progress=False)
    loaded = ResponseBank.load(out)
    assert len(loaded) == 2 * 12 * 2 and loaded.counts[:2].tolist() == [[2] * 12] * 2
    assert loaded.dimensions == embedder.names and loaded.scores.dtype == np.float32
    np.testing.assert_array_equal(loaded.scores, bank.scores)
    assert list(loaded.texts) == list(bank.texts)
    meta = loaded.metadata
    lib = load_prompt_library()
    assert meta["prompt_library"] == lib.to_dict() and meta["contexts"] == context_definitions()
    assert meta["seed"] == 5 and meta["per_pair"] == 2 and meta["rejections"] == 0
    assert meta["generator"]["name"] == "ollama" and meta["embedder"]["name"]
    assert loaded.prompt_text(1, 7) == lib.render(1, 7)
    assert len(meta["rendered_prompts"]) == 40 and len(meta["rendered_prompts"][0]) == 12
    assert not chunk_dir_for(out).exists()
    # the builder scores safety by default, with the offline classifier on shared encodings
    from gambit_gym.text.safety import MiniLMSafetyClassifier

    clf = MiniLMSafetyClassifier(encoder=embedder)
    assert loaded.safety_classifier["name"] == "minilm-logreg-rules"
    np.testing.assert_allclose(loaded.safety, clf.score(list(loaded.texts)), atol=5e-4)
    # every message's exact length in SmolLM2 tokens is written (the cost model reads it)
    from gambit_gym.text.tokens import count_tokens

    assert loaded.metadata["token_counts"] == "SmolLM2 tokenizer"
    np.testing.assert_array_equal(loaded.n_tokens, count_tokens(list(loaded.texts)))
    assert loaded.n_tokens.min() > 0
    # texts are cleaned: no preamble, no chatter, no quotes
    assert all(t.startswith("You are") and "hope" not in t for t in loaded.texts)
    # pandas reads it
    import pandas as pd

    df = pd.read_parquet(out)
    assert list(df.columns[:3]) == ["text", "prompt_id", "context_id"]


def test_split_mode_texts_then_embed(server, embedder, tmp_path):
    texts = tmp_path / "texts.parquet"
    assert build_bank(_gen(server), None, per_pair=1, out=texts, seed=5, prompt_ids=[3],
                      texts_only=True, progress=False) is None
    t, p, c, r, meta = read_texts_file(texts)
    assert len(t) == 12 and set(p) == {3} and meta["per_pair"] == 1 and "embedder" not in meta
    bank = embed_texts_file(texts, embedder, tmp_path / "bank.parquet", progress=False,
                            safety=None)
    assert len(bank) == 12 and bank.metadata["embedder"]["name"] == embedder.name
    assert bank.safety is None  # safety=None: no safety columns
    with pytest.raises(BankFormatError, match="not a gambit-gym texts file"):
        read_texts_file(tmp_path / "bank.parquet")


def test_texts_only_never_loads_the_embedder(server, tmp_path):
    """texts_only stops before embedding, so an embedder name is not even looked up.

    (A precedence slip once made ``texts_only=True`` with an embedder name load the model it
    never used; an unknown name made the build fail.)
    """
    texts = tmp_path / "texts.parquet"
    assert build_bank(_gen(server), "no-such-embedder", per_pair=1, out=texts, seed=5,
                      prompt_ids=[3], texts_only=True, progress=False) is None
    assert len(read_texts_file(texts)[0]) == 12
    with pytest.raises(ValueError, match="unknown embedder 'no-such-embedder'"):
        build_bank(_gen(server), "no-such-embedder", per_pair=1, out=tmp_path / "b.parquet",
                   seed=5, prompt_ids=[3], progress=False)


def test_deterministic_for_a_seed(server, tmp_path):
    a = tmp_path / "a.parquet"
    b = tmp_path / "b.parquet"
    for out in (a, b):
        build_bank(_gen(server), None, per_pair=2, out=out, seed=11, prompt_ids=[0],
                   texts_only=True, progress=False)
    assert read_texts_file(a)[0] == read_texts_file(b)[0]
    build_bank(_gen(server), None, per_pair=2, out=a, seed=12, prompt_ids=[0],
               texts_only=True, progress=False)
    assert read_texts_file(a)[0] != read_texts_file(b)[0]


def test_resume_refuses_other_settings(server, tmp_path):
    out = tmp_path / "t.parquet"
    assert build_bank(_gen(server), None, per_pair=3, out=out, seed=1, prompt_ids=[0],
                      reps_per_chunk=1, texts_only=True, progress=False, max_chunks=1) is None
    with pytest.raises(ValueError, match="other settings.*seed.*delete"):
        build_bank(_gen(server), None, per_pair=3, out=out, seed=2, prompt_ids=[0],
                   reps_per_chunk=1, texts_only=True, progress=False)


KILL_SCRIPT = """
import sys
from gambit_gym.text.builder import build_bank
from gambit_gym.text.generators import HTTPConfig, OllamaGenerator
gen = OllamaGenerator("tiny", base_url=sys.argv[1], http=HTTPConfig(timeout=5, concurrency=1))
build_bank(gen, None, per_pair=8, out=sys.argv[2], seed=3, prompt_ids=[0, 1],
           reps_per_chunk=1, texts_only=True, progress=False)
"""


def test_generation_time_adds_up_over_sittings(tmp_path, capsys):
    # each reply takes 50 ms; with one request at a time a chunk of 12 takes >= 0.6 s
    with FakeLLMServer(delay=0.05) as srv:
        gen = OllamaGenerator("tiny", base_url=srv.url,
                              http=HTTPConfig(timeout=5, retries=1, concurrency=1))
        out = tmp_path / "t.parquet"
        kwargs = dict(per_pair=3, out=out, seed=1, prompt_ids=[0], reps_per_chunk=1,
                      texts_only=True)
        assert build_bank(gen, None, max_chunks=2, progress=False, **kwargs) is None
        first = [json.loads(f.read_text())["seconds"]
                 for f in sorted(chunk_dir_for(out).glob("chunk_*.json"))]
        assert len(first) == 2 and all(s >= 0.6 for s in first)
        capsys.readouterr()
        build_bank(gen, None, progress=True, **kwargs)
    meta = read_texts_file(out)[4]
    assert meta["untimed_chunks"] == 0
    assert sum(first) + 0.6 <= meta["generation_seconds"] < sum(first) + 30
    closing = capsys.readouterr().err.strip().splitlines()[-1]
    found = re.search(r"in (\d+) s of generation in all, (\d+) s in this run", closing)
    assert found, closing
    in_all, this_run = int(found[1]), int(found[2])
    assert in_all == round(meta["generation_seconds"]) and 1 <= this_run < in_all


def test_killed_build_resumes_to_the_same_rows(tmp_path):
    with FakeLLMServer(delay=0.01) as srv:
        ref = tmp_path / "ref.parquet"
        out = tmp_path / "killed.parquet"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, srv.url, str(out)],
                                env=env, cwd=tmp_path)
        chunks = chunk_dir_for(out)
        deadline = time.time() + 60
        while time.time() < deadline and len(list(chunks.glob("chunk_*.json"))) < 2:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done = len(list(chunks.glob("chunk_*.json")))
        assert 2 <= done < 8, "the build should have been killed part-way"
        assert not out.exists()
        n_before = len(srv.requests)
        gen = OllamaGenerator("tiny", base_url=srv.url, http=FAST)
        build_bank(gen, None, per_pair=8, out=out, seed=3, prompt_ids=[0, 1],
                   reps_per_chunk=1, texts_only=True, progress=False)
        resumed_requests = len(srv.requests) - n_before
        assert resumed_requests <= (8 - done) * 24
        build_bank(_gen(srv), None, per_pair=8, out=ref, seed=3, prompt_ids=[0, 1],
                   reps_per_chunk=1, texts_only=True, progress=False)
    t1, p1, c1, r1, _ = read_texts_file(out)
    t2, p2, c2, r2, _ = read_texts_file(ref)
    assert len(t1) == 2 * 12 * 8
    assert t1 == t2
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(r1, r2)
    assert len(set(zip(p1.tolist(), c1.tolist(), r1.tolist()))) == len(t1)


def test_cli_build_bank(server, tmp_path, capsys):
    from gambit_gym.cli import main

    out = tmp_path / "cli.parquet"
    rc = main(["build-bank", "--generator", "ollama:tiny", "--base-url", server.url,
               "--per-pair", "1", "--prompts", "0-1", "--out", str(out), "--seed", "2",
               "--texts-only", "--no-progress"])
    assert rc == 0 and out.exists()
    rc = main(["build-bank", "--generator", "gpt-9", "--out", str(out)])
    assert rc == 2 and "unknown generator" in capsys.readouterr().err


def test_build_bar_moves_within_a_chunk(server, tmp_path, capsys):
    gen = _gen(server)
    server.bad_replies = 2
    build_bank(gen, None, per_pair=2, out=tmp_path / "bar.parquet", seed=3, prompt_ids=[0, 1],
               texts_only=True, reps_per_chunk=1)
    err = capsys.readouterr().err
    # two chunks of 2 prompts x 12 contexts; chunk 1's bar grows by its 2 redraws
    assert "chunk 1/2" in err and "/26 [" in err and "chunk 2/2" in err and "/24 [" in err
    assert "generating" in err and "48/48" in err and gen.on_progress is None


# ------------------------------------------------------------------ bad files
@pytest.fixture(scope="module")
def good_bank(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 3 * 12 * 2
    p = np.repeat(np.arange(3), 24)
    c = np.tile(np.repeat(np.arange(12), 2), 3)
    texts = [f"message {i}" for i in range(n)]
    path = tmp_path_factory.mktemp("bank") / "good.parquet"
    ResponseBank.from_arrays(texts, p, c, rng.normal(size=(n, 4)), ("a", "b", "c", "d"),
                             {"seed": 0}).save(path)
    return path


def test_truncated_file(good_bank, tmp_path):
    bad = tmp_path / "trunc.parquet"
    data = good_bank.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(BankFormatError, match="corrupt or truncated"):
        ResponseBank.load(bad)


def test_corrupt_content(good_bank, tmp_path):
    table = pq.read_table(good_bank)
    texts = table.column("text").to_pylist()
    texts[5] = "tampered"
    import pyarrow as pa

    table = table.set_column(0, "text", pa.array(texts, type=pa.string()))
    bad = tmp_path / "tampered.parquet"
    pq.write_table(table, bad)
    with pytest.raises(BankFormatError, match="checksum"):
        ResponseBank.load(bad)


def test_rows_dropped(good_bank, tmp_path):
    table = pq.read_table(good_bank)
    bad = tmp_path / "short.parquet"
    pq.write_table(table.slice(0, 10), bad)
    with pytest.raises(BankFormatError, match="truncated: 10 rows"):
        ResponseBank.load(bad)


def test_foreign_files(tmp_path):
    import pandas as pd

    foreign = tmp_path / "foreign.parquet"
    pd.DataFrame({"x": [1, 2]}).to_parquet(foreign)
    with pytest.raises(BankFormatError, match="not a gambit-gym response bank"):
        ResponseBank.load(foreign)
    text = tmp_path / "notes.parquet"
    text.write_text("hello, not parquet")
    with pytest.raises(BankFormatError, match="not a readable Parquet"):
        ResponseBank.load(text)
    with pytest.raises(BankFormatError, match="does not exist"):
        load_bank(tmp_path / "missing.parquet")


def test_shipped_bank_is_valid():
    from gambit_gym.text.bank import default_bank_path

    path = default_bank_path()
    assert path.stat().st_size <= 20 * 2 ** 20
    bank = ResponseBank.load(path)
    assert bank.n_prompts == 40 and (bank.counts >= 1).all()
    meta = bank.metadata
    assert meta["generator"]["name"] == "smollm2" and meta["embedder"]["name"]
    assert json.dumps(meta["prompt_library"]) and len(meta["rendered_prompts"]) == 40
    assert bank.prompt_text(0, 0) == load_prompt_library().render(0, 0)


def test_merge_partial_makes_a_balanced_bank(server, embedder, tmp_path):
    from gambit_gym.text.builder import merge_partial

    out = tmp_path / "part.parquet"
    assert build_bank(_gen(server), embedder, per_pair=5, out=out, seed=4, prompt_ids=[2],
                      reps_per_chunk=1, progress=False, max_chunks=2) is None
    bank = merge_partial(chunk_dir_for(out), embedder, tmp_path / "merged.parquet",
                         progress=False)
    assert len(bank) == 24 and (bank.counts[2] == 2).all() and bank.metadata["per_pair"] == 2
    with pytest.raises(FileNotFoundError, match="no build"):
        merge_partial(tmp_path / "nothing.chunks", embedder, tmp_path / "x.parquet")
