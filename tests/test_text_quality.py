"""The generator's quality filter on hand-labelled real SmolLM2 outputs (tests/fixtures)."""

import json
from pathlib import Path

import pytest

from gambit_gym.text.generators.quality import (
    QUALITY_REASONS,
    QualityFilter,
    has_placeholder,
    names_activity,
)

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "quality_messages.json")
                     .read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def quality(minilm):
    return QualityFilter(encoder=minilm)


def test_fixture_covers_every_reason_with_real_outputs():
    reasons = {b["reason"] for b in FIXTURE["bad"]}
    assert reasons == set(QUALITY_REASONS)
    assert len(FIXTURE["good"]) >= 6
    assert sum(b["source"] != "constructed" for b in FIXTURE["bad"]) >= len(FIXTURE["bad"]) - 1


def test_good_messages_pass(quality):
    texts = [g["text"] for g in FIXTURE["good"]]
    assert quality.reasons(texts) == [None] * len(texts)


def test_bad_messages_fail_for_their_reason(quality):
    texts = [b["text"] for b in FIXTURE["bad"]]
    got = quality.reasons(texts)
    wrong = [(t, b["reason"], g) for t, b, g in zip(texts, FIXTURE["bad"], got)
             if g != b["reason"]]
    assert not wrong, wrong


def test_off_topic_needs_the_similarity_not_only_a_keyword(quality):
    # names "walk", so the keyword test passes; the MiniLM test rejects it
    text = "As I look at the stars, you can walk into a world of dreams and magic forever."
    assert quality.rule_reason(text) is None
    assert quality.reasons([text]) == ["off_topic"]
    assert quality.on_topic_similarity([text])[0] < quality.on_topic_threshold


def test_text_helpers():
    assert has_placeholder("Hi [user's name], walk today.")
    assert has_placeholder("Hi {name}, walk today.") and not has_placeholder("Walk today.")
    assert names_activity("Take the stairs today.")
    assert not names_activity("I'm with you every step of the way.")
    assert not names_activity("Take a step towards your dreams.")


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="min_words"):
        QualityFilter(min_words=10, max_words=5)
    with pytest.raises(ValueError, match="on_topic_threshold"):
        QualityFilter(on_topic_threshold=2.0)


def test_a_copied_few_shot_example_is_no_message():
    """Sentences repeating a few-shot turn are dropped by cleaning (SmolLM2 copied the v2
    examples in the pilot), so a copied example is rejected and drawn again."""
    from gambit_gym.text.generators import BaseGenerator
    from gambit_gym.text.prompts import load_prompt_library

    gen = BaseGenerator()
    gen.few_shot = load_prompt_library("v2").few_shot
    example = gen.few_shot[2][1]
    assert gen._clean(example, "a query") == ("", False)
    msg, ok = gen._clean(example.split(". ")[0] + ". Take the stairs at work today and add a "
                         "few hundred steps.", "a query")
    assert ok and msg == "Take the stairs at work today and add a few hundred steps."
    gen.few_shot = ()
    assert gen._clean(example, "a query")[1]  # without few-shot turns it is a fine message
