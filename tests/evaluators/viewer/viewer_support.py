"""Shared pieces of the viewer tests: tiny checkpoints of real methods, a server on a free local port,
and a small HTTP client that returns status, headers and body whatever the status.

The test files import it with their folder on ``sys.path`` (as tests/test_devices.py imports its siblings)."""

from __future__ import annotations

import contextlib
import http.client
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(TESTS / "evaluators"))
sys.path.insert(0, str(TESTS / "methods"))

from gan3d.core.checkpoint import save_checkpoint  # noqa: E402
from gan3d.core.generator import build_generator  # noqa: E402
from gan3d.evaluators.viewer import ViewerServer  # noqa: E402


def tiny_recipe(method: str):
    """``method``'s synthetic recipe at the 16-px size of tests/test_devices.py (one place for every method)."""
    import test_devices

    return test_devices.tiny_recipe(method)


def write_checkpoint(recipe, folder: Path, seed: int = 0) -> Path:
    """A checkpoint of a freshly initialised generator of ``recipe`` (as the trainer lays it out)."""
    torch.manual_seed(seed)
    weights = build_generator(recipe).state_dict()
    return save_checkpoint(folder, 0, {"recipe": recipe.to_json(), "G": weights, "G_ema": weights})


@contextlib.contextmanager
def running(renderer, **options):
    """A :class:`ViewerServer` for ``renderer`` on 127.0.0.1 and a free port, serving on a thread."""
    server = ViewerServer(renderer, host="127.0.0.1", port=0, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    @property
    def error(self) -> str:
        return self.json()["error"]

    def image(self) -> np.ndarray:
        import imageio.v3 as iio

        assert self.headers["content-type"] == "image/png", self.body[:200]
        return iio.imread(self.body, extension=".png")


def get(server: ViewerServer | tuple[str, int], path: str, *, method: str = "GET", headers: dict | None = None,
        timeout: float = 300.0) -> Response:
    """``method path`` on a running server (or a ``(host, port)`` address)."""
    host, port = server if isinstance(server, tuple) else server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, headers=headers or {})
        reply = connection.getresponse()
        return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read())
    finally:
        connection.close()
