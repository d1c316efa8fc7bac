"""The embedded synthetic multi-view data set: procedural scenes, ray traced, in the EG3D format.

Layout of a made set (a folder that :class:`~gan3d.core.data.EG3DDataset` reads, and that EG3D's own
``ImageFolderDataset`` reads too, since it only looks at images and ``dataset.json["labels"]``)::

    <cache>/synthetic/head-64px-512img-seed0-<hash>/
        dataset.json
        00000/img00000000.png ... 00000/img00000999.png, 00001/img00001000.png ...   (RGB, 8 bit)
        depth/00000/img00000000.npy ...                                                (float32 [H, W])

Image names follow EG3D's ``dataset_tool.py`` (``f'{idx:08d}'`` in folders of 1000). Depth maps are
``.npy`` rather than 16-bit PNG so that EG3D's tools, which take every PNG for a training image,
do not pick them up. ``dataset.json`` holds:

* ``"labels"``: ``[[image_name, [16 cam2world floats, 9 normalized intrinsics floats]], ...]``;
* ``"depth"``: ``{"files": [[image_name, depth_name], ...], "format": ..., "definition": ...,
  "background": 0.0}`` (the key :class:`EG3DDataset` reads; see :data:`DEPTH_DEFINITION`);
* ``"gan3d_synthetic"``: the generation parameters, every scene's shape and colour parameters
  (``"scenes"``), the scene of each image (``"image_scenes"``), the (yaw, pitch) of each camera
  (``"angles"``), the light and the background, so geometry metrics can rebuild the exact SDF
  (:func:`read_synthetic_metadata`).

Background: a constant black. Volume renderers composite onto nothing, so empty space renders as a
zero colour, which the generators' ``[-1, 1]`` mapping turns into black (pi-GAN, GRAM, StyleSDF); with
a black background a generator matches the data by leaving space empty, instead of having to paint
a background shell. ``background='white'`` matches EG3D's ShapeNet setting (``white_back``).

Every image comes from ``views_per_scene`` cameras looking at the same random scene, so the set is
multi-view with known geometry. Everything is drawn from ``numpy.random.default_rng(seed)`` in a fixed
order and PNGs are encoded with fixed settings, so the same parameters give identical bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..types import Cameras
from .sphere_tracer import render_scene
from .synthetic_scenes import CarScene, HeadScene, ScenePreset, get_preset, scene_to_dict, yaw_pitch, yaw_polar

__all__ = [
    "make_synthetic_dataset",
    "default_dataset_path",
    "default_cache_dir",
    "read_synthetic_metadata",
    "SyntheticMetadata",
    "DEPTH_DEFINITION",
    "GENERATOR_VERSION",
]

logger = logging.getLogger(__name__)

#: bump when the scenes or the renderer change, so cached sets made by older code are not reused.
GENERATOR_VERSION = 1

#: what a depth map holds (also written into ``dataset.json["depth"]["definition"]``).
DEPTH_DEFINITION = (
    "distance from the camera centre along the unit ray direction through the pixel centre "
    "(gan3d.core.cameras.pixel_rays; the surface point is origin + depth * direction), not camera-space z; "
    "0 where the ray misses the surface"
)

_BACKGROUNDS = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0)}
_DEFAULTS = {"preset": "head", "num_images": 512, "resolution": 64, "seed": 0, "views_per_scene": 4,
             "supersample": 2, "background": "black"}


def default_cache_dir() -> Path:
    """The gan3d cache root: ``$GAN3D_CACHE`` when set, else ``~/.cache/gan3d``."""
    root = os.environ.get("GAN3D_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "gan3d"


def _image_name(index: int) -> str:
    # EG3D dataset_tool.py: idx_str = f'{idx:08d}'; archive_fname = f'{idx_str[:5]}/img{idx_str}.png'
    index_str = f"{index:08d}"
    return f"{index_str[:5]}/img{index_str}.png"


def _set_name(params: dict) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    return f"{params['preset']}-{params['resolution']}px-{params['num_images']}img-seed{params['seed']}-{digest}"


def _is_complete(folder: Path, params: dict) -> bool:
    try:
        meta = json.loads((folder / "dataset.json").read_text())
        return meta["gan3d_synthetic"]["params"] == params
    except (OSError, ValueError, KeyError, TypeError):
        return False


def make_synthetic_dataset(
    out_dir: str | Path | None = None,
    preset: str = "head",
    num_images: int = 512,
    resolution: int = 64,
    seed: int = 0,
    views_per_scene: int = 4,
    supersample: int = 2,
    background: str = "black",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Make (or reuse) a synthetic multi-view data set and return its folder.

    Args:
        out_dir: cache root; the set goes into ``out_dir/<preset>-<res>px-<n>img-seed<seed>-<hash>``,
            the hash covering every generation parameter. Default ``default_cache_dir()/'synthetic'``.
            A folder made earlier with the same parameters is reused as it is.
        preset: ``'head'`` (FFHQ-like cameras), ``'head_right'`` (its cameras on one side) or ``'car'``
            (ShapeNet-Cars-like cameras); see :mod:`.synthetic_scenes`.
        num_images: number of images (views); scenes are ``ceil(num_images / views_per_scene)``.
        resolution: image side in pixels.
        seed: seed of everything random (scenes and cameras).
        views_per_scene: cameras per random scene.
        supersample: ``s x s`` rays per pixel for anti-aliased colour (depth uses the pixel centre).
        background: ``'black'`` or ``'white'``.
        progress: called as ``progress(images_done, num_images)`` after each scene.

    Example:
        >>> path = make_synthetic_dataset(tmp_path, preset="car", num_images=8, resolution=32)
        >>> EG3DDataset(path, load_depth=True)[0].depth.shape
        torch.Size([1, 32, 32])
    """
    scene_preset = get_preset(preset)
    if background not in _BACKGROUNDS:
        raise ValueError(f"background must be one of {sorted(_BACKGROUNDS)}, got {background!r}")
    for name, value in (("num_images", num_images), ("resolution", resolution),
                        ("views_per_scene", views_per_scene), ("supersample", supersample)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    params = {"version": GENERATOR_VERSION, "preset": preset, "num_images": num_images, "resolution": resolution,
              "seed": seed, "views_per_scene": views_per_scene, "supersample": supersample, "background": background}
    root = Path(out_dir) if out_dir is not None else default_cache_dir() / "synthetic"
    final = root / _set_name(params)
    if _is_complete(final, params):
        logger.info("reusing the synthetic data set at %s", final)
        return final
    root.mkdir(parents=True, exist_ok=True)
    # Write into a private folder and rename it at the end: an interrupted run never leaves a folder
    # that looks complete, and two processes making the same set do not mix their files.
    staging = root / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    threads = torch.get_num_threads()
    try:
        # One thread: the per-op tensors are small, so OpenMP threads only add overhead (several
        # times slower on a busy 2-core machine), and a fixed thread count keeps the bytes identical.
        torch.set_num_threads(1)
        _write_set(staging, scene_preset, params, progress)
        if final.exists():
            if _is_complete(final, params):  # another process finished first
                shutil.rmtree(staging)
                return final
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        torch.set_num_threads(threads)
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("made the synthetic %s data set (%d images) at %s", preset, num_images, final)
    return final


def default_dataset_path() -> Path:
    """The default synthetic set (``head``, 512 images of 64 px, seed 0) in the cache, made if absent."""
    return make_synthetic_dataset(**{k: v for k, v in _DEFAULTS.items()})


def _encode_png(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a PNG")
    return buffer.tobytes()


def _write_set(folder: Path, preset: ScenePreset, params: dict, progress: Callable[[int, int], None] | None) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(params["seed"])
    num_images, views, resolution = params["num_images"], params["views_per_scene"], params["resolution"]
    labels, depth_files, scenes, image_scenes, angles = [], [], [], [], []
    done = 0
    for scene_index in range(math.ceil(num_images / views)):
        scene = preset.sample_scene(rng)
        count = min(views, num_images - done)
        cameras = preset.sample_cameras(rng, count)
        stored_angles = yaw_pitch(cameras.angles)  # dataset.json keeps (yaw, pitch) about the front view
        with torch.no_grad():
            images, depths = render_scene(scene, cameras, resolution, preset.light_direction, preset.ambient,
                                          _BACKGROUNDS[params["background"]], params["supersample"])
        images_u8 = (images.permute(0, 2, 3, 1).numpy() * 255.0).round().astype(np.uint8)
        for view in range(count):
            name = _image_name(done + view)
            depth_name = "depth/" + name[: -len(".png")] + ".npy"
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / depth_name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(_encode_png(images_u8[view]))
            np.save(folder / depth_name, depths[view, 0].numpy().astype(np.float32))
            labels.append([name, [float(v) for v in cameras.label[view].tolist()]])
            depth_files.append([name, depth_name])
            angles.append([float(v) for v in stored_angles[view].tolist()])
            image_scenes.append(scene_index)
        scenes.append(scene_to_dict(scene))
        done += count
        if progress is not None:
            progress(done, num_images)
    meta = {
        "labels": labels,
        "depth": {"files": depth_files, "format": "npy float32 [H, W]", "definition": DEPTH_DEFINITION,
                  "background": 0.0},
        "gan3d_synthetic": {
            "params": params,
            "scenes": scenes,
            "image_scenes": image_scenes,
            "angles": angles,
            "light_direction": list(preset.light_direction),
            "ambient": preset.ambient,
            "background_rgb": list(_BACKGROUNDS[params["background"]]),
            "camera": {"radius": preset.radius, "pivot": list(preset.pivot), "focal": preset.focal},
        },
    }
    (folder / "dataset.json").write_text(json.dumps(meta))


@dataclass
class SyntheticMetadata:
    """What a synthetic set knows beyond its images: the scenes, which scene each image shows, its cameras.

    Attributes:
        preset: the :class:`ScenePreset` the set was made with (light, camera distribution).
        params: the generation parameters.
        scenes: one scene object per scene (``.sdf(points [N, 3]) -> [N]``, ``.albedo``).
        image_scenes: for each image (in ``dataset.json`` order) the index of its scene.
        cameras: the cameras of all images, ``angles`` filled with gan3d's (yaw, polar) (``dataset.json``
            stores (yaw, pitch) about the front view: :func:`~gan3d.core.data.synthetic_scenes.yaw_pitch`).
        background_rgb: the background colour in ``[0, 1]``.
    """

    preset: ScenePreset
    params: dict
    scenes: list[HeadScene | CarScene]
    image_scenes: list[int]
    cameras: Cameras
    background_rgb: tuple[float, float, float]


def read_synthetic_metadata(path: str | Path) -> SyntheticMetadata:
    """Read the scenes and cameras of a set made by :func:`make_synthetic_dataset` (a folder)."""
    meta_path = Path(path) / "dataset.json"
    meta = json.loads(meta_path.read_text())
    if "gan3d_synthetic" not in meta:
        raise ValueError(f"{meta_path} has no 'gan3d_synthetic' entry: it was not made by make_synthetic_dataset")
    info = meta["gan3d_synthetic"]
    preset = get_preset(info["params"]["preset"])
    labels = torch.tensor([label for _, label in meta["labels"]], dtype=torch.float32)
    return SyntheticMetadata(
        preset=preset,
        params=info["params"],
        scenes=[preset.scene_from_dict(s) for s in info["scenes"]],
        image_scenes=list(info["image_scenes"]),
        cameras=Cameras.from_label(labels, yaw_polar(torch.tensor(info["angles"], dtype=torch.float32))),
        background_rgb=tuple(info["background_rgb"]),
    )
