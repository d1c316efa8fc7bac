"""Recipes: JSON round trip and dotted command-line overrides."""

from __future__ import annotations

import pytest

from gan3d.core.recipe import ModuleSpec, Recipe, RecipeError, parse_value


def test_json_round_trip(tiny_recipe):
    recipe = tiny_recipe()
    text = recipe.to_json()
    again = Recipe.from_json(text)
    assert again == recipe
    assert again.to_json() == text


@pytest.mark.parametrize(
    ("raw", "value"),
    [("64", 64), ("0.5", 0.5), ("true", True), ("False", False), ("[1, 2]", [1, 2]), ("triplane", "triplane"),
     ("null", None), ('{"a": 1}', {"a": 1})],
)
def test_parse_value(raw, value):
    assert parse_value(raw) == value


def test_overrides_of_slots_sections_and_nested_keys(tiny_recipe):
    recipe = tiny_recipe().override("training.stages=[{\"until_step\": 5, \"resolution\": 8}, {}]")
    out = recipe.overrides([
        "point_embedder.channels=12",
        "generator.render_resolution=16",
        "training.batch_size=8",
        "training.stages.0.resolution=4",
        "loss.r1_gamma=0.5",
    ])
    assert out.modules["point_embedder"].kwargs == {"channels": 12}
    assert out.generator["render_resolution"] == 16
    assert out.training["batch_size"] == 8
    assert out.training["stages"][0]["resolution"] == 4
    assert out.modules["loss"].kwargs["r1_gamma"] == 0.5
    # the original is untouched
    assert "channels" not in tiny_recipe().modules["point_embedder"].kwargs


def test_swapping_an_implementation_resets_its_options(tiny_recipe):
    recipe = tiny_recipe().override("point_embedder.channels=12").override("point_embedder=triplane")
    assert recipe.modules["point_embedder"] == ModuleSpec("triplane", {})


def test_hyphens_are_accepted_in_keys(tiny_recipe):
    assert tiny_recipe().override("training.batch-size=2").training["batch_size"] == 2


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("nonsense", "must look like KEY=VALUE"),
        ("colour.gain=2", "unknown key"),
        ("training.batch_size=big", "expected int"),
        ("generator.render_resolution=1.5", "expected int"),
        ("loss.r1_gamma=yes", "expected float"),
        ("point_embedder=3", "implementation name must be a string"),
        ("training.g_betas.5=0.1", "not an index"),
    ],
)
def test_bad_overrides_are_clear_errors(tiny_recipe, assignment, message):
    with pytest.raises(RecipeError, match=message):
        tiny_recipe().override(assignment)


def test_malformed_json_recipes():
    with pytest.raises(RecipeError, match="not valid JSON"):
        Recipe.from_json("{", source="x.json")
    with pytest.raises(RecipeError, match="x.json: unknown recipe key"):
        Recipe.from_json('{"method": "a", "modules": {}, "colour": 1}', source="x.json")
    with pytest.raises(RecipeError, match="misses slot"):
        Recipe.from_json('{"method": "a", "modules": {}}')
