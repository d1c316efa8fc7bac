"""The occupancy renderer (registered as ``volume_renderer`` ``occupancy``): alpha given per sample.

For fields whose decoder already says how opaque each sample is (``Field.occupancy`` in ``[0, 1]``,
e.g. surface samples on GRAM's radiance manifolds): ``alpha_i = occupancy_i`` with no interval
length, then the usual compositing ``w_i = alpha_i * prod_{j<i}(1 - alpha_j)`` (GRAM
generators/renderers/manifold_renderer.py ``fancy_integration``, from ``alphas`` on). GRAM's own
renderer divides the depth by the weight total, hence ``depth_mode='normalized'`` by default.

GRAM's official density-to-alpha step with its fixed interval length (0.04) is the density renderer
with sampler-given ``deltas``; this renderer is for decoders that output the opacity themselves.
"""

from __future__ import annotations

from gan3d.core.types import Field, RaySamples

from .compositing import AlphaCompositingRenderer, Intervals

__all__ = ["OccupancyVolumeRenderer"]


class OccupancyVolumeRenderer(AlphaCompositingRenderer):
    """Alpha compositing of per-sample occupancies ``[B, R, S, 1]`` in ``[0, 1]`` (not checked, to
    avoid a device sync; values outside make the weights meaningless).

    Args:
        white_back, last_back, eval_last_back, depth_mode, unit_to_signed: see
            :class:`~gan3d.renderers.compositing.AlphaCompositingRenderer` (GRAM: white_back False
            for FFHQ/Cats, True for CARLA; depth_mode ``'normalized'``).
    """

    field_kind = "occupancy"

    def __init__(
        self,
        *,
        white_back: bool = False,
        last_back: bool = False,
        eval_last_back: bool = False,
        depth_mode: str = "normalized",
        unit_to_signed: bool = False,
    ) -> None:
        super().__init__(white_back=white_back, last_back=last_back, eval_last_back=eval_last_back,
                         depth_mode=depth_mode, unit_to_signed=unit_to_signed)

    def intervals(self, field: Field, samples: RaySamples) -> Intervals:
        return Intervals(alpha=field.occupancy, features=field.features, depths=samples.depths)
