"""Convert a raw image collection into one zip: the role of EG3D's ``dataset_tool.py``, parallel and resumable.

    prepare_dataset("img_align_celeba/", "celeba_64.zip", resolution=64)              # dataset_tool's way
    prepare_dataset("img_align_celeba/", "celeba_pigan_64.zip", resolution=64,
                    preprocessing=pigan_recipe("celeba").data["preprocessing"])       # a method's own steps

The output is what ``dataset_tool.py`` writes: uncompressed PNGs named ``{idx[:5]}/img{idx}.png``
(``idx`` the 8-digit index of the source image in sorted order) and ``dataset.json`` with
``"labels"``: the source's EG3D camera labels (its own ``dataset.json`` or ``labels_file``) renamed to
the new names, or ``null`` when any image has none (dataset_tool's rule). gan3d adds
``"gan3d": {"preprocessing": [...], "source": ...}``, the steps applied, so that
:class:`~gan3d.core.data.ImageDataset` applies only the rest of a recipe's pipeline.

Steps: with ``preprocessing`` (a recipe's ``data.preprocessing``), its steps up to the first random
one, ``"training"`` sized to ``resolution``; otherwise dataset_tool's ``--transform``:
``center-crop`` (the centred square of the short side, then PIL LANCZOS to ``resolution``) or
``scale`` (LANCZOS to ``resolution`` x ``resolution``, dataset_tool's default without a transform).

The work is split into shards of images converted by worker processes; each shard is written to
``OUT.parts/`` and renamed when complete, so an interrupted conversion continues where it stopped
(same source listing and settings) and the final zip appears only when every shard is done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zipfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .archives import Archive, DatasetError, open_archive
from .image_dataset import decode_image, image_names
from .labels import read_labels
from .preprocessing import Preprocessing

__all__ = ["prepare_dataset", "PrepareReport", "TRANSFORMS", "archive_name"]

logger = logging.getLogger(__name__)

#: dataset_tool.py ``--transform`` choices we offer (``center-crop-wide`` is for LSUN cars, which no
#: method here trains on).
TRANSFORMS = ("center-crop", "scale")


def archive_name(index: int) -> str:
    """EG3D dataset_tool.py: ``idx_str = f'{idx:08d}'; f'{idx_str[:5]}/img{idx_str}.png'``."""
    text = f"{index:08d}"
    return f"{text[:5]}/img{text}.png"


def _transform_steps(transform: str, resolution: int) -> list[dict[str, Any]]:
    # dataset_tool.py make_transform: center_crop / scale, both resizing with PIL.Image.LANCZOS.
    resize = {"op": "resize", "size": [resolution, resolution], "filter": "lanczos"}
    if transform == "center-crop":
        return [{"op": "square_center_crop"}, resize]
    if transform == "scale":
        return [resize]
    raise DatasetError(f"--transform {transform!r} is unknown; choose one of {', '.join(TRANSFORMS)}")


@dataclass
class PrepareReport:
    """What :func:`prepare_dataset` wrote.

    Attributes:
        path: the zip.
        num_images: images written.
        labelled: whether ``dataset.json`` carries labels.
        steps: the preprocessing applied (recorded in the zip).
        sizes: the distinct ``(height, width)`` of the stored images.
        resumed_shards: shards found complete from an earlier, interrupted run.
    """

    path: Path
    num_images: int
    labelled: bool
    steps: list[dict[str, Any]]
    sizes: list[tuple[int, int]]
    resumed_shards: int


def _convert_shard(archive: Archive, names: list[str], first: int, steps: list[dict[str, Any]], out: Path,
                   compression: int) -> tuple[int, list[tuple[int, int]]]:
    """Convert ``names`` (source indices from ``first``) into the shard zip ``out``; returns the count and sizes."""
    pipeline = Preprocessing(steps)
    sizes: set[tuple[int, int]] = set()
    partial = out.with_name(out.name + f".{os.getpid()}.partial")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as shard:
            for offset, name in enumerate(names):
                where = archive.where(name)
                image = pipeline(decode_image(archive.read(name), where), np.random.default_rng(0), where)
                ok, png = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]),
                                       [cv2.IMWRITE_PNG_COMPRESSION, compression])
                if not ok:
                    raise DatasetError(f"{where}: encoding the converted image as PNG failed")
                shard.writestr(archive_name(first + offset), png.tobytes())
                sizes.add(image.shape[:2])
            shard.comment = json.dumps(sorted(sizes)).encode()  # read back when a conversion resumes
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
        archive.close()
    return len(names), sorted(sizes)


def _shard_sizes(path: Path) -> list[tuple[int, int]]:
    with zipfile.ZipFile(path) as shard:
        return [tuple(size) for size in json.loads(shard.comment or b"[]")]


def prepare_dataset(
    source: str | Path,
    out: str | Path,
    resolution: int,
    *,
    transform: str = "center-crop",
    preprocessing: list[dict[str, Any]] | None = None,
    labels_file: str | Path | None = None,
    workers: int | None = None,
    shard_size: int = 256,
    compression: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> PrepareReport:
    """Convert the images of ``source`` (folder, zip, tar, LMDB) into the zip ``out``.

    Args:
        source: the raw images (searched recursively), with an optional EG3D ``dataset.json``.
        out: the zip to write; it must not exist (nothing is ever overwritten).
        resolution: the output side (``"training"`` steps of ``preprocessing`` are sized to it).
        transform: ``center-crop`` or ``scale`` (dataset_tool's), when ``preprocessing`` is not given.
        preprocessing: a recipe's ``data.preprocessing``; its steps before the first random one are applied.
        labels_file: EG3D camera labels for the source images (keys: names relative to ``source``).
        workers: converting processes (default: every CPU).
        shard_size: images per shard (the unit of resumption).
        compression: PNG compression level 0-9 (dataset_tool: 0, fastest to decode).
        progress: ``progress(done, total)`` after each shard.

    Raises:
        DatasetError: the source is missing, empty or holds an undecodable image (named), or ``out``
            exists, or an earlier interrupted conversion into ``out`` used other settings.
    """
    source, out = Path(source), Path(out)
    if not isinstance(resolution, int) or isinstance(resolution, bool) or resolution < 1:
        raise DatasetError(f"--resolution must be a positive int, got {resolution!r}")
    if not 0 <= compression <= 9:
        raise DatasetError(f"PNG compression must be 0..9, got {compression}")
    if out.exists():
        raise DatasetError(f"{out} exists; remove it or choose another name (nothing was overwritten)")
    if out.suffix.lower() != ".zip":
        raise DatasetError(f"{out}: the output must be a .zip")
    archive = open_archive(source)
    if preprocessing is not None:
        steps = Preprocessing(preprocessing, "preprocessing").resolved(resolution).deterministic_prefix().steps
    else:
        steps = _transform_steps(transform, resolution)
    names = image_names(archive)
    if not names:
        raise DatasetError(f"{source} holds no images (.png, .jpg, .jpeg, .webp), searched recursively")
    table = read_labels(archive, "eg3d", labels_file)
    labels: list[Any] | None = None
    if table is not None:
        by_name = dict(zip(table.names, table.values.tolist()))
        missing = [n for n in names if n not in by_name]
        if missing:
            logger.warning("%d of %d images have no label in %s (e.g. '%s'); the zip gets \"labels\": null, as "
                           "EG3D's dataset_tool does", len(missing), len(names), table.source, missing[0])
        else:
            labels = [[archive_name(i), by_name[n]] for i, n in enumerate(names)]

    parts = out.with_name(out.name + ".parts")
    config = {"source": str(source.resolve()), "names": hashlib.sha256("\n".join(names).encode()).hexdigest(),
              "steps": steps, "shard_size": shard_size, "compression": compression}
    config_path = parts / "config.json"
    if parts.exists():
        if not config_path.is_file() or json.loads(config_path.read_text()) != config:
            raise DatasetError(f"{parts} holds an interrupted conversion with other settings or another source "
                               "listing; remove it to start again, or rerun with the same arguments")
    else:
        parts.mkdir(parents=True)
        config_path.write_text(json.dumps(config, indent=1))
    shards = [(i, names[start:start + shard_size], start)
              for i, start in enumerate(range(0, len(names), shard_size))]
    done_paths = {i: parts / f"shard-{i:06d}.zip" for i, _, _ in shards}
    resumed = [i for i, _, _ in shards if done_paths[i].is_file()]
    todo = [s for s in shards if s[0] not in resumed]
    done = sum(len(shards[i][1]) for i in resumed)
    sizes: set[tuple[int, int]] = set()
    for i in resumed:
        sizes.update(_shard_sizes(done_paths[i]))
    if resumed:
        logger.info("%s: %d of %d shards were converted by an earlier run; continuing", out, len(resumed),
                    len(shards))
    if progress is not None:
        progress(done, len(names))
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    archive.close()
    if workers == 1:
        for i, shard_names, start in todo:
            count, shard_sizes = _convert_shard(archive, shard_names, start, steps, done_paths[i], compression)
            done += count
            sizes.update(shard_sizes)
            if progress is not None:
                progress(done, len(names))
    else:
        import multiprocessing

        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                              else "spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(_convert_shard, archive, shard_names, start, steps, done_paths[i], compression)
                       for i, shard_names, start in todo]
            try:
                for future in as_completed(futures):
                    count, shard_sizes = future.result()
                    done += count
                    sizes.update(shard_sizes)
                    if progress is not None:
                        progress(done, len(names))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as zipped:
        for i, _, _ in shards:
            with zipfile.ZipFile(done_paths[i]) as shard:
                for name in shard.namelist():
                    zipped.writestr(name, shard.read(name))
        meta = {"labels": labels, "gan3d": {"preprocessing": steps, "source": str(source)}}
        zipped.writestr("dataset.json", json.dumps(meta))
    os.replace(partial, out)
    shutil.rmtree(parts)
    if len(sizes) > 1:
        logger.warning("%s: the stored images have %d different sizes (%s ...); the rest of the recipe's "
                       "preprocessing must bring them to one", out, len(sizes), sorted(sizes)[:3])
    return PrepareReport(out, len(names), labels is not None, steps, sorted(sizes), len(resumed))
