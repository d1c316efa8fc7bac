"""The gan3d plugin of gan3d-samplers: registers its implementations."""

from __future__ import annotations

from gan3d.core import hookimpl


@hookimpl
def gan3d_register(registry) -> None:
    """Register gan3d-samplers's implementations."""
    from .dataset_pose_sampler import DatasetPoseSampler
    from .inverted_sphere_sampler import InvertedSphereSampler
    from .manifold_point_sampler import ManifoldPointSampler
    from .spherical_pose_sampler import SphericalPoseSampler
    from .uniform_point_sampler import UniformPointSampler

    registry.add("pose_sampler", "spherical", SphericalPoseSampler)
    registry.add("pose_sampler", "dataset", DatasetPoseSampler)
    registry.add("point_sampler", "uniform", UniformPointSampler)
    registry.add("point_sampler", "manifold", ManifoldPointSampler)
    registry.add("point_sampler", "inverted_sphere", InvertedSphereSampler)
