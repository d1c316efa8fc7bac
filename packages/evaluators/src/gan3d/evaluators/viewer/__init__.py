"""An interactive viewer of any gan3d generator in the browser: ``tools/run.py view --model CKPT``.

:class:`ViewRenderer` renders views and exports of one generator through the visualizers' helpers
(so it works for every method, with nothing method-specific); :class:`ViewerServer` serves the page
(package data in ``static/``, plain HTML and JavaScript, no build step) and its API on a local port.

Example:
    >>> from gan3d.evaluators.viewer import ViewerServer, ViewRenderer
    >>> server = ViewerServer(ViewRenderer.load("work_dirs/run/checkpoints/checkpoint-000001000.pt"))  # doctest: +SKIP
    >>> print(server.url); server.serve_forever()                                                      # doctest: +SKIP
"""

from .query import QueryError
from .render_worker import RenderWorker, Superseded
from .server import ViewerServer
from .view_renderer import ExportError, View, ViewRenderer

__all__ = ["ViewerServer", "ViewRenderer", "View", "RenderWorker", "QueryError", "Superseded", "ExportError"]
