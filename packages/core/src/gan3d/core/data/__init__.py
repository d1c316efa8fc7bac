"""Data: readers of image data sets (folder, zip, tar, LMDB; with or without labels), the methods'
preprocessing, the EG3D-format reader and the embedded synthetic multi-view data set.

* :class:`ImageDataset` reads any folder, zip, tar or LMDB of images through a
  :class:`Preprocessing` pipeline, with labels when the set has them; :func:`open_training_dataset`
  opens one as a recipe's ``data`` section says. :func:`open_archive` is the storage layer and
  :func:`register_label_reader` adds a label format (EpiGRAF's ``camera_angles``:
  :mod:`.epigraf_labels`).

* :class:`EG3DDataset` reads a folder or zip of images plus ``dataset.json`` (EG3D's format);
  :func:`check_dataset` validates every file of one.
* :func:`make_synthetic_dataset` ray traces procedural head or car scenes into that format, with
  ground-truth depth maps, cached by its parameters; :func:`default_dataset_path` is the default set.
"""

from .archives import Archive, DatasetError, open_archive
from .base import GanDataset
from .dataset_check import DatasetReport, check_dataset
from .eg3d_dataset import EG3DDataset, ImageDepthSample, ImageSample
from .epigraf_labels import read_epigraf_labels
from .image_dataset import DATA_KEYS, ImageDataset, decode_image, open_training_dataset
from .labels import LABEL_READERS, LabelTable, read_labels, register_label_reader
from .preprocessing import Preprocessing, PreprocessingError
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
    "GanDataset",
    "ImageDataset",
    "open_training_dataset",
    "DATA_KEYS",
    "decode_image",
    "Preprocessing",
    "PreprocessingError",
    "Archive",
    "open_archive",
    "LabelTable",
    "LABEL_READERS",
    "read_labels",
    "register_label_reader",
    "read_epigraf_labels",
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
