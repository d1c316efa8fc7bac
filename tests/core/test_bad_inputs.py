"""Bad input gets one clear message naming what is wrong, never a traceback, and costs no work.

Data sets (through ``tools/run.py train --dataset`` and through the trainer's loader with worker
processes), command lines and recipes (before any work directory is created) and checkpoints. The
table in docs/bad_inputs.md lists every case with the message it gives.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gan3d.core.checkpoint import CheckpointError, load_checkpoint, load_generator, save_checkpoint
from gan3d.core.data import DatasetError, EG3DDataset
from gan3d.core.recipe import ModuleSpec
from gan3d.core.registry import Registry
from gan3d.core.trainer import Trainer, TrainingError

REPO = Path(__file__).resolve().parents[2]
RUN_PY = REPO / "tools" / "run.py"
# A valid EG3D label: cam2world (camera 2.0 in front of the origin) and normalized intrinsics.
LABEL = [1.0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2.0, 0, 0, 0, 1, 1.5, 0, 0.5, 0, 1.5, 0.5, 0, 0, 1]


@pytest.fixture(scope="module")
def run():
    """tools/run.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gan3d_tools_run_bad_inputs", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_set(folder: Path, num: int = 4, resolution: int = 8, *, labels=None, break_image=None) -> Path:
    """An EG3D-format folder of ``num`` random PNGs; ``labels(entries)`` and ``break_image(folder)`` spoil it."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    entries = []
    for i in range(num):
        cv2.imwrite(str(folder / f"img{i:02d}.png"), rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8))
        entries.append([f"img{i:02d}.png", list(LABEL)])
    (folder / "dataset.json").write_text(json.dumps({"labels": labels(entries) if labels else entries}))
    if break_image:
        break_image(folder)
    return folder


def _truncated_zip(folder: Path, good: Path) -> Path:
    path = folder / "truncated.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(good.iterdir()):
            archive.write(file, file.name)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _corrupt(name: str):
    return lambda folder: (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n not an image any more")


def _said(capsys) -> str:
    """What the command printed, with rich's line wrapping undone."""
    captured = capsys.readouterr()
    return " ".join((captured.out + captured.err).split())


@pytest.fixture
def wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps at the terminal width; keep messages on one line


# ------------------------------------------------------------------------------------------- data sets
# EG3D (CPU-sized) reads the camera labels; every case fails before a job directory is made.
DATA_CASES = {
    "path that does not exist": (lambda d: d / "no-such-set", "no-such-set does not exist"),
    "truncated zip": (lambda d: _truncated_zip(d, _write_set(d / "good")),
                      "truncated.zip is neither a folder nor a readable zip, tar or LMDB database (it may be "
                      "truncated or corrupt)"),
    "label of the wrong length": (
        lambda d: _write_set(d / "short-label", labels=lambda e: e[:1] + [[e[1][0], e[1][1][:16]]] + e[2:]),
        "entry 'img01.png' has a label of length 16; an EG3D camera label is 25 floats"),
    "empty labels": (lambda d: _write_set(d / "empty", labels=lambda e: []),
                     "dataset.json lists no labels; remove dataset.json or set \"labels\": null"),
    "folder without images": (lambda d: (d / "nothing" / "sub").mkdir(parents=True) or d / "nothing",
                              "nothing holds no images (.png, .jpg, .jpeg, .webp)"),
    "corrupt first image": (lambda d: _write_set(d / "corrupt-first", break_image=_corrupt("img00.png")),
                            "img00.png cannot be decoded as an image (corrupt or truncated bytes)"),
    "no dataset.json": (lambda d: _write_set(d / "no-json", break_image=lambda f: (f / "dataset.json").unlink()),
                        "no-json carries no camera labels"),
    "labels null": (lambda d: _write_set(d / "null", labels=lambda e: None),
                    "dataset.json is absent or has \"labels\": null), but method 'eg3d' needs one per image"),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_bad_data_set_on_the_command_line(run, case, tmp_path, capsys, wide_console):
    make, message = DATA_CASES[case]
    dataset = make(tmp_path)
    work = tmp_path / "work"
    assert run.main(["train", "--method", "eg3d", "--variant", "synthetic", "--dataset", str(dataset),
                     "--root_work_dir", str(work)]) == 2
    said = _said(capsys)
    assert message in said and "Traceback" not in said
    assert not work.exists()


def test_bad_data_set_in_a_real_subprocess_has_no_traceback(tmp_path):
    dataset = _truncated_zip(tmp_path, _write_set(tmp_path / "good"))
    proc = subprocess.run(
        [sys.executable, str(RUN_PY), "train", "--dataset", str(dataset), "--root_work_dir", str(tmp_path / "w")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "400"},
    )
    said = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 2, said
    assert "truncated.zip is neither a folder nor a readable zip" in said and "Traceback" not in said


@pytest.mark.parametrize(("case", "spoil", "message"), [
    ("corrupt image read by a worker", _corrupt, "cannot be decoded as an image (corrupt or truncated bytes)"),
    ("image of another resolution read by a worker",
     lambda name: lambda f: cv2.imwrite(str(f / name), np.zeros((16, 16, 3), np.uint8)),
     "is 16x16 but the data set's first image is 8x8; all images must have one resolution"),
])
def test_bad_image_read_by_loader_workers(run, tiny_recipe, tiny_registry, tmp_path, capsys, wide_console,
                                          case, spoil, message):
    def spoil_all_but_first(folder: Path) -> None:  # so the first batch is sure to hold a bad one
        for i in range(1, 4):
            spoil(f"img{i:02d}.png")(folder)

    dataset = EG3DDataset(_write_set(tmp_path / "set", break_image=spoil_all_but_first))
    trainer = Trainer(tiny_recipe(), dataset, tmp_path / "job", registry=tiny_registry, workers=2, progress=False,
                      tensorboard=False)
    with pytest.raises(DatasetError) as caught:
        trainer.train_step()
    text = str(caught.value)
    assert message in text and str(tmp_path / "set") in text
    assert "Traceback" not in text and "worker" not in text  # not torch's wrapped worker traceback
    assert run._handle(caught.value) == 2  # the command line prints it as an error
    assert message in _said(capsys)


# ------------------------------------------------------------------------------- command line and recipes
CLI_CASES = {
    "unknown method": (["--method", "nosuch"], "method 'nosuch' is not installed; installed methods:"),
    "unknown variant": (["--variant", "nosuch"], "has no variant 'nosuch'; variants:"),
    "unknown module": (["--set", "point_embedder=hashgrid"], "point embedder 'hashgrid' is not installed"),
    "unknown module option": (["--set", "point_sampler.nosuch=1"], "has no option 'nosuch'; its options:"),
    "unknown training option": (["--set", "training.batch_sizee=4"],
                                "unknown training option(s) ['batch_sizee']; known: batch_size"),
    "override without a value": (["--set", "point_sampler.num_samples"], "must look like KEY=VALUE"),
    "wrong type (float for int)": (["--set", "point_sampler.num_samples=1.5"], "expected int"),
    "wrong type (string for int)": (["--set", "training.batch_size=abc"], "expected int"),
    "negative resolution": (["--resolution", "-8"], "render_resolution must be a positive integer, got -8"),
    "ray_start >= ray_end": (["--set", "point_sampler.ray_start=2.0"], "ray_start must be smaller than ray_end"),
    "zero batch size": (["--batch_size", "0"], "training.batch_size must be a positive number, got 0"),
    "negative --kimg": (["--kimg", "-1"], "--kimg must be a positive number"),
    "negative --workers": (["--workers", "-1"], "--workers must be 0"),
    "--resume with nothing to resume": (["--resume"], "--resume: no checkpoint in"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_command_line_fails_before_any_work(run, case, tmp_path, capsys, wide_console):
    argv, message = CLI_CASES[case]
    dataset = _write_set(tmp_path / "set")
    work = tmp_path / "work"
    assert run.main(["train", "--dataset", str(dataset), "--root_work_dir", str(work), *argv]) == 2
    said = _said(capsys)
    assert message in said and "Traceback" not in said
    assert not work.exists()


def test_existing_job_is_neither_overwritten_nor_a_traceback(run, tmp_path, capsys, wide_console):
    job = tmp_path / "work" / "mine"
    job.mkdir(parents=True)
    (job / "notes.txt").write_text("keep")
    argv = ["train", "--dataset", str(_write_set(tmp_path / "set")), "--root_work_dir", str(tmp_path / "work"),
            "--job_name", "mine"]
    assert run.main(argv) == 2
    assert "already exists; pass --resume" in _said(capsys)
    assert [p.name for p in job.iterdir()] == ["notes.txt"]


def test_non_finite_loss_reaches_the_command_line_as_a_message(run, tiny_recipe, tiny_registry, tiny_dataset,
                                                               tmp_path, capsys, wide_console):
    trainer = Trainer(tiny_recipe(), tiny_dataset, tmp_path / "job", registry=tiny_registry, progress=False,
                      tensorboard=False)
    with torch.no_grad():
        next(trainer.D.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingError) as caught:
        trainer.train_step()
    assert run._handle(caught.value) == 2
    said = _said(capsys)
    assert "non-finite discriminator loss at step 0" in said and "d_fake=nan" in said and "Traceback" not in said


# ------------------------------------------------------------------------------------------- checkpoints
def _job_with_checkpoint(tmp_path: Path, write) -> tuple[Path, Path]:
    job = tmp_path / "work" / "job"
    (job / "checkpoints").mkdir(parents=True)
    path = job / "checkpoints" / "checkpoint-000000002.pt"
    write(path)
    return job, path


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo owned",))


@pytest.mark.parametrize(("case", "write", "message"), [
    ("checkpoint carrying pickled code",
     lambda p: torch.save({"format": 1, "recipe": "{}", "x": _Payload()}, p),
     "refused: the file carries pickled Python objects (code)"),
    ("truncated checkpoint", lambda p: p.write_bytes(b"PK\x03\x04 cut short"), "not a readable checkpoint"),
    ("checkpoint of another program", lambda p: torch.save({"weights": torch.zeros(2)}, p),
     "not a gan3d checkpoint"),
])
def test_bad_checkpoint_on_resume(run, tmp_path, capsys, wide_console, case, write, message):
    job, path = _job_with_checkpoint(tmp_path, write)
    argv = ["train", "--dataset", str(_write_set(tmp_path / "set")), "--root_work_dir", str(tmp_path / "work"),
            "--job_name", "job", "--resume"]
    assert run.main(argv) == 2
    said = _said(capsys)
    assert str(path) in said and message in said and "Traceback" not in said and "owned" not in said
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_checkpoint(path)


def test_checkpoint_naming_a_plugin_that_is_not_installed(tiny_recipe, tiny_registry, tiny_dataset, tmp_path):
    import gan3d.core.plugin as core_plugin

    # A tiny run saved by a registry that has the tiny plugin...
    trainer = Trainer(tiny_recipe(), tiny_dataset, tmp_path / "job", registry=tiny_registry, progress=False,
                      tensorboard=False)
    path = trainer.save()
    bare = Registry(autoload=False)
    bare.register(core_plugin, name="core", distribution="gan3d-core")
    with pytest.raises(CheckpointError, match=r"cannot rebuild its generator: .*'tiny' is not installed"):
        load_generator(path, registry=bare)  # ...loaded where it is missing

    # A recipe naming one of gan3d's own modules says which distribution to install.
    recipe = tiny_recipe()
    recipe.modules["point_embedder"] = ModuleSpec("triplane")
    first_party = save_checkpoint(tmp_path / "ckpts", 0, {"recipe": recipe.to_json()})
    with pytest.raises(CheckpointError) as caught:
        load_generator(first_party, registry=tiny_registry)
    text = str(caught.value)
    assert str(first_party) in text and "'triplane' is not installed" in text
    assert "pip install gan3d-embedders" in text

