"""The identity upsampler (registered as ``upsampler`` ``identity``).

For methods whose final image is the volume-rendered one (GRAF, pi-GAN, GRAM and the volume stage
of StyleSDF): the image is the first three channels of the rendered feature image, at the rendered
resolution.
"""

from __future__ import annotations

from torch import Tensor

from gan3d.core.interfaces import Upsampler

__all__ = ["IdentityUpsampler"]


class IdentityUpsampler(Upsampler):
    """``features [B, F, h, w]`` (``F >= 3``) -> ``image [B, 3, h, w]`` = ``features[:, :3]``.

    Example:
        >>> IdentityUpsampler()(torch.zeros(2, 5, 16, 16), ws=None).shape   # doctest: +SKIP
        torch.Size([2, 3, 16, 16])
    """

    def __init__(self) -> None:
        super().__init__()

    def forward(self, features: Tensor, ws: Tensor | None = None, *, alpha: float = 1.0) -> Tensor:
        if features.ndim != 4 or features.shape[1] < 3:
            raise ValueError(
                f"upsampler 'identity' needs a feature image [B, F, h, w] with F >= 3 (RGB first), got "
                f"{tuple(features.shape)}; make the feature decoder output at least 3 channels"
            )
        return features[:, :3]
