"""The viewer's query strings: each parameter checked against its type and range, or a 400 message.

Every endpoint declares the parameters it takes (:data:`VIEW_PARAMS`, ...). A parameter the endpoint
does not take, a repeated one (except ``edit``), a value that is not a number, out of range or not one
of the choices, is a :class:`QueryError`, whose message names the parameter, the value and what is
accepted; the server answers it with HTTP 400.

Angles are degrees: ``yaw`` is the azimuth from the front camera (positive turns the camera towards
+x), ``pitch`` the elevation above the horizon (positive looks from above), ``fov`` the horizontal
field of view, and the object edit ``rotate`` a turn about the up axis.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

__all__ = [
    "QueryError", "Param", "ObjectEdit", "parse_query", "parse_edit", "VIEW_PARAMS", "SCENE_PARAMS", "VIDEO_PARAMS",
    "MESH_PARAMS", "IMAGE_MODES", "VIDEO_MODES", "MESH_FORMATS", "OBJECT_EDIT_NAMES",
]

#: What the view shows: the final image, the volume-rendered image before the upsampler, the
#: colour-mapped depth, the accumulated opacity.
IMAGE_MODES = ("image", "image_raw", "depth", "alpha")
#: The orbit video's modes (the ``orbit_video`` visualizer's ``image_mode``).
VIDEO_MODES = ("image", "image_raw", "depth")
MESH_FORMATS = ("ply", "obj")
#: Object edits of :mod:`gan3d.evaluators.visualizers.object_edit` (``rotate`` in degrees here).
OBJECT_EDIT_NAMES = ("translate_x", "translate_y", "translate_z", "rotate", "scale")

#: Seeds index ``numpy.random.RandomState``, which takes 32-bit seeds.
MAX_SEED = 2**32 - 1
#: The truncation slider of StyleGAN3's visualizer (viz/trunc_noise_widget.py: psi from -1 to 2).
PSI_RANGE = (-1.0, 2.0)
_CLIENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class QueryError(ValueError):
    """A query parameter is unknown, repeated, malformed or out of range (HTTP 400)."""


@dataclass(frozen=True)
class Param:
    """One query parameter: ``kind`` is ``int``, ``float`` or ``str``; numbers lie in ``[low, high]``,
    strings in ``choices`` (or match ``pattern``)."""

    name: str
    kind: type
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    pattern: re.Pattern | None = None
    help: str = ""

    def parse(self, text: str):
        if self.kind is str:
            if self.choices and text not in self.choices:
                raise QueryError(f"{self.name}={text!r} is not one of {', '.join(self.choices)}")
            if self.pattern is not None and not self.pattern.match(text):
                raise QueryError(f"{self.name}={text!r} is not {self.help}")
            return text
        try:
            value = int(text) if self.kind is int else float(text)
        except ValueError:
            what = "an integer" if self.kind is int else "a number"
            raise QueryError(f"{self.name}={text!r} is not {what}") from None
        if not math.isfinite(value):
            raise QueryError(f"{self.name}={text!r} is not a finite number")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            bounds = f"[{_number(self.low, self.kind)}, {_number(self.high, self.kind)}]"
            raise QueryError(f"{self.name}={text} is out of range {bounds}"
                             + (f" ({self.help})" if self.help else ""))
        return value


def _number(value: float | None, kind: type) -> str:
    if value is None:
        return "unbounded"
    return str(int(value)) if kind is int else f"{value:g}"


@dataclass(frozen=True)
class ObjectEdit:
    """``edit=OBJECT:NAME:VALUE``: set edit ``NAME`` of object ``OBJECT`` to ``VALUE``."""

    object_index: int
    name: str
    value: float


def parse_edit(text: str) -> ObjectEdit:
    """``'0:rotate:45'`` -> ``ObjectEdit(0, 'rotate', 45.0)``; a :class:`QueryError` when malformed."""
    parts = text.split(":")
    if len(parts) != 3:
        raise QueryError(f"edit={text!r} is not OBJECT:NAME:VALUE (e.g. edit=0:rotate:45)")
    index = Param("edit object", int, 0, 1024).parse(parts[0])
    name = Param("edit name", str, choices=OBJECT_EDIT_NAMES).parse(parts[1])
    value = Param(f"edit {name}", float, -1e4, 1e4).parse(parts[2])
    if name == "scale" and value <= 0:
        raise QueryError(f"edit={text!r}: an object's scale must be positive")
    return ObjectEdit(index, name, value)


_CAMERA = (
    Param("yaw", float, -180.0, 180.0, help="degrees of azimuth from the front"),
    Param("pitch", float, -89.0, 89.0, help="degrees of elevation; the poles are excluded"),
    Param("radius", float, 1e-3, 1e3, help="camera distance from the orbit centre"),
    Param("fov", float, 0.1, 170.0, help="horizontal field of view in degrees"),
)
_LATENT = (
    Param("seed", int, 0, MAX_SEED),
    Param("psi", float, *PSI_RANGE, help="truncation psi"),
)
_CLIENT_PARAM = Param("client", str, pattern=_CLIENT, help="1-64 letters, digits, '-' or '_'")

#: ``/api/render`` and ``/api/export/png``.
VIEW_PARAMS = {p.name: p for p in (
    *_CAMERA, *_LATENT,
    Param("mode", str, choices=IMAGE_MODES),
    Param("res", int, 8, 1024, help="volume-rendering resolution in pixels"),
    _CLIENT_PARAM,
)}
#: ``/api/scene``: the objects' transforms of a latent.
SCENE_PARAMS = {p.name: p for p in _LATENT}
#: ``/api/export/video``: the orbit video of ``infer --save_video`` from the current camera distance.
VIDEO_PARAMS = {p.name: p for p in (
    *_CAMERA[2:], *_LATENT,
    Param("mode", str, choices=VIDEO_MODES),
    Param("frames", int, 2, 600, help="frames per orbit"),
    Param("fps", int, 1, 120),
)}
#: ``/api/export/mesh``: the marching-cubes mesh of ``infer --save_shape``.
MESH_PARAMS = {p.name: p for p in (
    *_LATENT,
    Param("format", str, choices=MESH_FORMATS),
    Param("shape_res", int, 16, 512, help="grid points per side"),
    Param("level", float, -1e6, 1e6, help="iso-level of density fields"),
)}


def parse_query(query: str, params: Mapping[str, Param], *, edits: bool = False) -> tuple[dict, list[ObjectEdit]]:
    """Parse ``query`` (the part after ``?``) against ``params``.

    Returns ``(values, object_edits)``: the given parameters, parsed, and the ``edit`` entries (only
    when ``edits`` is true; otherwise ``edit`` is unknown). Raises :class:`QueryError`.

    Example:
        >>> parse_query("yaw=30&seed=2&edit=0:rotate:90", VIEW_PARAMS, edits=True)
        ({'yaw': 30.0, 'seed': 2}, [ObjectEdit(object_index=0, name='rotate', value=90.0)])
    """
    try:
        fields = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=64)
    except ValueError as error:  # more than max_num_fields
        raise QueryError(f"malformed query: {error}") from None
    accepted = sorted(params) + (["edit"] if edits else [])
    values: dict = {}
    object_edits: list[ObjectEdit] = []
    for name, texts in fields.items():
        if name == "edit" and edits:
            object_edits += [parse_edit(t) for t in texts]
            continue
        if name not in params:
            raise QueryError(f"unknown query parameter {name!r}; this endpoint takes {', '.join(accepted)}")
        if len(texts) != 1:
            raise QueryError(f"{name} is given {len(texts)} times; give it once")
        values[name] = params[name].parse(texts[0])
    seen = set()
    for edit in object_edits:
        key = (edit.object_index, edit.name)
        if key in seen:
            raise QueryError(f"edit {edit.name} of object {edit.object_index} is given twice; give it once")
        seen.add(key)
    return values, object_edits
