"""The viewer's query parsing: values typed and ranged, every bad value a message naming it."""

from __future__ import annotations

import pytest

from gan3d.evaluators.viewer.query import (
    MESH_PARAMS,
    SCENE_PARAMS,
    VIDEO_PARAMS,
    VIEW_PARAMS,
    ObjectEdit,
    QueryError,
    parse_query,
)


def test_values_are_typed_and_edits_collected():
    values, edits = parse_query("yaw=-30.5&pitch=10&radius=2.7&fov=12&seed=4294967295&psi=-1&mode=depth&res=8"
                                "&client=tab-1_x&edit=0:rotate:90&edit=1:scale:0.5", VIEW_PARAMS, edits=True)
    assert values == {"yaw": -30.5, "pitch": 10.0, "radius": 2.7, "fov": 12.0, "seed": 4294967295, "psi": -1.0,
                      "mode": "depth", "res": 8, "client": "tab-1_x"}
    assert isinstance(values["seed"], int) and isinstance(values["pitch"], float)
    assert edits == [ObjectEdit(0, "rotate", 90.0), ObjectEdit(1, "scale", 0.5)]
    assert parse_query("", VIEW_PARAMS) == ({}, [])
    assert parse_query("format=obj&shape_res=16&level=-3", MESH_PARAMS)[0] == {"format": "obj", "shape_res": 16,
                                                                              "level": -3.0}


@pytest.mark.parametrize("query, params, edits, message", [
    ("yaw=abc", VIEW_PARAMS, False, "yaw='abc' is not a number"),
    ("seed=1.5", VIEW_PARAMS, False, "seed='1.5' is not an integer"),
    ("seed=-1", VIEW_PARAMS, False, "seed=-1 is out of range [0, 4294967295]"),
    ("psi=2.5", VIEW_PARAMS, False, "psi=2.5 is out of range [-1, 2] (truncation psi)"),
    ("pitch=90", VIEW_PARAMS, False, "pitch=90 is out of range [-89, 89]"),
    ("fov=nan", VIEW_PARAMS, False, "fov='nan' is not a finite number"),
    ("radius=inf", VIEW_PARAMS, False, "radius='inf' is not a finite number"),
    ("radius=0", VIEW_PARAMS, False, "radius=0 is out of range"),
    ("res=4", VIEW_PARAMS, False, "res=4 is out of range [8, 1024]"),
    ("mode=normals", VIEW_PARAMS, False, "mode='normals' is not one of image, image_raw, depth, alpha"),
    ("mode=alpha", VIDEO_PARAMS, False, "mode='alpha' is not one of image, image_raw, depth"),
    ("format=stl", MESH_PARAMS, False, "format='stl' is not one of ply, obj"),
    ("client=a%20b", VIEW_PARAMS, False, "client='a b' is not 1-64 letters"),
    ("yaw=1&yaw=2", VIEW_PARAMS, False, "yaw is given 2 times"),
    ("zoom=2", VIEW_PARAMS, False, "unknown query parameter 'zoom'; this endpoint takes client, fov, mode"),
    ("yaw=10", SCENE_PARAMS, False, "unknown query parameter 'yaw'; this endpoint takes psi, seed"),
    ("edit=0:rotate:1", VIEW_PARAMS, False, "unknown query parameter 'edit'"),
    ("edit=0:rotate", VIEW_PARAMS, True, "edit='0:rotate' is not OBJECT:NAME:VALUE"),
    ("edit=x:rotate:1", VIEW_PARAMS, True, "edit object='x' is not an integer"),
    ("edit=0:fly:1", VIEW_PARAMS, True, "edit name='fly' is not one of translate_x"),
    ("edit=0:scale:0", VIEW_PARAMS, True, "an object's scale must be positive"),
    ("edit=0:rotate:1&edit=0:rotate:2", VIEW_PARAMS, True, "edit rotate of object 0 is given twice"),
])
def test_bad_values_say_what_is_wrong(query, params, edits, message):
    with pytest.raises(QueryError) as caught:
        parse_query(query, params, edits=edits)
    assert message in str(caught.value)
