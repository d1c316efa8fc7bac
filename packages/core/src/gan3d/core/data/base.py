"""The base of gan3d's data sets: what the trainer and the evaluators may ask of one.

Items are tuples ``(image [3, H, W] in [-1, 1] (or uint8), label [D], ...)``, with the depth ``[1, H, W]``
third where a set has depth (the synthetic set); a NamedTuple is such a tuple. Beyond indexing, a data set
declares:

* ``labels``: ``[N, D]`` the labels of every item (EG3D camera labels, ``D = 25``), or ``None`` when the set
  has none; a pose sampler that draws the data set's cameras (``needs_dataset_poses``) gets them;
* ``source``: where the set is read from (a path), or ``None``; evaluators key their caches of real-image
  statistics by it.

Data sets that do not derive from :class:`GanDataset` are plain item sequences: no labels, no source.
"""

from __future__ import annotations

from torch import Tensor
from torch.utils.data import Dataset

__all__ = ["GanDataset"]


class GanDataset(Dataset):
    """Base of gan3d's data sets (see the module docstring); subclasses override ``labels`` and ``source``
    (plain attributes or properties)."""

    labels: Tensor | None = None
    source: str | None = None
