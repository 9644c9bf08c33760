"""Every user-facing command, run as a user runs it, checked against an independent answer.

``demo`` and ``list`` (README's first commands), ``report``, ``plot --with-reference``,
``leaderboard -o``, ``bench``'s selection flags, ``build-bank`` with embedding, the OpenAI
backend's request body, and ``RunResult.summary()``'s interval.
"""

import json
import re

import gymnasium as gym
import numpy as np
import pytest
from bench_helpers import make_small_store
from text_servers import FakeLLMServer

import gambit_gym  # noqa: F401
from gambit_gym.bench import run
from gambit_gym.bench.store import ResultStore
from gambit_gym.cli import main
from gambit_gym.envs.registration import ENV_IDS


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "small.sqlite"
    make_small_store(path)
    return path


def _main(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _png(path):
    """A decodable PNG of a real figure: its size, and not one flat colour."""
    from matplotlib import image

    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] >= 200 and pixels.shape[1] >= 300, pixels.shape
    assert pixels[..., :3].std() > 0.02, f"{path} is blank"
    return pixels


# ------------------------------------------------------------------ demo and list
def test_demo_prints_messages_and_each_agents_true_regret(capsys):
    out = _main(capsys, "demo", "--messages", "2", "--replicates", "3", "--horizon", "20",
                "--seed", "4", "--agents", "Random,Oracle")
    assert len(re.findall(r"^  > ", out, flags=re.M)) == 2  # two messages
    embeddings = re.findall(r"^  embedding: (.*)$", out, flags=re.M)
    names = gym.make("GambitIHS-v0").unwrapped.tables.working_names
    assert len(embeddings) == 2 and all(n in embeddings[0] for n in names)
    means = {m[0]: float(m[1]) for m in re.findall(r"^  (\w+)\s+([\d.]+)  \[", out, flags=re.M)}
    assert means["Oracle"] == 0.0
    expected = run("GambitIHS-v0", "Random", horizon=20, replicates=3, seed=4,
                   progress=False).summary()["mean"]
    assert means["Random"] == pytest.approx(expected, abs=0.006)


def test_list_prints_every_registered_id_with_its_setup(capsys, env_kwargs):
    out = _main(capsys, "list")
    for env_id, *_ in ENV_IDS:
        assert len(re.findall(rf"^{re.escape(env_id)}\s", out, flags=re.M)) == 1, env_id
    md = _main(capsys, "list", "--format", "md").strip().splitlines()
    header = [c.strip() for c in md[0].strip("|").split("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in md[2:]]
    assert len(rows) == len(ENV_IDS)
    k = header.index("K")
    for row in rows:
        if row[0].startswith("GambitIHS") and row[0] != "GambitIHS-Live-v0":
            assert int(row[k]) == gym.make(row[0], **env_kwargs(row[0])).action_space.n, row


# ------------------------------------------------------------------ report, plot, leaderboard
def test_report_command_writes_a_site_whose_links_and_images_work(store_path, tmp_path, capsys):
    site = tmp_path / "site"
    _main(capsys, "report", store_path, "--out", site)
    index = (site / "index.html").read_text()
    for agent in ("Random", "Oracle", "StdTS", "poGAMBITTS"):
        assert agent in index
    links = re.findall(r'(?:href|src)="([^"#]+)"', index)
    images = sorted({link for link in links if link.endswith(".png")})
    assert {"figures/one_d.png", "figures/scale_arms.png"} <= set(images)
    for link in links:
        assert (site / link).is_file(), link
    for link in images:
        _png(site / link)


def test_plot_with_reference_draws_random_and_oracle(store_path, tmp_path, capsys):
    plain, ref = tmp_path / "plain", tmp_path / "ref"
    _main(capsys, "plot", store_path, "--out", plain, "--suite", "one_d", "--formats", "png,svg")
    _main(capsys, "plot", store_path, "--out", ref, "--suite", "one_d", "--with-reference",
          "--formats", "png,svg")
    # matplotlib's SVG keeps each text as a comment beside its glyphs: the legend's entries
    for name in ("Random", "Oracle"):
        assert f"<!-- {name} -->" not in (plain / "one_d.svg").read_text()
        assert f"<!-- {name} -->" in (ref / "one_d.svg").read_text()
    for name in ("StdTS", "poGAMBITTS"):
        assert f"<!-- {name} -->" in (plain / "one_d.svg").read_text()
    a, b = _png(plain / "one_d.png"), _png(ref / "one_d.png")
    assert a.shape != b.shape or np.abs(a - b).max() > 0.1  # the curves were drawn


@pytest.mark.parametrize("fmt", ["md", "csv", "json"])
def test_leaderboard_output_file_holds_what_stdout_shows(store_path, tmp_path, capsys, fmt):
    shown = _main(capsys, "leaderboard", store_path, "--format", fmt)
    out = tmp_path / f"board.{fmt}"
    assert _main(capsys, "leaderboard", store_path, "--format", fmt, "-o", out) == ""
    assert out.read_text().strip() == shown.strip()
    if fmt == "json":
        json.loads(out.read_text())
    for agent in ("Random", "Oracle", "StdTS", "poGAMBITTS"):
        assert agent in out.read_text()


# ------------------------------------------------------------------ bench's flags
def test_bench_envs_seed_and_env_kwargs_select_and_configure_the_runs(tmp_path, capsys):
    out = tmp_path / "s.sqlite"
    _main(capsys, "bench", "--suite", "scale_dimensions", "--out", out, "--replicates", "2",
          "--horizon", "15", "--agents", "Random", "--envs", "GambitIHS-5D-v0", "--seed", "5",
          "--env-kwargs", '{"n_prompts": 3}', "--device", "cpu", "--executor", "serial",
          "--no-progress")
    records = ResultStore(out, create=False).records(logs=True)
    assert "Random" in {rec.unit.setting.agent for rec in records}
    for rec in records:
        setting = rec.unit.setting
        assert setting.env_id == "GambitIHS-5D-v0" and setting.env_kwargs["n_prompts"] == 3
        assert rec.unit.seed == 5 and rec.unit.device == "cpu"
        assert rec.actions.max() < 3 and rec.propensities is not None
        mine = run("GambitIHS-5D-v0", setting.agent, horizon=15, replicates=2, seed=5,
                   env_kwargs=dict(setting.env_kwargs), progress=False)
        np.testing.assert_allclose(rec.final_regret, mine.final_regret())
        np.testing.assert_array_equal(rec.actions, mine.actions)


def test_bench_no_propensities_stores_none(tmp_path, capsys):
    out = tmp_path / "s.sqlite"
    _main(capsys, "bench", "--suite", "one_d", "--out", out, "--replicates", "2", "--horizon",
          "10", "--agents", "StdTS", "--no-propensities", "--executor", "serial",
          "--no-progress")
    records = ResultStore(out, create=False).records(logs=True)
    assert records and all(r.propensities is None for r in records)
    assert all(r.actions.shape == (2, 10) for r in records)


# ------------------------------------------------------------------ build-bank, OpenAI body
def test_build_bank_cli_generates_and_embeds(tmp_path, capsys, minilm):
    from gambit_gym.text.bank import ResponseBank

    out = tmp_path / "bank.parquet"
    with FakeLLMServer() as srv:
        _main(capsys, "build-bank", "--generator", "ollama:tiny", "--base-url", srv.url,
              "--per-pair", "1", "--prompts", "0-1", "--contexts", "0,5", "--out", out,
              "--seed", "2", "--device", "cpu", "--no-progress")
    bank = ResponseBank.load(out)
    assert len(bank) == 2 * 2
    assert bank.scores.shape == (4, 20) and np.isfinite(bank.scores).all()
    assert bank.metadata["embedder"]["name"] == minilm.name
    again = minilm.embed(list(bank.texts))
    np.testing.assert_allclose(bank.scores, again, atol=1e-4)


def test_openai_backend_sends_the_sampling_settings_and_system_message():
    from gambit_gym.text.generators import OpenAICompatibleGenerator, SamplingConfig

    sampling = SamplingConfig(temperature=0.55, top_p=0.8, max_new_tokens=37,
                              system="Write one short walking nudge.")
    with FakeLLMServer() as srv:
        gen = OpenAICompatibleGenerator("tiny-chat", base_url=srv.url + "/v1", api_key_env=None,
                                        sampling=sampling)
        gen.generate(["Right now the user is at home."], seed=9)
        body = srv.requests[0]
    assert body["model"] == "tiny-chat"
    assert body["temperature"] == 0.55 and body["top_p"] == 0.8 and body["max_tokens"] == 37
    assert body["messages"] == [
        {"role": "system", "content": "Write one short walking nudge."},
        {"role": "user", "content": "Right now the user is at home."},
    ]
    assert isinstance(body["seed"], int)


# ------------------------------------------------------------------ summary's interval
def test_run_summary_interval_is_the_student_t_95_interval_of_final_regret():
    """Student-t quantiles with 6 degrees of freedom from a printed t table."""
    import statistics

    res = run("GambitIHS-v0", "Random", horizon=30, replicates=7, seed=1, progress=False)
    final = [float(sum(row)) for row in res.regret]
    mean = statistics.fmean(final)
    se = statistics.stdev(final) / len(final) ** 0.5
    s = res.summary()
    assert s["replicates"] == 7
    assert s["mean"] == pytest.approx(mean, rel=1e-12)
    assert s["low"] == pytest.approx(mean - 2.446912 * se, rel=1e-6)
    assert s["high"] == pytest.approx(mean + 2.446912 * se, rel=1e-6)
    s90 = res.summary(confidence=0.90)
    assert s90["high"] - s90["mean"] == pytest.approx(1.943180 * se, rel=1e-6)
