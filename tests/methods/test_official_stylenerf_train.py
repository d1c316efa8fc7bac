"""tools/official/stylenerf_train.py trains the official StyleNeRF at gan3d's synthetic recipe, which lives on
NeRF++'s unit sphere (the synthetic set's world scaled by 1 / 2.7, tests/methods/test_stylenerf_recipe.py); the
bench adapter builds the official network from that recipe and refuses the set's own world."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from gan3d.methods.stylenerf.recipe import SYNTHETIC_DATA_WORLD, stylenerf_recipe

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tools" / "official"), str(ROOT / "tools")]

import stylenerf_train  # noqa: E402


def test_the_bench_adapter_builds_the_official_config_of_the_synthetic_recipe_and_refuses_the_sets_world(tmp_path):
    from bench_official import OfficialSourceError, StyleNeRFOfficial

    root = tmp_path / "StyleNeRF"
    for name in StyleNeRFOfficial.required_files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    camera = StyleNeRFOfficial(root, stylenerf_recipe("synthetic"), torch.device("cpu")).config()[
        "G_kwargs"]["synthesis_kwargs"]["camera_kwargs"]
    assert camera["range_radius"] == [1.0, 1.0] and camera["bg_start"] == 0.5
    assert camera["depth_range"] == pytest.approx([2.25 / 2.7, 3.3 / 2.7])
    assert camera["fov"] == pytest.approx(13.374, abs=1e-3)  # 2 atan(0.5 / 4.2647) = 0.23342 rad: the set's focal
    with pytest.raises(OfficialSourceError, match="unit sphere"):
        StyleNeRFOfficial(root, stylenerf_recipe("synthetic").overrides(SYNTHETIC_DATA_WORLD),
                          torch.device("cpu")).config()


def test_the_script_needs_one_of_out_and_check(capsys):
    with pytest.raises(SystemExit) as error:
        stylenerf_train.main(["/nonexistent"])
    assert error.value.code == 2 and "one of --out" in capsys.readouterr().err
    with pytest.raises(SystemExit) as error:
        stylenerf_train.main(["/nonexistent", "--gradients", "x.pkl", "--draws", "1"])
    assert error.value.code == 2 and "--draws must be at least 2" in capsys.readouterr().err


def test_mean_gradient_comparison_on_hand_made_draws():
    """Two draws a side: the means, the halves' cosines and the norm ratio by hand; a tensor zero on both sides is
    left out, a tensor named on one side only too, and the tensor whose sides disagree comes first."""
    official = [{"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([2.0]), "z": torch.zeros(3), "only": torch.ones(1)},
                {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([2.0]), "z": torch.zeros(3), "only": torch.ones(1)}]
    ours = [{"a": torch.tensor([2.0, 2.0]), "b": torch.tensor([-1.0]), "z": torch.zeros(3)},
            {"a": torch.tensor([2.0, 2.0]), "b": torch.tensor([-1.0]), "z": torch.zeros(3)}]
    rows = stylenerf_train.compare_mean_gradients(official, ours)
    assert [r["tensor"] for r in rows] == ["b", "a"]
    b, a = rows
    assert b["cross"] == pytest.approx(-1.0) and b["official_halves"] == b["ours_halves"] == pytest.approx(1.0)
    assert b["norm_ratio"] == pytest.approx(0.5)
    # a: official mean (1, 1), ours (2, 2): same direction, twice the norm; official halves (1, 0) vs (1, 2).
    assert a["cross"] == pytest.approx(1.0) and a["norm_ratio"] == pytest.approx(2.0)
    assert a["official_halves"] == pytest.approx(1 / 5 ** 0.5) and a["ours_halves"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same number"):
        stylenerf_train.compare_mean_gradients(official, ours[:1])
