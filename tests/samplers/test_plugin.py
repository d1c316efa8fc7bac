"""gan3d-samplers registers its samplers, and recipe-style options build them through the registry."""

from __future__ import annotations

import pytest
import torch

import gan3d.samplers.plugin
from gan3d.core.interfaces import PointSampler, PoseSampler
from gan3d.core.registry import Registry, RegistryError


@pytest.fixture()
def registry() -> Registry:
    registry = Registry(autoload=False)
    registry.register(gan3d.samplers.plugin, name="samplers-under-test")
    return registry


def test_registered_names(registry):
    assert registry.names("pose_sampler") == ["dataset", "spherical"]
    assert registry.names("point_sampler") == ["inverted_sphere", "manifold", "uniform"]
    assert issubclass(registry.get("pose_sampler", "spherical"), PoseSampler)
    assert issubclass(registry.get("point_sampler", "uniform"), PointSampler)


def test_json_options_build_a_pigan_celeba_camera_and_ray_pair(registry):
    # As a recipe read back from JSON gives them: lists for tuples, ints where floats are allowed.
    poses = registry.build("pose_sampler", "spherical", yaw_strategy="normal", yaw_stddev=0.3,
                           polar_strategy="normal", polar_stddev=0.155, radius=1, pivot=[0, 0, 0],
                           fov=12, focal=0)
    points = registry.build("point_sampler", "uniform", num_samples=12, ray_start=0.88, ray_end=1.12,
                            perturbation="stratified", smooth_importance_weights=False)
    samples = points(poses(2, generator=torch.Generator().manual_seed(0)), (4, 4))
    assert samples.depths.shape == (2, 16, 12, 1)


def test_wrong_option_types_are_refused_by_the_registry(registry):
    with pytest.raises(RegistryError, match="num_samples"):
        registry.build("point_sampler", "uniform", num_samples=12.5)
    with pytest.raises(RegistryError, match="has no option 'h_stddev'"):
        registry.build("pose_sampler", "spherical", h_stddev=0.3)


def test_every_sampler_honours_the_core_contract(registry):
    from gan3d.core.testing import check_contract

    check_contract("pose_sampler", registry.build("pose_sampler", "spherical", yaw_strategy="normal", yaw_stddev=0.3))
    dataset = registry.build("pose_sampler", "dataset")
    dataset.bind_dataset_poses(registry.build("pose_sampler", "spherical")(3).label)
    check_contract("pose_sampler", dataset)
    for align_corners in (False, True):  # its rays follow the pixel grid it declares (corner_aligned)
        check_contract("point_sampler", registry.build("point_sampler", "uniform", num_samples=5, ray_start=1.0,
                                                       ray_end=3.0, perturbation="stratified",
                                                       align_corners=align_corners))
    manifold = registry.build("point_sampler", "manifold", num_samples=8, ray_start=1.5, ray_end=2.5,
                              num_manifolds=4, hidden_dim=8, field_box_warp=1.0, background_z=-0.5)
    samples = check_contract("point_sampler", manifold)
    assert samples.mask.shape == samples.depths.shape == (2, 6, 4, 1)


def test_a_sampler_whose_rays_leave_its_declared_grid_fails_the_contract(registry):
    from gan3d.core.cameras import pixel_rays
    from gan3d.core.testing import ContractError, check_contract
    from gan3d.core.types import RaySamples

    class Misdeclared(registry.get("point_sampler", "uniform")):
        """Declares pixel centres (the default) but casts its rays on the corner-aligned grid."""

        def forward(self, cameras, resolution, **kwargs):
            depths = super().forward(cameras, resolution, **kwargs).depths
            origins, directions = pixel_rays(cameras.cam2world, cameras.intrinsics, resolution, align_corners=True)
            return RaySamples.along_rays(origins, directions, depths)

    with pytest.raises(ContractError, match="pixel grid"):
        check_contract("point_sampler", Misdeclared(num_samples=5, ray_start=1.0, ray_end=3.0))
