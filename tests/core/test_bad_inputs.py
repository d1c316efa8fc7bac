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
from collections.abc import Sequence
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
    "dataset.json nested 100,000 deep": (
        lambda d: _write_set(d / "deep", break_image=lambda f: (f / "dataset.json").write_text("[" * 100_000)),
        "dataset.json is nested too deeply to be a data set index"),
    "an entry with ../": (lambda d: _write_set(d / "up", labels=lambda e: [["../img00.png", LABEL]] + e[1:]),
                          "entry '../img00.png' points outside the data set"),
    "an entry with an absolute path": (
        lambda d: _write_set(d / "abs", labels=lambda e: [[str(d / "abs" / "img00.png"), LABEL]] + e[1:]),
        "abs/img00.png' points outside the data set"),
    "images smaller than the render (1x1)": (lambda d: _write_set(d / "one-pixel", resolution=1),
                                             "the data set's images are 1x1 but the generator renders 32x32"),
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
    trainer.close()  # its loader's workers end now
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
    "negative resolution": (["--resolution", "-8"], "--resolution must be an integer >= 1 (pixels), got -8"),
    "ray_start >= ray_end": (["--set", "point_sampler.ray_start=2.0"], "ray_start must be smaller than ray_end"),
    "zero batch size": (["--batch_size", "0"], "--batch_size must be an integer >= 1, got 0"),
    "negative --kimg": (["--kimg", "-1"], "--kimg must be a positive number"),
    "negative --workers": (["--workers", "-1"], "--workers must be an integer >= 0"),
    "--resume with nothing to resume": (["--resume"], "--resume: no checkpoint in"),
    "--kimg inf": (["--kimg", "inf"], "--kimg must be a positive number of thousands of images, got inf"),
    "--kimg below one image": (["--kimg", "1e-9"], "--kimg 1e-09 is less than one image; give at least 0.001"),
    "infinite total_kimg": (["--set", "training.total_kimg=Infinity"],
                            "override 'training.total_kimg': inf is not a finite number"),
    "NaN for a module option": (["--set", "point_sampler.ray_start=NaN"],
                                "override 'point_sampler.ray_start': nan is not a finite number"),
    "an integer beyond 64 bits": (["--set", f"training.batch_size={2**70}"], "is beyond the 64-bit integer range"),
    "a value nested too deeply": (["--set", "point_sampler.num_samples=" + "[" * 100_000],
                                  "is nested too deeply"),
    "null for a required generator option": (["--set", "generator.render_resolution=null"],
                                             "generator option 'render_resolution' must be int, got null"),
    "a list of the wrong elements": (["--set", 'discriminator.channels=["a"]'],
                                     "discriminator 'pigan_progressive' option 'channels' must hold ints, got 'a'"),
    "a stage's until_kimg a string": (["--set", 'training.stages=[{"until_kimg": "x"}, {}]'],
                                      "training.stages[0].until_kimg must be a number >= 0, got 'x'"),
    "a stage's g_lr a string": (["--set", 'training.stages=[{"g_lr": "x"}]'],
                                "training.stages[0].g_lr must be a positive number, got 'x'"),
    "a stage setting an unknown generator option": (["--set", 'training.stages=[{"generator.nosuch": 1}]'],
        "training.stages[0]: a stage cannot set generator option 'nosuch'; it can set render_resolution"),
    "a stage setting a generator option to another type": (
        ["--set", 'training.stages=[{"generator.num_importance": "many"}]'],
        "training.stages[0].generator.num_importance must be a int like 12, got 'many'"),
    "--device nonsense": (["--device", "nonsense"], "--device 'nonsense' is not a device; use cpu, cuda, cuda:N"),
    "--seed beyond 32 bits": (["--seed", str(2**70)], "--seed must be an integer in [0, 4294967295] (32 bits), got"),
    "--seed not a number": (["--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
    "--job_name leaving the root": (["--job_name", "../elsewhere"], "--job_name '../elsewhere' must be a folder name"),
    "unknown command-line option": (["--nosuch"], "unrecognized arguments: --nosuch"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_bad_command_line_fails_before_any_work(run, case, tmp_path, capsys, wide_console):
    argv, message = CLI_CASES[case]
    dataset = _write_set(tmp_path / "set")
    work = tmp_path / "work"
    try:
        status = run.main(["train", "--dataset", str(dataset), "--root_work_dir", str(work), *argv])
    except SystemExit as exc:  # what argparse cannot parse
        status = exc.code
    assert status == 2
    said = _said(capsys)
    assert message in said and "Traceback" not in said
    assert not work.exists() and not (tmp_path / "elsewhere").exists()


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
    ("random bytes", lambda p: p.write_bytes(bytes(range(256)) * 8), "is not a PyTorch file"),
    ("random bytes behind a pickle header", lambda p: p.write_bytes(b"\x80" + bytes(range(1, 256)) * 8),
     "not a readable checkpoint (truncated or corrupt?)"),
    ("an HTML page saved as .pt", lambda p: p.write_text("<!DOCTYPE html>\n<html><body>Sign in</body></html>"),
     "is an HTML page, not a PyTorch file"),
    ("a Git LFS pointer", lambda p: p.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n"),
     "is a Git LFS pointer, not the file itself: fetch the real file (git lfs pull)"),
    ("an empty file", lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    ("a recipe that is not JSON text", lambda p: torch.save({"format": 1, "recipe": {"method": "x"}}, p),
     "not a gan3d checkpoint (its recipe is a dict, not JSON text)"),
    ("a format that is a string", lambda p: torch.save({"format": "1", "recipe": "{}"}, p),
     "not a gan3d checkpoint (its format is '1', not a version number)"),
    ("a step that is a string", lambda p: torch.save({"format": 1, "recipe": "{}", "step": "x"}, p),
     "damaged checkpoint: its step is 'x', not a count"),
])
def test_bad_checkpoint_on_resume(run, tmp_path, capsys, wide_console, case, write, message):
    job, path = _job_with_checkpoint(tmp_path, write)
    argv = ["train", "--dataset", str(_write_set(tmp_path / "set")), "--root_work_dir", str(tmp_path / "work"),
            "--job_name", "job", "--resume"]
    assert run.main(argv) == 2
    said = _said(capsys)
    assert str(path) in said and message in said and "Traceback" not in said and "owned" not in said
    assert "weights_only=False" not in said  # torch's advice to load unsafely is not passed on
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    assert message in str(caught.value)


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



@pytest.mark.parametrize(("case", "spoil", "message"), [
    ("no generator weights", lambda state: [state.pop("G"), state.pop("G_ema")],
     "has no generator weights ('G' or 'G_ema' state dict)"),
    ("generator weights of another shape",
     lambda state: state["G_ema"].update({"embedder.proj.weight": torch.zeros(1)}),
     "weights do not fit the recipe's generator (G_ema): 1 of another shape (embedder.proj.weight (1,) vs (6, 3))"),
])
def test_checkpoint_without_usable_generator_weights(case, spoil, message, tiny_recipe, tiny_registry, tiny_dataset,
                                                     tmp_path):
    trainer = Trainer(tiny_recipe(), tiny_dataset, tmp_path / "job", registry=tiny_registry, progress=False,
                      tensorboard=False)
    path = trainer.save()
    state = load_checkpoint(path)
    spoil(state)
    torch.save(state, path)
    with pytest.raises(CheckpointError) as caught:
        load_generator(path, registry=tiny_registry)
    assert message in str(caught.value) and "\n" not in str(caught.value)


# ------------------------------------------------------------------------------- the command line itself
def test_any_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    """GAN3D_DEBUG=1 re-raises, so a bug report can carry the traceback; without it, one line."""
    argv = [sys.executable, str(RUN_PY), "train", "--dataset", str(_write_set(tmp_path / "set")), "--root_work_dir",
            str(tmp_path / "w"), "--set", "point_sampler.num_samples=abc"]
    quiet = subprocess.run(argv, capture_output=True, text=True, timeout=300, env={**os.environ, "GAN3D_DEBUG": "0"})
    loud = subprocess.run(argv, capture_output=True, text=True, timeout=300, env={**os.environ, "GAN3D_DEBUG": "1"})
    message = "override 'point_sampler.num_samples': expected int (current value 12), got str 'abc'"
    assert quiet.returncode == 2 and "Traceback" not in quiet.stdout + quiet.stderr
    assert [line for line in (quiet.stdout + quiet.stderr).splitlines() if line.strip()] == [f"error: {message}"]
    assert loud.returncode == 1 and "Traceback (most recent call last)" in loud.stderr and message in loud.stderr
    assert not (tmp_path / "w").exists()


def test_a_bug_is_one_line_that_says_how_to_report_it(run, capsys):
    assert run._handle(TypeError("unsupported operand type(s) for +: 'int' and 'str'")) == 1
    said = _said(capsys)
    assert said == ("error: internal error: TypeError: unsupported operand type(s) for +: 'int' and 'str'. This is a "
                    "bug in gan3d or a plugin; run again with GAN3D_DEBUG=1 for the traceback and report it")


@pytest.mark.parametrize(("error", "status", "message"), [
    (RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried to "
                  "allocate 40000000000 bytes"), 2, "error: out of memory ("),
    (OSError(28, "No space left on device", "/data/job/checkpoints/x.pt"), 2,
     "error: /data/job/checkpoints/x.pt: No space left on device (free some space or write elsewhere)"),
    (PermissionError(13, "Permission denied", "/data/job"), 2, "error: /data/job: Permission denied"),
    (KeyboardInterrupt(), 130, "interrupted (Ctrl-C)"),
    # PyTorch's message (its worker check in torch/csrc/DataLoader.cpp) for a worker the OOM killer ended.
    (RuntimeError("DataLoader worker (pid 3744) is killed by signal: Killed. "), 2,
     "error: a data-loader worker died (DataLoader worker (pid 3744) is killed by signal: Killed.): it was "
     "killed from outside gan3d, by the out-of-memory killer"),
    (RuntimeError("DataLoader worker (pid(s) 3744) exited unexpectedly"), 2, "error: a data-loader worker died ("),
])
def test_what_the_machine_refuses_is_one_line(run, capsys, error, status, message):
    assert run._handle(error) == status
    assert _said(capsys).startswith(message)


def test_unknown_command_is_one_line(run, capsys):
    with pytest.raises(SystemExit) as caught:
        run.main(["nosuchcommand"])
    assert caught.value.code == 2
    said = _said(capsys)
    assert said.startswith("error: tools/run.py: argument COMMAND: invalid choice: 'nosuchcommand' (choose from "
                           "'plugins', 'describe', 'train'")
    assert said.endswith("(see tools/run.py --help)") and said.count("error:") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda(run, tmp_path, capsys):
    argv = ["train", "--dataset", str(_write_set(tmp_path / "set")), "--root_work_dir", str(tmp_path / "w"),
            "--device", "cuda"]
    assert run.main(argv) == 2
    said = _said(capsys)
    assert ("--device cuda: this PyTorch was built without CUDA" in said
            or "--device cuda: no CUDA GPU is visible" in said)
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("where", ["job directory", "root work directory", "a parent of the root"])
def test_a_file_where_a_folder_must_be(run, tmp_path, capsys, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    root, job = {"job directory": (tmp_path, "blocker"), "root work directory": (blocker, "job"),
                 "a parent of the root": (blocker / "sub", "job")}[where]
    argv = ["train", "--dataset", str(_write_set(tmp_path / "set")), "--root_work_dir", str(root), "--job_name", job]
    assert run.main(argv) == 2
    said = _said(capsys)
    assert f"{blocker} is a file, not a folder" in said and "Traceback" not in said
    assert blocker.read_text() == "a file"


def test_datasets_make_with_a_preset_alone(run, monkeypatch, tmp_path, capsys):
    """`datasets make --preset car`, as the README shows it, keeps the function's defaults."""
    import gan3d.core.data as data

    calls = []
    monkeypatch.setattr(data, "make_synthetic_dataset", lambda *a, **kw: calls.append((a, kw)) or tmp_path)
    assert run.main(["datasets", "make", "--preset", "car"]) == 0
    assert calls == [((None,), {"preset": "car", "seed": 0})]
    assert run.main(["datasets", "make", "--preset", "car", "--num", "8", "--out", str(tmp_path / "o")]) == 0
    assert calls[-1] == ((str(tmp_path / "o"),), {"preset": "car", "num_images": 8, "seed": 0})


def test_bench_with_an_unknown_method_is_one_line(run, capsys, tmp_path):
    assert run.main(["bench", "--method", "nosuch", "--json", str(tmp_path / "b.json")]) == 2
    said = _said(capsys)
    assert said.startswith("error: method 'nosuch' is not installed") and not (tmp_path / "b.json").exists()


# ----------------------------------------------------------------------------------------- eval and infer
@pytest.fixture(scope="module")
def trained(run, tmp_path_factory):
    """A tiny pi-GAN job trained one step through the command line, and its data set."""
    sys.path.insert(0, str(REPO / "tests"))
    from test_cli import TINY_PIGAN

    root = tmp_path_factory.mktemp("trained")
    data = _write_set(root / "set", resolution=16)
    argv = ["train", *TINY_PIGAN, "--dataset", str(data), "--root_work_dir", str(root / "jobs"), "--job_name", "job",
            "--resolution", "8", "--batch_size", "2", "--kimg", "0.002"]
    assert run.main(argv) == 0
    return sorted((root / "jobs" / "job" / "checkpoints").glob("*.pt"))[-1], data


@pytest.mark.parametrize(("flags", "message"), [
    (["--test_fid"], "--test_fid needs pytorch-fid's Inception weights (pt_inception-2015-12-05-6726825d.pth): give "
                     "--inception_weights FILE (nothing is downloaded)"),
    (["--test_kid", "--inception_weights", "/no/such/file.pth"], "--inception_weights /no/such/file.pth: no such "
                                                                  "weight file"),
    (["--test_identity"], "--test_identity needs the arcface_torch IResNet-100 backbone.pth: give --arcface_weights"),
    (["--test_reprojection_error", "--fake_num", "0"], "--fake_num must be an integer >= 1, got 0"),
])
def test_eval_says_what_it_needs_before_any_work(run, trained, capsys, flags, message):
    model, data = trained
    before = sorted(model.parent.parent.iterdir())
    assert run.main(["eval", "--model", str(model), "--dataset", str(data), *flags]) == 2
    said = _said(capsys)
    assert said == f"error: {message}" or said.startswith(f"error: {message}")
    assert "--set" not in said and sorted(model.parent.parent.iterdir()) == before


def test_weights_that_are_a_web_page_are_named_so(run, trained, tmp_path, capsys):
    model, data = trained
    page = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    page.write_text("<html><head><title>Sign in</title></head></html>")
    argv = ["eval", "--model", str(model), "--dataset", str(data), "--test_fid", "--inception_weights", str(page)]
    assert run.main(argv) == 2
    said = _said(capsys)
    assert f"'{page}' is an HTML page, not a PyTorch file" in said and "weights_only=False" not in said


def test_a_metric_that_is_not_finite_is_null_in_the_report(run, trained, tmp_path, monkeypatch, capsys):
    from gan3d.core import get_registry

    model, data = trained
    evaluator = get_registry().get("evaluator", "reprojection")
    monkeypatch.setattr(evaluator, "evaluate", lambda self, G, **kw: {"re": float("nan"), "re_covisible": 0.25})
    out = tmp_path / "reports"
    out.mkdir()
    argv = ["eval", "--model", str(model), "--dataset", str(data), "--test_reprojection_error", "--fake_num", "1",
            "--out", str(out)]
    assert run.main(argv) == 0
    (report,) = out.iterdir()  # --out a folder: the report goes into it
    assert json.loads(report.read_text())["results"] == {"re": None, "re_covisible": 0.25}  # strict JSON parses it
    assert "NaN" not in report.read_text()


def test_outputs_of_a_checkpoint_outside_a_job_go_beside_it(run, trained, tmp_path, capsys):
    model, _ = trained
    loose = tmp_path / "models" / "mine.pt"
    loose.parent.mkdir()
    loose.write_bytes(model.read_bytes())
    assert run.main(["infer", "--model", str(loose), "--num", "1"]) == 0
    assert (loose.parent / "infer-000" / "image_grid.png").is_file()
    assert not (tmp_path / "infer-000").exists()


def test_a_refused_edit_leaves_no_folder(run, trained, tmp_path, capsys):
    model, _ = trained
    work = tmp_path / "out"
    assert run.main(["infer", "--model", str(model), "--edit", "translate_x", "--num", "1", "--work_dir",
                     str(work)]) == 2
    assert "object_edit 'translate_x' needs a compositional generator" in _said(capsys)
    assert not list(work.glob("edit-*"))


def test_module_options_are_checked_against_their_annotations():
    """An option whose default says nothing (``None``, an empty sequence) is checked against its
    annotation: ``int | None`` takes no string, ``Sequence[float]`` no strings inside."""
    from gan3d.core.registry import RegistryError, check_kwargs

    class Module:
        def __init__(self, clamp: int | None = None, angles: Sequence[float] = (), name: str = "a") -> None:
            pass

    check_kwargs(Module, {"clamp": 3, "angles": [0.5, 1], "name": "b"}, "m")
    check_kwargs(Module, {"clamp": None}, "m")
    for kwargs, message in (({"clamp": "x"}, "option 'clamp' must be int, got str 'x'"),
                            ({"angles": ["x"]}, "option 'angles' must hold floats, got 'x'"),
                            ({"name": None}, "option 'name' must be str, got null (None)"),
                            ({"name": 5}, "option 'name' must be str, got int 5")):
        with pytest.raises(RegistryError) as caught:
            check_kwargs(Module, kwargs, "m")
        assert message in str(caught.value)


def test_datasets_check_refuses_entries_outside_the_set(run, tmp_path, capsys):
    (tmp_path / "secret.png").write_bytes((_write_set(tmp_path / "other") / "img00.png").read_bytes())
    folder = _write_set(tmp_path / "set", labels=lambda e: e[:1] + [["../secret.png", LABEL]])
    assert run.main(["datasets", "check", str(folder)]) == 2
    assert "entry '../secret.png' points outside the data set" in _said(capsys)


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--method", "pigan", "--variant", "synthetic", "--labels", "{labels}"],
     "labels file {labels}: method 'pigan' does not use per-image labels (its recipe's data.labels is 'unused'); "
     "leave out --labels"),
    (["train", "--labels", "{missing}"], "--labels {missing}: no such labels file"),
    (["datasets", "check", "{data}", "--variant", "synthetic"],
     "--variant: only used with --method (how that method reads the data); give --method too"),
    (["datasets", "check", "{data}", "--labels", "{labels}"],
     "--labels: only used with --method (how that method reads the data); give --method too"),
    (["train", "--method", ""],
     "--method must be a method name (tools/run.py plugins lists them), got an empty string"),
])
def test_options_that_would_be_ignored_are_refused(run, tmp_path, capsys, argv, message):
    """An option given for nothing is said so, not silently dropped."""
    values = {"labels": str(tmp_path / "dataset.json"), "missing": str(tmp_path / "nope.json"),
              "data": str(_write_set(tmp_path / "set"))}
    (tmp_path / "dataset.json").write_text('{"labels": null}')
    argv = [a.format(**values) for a in argv]
    if argv[0] == "train":
        argv += ["--dataset", values["data"], "--root_work_dir", str(tmp_path / "w")]
    assert run.main(argv) == 2
    assert _said(capsys) == f"error: {message.format(**values)}"
    assert not (tmp_path / "w").exists()
