"""The object_edit visualizer: edits change only what they name, files are written and never overwritten."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import imageio.v3 as iio
import pytest
import torch

from gan3d.core.generator import build_generator
from gan3d.core.registry import get_registry
from gan3d.evaluators.visualizers.latents import evaluation_mode
from gan3d.evaluators.visualizers.object_edit import centre_angles, edit_values, render_object_edit, write_object_edit
from gan3d.methods.giraffe import giraffe_recipe


@pytest.fixture(scope="module")
def generator():
    recipe = giraffe_recipe("synthetic").override("point_sampler.num_samples=4")
    recipe = recipe.override("stochasticity_mapper.rotation_range=[0.0, 0.0]")
    torch.manual_seed(0)
    return build_generator(recipe, get_registry()).eval()


def test_values_sweep_the_priors_and_edits_leave_the_rest(generator):
    ws = generator.mapping(torch.randn(1, generator.z_dim))
    # A zero-width rotation prior sweeps a full turn; a fixed translation sweeps +-0.2 about it.
    quarter_turns = [0, math.pi / 2, math.pi, 1.5 * math.pi, 2 * math.pi]
    assert edit_values(generator, "rotate", 5, ws) == pytest.approx(quarter_turns)
    assert edit_values(generator, "translate_x", 3, ws) == pytest.approx([-0.2, 0.0, 0.2])
    assert centre_angles(generator) == pytest.approx((math.pi / 2, math.pi / 2))
    with evaluation_mode(generator):
        same = render_object_edit(generator, ws, edit="rotate", values=[0.3, 0.3])
        moved = render_object_edit(generator, ws, edit="translate_x", values=[-0.3, 0.3])
        cams = render_object_edit(generator, ws, edit="camera_yaw", values=[1.2, 1.9])
    assert same.shape == (2, 3, 64, 64) and torch.allclose(same[0], same[1])
    assert not torch.allclose(moved[0], moved[1]) and not torch.allclose(cams[0], cams[1])
    with pytest.raises(ValueError, match="unknown object_edit"):
        render_object_edit(generator, ws, edit="fly", values=[0.0])


def test_files_are_written_once(generator, tmp_path):
    paths = write_object_edit(generator, tmp_path, edits=["rotate", "camera_polar"], num_steps=3, num_frames=4,
                              fps=4)
    assert [p.name for p in paths] == ["object_edit_rotate_seed0000.png", "object_edit_rotate_seed0000.mp4",
                                       "object_edit_camera_polar_seed0000.png", "object_edit_camera_polar_seed0000.mp4"]
    assert iio.imread(paths[0]).shape == (64, 3 * 64, 3)
    assert len(iio.imread(paths[1], index=None)) == 4
    with pytest.raises(FileExistsError):
        write_object_edit(generator, tmp_path, edits=["rotate"], num_steps=3, video=False)


def test_camera_edits_work_with_a_pose_conditioned_mapper(tmp_path):
    """Camera edits need no compositional scene: a mapper that requires the camera label (EG3D's
    c_dim = 25) gets the front camera's, as the image and video visualizers give it."""
    sys.path.insert(0, str(Path(__file__).parent))
    import test_vis_sphere_generator as sphere

    class ConditionedMapper(sphere.NoiseMapper):
        c_dim = 25

        def forward(self, z, c=None, **kwargs):
            if c is None or c.shape != (z.shape[0], 25):
                raise ValueError("this mapper needs the camera label c [B, 25]")
            return super().forward(z, **kwargs)

    gen = sphere.sphere_generator("sdf", render_resolution=8)
    gen.mapper = ConditionedMapper()
    written = write_object_edit(gen, tmp_path, edits=["camera_yaw"], num_steps=3, video=False)
    assert [p.name for p in written] == [written[0].name] and written[0].suffix == ".png"
    assert iio.imread(written[0]).shape[1] == 3 * iio.imread(written[0]).shape[0]  # three frames in a row
