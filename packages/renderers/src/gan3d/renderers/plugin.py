"""The gan3d plugin of gan3d-renderers: registers its implementations."""

from __future__ import annotations

from gan3d.core import hookimpl


@hookimpl
def gan3d_register(registry) -> None:
    """Register gan3d-renderers's implementations."""
    from .identity_upsampler import IdentityUpsampler
    from .neural_renderer import GiraffeNeuralRenderer
    from .occupancy import OccupancyVolumeRenderer
    from .sdf import SdfVolumeRenderer
    from .stylenerf_upsampler import StyleNeRFUpsampler
    from .stylesdf_upsampler import StyleSDFUpsampler
    from .superresolution import EG3DSuperResolution
    from .volume import DensityVolumeRenderer
    from .volumegan_renderer import VolumeGANNeuralRenderer

    registry.add("volume_renderer", "volume", DensityVolumeRenderer)
    registry.add("volume_renderer", "sdf", SdfVolumeRenderer)
    registry.add("volume_renderer", "occupancy", OccupancyVolumeRenderer)
    registry.add("upsampler", "identity", IdentityUpsampler)
    registry.add("upsampler", "eg3d_superres", EG3DSuperResolution)
    registry.add("upsampler", "stylesdf", StyleSDFUpsampler)
    registry.add("upsampler", "giraffe_neural_renderer", GiraffeNeuralRenderer)
    registry.add("upsampler", "volumegan_neural_renderer", VolumeGANNeuralRenderer)
    registry.add("upsampler", "stylenerf", StyleNeRFUpsampler)
