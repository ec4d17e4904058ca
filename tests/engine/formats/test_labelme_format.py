"""LabelMe: every shape type, the extra keys other tools write, embedded imageData, and
import -> export -> import identity on a fixed case."""
from __future__ import annotations

import base64
import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from engine.annotations.errors import BadInput
from engine.annotations.formats import export_from, import_into
from engine.annotations.geometry import decode_mask
from engine.annotations.model import Box, MaskRLE, Point, Polygon, Polyline
from engine.annotations.store import ProjectStore

from .strategies import normalized, write_png


def _png_b64(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _shape(label, st, points, **extra):
    d = {"label": label, "points": points, "group_id": None, "description": "", "shape_type": st,
         "flags": {}, "mask": None}
    d.update(extra)
    return d


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "lm"
    write_png(folder / "a.png", 40, 30)
    region = np.zeros((5, 7), np.uint8)
    region[1:4, 2:6] = 1
    shapes = [
        _shape("car", "rectangle", [[30.5, 20], [2, 3.25]], score=0.9, difficult=True, kie_linking=[], text=""),
        _shape("car", "rectangle", [[1, 1], [9, 1], [9, 6], [1, 6]]),  # X-AnyLabeling writes 4 corners
        _shape("person", "polygon", [[5, 5], [15, 5], [10, 14]], group_id=3, description="left one",
               flags={"occluded": True}, attributes={"color": "red"}),
        _shape("person", "circle", [[20, 15], [24, 18]]),
        _shape("tip", "point", [[7.5, 8.5]]),
        _shape("edge", "line", [[0, 0], [40, 30]]),
        _shape("edge", "linestrip", [[1, 2], [3, 4], [5, 1]]),
        _shape("blob", "mask", [[10, 20], [16, 24]], mask=_png_b64(region * 255)),
        _shape("car", "polygon", [[2, 2], [6, 2], [4, 5]], shape_type=None),  # null type = polygon
    ]
    doc = {"version": "5.5.0", "flags": {"good": True}, "shapes": shapes, "imagePath": "a.png",
           "imageData": None, "imageHeight": 30, "imageWidth": 40, "extra_tool_key": {"x": 1}}
    (folder / "a.json").write_text(json.dumps(doc))
    return folder


@pytest.fixture
def store(tmp_path):
    s = ProjectStore.create(tmp_path / "p" / "p.vbproj")
    yield s
    s.close()


def test_every_shape_type_maps(store, src):
    report = import_into(store, "labelme", src)
    assert report.images_added == 1 and report.annotations_added == 9 and not report.skipped
    names = {c.id: c.name for c in store.categories()}
    assert list(names.values()) == ["car", "person", "tip", "edge", "blob"]
    anns = store.annotations(store.images()[0].id)
    rect, rect4, poly, circle, point, line, strip, mask, untyped = anns
    assert rect.geometry == Box(2, 3.25, 30.5, 20) and rect.score == 0.9 and rect.attributes == {"difficult": True}
    assert rect4.geometry == Box(1, 1, 9, 6)
    assert poly.geometry == Polygon(((5, 5), (15, 5), (10, 14))) and poly.instance_id == 3
    assert poly.attributes == {"flags": {"occluded": True}, "color": "red", "description": "left one"}
    assert isinstance(circle.geometry, Polygon) and circle.attributes["labelme_shape"] == "circle"
    r = math.hypot(4, 3)
    assert circle.attributes["circle"] == [20, 15, r]
    assert all(math.hypot(x - 20, y - 15) == pytest.approx(r) for x, y in circle.geometry.points)
    assert point.geometry == Point(7.5, 8.5)
    assert line.geometry == Polyline(((0, 0), (40, 30))) and line.attributes == {"labelme_shape": "line"}
    assert strip.geometry == Polyline(((1, 2), (3, 4), (5, 1))) and strip.attributes == {}
    assert isinstance(mask.geometry, MaskRLE) and mask.geometry.size == (30, 40)
    m = decode_mask(mask.geometry)
    assert m.sum() == 12 and m[21:24, 12:16].all()  # region pasted with its top-left at (10, 20)
    assert isinstance(untyped.geometry, Polygon)


def test_import_export_import_is_identity(store, src, tmp_path):
    import_into(store, "labelme", src)
    summary = export_from(store, "labelme", tmp_path / "out")
    assert summary == {"format": "labelme", "folder": str(tmp_path / "out"), "images": 1, "shapes": 9,
                       "proposals_left_out": 0}
    doc = json.loads((tmp_path / "out" / "a.json").read_text())
    assert doc["imagePath"] == "a.png" and doc["imageData"] is None and (tmp_path / "out" / "a.png").is_file()
    types = [s["shape_type"] for s in doc["shapes"]]
    assert types == ["rectangle", "rectangle", "polygon", "circle", "point", "line", "linestrip", "mask", "polygon"]
    circle = doc["shapes"][3]
    assert circle["points"] == [[20, 15], [25.0, 15]]  # centre and a point on the rim (r = 5)
    assert doc["shapes"][0]["score"] == 0.9 and doc["shapes"][0]["difficult"] is True
    assert doc["shapes"][2]["description"] == "left one" and doc["shapes"][2]["flags"] == {"occluded": True}
    assert doc["shapes"][2]["attributes"] == {"color": "red"} and doc["shapes"][2]["group_id"] == 3
    again = ProjectStore.create(tmp_path / "q" / "p.vbproj")
    try:
        import_into(again, "labelme", tmp_path / "out")
        assert normalized(again, with_split=False) == normalized(store, with_split=False)
        a1 = [(a.attributes, a.instance_id, a.score) for a in store.annotations(store.images()[0].id)]
        a2 = [(a.attributes, a.instance_id, a.score) for a in again.annotations(again.images()[0].id)]
        assert a1 == a2
    finally:
        again.close()


def test_edited_circle_exports_as_polygon(store, src, tmp_path):
    import_into(store, "labelme", src)
    circle = store.annotations(store.images()[0].id)[3]
    moved = Polygon(((1.0, 1.0),) + circle.geometry.points[1:])
    store.update_annotation(circle.with_(geometry=moved))
    export_from(store, "labelme", tmp_path / "out")
    shape = json.loads((tmp_path / "out" / "a.json").read_text())["shapes"][3]
    assert shape["shape_type"] == "polygon" and shape["points"][0] == [1.0, 1.0]


def test_embedded_image_data_is_decoded_into_the_project(store, tmp_path):
    folder = tmp_path / "emb"
    folder.mkdir()
    buf = io.BytesIO()
    Image.fromarray(np.full((6, 9, 3), 200, np.uint8)).save(buf, format="PNG")
    doc = {"shapes": [_shape("x", "rectangle", [[1, 1], [4, 4]])], "imagePath": "gone.jpg",
           "imageData": base64.b64encode(buf.getvalue()).decode(), "imageHeight": 6, "imageWidth": 9}
    (folder / "shot.json").write_text(json.dumps(doc))
    report = import_into(store, "labelme", folder)
    assert report.images_added == 1
    (rec,) = store.images()
    assert rec.path == "imported_images/shot.png" and (rec.width, rec.height) == (9, 6)
    assert store.image_path(rec).read_bytes() == buf.getvalue()
    # importing the same again is refused (issue 14: re-imports no longer double every annotation);
    # it reuses the same file and image, and leaves no second copy behind
    with pytest.raises(BadInput, match="already imported"):
        import_into(store, "labelme", folder)
    assert sorted(p.name for p in (store.root / "imported_images").iterdir()) == ["shot.png"]
    doc["shapes"].append(_shape("y", "rectangle", [[2, 2], [5, 5]]))
    (folder / "shot.json").write_text(json.dumps(doc))
    report = import_into(store, "labelme", folder)
    assert (report.images_updated, report.annotations_added, report.duplicates_skipped) == (1, 1, 1)
    assert sorted(p.name for p in (store.root / "imported_images").iterdir()) == ["shot.png"]


def test_embedded_image_with_empty_image_path(store, tmp_path):
    folder = tmp_path / "emb2"
    folder.mkdir()
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(buf, format="PNG")
    doc = {"shapes": [_shape("x", "point", [[1, 1]])], "imagePath": "",
           "imageData": base64.b64encode(buf.getvalue()).decode(), "imageHeight": 4, "imageWidth": 5}
    (folder / "frame.json").write_text(json.dumps(doc))
    assert import_into(store, "labelme", folder).annotations_added == 1
    assert store.images()[0].path == "imported_images/frame.png"
