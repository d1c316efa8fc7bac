"""tools/official/stylenerf_train.py trains the official StyleNeRF in the synthetic set's world scaled by
1 / 2.7 about its pivot (NeRF++'s background needs the cameras on its unit sphere). The scaling must not change
what the cameras see: the same rays up to that similarity, the same samples along them, and a recipe the
official network can be built from (the unscaled one cannot)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from gan3d.core.generator import build_module
from gan3d.methods.stylenerf.recipe import stylenerf_recipe

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tools" / "official"), str(ROOT / "tools")]

import stylenerf_train  # noqa: E402

PIVOT = torch.tensor([0.0, 0.0, 0.2])


def test_scaled_cameras_are_the_synthetic_ones_moved_to_the_origin_and_shrunk():
    synthetic, scaled = stylenerf_recipe("synthetic"), stylenerf_train.scaled_recipe()
    ours = build_module(synthetic, "pose_sampler")(64, generator=torch.Generator().manual_seed(1))
    theirs = build_module(scaled, "pose_sampler")(64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(theirs.cam2world[:, :3, :3], ours.cam2world[:, :3, :3])  # same view directions
    torch.testing.assert_close(theirs.cam2world[:, :3, 3], (ours.cam2world[:, :3, 3] - PIVOT) / 2.7)
    torch.testing.assert_close(theirs.intrinsics, ours.intrinsics)  # same field of view
    assert torch.allclose(theirs.cam2world[:, :3, 3].norm(dim=-1), torch.ones(64))  # on NeRF++'s unit sphere

    # The foreground samples along the same rays: the synthetic ones, mapped by the same similarity.
    a = build_module(synthetic, "point_sampler")(ours, (4, 4), generator=torch.Generator().manual_seed(2))
    b = build_module(scaled, "point_sampler")(theirs, (4, 4), generator=torch.Generator().manual_seed(2))
    points_a, points_b = (s.origins[:, :, None] + s.depths * s.directions[:, :, None] for s in (a, b))
    torch.testing.assert_close(points_b, (points_a - PIVOT) / 2.7)
    # ... and they all lie inside the unit sphere, in front of the background (which begins at radius 2).
    assert float(points_b.norm(dim=-1).max()) < 1.0


def test_the_bench_adapter_builds_the_official_config_of_the_scaled_recipe_only(tmp_path):
    from bench_official import OfficialSourceError, StyleNeRFOfficial

    root = tmp_path / "StyleNeRF"
    for name in StyleNeRFOfficial.required_files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    camera = StyleNeRFOfficial(root, stylenerf_train.scaled_recipe(), torch.device("cpu")).config()[
        "G_kwargs"]["synthesis_kwargs"]["camera_kwargs"]
    assert camera["range_radius"] == [1.0, 1.0] and camera["bg_start"] == 0.5
    assert camera["depth_range"] == pytest.approx([2.25 / 2.7, 3.3 / 2.7])
    assert camera["fov"] == pytest.approx(13.374, abs=1e-3)  # 2 atan(0.5 / 4.2647) = 0.23342 rad: the set's focal
    with pytest.raises(OfficialSourceError, match="unit sphere"):
        StyleNeRFOfficial(root, stylenerf_recipe("synthetic"), torch.device("cpu")).config()


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
