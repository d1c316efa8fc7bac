"""RE on an analytic, perfectly consistent scene: ~0, and growing with injected depth error."""

from __future__ import annotations

import math

import pytest
import torch

from gan3d.core.registry import RegistryError, get_registry
from gan3d.core.types import CameraRig
from gan3d.evaluators.metrics.reference_scene import ReferenceSphereGenerator
from gan3d.evaluators.metrics.reprojection import ReprojectionErrorEvaluator, warp_error


class _DepthOffsetGenerator(ReferenceSphereGenerator):
    """The reference scene with its object's depth pushed back by ``offset`` (a wrong geometry)."""

    def __init__(self, offset: float, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset

    def synthesis(self, ws, cameras, **kwargs):
        out = super().synthesis(ws, cameras, **kwargs)
        out.depth = out.depth + self.offset * out.alpha
        return out


def _re(generator, **options):
    options = {"num_samples": 4, "batch_size": 4, **options}
    return get_registry().build("evaluator", "reprojection", **options).evaluate(generator, seed=0)


def test_warp_of_a_view_into_itself_is_exact():
    g = ReferenceSphereGenerator(resolution=16)
    out = g(torch.randn(2, g.z_dim), generator=torch.Generator().manual_seed(0))
    mse, covisible = warp_error(out.image, out.depth, out.cameras, out.image, out.depth, out.cameras)
    assert torch.allclose(mse, torch.zeros(2), atol=1e-10)
    assert torch.all(covisible > 0.95)


def test_re_of_a_consistent_scene_is_near_zero():
    result = _re(ReferenceSphereGenerator(resolution=32))
    assert result["re"] < 2e-4  # the texture's variance is ~0.5
    assert 0.3 < result["re_covisible"] <= 1.0


def test_re_uses_the_cameras_intrinsics_not_a_fixed_fov():
    # A long lens (focal 3.0, ~19 deg) and a wide one (0.8, ~64 deg): both consistent, both ~0.
    for focal in (3.0, 0.8):
        assert _re(ReferenceSphereGenerator(resolution=32, focal=focal))["re"] < 5e-4


def test_re_lifts_and_reads_on_the_generators_pixel_grid():
    """A scene rendered on the corner-aligned grid (pi-GAN's, GIRAFFE's) is consistent on that grid: RE
    reads ``corner_aligned`` and stays at the resampling error; warping as if the pixels were at their
    centres lifts each pixel along another ray and reads the other view elsewhere."""
    aligned = ReferenceSphereGenerator(resolution=32, align_corners=True)
    assert _re(aligned)["re"] < 1e-4
    out = aligned(torch.randn(2, aligned.z_dim), generator=torch.Generator().manual_seed(0))
    views = [aligned.pose_sampler.cameras(torch.full((2,), math.pi / 2 + yaw), torch.full((2,), math.pi / 2))
             for yaw in (0.0, 0.4)]
    args = [(r.image, r.depth, r.cameras) for r in (aligned.synthesis(out.ws, cams) for cams in views)]
    right, _ = warp_error(*args[1], *args[0], align_corners=True)
    wrong, _ = warp_error(*args[1], *args[0], align_corners=False)
    assert right.max() < 1e-4 and wrong.min() > 4 * right.max(), (right, wrong)


def test_the_generators_grid_is_its_point_samplers():
    from gan3d.core.generator import build_generator
    from gan3d.core.types import Cameras

    registry = get_registry()
    pigan, eg3d = (build_generator(registry.get("method", m)(), registry) for m in ("pigan", "eg3d"))
    cams = pigan.pose_sampler(1)
    assert pigan.corner_aligned(cams) and not eg3d.corner_aligned(cams)  # linspace(-1, 1) vs pixel centres
    patch = Cameras(cams.cam2world, cams.intrinsics, align_corners=True)  # a corner-aligned patch
    assert eg3d.corner_aligned(patch)


def test_re_grows_with_injected_depth_error():
    values = [_re(_DepthOffsetGenerator(offset, resolution=32), depth_tolerance=0.2)["re"]
              for offset in (0.0, 0.05, 0.1, 0.2)]
    assert all(b > a for a, b in zip(values, values[1:])), values
    assert values[-1] > 20 * values[0]


def test_re_is_reproducible_and_options_are_checked():
    g = ReferenceSphereGenerator(resolution=16)
    a, b = _re(g, around="sampled"), _re(g, around="sampled")
    assert a == b
    with pytest.raises(ValueError, match="around"):
        ReprojectionErrorEvaluator(around="left")
    with pytest.raises(RegistryError, match="depth_tolerance"):
        get_registry().build("evaluator", "reprojection", depth_tolerance="big")


def test_re_turns_about_the_pose_samplers_pivot_or_the_given_one():
    g = ReferenceSphereGenerator(resolution=16)
    evaluator = ReprojectionErrorEvaluator()
    # The pose sampler declares its rig: the reference cameras look at the origin.
    assert evaluator._pivot(g, "cpu").tolist() == pytest.approx([0.0, 0.0, 0.0])
    g.pose_sampler.camera_rig = lambda: CameraRig(pivot=(0.0, 0.0, 0.2), radius=2.7, focal=1.2)
    assert evaluator._pivot(g, "cpu").tolist() == pytest.approx([0.0, 0.0, 0.2])
    assert ReprojectionErrorEvaluator(pivot=[0.0, 0.1, 0.0])._pivot(g, "cpu").tolist() == pytest.approx([0, 0.1, 0])
    with pytest.raises(ValueError, match="pivot"):
        ReprojectionErrorEvaluator(pivot=[1.0])
