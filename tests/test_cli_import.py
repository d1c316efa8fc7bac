"""tools/run.py import: an official file -> a gan3d checkpoint that infer renders; unsafe or foreign
files are refused with a message and no traceback, and nothing is overwritten."""

from __future__ import annotations

import lzma
import os
import pickle
import subprocess
import sys
from pathlib import Path

import torch

from gan3d.core.checkpoint import load_checkpoint, load_generator

ROOT = Path(__file__).resolve().parents[1]
RUN = [sys.executable, str(ROOT / "tools" / "run.py")]
ENV = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
FIXTURES = ROOT / "tests" / "fixtures" / "official"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*RUN, *args], capture_output=True, text=True, env=ENV, cwd=ROOT)


def test_import_then_infer(tmp_path):
    pkl = tmp_path / "network-snapshot.pkl"
    pkl.write_bytes(lzma.decompress((FIXTURES / "eg3d" / "network-snapshot.pkl.xz").read_bytes()))
    out = tmp_path / "eg3d.pt"
    done = run("import", "--method", "eg3d", "--checkpoint", str(pkl), "--out", str(out),
               "--set", "training.batch_size=4")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "imported" in done.stdout and out.is_file()
    state = load_checkpoint(out)
    assert state["meta"]["imported"] and state["meta"]["official_classes"]["G_ema"] == "TriPlaneGenerator"
    assert '"batch_size": 4' in state["recipe"]
    G, recipe = load_generator(out)
    assert recipe.method == "eg3d" and G.upsampler.image_resolution == 128
    again = run("import", "--method", "eg3d", "--checkpoint", str(pkl), "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stdout and "Traceback" not in again.stderr
    rendered = run("infer", "--model", str(out), "--work_dir", str(tmp_path / "infer"), "--num", "1")
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    assert list((tmp_path / "infer").glob("infer-*/image_grid.png"))


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "ffhq512-128.pkl"
    evil.write_bytes(pickle.dumps({"G_ema": _Payload(marker), "weights": torch.zeros(2)}))
    done = run("import", "--method", "eg3d", "--checkpoint", str(evil), "--out", str(tmp_path / "x.pt"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "refused" in done.stdout and "system" in done.stdout
    assert not marker.exists() and not (tmp_path / "x.pt").exists()


def test_unknown_method_and_foreign_file(tmp_path):
    done = run("import", "--method", "nosuch", "--checkpoint", "x", "--out", str(tmp_path / "x.pt"))
    assert done.returncode == 2 and "importers:" in done.stdout
    text = tmp_path / "notes.pkl"
    text.write_text("not a pickle")
    done = run("import", "--method", "eg3d", "--checkpoint", str(text), "--out", str(tmp_path / "x.pt"))
    assert done.returncode == 2 and "neither a pickle" in done.stdout
