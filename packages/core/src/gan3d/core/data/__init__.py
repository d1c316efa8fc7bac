"""Data: the EG3D-format data set reader and the embedded synthetic multi-view data set.

* :class:`EG3DDataset` reads a folder or zip of images plus ``dataset.json`` (EG3D's format);
  :func:`check_dataset` validates every file of one.
* :func:`make_synthetic_dataset` ray traces procedural head or car scenes into that format, with
  ground-truth depth maps, cached by its parameters; :func:`default_dataset_path` is the default set.
"""

from .dataset_check import DatasetReport, check_dataset
from .eg3d_dataset import DatasetError, EG3DDataset, ImageDepthSample, ImageSample
from .sphere_tracer import render_scene, trace_rays
from .synthetic_dataset import (
    DEPTH_DEFINITION,
    SyntheticMetadata,
    default_cache_dir,
    default_dataset_path,
    make_synthetic_dataset,
    read_synthetic_metadata,
)
from .synthetic_scenes import PRESETS, CarScene, HeadScene, ScenePreset, get_preset

__all__ = [
    "EG3DDataset",
    "ImageSample",
    "ImageDepthSample",
    "DatasetError",
    "check_dataset",
    "DatasetReport",
    "make_synthetic_dataset",
    "default_dataset_path",
    "default_cache_dir",
    "read_synthetic_metadata",
    "SyntheticMetadata",
    "DEPTH_DEFINITION",
    "render_scene",
    "trace_rays",
    "HeadScene",
    "CarScene",
    "ScenePreset",
    "PRESETS",
    "get_preset",
]
