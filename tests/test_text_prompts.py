import pytest

from gambit_gym.text.contexts import ALL_CONTEXTS, Context
from gambit_gym.text.dimensions import STYLE_DIMENSIONS
from gambit_gym.text.prompts import PromptLibrary, load_prompt_library


def test_library_has_high_and_low_for_every_dimension():
    lib = load_prompt_library()
    assert len(lib) == 40 and lib.system and lib.version
    for d, name in enumerate(STYLE_DIMENSIONS):
        assert lib.prompt_id(name, "high") == 2 * d
        assert lib.prompt_id(name, "low") == 2 * d + 1
        assert lib.definitions[name].strip()


def test_render_names_context_and_definition():
    lib = load_prompt_library()
    rendered = lib.render_all()
    assert len(rendered) == 40 and all(len(r) == 12 for r in rendered)
    assert len({q for row in rendered for q in row}) == 480
    for ctx in ALL_CONTEXTS:
        q = lib.render(6, ctx)
        assert lib.locations[ctx.location_name] in q
        assert lib.steps[ctx.step_bucket_name] in q
        assert lib.definitions["severity"] in q
    assert lib.render(0, Context(1, 2)) == lib.render(0, 6)


def test_round_trip_and_validation():
    lib = load_prompt_library()
    assert PromptLibrary.from_dict(lib.to_dict()) == lib
    data = lib.to_dict()
    data["prompts"][3]["polarity"] = "medium"
    with pytest.raises(ValueError, match="polarity"):
        PromptLibrary.from_dict(data)
    data = lib.to_dict()
    del data["system"]
    with pytest.raises(ValueError, match="system"):
        PromptLibrary.from_dict(data)
    with pytest.raises(IndexError):
        lib.render(40, 0)
    with pytest.raises(FileNotFoundError):
        load_prompt_library("/no/such/library.json")
