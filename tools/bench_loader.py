#!/usr/bin/env python
"""Data-loader throughput: images/s of gan3d's ImageDataset through a torch DataLoader.

    python tools/bench_loader.py                                  # 64, 256, 512 px; 0, 2, 4 workers
    python tools/bench_loader.py --resolution 256 --workers 0 4 --num 512 --json loader.json

Two layouts per resolution, written once into a temporary folder:

* ``zip``: a ``datasets prepare`` zip (uncompressed PNGs at the resolution, EG3D dataset_tool's
  format), read with no preprocessing: what EG3D trains on;
* ``jpeg``: a folder of 2x-sized JPEGs (quality 95) read through a centre crop and a PIL bilinear
  resize to the resolution: what pi-GAN and GIRAFFE do on a raw download.

Images are smooth random fields (bicubic-upsampled 8x8 noise), so PNG and JPEG sizes are those of
photographs rather than of noise. Each setting reads the set once untimed (page cache, worker start)
and then ``--epochs`` times timed, in batches of ``--batch_size``, shuffled.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader


def _smooth_images(count: int, side: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        yield cv2.resize(small, (side, side), interpolation=cv2.INTER_CUBIC)


def make_sets(root: Path, resolution: int, count: int) -> dict[str, tuple[Path, list | None]]:
    from gan3d.core.data.prepare import prepare_dataset

    raw = root / f"raw{resolution}"
    raw.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(_smooth_images(count, 2 * resolution)):
        cv2.imwrite(str(raw / f"{i:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    zipped = root / f"set{resolution}.zip"
    if not zipped.exists():
        prepare_dataset(raw, zipped, resolution, workers=1)
    jpeg_steps = [{"op": "square_center_crop"}, {"op": "resize", "size": "training", "filter": "bilinear"}]
    return {"zip": (zipped, None), "jpeg": (raw, jpeg_steps)}


def measure(path: Path, steps, resolution: int, workers: int, batch: int, epochs: int) -> tuple[float, float | None]:
    """(images per wall-clock second, images per CPU second of this process or ``None`` with workers).

    With no workers the loading runs in this process, so its CPU time is the loader's cost alone,
    unaffected by other jobs that take the cores (wall-clock time is not)."""
    from gan3d.core.data import ImageDataset

    data = ImageDataset(path, preprocessing=steps, resolution=resolution if steps else None, labels="unused")
    loader = DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers, drop_last=False,
                        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))
    for _ in loader:  # warm: page cache, worker start-up
        pass
    start, cpu_start = time.perf_counter(), time.process_time()
    seen = 0
    for _ in range(epochs):
        for images, _labels in loader:
            seen += images.shape[0]
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return seen / wall, (seen / cpu if workers == 0 else None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--resolution", type=int, nargs="+", default=[64, 256, 512])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    p.add_argument("--num", type=int, default=256, help="images per set")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2, help="timed passes over the set")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for resolution in args.resolution:
            sets = make_sets(Path(tmp), resolution, args.num)
            for layout, (path, steps) in sets.items():
                for workers in args.workers:
                    rate, cpu_rate = measure(path, steps, resolution, workers, args.batch_size, args.epochs)
                    results.append({"resolution": resolution, "layout": layout, "workers": workers,
                                    "images_per_s": round(rate, 1),
                                    "images_per_cpu_s": None if cpu_rate is None else round(cpu_rate, 1)})
                    per_cpu = f"  ({cpu_rate:.1f} per CPU second)" if cpu_rate is not None else ""
                    print(f"{resolution:4d} px  {layout:4s}  workers {workers}:  {rate:8.1f} images/s{per_cpu}",
                          flush=True)
    machine = {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "python": sys.version.split()[0],
               "torch": torch.__version__, "opencv": cv2.__version__, "platform": platform.platform()}
    print(json.dumps(machine))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
