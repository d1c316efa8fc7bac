"""The viewer's HTTP server: the page, a JSON description of the model, rendered views and exports.

Built on the standard library's :class:`http.server.ThreadingHTTPServer` (no dependency: the viewer
serves one user on one machine, a few small routes and a static page, which the standard library
does well). Each request gets a thread; every generator call goes through one
:class:`~.render_worker.RenderWorker`, so slow renders never block the page, the model description
or other requests, and a view nobody waits for any more is dropped before it is rendered.

Routes (all ``GET``; parameters in :mod:`.query`):

==========================  =====================================================================
``/``                       the page (``static/index.html``; ``/static/...`` its script and style)
``/api/info``               JSON: method, resolutions, the controls' defaults, number of objects
``/api/scene``              JSON: each object's transform edits ``{low, value, high}`` for a latent
``/api/render``             PNG of a view; headers ``X-Render-Milliseconds``, ``X-Render-Resolution``
``/api/export/png``         the view as a PNG download (the generator's resolution by default)
``/api/export/video``       ``infer``'s orbit video (MP4) of the scene
``/api/export/mesh``        ``infer``'s marching-cubes mesh (PLY or OBJ) of the scene
==========================  =====================================================================

Errors are JSON ``{"error": message}``: 400 for a bad parameter, 404 for an unknown path, 409 when
a newer view of the same client superseded the request, 422 when an export has nothing to write.
Bound to 127.0.0.1 by default; on a loopback address, requests naming another host are refused
(a web page elsewhere cannot reach the viewer through DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

from .query import MESH_PARAMS, SCENE_PARAMS, VIDEO_PARAMS, VIEW_PARAMS, QueryError, parse_query
from .render_worker import RenderWorker, Superseded, WorkerClosed
from .view_renderer import ExportError, View, ViewRenderer

__all__ = ["ViewerServer", "STATIC_FILES"]

logger = logging.getLogger(__name__)

#: The page's files (package data next to this module) and their content types.
STATIC_FILES = {"index.html": "text/html; charset=utf-8", "viewer.js": "text/javascript; charset=utf-8",
                "viewer.css": "text/css; charset=utf-8"}
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def _static_file(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


class ViewerServer(ThreadingHTTPServer):
    """Serves the viewer of ``renderer`` at ``http://host:port/`` (``port=0``: any free port).

    Args:
        renderer: the :class:`~.view_renderer.ViewRenderer` of the loaded generator.
        host, port: where to listen (default: this machine only, a free port).
        job_timeout: seconds a request waits for its render or export before answering 503.

    Example:
        >>> server = ViewerServer(ViewRenderer(G))        # doctest: +SKIP
        >>> print(server.url); server.serve_forever()     # doctest: +SKIP
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, renderer: ViewRenderer, host: str = "127.0.0.1", port: int = 0, *,
                 job_timeout: float = 3600.0) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.renderer = renderer
        self.job_timeout = job_timeout
        self.worker = RenderWorker()
        try:
            super().__init__((host, port), ViewerRequestHandler)
        except BaseException:
            self.worker.close()
            raise
        self.loopback = _is_loopback(host)
        if not self.loopback:
            logger.warning("the viewer listens on %s: anyone who can reach this address can render the model "
                           "and download its exports", host)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def server_close(self) -> None:
        self.worker.close()
        super().server_close()


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ViewerRequestHandler(BaseHTTPRequestHandler):
    server: ViewerServer
    server_version = "gan3d-viewer"
    protocol_version = "HTTP/1.1"

    # ------------------------------------------------------------------ plumbing
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        logger.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the page cancelled the request
            logger.debug("client went away before %s was sent", self.path)

    def _json(self, status: int, payload: dict) -> None:
        self._send(status, (json.dumps(payload) + "\n").encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _host_allowed(self) -> bool:
        if not self.server.loopback:
            return True
        host = self.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
        return name in _LOOPBACK_NAMES

    # ------------------------------------------------------------------ routes
    def do_GET(self) -> None:  # noqa: N802 (BaseHTTPRequestHandler's name)
        if not self._host_allowed():
            return self._error(HTTPStatus.FORBIDDEN, "this viewer answers only requests for localhost")
        parts = urlsplit(self.path)
        route = {
            "/": self._page, "/index.html": self._page, "/api/info": self._info, "/api/scene": self._scene,
            "/api/render": self._render, "/api/export/png": self._export_png,
            "/api/export/video": self._export_video, "/api/export/mesh": self._export_mesh,
        }.get(parts.path)
        try:
            if route is not None:
                return route(parts.query)
            if parts.path.startswith("/static/") and parts.path[len("/static/"):] in STATIC_FILES:
                name = parts.path[len("/static/"):]
                return self._send(HTTPStatus.OK, _static_file(name), STATIC_FILES[name])
            return self._error(HTTPStatus.NOT_FOUND, f"no such page: {parts.path}")
        except QueryError as error:
            return self._error(HTTPStatus.BAD_REQUEST, str(error))
        except Superseded as error:
            return self._error(HTTPStatus.CONFLICT, str(error))
        except ExportError as error:
            return self._error(HTTPStatus.UNPROCESSABLE_ENTITY, str(error))
        except (WorkerClosed, TimeoutError) as error:
            return self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(error))
        except Exception as error:  # a bug: logged with its traceback, answered with its message
            logger.exception("viewer request %s failed", self.path)
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}: {error}")

    def _method_not_allowed(self) -> None:
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not supported; the viewer answers GET")

    do_POST = do_PUT = do_DELETE = do_PATCH = _method_not_allowed  # noqa: N815

    def _page(self, query: str) -> None:
        if query:
            raise QueryError("the page takes no query parameters")
        self._send(HTTPStatus.OK, _static_file("index.html"), STATIC_FILES["index.html"])

    def _info(self, query: str) -> None:
        parse_query(query, {})
        self._json(HTTPStatus.OK, self.server.renderer.info())

    def _scene(self, query: str) -> None:
        values, _ = parse_query(query, SCENE_PARAMS)
        renderer = self.server.renderer
        default = renderer.default_view()
        seed, psi = values.get("seed", default.seed), values.get("psi", default.psi)
        job = self.server.worker.submit_task(lambda: renderer.scene(seed, psi))
        self._json(HTTPStatus.OK, job.wait(self.server.job_timeout))

    def _view(self, query: str) -> tuple[View, dict]:
        values, edits = parse_query(query, VIEW_PARAMS, edits=True)
        return self.server.renderer.view_from(values, edits), values

    def _render(self, query: str) -> None:
        view, values = self._view(query)
        renderer = self.server.renderer
        queued = time.perf_counter()
        job = self.server.worker.submit_view(lambda: renderer.render(view), client=values.get("client", ""))
        image = job.wait(self.server.job_timeout)
        waited = (time.perf_counter() - queued) * 1000.0 - image.milliseconds
        self._send(HTTPStatus.OK, image.png, "image/png", {
            "X-Render-Milliseconds": f"{image.milliseconds:.1f}", "X-Queue-Milliseconds": f"{max(waited, 0.0):.1f}",
            "X-Render-Resolution": str(image.resolution), "X-Image-Size": f"{image.width}x{image.height}",
        })

    def _download(self, work) -> None:
        exported = self.server.worker.submit_task(work).wait(self.server.job_timeout)
        self._send(HTTPStatus.OK, exported.data, exported.content_type,
                   {"Content-Disposition": f'attachment; filename="{exported.filename}"'})

    def _export_png(self, query: str) -> None:
        view, _ = self._view(query)
        self._download(lambda: self.server.renderer.export_png(view))

    def _export_video(self, query: str) -> None:
        values, edits = parse_query(query, VIDEO_PARAMS, edits=True)
        view = self.server.renderer.view_from(values, edits)
        frames, fps = values.get("frames", 120), values.get("fps", 60)
        self._download(lambda: self.server.renderer.export_video(view, frames=frames, fps=fps))

    def _export_mesh(self, query: str) -> None:
        values, edits = parse_query(query, MESH_PARAMS, edits=True)
        view = self.server.renderer.view_from(values, edits)
        fmt, res, level = values.get("format", "ply"), values.get("shape_res", 256), values.get("level", 10.0)
        self._download(lambda: self.server.renderer.export_mesh(view, fmt=fmt, shape_res=res, density_level=level))
