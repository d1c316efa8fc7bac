"""The example third-party plugin (examples/gan3d-fourier), installed as its own distribution."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

from gan3d.core.registry import Registry
from gan3d.core.testing import check_contract, registry_with

INSTALLED = any(ep.name == "fourier" for ep in metadata.entry_points(group="gan3d"))
pytestmark = pytest.mark.skipif(
    not INSTALLED and not os.environ.get("GAN3D_EXPECT_EXAMPLE_PLUGIN"),
    reason="examples/gan3d-fourier is not installed",
)
ROOT = Path(__file__).resolve().parents[2]


def test_registry_discovers_the_example_plugin():
    entry = Registry(autoload=True).entry("point_embedder", "fourier")
    assert entry.distribution == "gan3d-fourier"


def test_the_embedder_honours_the_contract_and_its_formula():
    registry = registry_with("fourier")
    embedder = registry.build("point_embedder", "fourier", num_frequencies=4, scale=1.0, include_input=False)
    out = check_contract("point_embedder", embedder)
    assert out.shape[-1] == 8
    x = torch.tensor([[[[0.1, -0.2, 0.3]]]])
    expected_proj = 2 * math.pi * (embedder.B @ x.flatten())
    got = embedder(x, None).flatten()
    torch.testing.assert_close(got[:4], torch.cos(expected_proj))
    torch.testing.assert_close(got[4:], torch.sin(expected_proj))


def test_run_py_plugins_lists_it():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "run.py"), "plugins"], capture_output=True,
                         text=True, check=True, env={**os.environ, "COLUMNS": "200"})
    assert "fourier" in out.stdout and "gan3d-fourier" in out.stdout
