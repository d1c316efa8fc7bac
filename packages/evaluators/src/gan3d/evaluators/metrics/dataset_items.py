"""Reading data set items of any of the shapes gan3d's readers produce.

An item is a tuple ``(image, label, depth?, ...)`` (a NamedTuple counts) or a bare image. Images are
``[3, H, W]`` in ``[-1, 1]`` (or uint8), labels ``[25]`` EG3D camera labels, depths ``[1, H, W]`` distances
along rays.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["item_fields"]


def item_fields(item: Any) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``(image, label or None, depth or None)`` of one data set item."""
    if isinstance(item, (tuple, list)):
        image = item[0]
        label = item[1] if len(item) > 1 else None
        depth = item[2] if len(item) > 2 else None
    else:
        image, label, depth = item, None, None
    return torch.as_tensor(image), _optional_tensor(label), _optional_tensor(depth)


def _optional_tensor(value: Any) -> Tensor | None:
    return None if value is None else torch.as_tensor(value)
