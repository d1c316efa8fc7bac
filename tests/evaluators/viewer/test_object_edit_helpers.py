"""The object-edit helpers the viewer calls: edits set only what they name, the state reads them back,
and the orbit-video and shape writers render a given (edited) scene."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import test_vis_sphere_generator as sphere  # noqa: E402

from gan3d.core.generator import build_generator  # noqa: E402
from gan3d.core.registry import get_registry  # noqa: E402
from gan3d.evaluators.visualizers import OrbitVideoVisualizer, ShapeVisualizer  # noqa: E402
from gan3d.evaluators.visualizers.object_edit import (  # noqa: E402
    OBJECT_EDITS,
    apply_object_edit,
    editable_objects,
    object_edit_state,
)
from gan3d.methods.giraffe import giraffe_recipe  # noqa: E402


@pytest.fixture(scope="module")
def giraffe():
    recipe = giraffe_recipe("synthetic").overrides(["point_sampler.num_samples=4", "stochasticity_mapper.n_objects=2"])
    torch.manual_seed(0)
    return build_generator(recipe, get_registry()).eval()


def test_edits_set_what_they_name_and_the_state_reads_it_back(giraffe):
    assert editable_objects(giraffe) == 2 and editable_objects(sphere.sphere_generator()) == 0
    ws = giraffe.mapping(torch.randn(1, giraffe.z_dim))
    before = object_edit_state(giraffe, ws, object_index=1)
    assert set(before) == set(OBJECT_EDITS)
    assert all(low <= value <= high for low, value, high in before.values())
    edited = ws
    for edit, value in (("translate_x", 0.05), ("translate_z", -0.1), ("rotate", 1.0), ("scale", 0.3)):
        edited = apply_object_edit(giraffe, edited, edit, value, object_index=1)
    after = object_edit_state(giraffe, edited, object_index=1)
    assert after["translate_x"][1] == pytest.approx(0.05) and after["translate_z"][1] == pytest.approx(-0.1)
    assert after["rotate"][1] == pytest.approx(1.0) and after["scale"][1] == pytest.approx(0.3)
    assert after["translate_y"][1] == pytest.approx(before["translate_y"][1])  # not edited: unchanged
    frames, old = edited.frames["main"], ws.frames["main"]
    scale = frames.scale[0, 1]
    assert torch.allclose(scale / scale[0], old.scale[0, 1] / old.scale[0, 1, 0])  # axis ratios kept
    for name in ("scale", "translation", "rotation"):  # the other object is untouched
        assert torch.equal(getattr(frames, name)[:, 0], getattr(old, name)[:, 0])
    assert torch.equal(edited.frames["background"].rotation, ws.frames["background"].rotation)
    assert torch.equal(edited.codes["main"], ws.codes["main"])  # the codes
    with pytest.raises(ValueError, match=r"object_index must be in \[0, 2\), got 2"):
        apply_object_edit(giraffe, ws, "rotate", 0.0, object_index=2)
    with pytest.raises(ValueError, match="unknown object edit 'camera_yaw'"):
        apply_object_edit(giraffe, ws, "camera_yaw", 0.0)
    with pytest.raises(ValueError, match="needs a compositional generator"):
        apply_object_edit(sphere.sphere_generator(), torch.zeros(1, 1, 4), "rotate", 0.0)


def test_orbit_frames_and_shapes_of_a_given_scene(tmp_path):
    generator = sphere.sphere_generator("density", render_resolution=8)
    video = OrbitVideoVisualizer(num_frames=2, truncation_psi=1.0)
    # The sphere's colour is tanh(ws[:3]): a given scene replaces the seed's latent.
    red = torch.tensor([[[5.0, -5.0, -5.0, 0.0]]])
    frames = video.render_frames(generator, 0, ws=red)
    centre = frames[:, 3:5, 3:5].reshape(-1, 3).astype(int)
    assert (centre[:, 0] > 230).all() and (centre[:, 1:] < 30).all()
    assert not (video.render_frames(generator, 0)[:, 3:5, 3:5] == frames[:, 3:5, 3:5]).all()
    shapes = ShapeVisualizer(shape_res=16, formats=("ply",), preview=False)
    [path] = shapes.write_shape(generator, tmp_path, 7, ws=red)
    assert path.name == "shape_seed0007.ply" and path.stat().st_size > 0
