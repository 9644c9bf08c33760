"""The shared-prefix sampler against the real SmolLM2 model run by ``transformers``."""

import pytest
import torch

from gambit_gym.text import fast_decode
from gambit_gym.text.fast_decode import SharedPrefixSampler, nucleus_filter_reference, sample_top_p
from gambit_gym.text.generators import SamplingConfig, SmolLM2Generator, is_degenerate
from gambit_gym.text.prompts import load_prompt_library

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol(smollm2):
    lib = load_prompt_library()
    gen = smollm2(batch_size=64, sampling=SamplingConfig(max_new_tokens=24, system=lib.system))
    return gen, lib


def _ids(gen, query):
    return torch.tensor(gen._tok(gen._render(query), add_special_tokens=False)["input_ids"])


def test_smollm2_uses_the_shared_prefix_sampler(smol):
    gen, _ = smol
    assert isinstance(gen._sampler, SharedPrefixSampler)
    assert gen.metadata()["decoder"] == "shared-prefix v1"
    off = SmolLM2Generator(device="cpu", shared_prefix=False)
    assert off.metadata()["decoder"] == "generate"


def test_prefill_logits_equal_the_transformers_forward(smol):
    gen, lib = smol
    ids = _ids(gen, lib.render(3, 5))
    _, logits = gen._sampler.prefill(ids)
    with torch.inference_mode():
        ref = gen._model(input_ids=ids[None]).logits[0]
    assert logits.shape == ref.shape
    torch.testing.assert_close(logits, ref, atol=1e-3, rtol=1e-4)


def test_decode_steps_equal_the_transformers_forward_for_several_prompts(smol):
    """Teacher-forced continuation of prompts of different lengths in one batch."""
    gen, lib = smol
    s = gen._sampler
    prompts = [_ids(gen, lib.render(3, 5)), _ids(gen, lib.render(20, 0)),
               _ids(gen, lib.render(39, 11))]
    assert len({len(p) for p in prompts}) > 1
    cont = torch.tensor(gen._tok("Take a short walk to the park today!",
                                 add_special_tokens=False)["input_ids"])
    n, groups = 2, len(prompts)
    p_max = max(len(p) for p in prompts)
    keys = [torch.zeros(groups, s.n_kv, p_max, s.head_dim) for _ in s.layers]
    vals = [torch.zeros_like(k) for k in keys]
    bias = torch.zeros(groups, 1, 1, 1, p_max)
    for j, ids in enumerate(prompts):
        cache, _ = s.prefill(ids)
        for i, (k, v) in enumerate(cache):
            keys[i][j, :, :len(ids)], vals[i][j, :, :len(ids)] = k, v
        bias[j, ..., len(ids):] = float("-inf")
    lens = torch.tensor([len(p) for p in prompts])
    gen_k = [torch.empty(groups * n, s.n_kv, len(cont), s.head_dim) for _ in s.layers]
    gen_v = [torch.empty_like(k) for k in gen_k]
    with torch.inference_mode():
        refs = [gen._model(input_ids=torch.cat([p, cont])[None]).logits[0, len(p):]
                for p in prompts]
        for t in range(len(cont)):
            logits = s._decode_step(cont[t].repeat(groups * n), t, lens,
                                    list(zip(keys, vals)), bias, gen_k, gen_v)
            for r in range(groups * n):
                torch.testing.assert_close(logits[r], refs[r // n][t], atol=1e-3, rtol=1e-4)


def test_nucleus_filter_matches_transformers_top_p():
    from transformers.generation.logits_process import TopPLogitsWarper

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 300, generator=g) * torch.linspace(0.1, 6, 50)[:, None]
    for top_p in (0.5, 0.9, 0.95):
        ref = torch.isfinite(TopPLogitsWarper(top_p)(None, logits.clone()))
        assert torch.equal(nucleus_filter_reference(logits, top_p), ref)


def test_sample_top_p_draws_only_the_nucleus_with_the_right_frequencies():
    """Peaked rows are resolved from the top 256, flat rows (nucleus wider) by the full sort."""
    vocab = 2000
    g = torch.Generator().manual_seed(1)
    peaked = torch.randn(vocab, generator=g) * 4
    flat = torch.randn(vocab, generator=g) * 0.05
    for base in (peaked, flat):
        logits = base.repeat(20000, 1)
        tokens = sample_top_p(logits, 0.7, 0.9, torch.Generator().manual_seed(2))
        keep = nucleus_filter_reference(base[None] / 0.7, 0.9)[0]
        assert bool(keep[tokens].all())
        probs = torch.where(keep, torch.softmax(base / 0.7, -1), torch.zeros(vocab))
        probs /= probs.sum()
        freq = torch.bincount(tokens, minlength=vocab).float() / len(tokens)
        top = probs.argsort(descending=True)[:5]
        se = (probs[top] * (1 - probs[top]) / len(tokens)).sqrt()
        assert bool(((freq[top] - probs[top]).abs() < 5 * se + 1e-4).all())
    assert int(nucleus_filter_reference(flat[None] / 0.7, 0.9).sum()) > fast_decode.TOP_K_FIRST


def test_shared_prefix_generation_is_seeded_and_complete(smol):
    gen, lib = smol
    queries = [lib.render(0, 0)] * 5 + [lib.render(7, 3)] * 3
    a = gen._draft(queries, seed=11)
    b = gen._draft(queries, seed=11)
    c = gen._draft(queries, seed=12)
    assert a == b and a != c and len(a) == len(queries)
    before = gen.rejections
    msgs = gen.generate(queries, seed=3)
    assert len(msgs) == len(queries) and all(m for m in msgs)
    assert sum(not is_degenerate(m) for m in msgs) >= len(msgs) - gen.unresolved
    assert gen.rejections >= before


def test_supports_only_plain_llama(smol):
    gen, _ = smol
    assert fast_decode.supports(gen._model)

    class Cfg:
        model_type = "gpt2"

    class Model:
        config = Cfg()

    assert not fast_decode.supports(Model())
    with pytest.raises(ValueError, match="Llama"):
        SharedPrefixSampler(Model())
