"""The viewer's server: every endpoint, bad parameters, concurrent requests, models that fail to load,
every installed method, and exports that are byte for byte what ``infer`` writes."""

from __future__ import annotations

import importlib.util
import math
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_devices  # noqa: E402  (tests/: the tiny recipe of every first-party method)
import test_vis_sphere_generator as sphere  # noqa: E402  (tests/evaluators: the analytic sphere generator)
from viewer_support import TESTS, get, running, tiny_recipe, write_checkpoint  # noqa: E402

from gan3d.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from gan3d.evaluators.viewer import ViewRenderer  # noqa: E402
from gan3d.evaluators.visualizers import OrbitVideoVisualizer, read_obj, read_ply, run_inference  # noqa: E402
from gan3d.evaluators.visualizers.latents import seeded_latents  # noqa: E402

ROOT = TESTS.parent
WAIT = 60.0


@pytest.fixture(scope="module")
def pigan(checkpoint_of):
    """A server for a tiny pi-GAN checkpoint."""
    with running(ViewRenderer.load(checkpoint_of("pigan"))) as server:
        yield server


@pytest.fixture(scope="module")
def sphere_server():
    """A server for the analytic sphere (SDF, radius 0.3, camera at 1.5 with focal 1.2)."""
    generator = sphere.sphere_generator("sdf", render_resolution=32)
    with running(ViewRenderer(generator, method="sphere")) as server:
        yield server


# ----------------------------------------------------------------------------- the page and the API
def test_page_files_and_routing(pigan):
    page = get(pigan, "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert b'<script src="/static/viewer.js"></script>' in page.body and b'id="frame-time"' in page.body
    script = get(pigan, "/static/viewer.js")
    assert script.status == 200 and script.headers["content-type"].startswith("text/javascript")
    assert b"/api/render" in script.body and b"AbortController" in script.body
    assert get(pigan, "/static/viewer.css").status == 200
    for path in ("/static/../server.py", "/static/query.py", "/nothing"):
        missing = get(pigan, path)
        assert missing.status == 404 and missing.error == f"no such page: {path}"
    assert get(pigan, "/api/render", method="POST").error == "POST is not supported; the viewer answers GET"
    assert get(pigan, "/?x=1").status == 400
    # Bound to loopback: a request naming another host (DNS rebinding) is refused.
    forbidden = get(pigan, "/api/info", headers={"Host": "attacker.example:80"})
    assert forbidden.status == 403 and "only requests for localhost" in forbidden.error
    assert get(pigan, "/api/info", headers={"Host": "localhost"}).status == 200


def test_info_describes_the_model_and_the_controls(pigan):
    info = get(pigan, "/api/info").json()
    assert (info["method"], info["variant"]) == ("pigan", "synthetic")
    assert info["render_resolution"] == 16 and info["preview_resolution"] == 8
    assert info["modes"] == ["image", "image_raw", "depth", "alpha"] and info["objects"] == 0
    defaults = info["defaults"]
    assert set(defaults) == {"yaw", "pitch", "radius", "fov", "seed", "psi", "mode"}
    assert defaults["radius"] > 0 and 0 < defaults["fov"] < 180 and defaults["psi"] == 0.7
    assert get(pigan, "/api/info?verbose=1").error.startswith("unknown query parameter 'verbose'")


def test_views_in_every_mode_at_both_resolutions(pigan):
    images = {}
    for mode in ("image", "image_raw", "depth", "alpha"):
        full = get(pigan, f"/api/render?mode={mode}")
        preview = get(pigan, f"/api/render?mode={mode}&res=8")
        assert full.status == preview.status == 200
        assert full.headers["x-render-resolution"] == "16" and preview.headers["x-render-resolution"] == "8"
        assert float(full.headers["x-render-milliseconds"]) > 0
        assert full.image().shape == (16, 16, 3) and preview.image().shape == (8, 8, 3)
        assert full.headers["x-image-size"] == "16x16"
        images[mode] = full.image()
    alpha = images["alpha"].astype(int)
    assert (alpha[..., 0] == alpha[..., 1]).all() and (alpha[..., 1] == alpha[..., 2]).all()
    assert not np.array_equal(images["image"], images["depth"])
    # The same query gives the same picture; turning the camera gives another.
    assert get(pigan, "/api/render").body == get(pigan, "/api/render").body
    assert get(pigan, "/api/render?yaw=40").body != get(pigan, "/api/render").body
    assert get(pigan, "/api/render?seed=5").body != get(pigan, "/api/render").body


@pytest.mark.parametrize("path, message", [
    ("/api/render?yaw=abc", "yaw='abc' is not a number"),
    ("/api/render?psi=3", "psi=3 is out of range [-1, 2]"),
    ("/api/render?seed=1&seed=2", "seed is given 2 times"),
    ("/api/render?edit=0:rotate:10", "this generator has no editable objects"),
    ("/api/render?res=2000", "res=2000 is out of range [8, 1024]"),
    ("/api/export/png?mode=normals", "mode='normals' is not one of image, image_raw, depth, alpha"),
    ("/api/export/video?frames=1", "frames=1 is out of range [2, 600]"),
    ("/api/export/video?yaw=10", "unknown query parameter 'yaw'"),
    ("/api/export/mesh?format=stl", "format='stl' is not one of ply, obj"),
    ("/api/export/mesh?shape_res=8", "shape_res=8 is out of range [16, 512]"),
    ("/api/scene?seed=-3", "seed=-3 is out of range [0, 4294967295]"),
])
def test_bad_parameters_are_answered_400_with_a_message(pigan, path, message):
    reply = get(pigan, path)
    assert reply.status == 400 and reply.headers["content-type"] == "application/json"
    assert message in reply.error


def test_rendering_never_blocks_the_other_requests(pigan):
    """While the render thread is busy, the page and the model description are still served; a view
    waits for the render thread and is then rendered."""
    started, release = threading.Event(), threading.Event()

    def busy():
        started.set()
        assert release.wait(WAIT)

    pigan.worker.submit_task(busy)
    assert started.wait(WAIT)
    replies = {}
    waiting = threading.Thread(target=lambda: replies.setdefault("view", get(pigan, "/api/render?yaw=5")))
    waiting.start()
    try:
        assert get(pigan, "/api/info").status == 200 and get(pigan, "/").status == 200
        assert "view" not in replies
    finally:
        release.set()
        waiting.join(WAIT)
    assert replies["view"].status == 200 and replies["view"].image().shape == (16, 16, 3)


def test_concurrent_requests(pigan):
    """Many views of one client at once: each is rendered (200) or superseded by a newer one (409),
    never lost or failed; other clients' views and the model description are all answered."""
    replies: dict[str, object] = {}

    def fetch(key: str, path: str) -> None:
        replies[key] = get(pigan, path)

    threads = [threading.Thread(target=fetch, args=(f"same{i}", f"/api/render?yaw={3 * i}&client=dragging"))
               for i in range(10)]
    threads += [threading.Thread(target=fetch, args=(f"client{i}", f"/api/render?seed={i}&res=8&client=c{i}"))
                for i in range(4)]
    threads += [threading.Thread(target=fetch, args=(f"info{i}", "/api/info")) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert len(replies) == 17
    same = [replies[f"same{i}"] for i in range(10)]
    assert {r.status for r in same} <= {200, 409} and any(r.status == 200 for r in same)
    for reply in same:
        if reply.status == 200:
            assert reply.image().shape == (16, 16, 3)
        else:
            assert reply.error == "superseded by a newer view request"
    assert all(replies[f"client{i}"].status == 200 for i in range(4))
    assert all(replies[f"info{i}"].json()["method"] == "pigan" for i in range(3))
    assert pigan.worker.pending() == 0 and get(pigan, "/api/render?yaw=1").status == 200


# ----------------------------------------------------------------------------- hand-computed views
def silhouette_fraction(focal: float, distance: float = sphere.CAMERA_RADIUS, radius: float = sphere.RADIUS) -> float:
    """Image fraction covered by a sphere seen from its centre's direction: a disc of radius
    ``focal tan(asin(radius / distance))`` in image widths."""
    return math.pi * (focal * math.tan(math.asin(radius / distance))) ** 2


def test_camera_controls_and_latents_by_hand(sphere_server):
    info = get(sphere_server, "/api/info").json()
    assert info["defaults"]["radius"] == pytest.approx(sphere.CAMERA_RADIUS)
    assert info["defaults"]["fov"] == pytest.approx(2 * math.degrees(math.atan(0.5 / sphere.FOCAL)))
    alpha = get(sphere_server, "/api/render?mode=alpha").image()[..., 0] > 127
    expected = sphere.expected_silhouette(32).numpy()
    assert (alpha != expected).mean() < 0.06  # only rim pixels may differ
    for fov in (info["defaults"]["fov"], 60.0):
        covered = (get(sphere_server, f"/api/render?mode=alpha&fov={fov}").image()[..., 0] > 127).mean()
        focal = 0.5 / math.tan(math.radians(fov) / 2)
        assert covered == pytest.approx(silhouette_fraction(focal), rel=0.12), fov
    # The sphere's colour is tanh(w[:3]); w = psi * z with z the seed's latent (w_avg = 0).
    for seed, psi in ((3, 1.0), (8, 0.5), (3, 0.0)):
        z = seeded_latents(1, 4, seed)[0]
        colour = np.floor(np.tanh(psi * z[:3].numpy()) * 127.5 + 128)
        centre = get(sphere_server, f"/api/render?seed={seed}&psi={psi}").image()[15:17, 15:17].reshape(-1, 3)
        assert np.abs(centre - colour).max() <= 2, (seed, psi)
    # Depth: nearer is brighter in the colour map; the centre of the sphere is nearest.
    depth = get(sphere_server, "/api/render?mode=depth").image().astype(int).sum(-1)
    assert depth[16, 16] > depth[16, 9] and depth[16, 16] > depth[9, 16]
    assert get(sphere_server, "/api/render?edit=0:scale:2").status == 400


# ----------------------------------------------------------------------------- exports
def test_exports_are_what_infer_writes(tmp_path):
    generator = sphere.sphere_generator("density", render_resolution=16)
    with running(ViewRenderer(generator, method="sphere")) as server:
        png = get(server, "/api/export/png?seed=3&mode=depth")
        assert png.status == 200 and png.headers["content-type"] == "image/png"
        assert png.headers["content-disposition"] == 'attachment; filename="sphere_seed0003_depth.png"'
        assert png.body == get(server, "/api/render?seed=3&mode=depth").body

        meshes = {fmt: get(server, f"/api/export/mesh?seed=2&psi=1&shape_res=20&format={fmt}")
                  for fmt in ("ply", "obj")}
        assert meshes["obj"].headers["content-disposition"] == 'attachment; filename="sphere_seed0002.obj"'
        video = get(server, "/api/export/video?seed=1&frames=4&fps=4&mode=image")
        assert video.status == 200 and video.headers["content-type"] == "video/mp4"
        assert video.headers["content-disposition"] == 'attachment; filename="sphere_seed0001_orbit_image.mp4"'
        nothing = get(server, "/api/export/mesh?seed=2&shape_res=16&level=100000")
        assert nothing.status == 422 and "no surface" in nothing.error

    # infer --save_shape of the same seed, grid and level writes the same bytes.
    written = {p.suffix: p for p in run_inference(generator, tmp_path, save_image=False, save_shape=True, shape_res=20,
                                                  num=1, seed=2, truncation_psi=1.0, progress=False)}
    assert meshes["ply"].body == written[".ply"].read_bytes() and meshes["obj"].body == written[".obj"].read_bytes()
    (tmp_path / "viewer.ply").write_bytes(meshes["ply"].body)
    vertices, faces = read_ply(tmp_path / "viewer.ply")
    assert len(faces) > 100 and np.allclose(read_obj(written[".obj"])[0], vertices, atol=1e-5)
    # The renderer's density crosses level 10 on the sphere of radius r - 5 / slope (see the fake's docstring).
    assert np.median(np.linalg.norm(vertices, axis=1)) == pytest.approx(sphere.RADIUS - 5 / sphere.SLOPE, abs=0.02)

    # The orbit video: infer's frames (EG3D's trajectory), encoded by the same writer.
    frames = _mp4_frames(video.body, tmp_path)
    reference = OrbitVideoVisualizer(num_frames=4, fps=4).render_frames(generator, 1)
    assert frames.shape == reference.shape == (4, 16, 16, 3)
    assert np.abs(frames.astype(float) - reference).mean() < 4  # H.264 is lossy; the frames are the same


def _mp4_frames(data: bytes, folder: Path) -> np.ndarray:
    import imageio

    path = folder / "viewer.mp4"
    path.write_bytes(data)
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        return np.stack(list(reader.iter_data()))
    finally:
        reader.close()


# ----------------------------------------------------------------------------- compositional scenes
def test_giraffe_object_edits(checkpoint_of):
    renderer = ViewRenderer.load(checkpoint_of("giraffe"))
    with running(renderer) as server:
        assert get(server, "/api/info").json()["objects"] == 1
        scene = get(server, "/api/scene?seed=4&psi=1").json()
        [obj] = scene["objects"]
        assert obj["index"] == 0 and set(obj["edits"]) == {"translate_x", "translate_y", "translate_z", "rotate",
                                                            "scale"}
        for edit in obj["edits"].values():
            assert edit["low"] <= edit["value"] <= edit["high"]
        ws = renderer.latent(4, 1.0)
        frames = ws.frames["main"]  # the scene latent's object frames
        angle = math.atan2(float(frames.rotation[0, 0, 0, 2]), float(frames.rotation[0, 0, 0, 0]))
        assert obj["edits"]["rotate"]["value"] == pytest.approx(math.degrees(angle), abs=1e-4)
        assert obj["edits"]["scale"]["value"] == pytest.approx(float(frames.scale[0, 0, 0]))

        base = get(server, "/api/render?seed=4&psi=1").body
        x = obj["edits"]["translate_x"]
        same = get(server, f"/api/render?seed=4&psi=1&edit=0:translate_x:{x['value']!r}")
        assert same.body == base  # setting an edit to the object's own value changes nothing
        moved = get(server, f"/api/render?seed=4&psi=1&edit=0:translate_x:{x['high'] + 0.3}&edit=0:rotate:90")
        assert moved.status == 200 and moved.body != base
        missing = get(server, "/api/render?edit=1:rotate:10")
        assert missing.status == 400 and "edit object 1 does not exist; this generator has 1 object(s)" in missing.error
        assert get(server, "/api/scene?seed=4&client=x").status == 400


# ----------------------------------------------------------------------------- every method
@pytest.mark.parametrize("method", test_devices.METHODS)
def test_every_installed_method_is_viewed_through_the_generator_interface(method, checkpoint_of):
    with running(ViewRenderer.load(checkpoint_of(method))) as server:
        info = get(server, "/api/info").json()
        assert info["method"] == method and info["render_resolution"] == 16
        for mode in ("image", "image_raw", "depth", "alpha"):
            preview = get(server, f"/api/render?mode={mode}&res=8&yaw=20&pitch=10")
            assert preview.status == 200, preview.body[:300]
            if mode != "image":  # the final image is the upsampler's size
                assert preview.image().shape == (8, 8, 3)
        full = get(server, "/api/export/png?yaw=-15")
        assert full.status == 200 and full.image().ndim == 3
        if info["objects"]:
            assert get(server, "/api/render?res=8&edit=0:rotate:45").status == 200


# ----------------------------------------------------------------------------- loading and the command line
def test_model_files_that_fail_to_load(tmp_path, checkpoint_of):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.pt is not a PyTorch file"):
        ViewRenderer.load(garbage)
    whole = checkpoint_of("pigan").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(CheckpointError, match=r"truncated.pt: not a readable checkpoint \(truncated or corrupt\?\)"):
        ViewRenderer.load(truncated)
    with pytest.raises(CheckpointError, match="missing.pt: no such checkpoint file"):
        ViewRenderer.load(tmp_path / "missing.pt")
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="plain.pt: not a gan3d checkpoint"):
        ViewRenderer.load(plain)
    state = load_checkpoint(checkpoint_of("pigan"))
    renamed = dict(state, recipe=state["recipe"].replace('"siren_film"', '"no_such_decoder"'))
    assert renamed["recipe"] != state["recipe"]
    path = save_checkpoint(tmp_path / "renamed", 0, {k: v for k, v in renamed.items() if k not in ("format", "step")})
    with pytest.raises(CheckpointError, match="cannot rebuild its generator"):
        ViewRenderer.load(path)
    narrower = tiny_recipe("pigan").overrides(["stochasticity_mapper.film_dim=6", "feature_decoder.hidden_dim=6"])
    other = write_checkpoint(narrower, tmp_path / "other")
    mixed = dict(load_checkpoint(other), recipe=state["recipe"])
    path = save_checkpoint(tmp_path / "mixed", 0, {k: v for k, v in mixed.items() if k not in ("format", "step")})
    with pytest.raises(CheckpointError, match="weights do not fit the recipe's generator"):
        ViewRenderer.load(path)


RUN = [sys.executable, str(ROOT / "tools" / "run.py")]
ENV = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_cli_view_serves_until_interrupted(checkpoint_of):
    process = subprocess.Popen([*RUN, "view", "--model", str(checkpoint_of("pigan")), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, cwd=ROOT)
    try:
        line = process.stdout.readline()
        assert "viewer at http://127.0.0.1:" in line, line + process.stdout.read()
        url = line.split("viewer at ")[1].split()[0]
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        assert get((host, int(port)), "/api/info").json()["method"] == "pigan"
        assert get((host, int(port)), "/api/render?res=8").image().shape == (8, 8, 3)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=WAIT)
        assert process.returncode == 0 and "viewer stopped" in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_view_refuses_a_bad_model_and_a_taken_port(tmp_path, checkpoint_of, capsys):
    garbage = tmp_path / "broken.pt"
    whole = checkpoint_of("pigan").read_bytes()
    garbage.write_bytes(whole[:len(whole) // 3])
    out = subprocess.run([*RUN, "view", "--model", str(garbage)], capture_output=True, text=True, env=ENV, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 2 and "broken.pt: not a readable checkpoint" in out.stdout + out.stderr
    assert "Traceback" not in out.stderr

    spec = importlib.util.spec_from_file_location("gan3d_tools_run", ROOT / "tools" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert run.main(["view", "--model", str(checkpoint_of("pigan")), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().out
