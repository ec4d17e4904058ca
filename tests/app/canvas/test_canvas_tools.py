"""Drawing and editing with real mouse/keyboard events; geometry checked in image pixels."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from app.canvas import TOOLS, EditRequest
from engine.annotations.geometry import decode_mask
from engine.annotations.model import Annotation, Box, MaskRLE, Point, Polygon, Polyline

from .conftest import drag, wpos

L = Qt.MouseButton.LeftButton
NO = Qt.KeyboardModifier.NoModifier


def test_scene_maps_image_to_widget_at_scale_two(scene):
    canvas, *_ = scene
    assert canvas.zoom() == pytest.approx(2.0)
    assert canvas.map_to_image(canvas.map_from_image(123.5, 45.25)) == pytest.approx((123.5, 45.25))
    assert canvas.message_text() == ""
    assert set(TOOLS) == {"select", "box", "polygon", "point", "polyline", "brush", "eraser", "grabcut"}


def test_draw_box_emits_add_in_image_pixels(scene, qtbot):
    canvas, ctl, store, _ = scene
    canvas.set_tool("box")
    drag(qtbot, canvas.viewport(), wpos(canvas, 20, 30), wpos(canvas, 70, 90))
    req = ctl.requests[-1]
    assert isinstance(req, EditRequest) and len(req.add) == 1 and not req.update and not req.delete
    a = req.add[0]
    assert a.id is None and a.source == "manual" and a.image_id == canvas.image().id
    assert a.category_id == canvas.current_category()
    assert a.geometry == Box(20, 30, 70, 90)
    assert [x.geometry for x in ctl.annotations()] == [Box(20, 30, 70, 90)]


def test_box_is_clipped_to_the_image(scene, qtbot):
    canvas, ctl, *_ = scene
    canvas.set_tool("box")
    canvas.pan_by(-200, -200)  # the image's right/bottom edges are now inside the widget
    drag(qtbot, canvas, wpos(canvas, 350, 250), QPoint(799, 599))
    assert ctl.requests[-1].add[0].geometry == Box(350, 250, 400, 300)


def test_polygon_closes_on_first_vertex_and_with_enter(scene, qtbot):
    canvas, ctl, *_ = scene
    canvas.set_tool("polygon")
    pts = [(10, 10), (60, 12), (50, 70)]
    for x, y in pts:
        qtbot.mouseClick(canvas, L, NO, wpos(canvas, x, y))
    assert not ctl.requests
    qtbot.mouseClick(canvas, L, NO, wpos(canvas, 11, 11))  # near the first vertex: closes
    assert ctl.requests[-1].add[0].geometry == Polygon(tuple((float(x), float(y)) for x, y in pts))

    pts2 = [(100, 100), (150, 100), (150, 150), (100, 150)]
    for x, y in pts2:
        qtbot.mouseClick(canvas, L, NO, wpos(canvas, x, y))
    qtbot.keyClick(canvas, Qt.Key.Key_Backspace)  # drops the last vertex
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert ctl.requests[-1].add[0].geometry.points == tuple((float(x), float(y)) for x, y in pts2[:3])
    assert len(ctl.annotations()) == 2


def test_polygon_escape_cancels(scene, qtbot):
    canvas, ctl, *_ = scene
    canvas.set_tool("polygon")
    for x, y in [(10, 10), (60, 12), (50, 70)]:
        qtbot.mouseClick(canvas, L, NO, wpos(canvas, x, y))
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert ctl.requests == []


def test_point_and_polyline(scene, qtbot):
    canvas, ctl, *_ = scene
    canvas.set_tool("point")
    qtbot.mouseClick(canvas, L, NO, wpos(canvas, 33, 44))
    assert ctl.requests[-1].add[0].geometry == Point(33, 44)
    canvas.set_tool("polyline")
    for x, y in [(10, 200), (50, 220), (90, 200)]:
        qtbot.mouseClick(canvas, L, NO, wpos(canvas, x, y))
    qtbot.mouseDClick(canvas, L, NO, wpos(canvas, 90, 200))
    assert ctl.requests[-1].add[0].geometry == Polyline(((10.0, 200.0), (50.0, 220.0), (90.0, 200.0)))
    for x, y in [(200, 200), (250, 260)]:
        qtbot.mouseClick(canvas, L, NO, wpos(canvas, x, y))
    qtbot.keyClick(canvas, Qt.Key.Key_Enter)
    assert ctl.requests[-1].add[0].geometry == Polyline(((200.0, 200.0), (250.0, 260.0)))
    kinds = sorted(a.kind for a in ctl.annotations())
    assert kinds == ["point", "polyline", "polyline"]


def _add(ctl, canvas, geometry, **kw):
    ctl.apply(EditRequest("seed", add=[Annotation(canvas.image().id, canvas.current_category(), geometry, **kw)]))
    return ctl.annotations()[-1]


def test_click_selects_drag_moves_box(scene, qtbot):
    canvas, ctl, *_ = scene
    a = _add(ctl, canvas, Box(20, 20, 60, 50))
    seen = []
    canvas.selectionChanged.connect(seen.append)
    qtbot.mouseClick(canvas, L, NO, wpos(canvas, 40, 35))
    assert canvas.selected_ids() == [a.id] and seen[-1] == [a.id]
    drag(qtbot, canvas, wpos(canvas, 40, 35), wpos(canvas, 50, 30))
    assert ctl.requests[-1].update[0].geometry == Box(30, 15, 70, 45)
    assert ctl.annotations()[0].geometry == Box(30, 15, 70, 45)
    assert canvas.selected_ids() == [a.id]  # selection survives the edit


def test_resize_box_by_corner_and_edge_handles(scene, qtbot):
    canvas, ctl, *_ = scene
    a = _add(ctl, canvas, Box(20, 20, 60, 50))
    canvas.select([a.id])
    drag(qtbot, canvas, wpos(canvas, 60, 50), wpos(canvas, 80, 90))  # south-east corner
    assert ctl.annotations()[0].geometry == Box(20, 20, 80, 90)
    drag(qtbot, canvas, wpos(canvas, 20, 55), wpos(canvas, 5, 55))  # west edge midpoint
    assert ctl.annotations()[0].geometry == Box(5, 20, 80, 90)


def test_locked_annotation_cannot_move(scene, qtbot):
    canvas, ctl, *_ = scene
    a = _add(ctl, canvas, Box(20, 20, 60, 50), locked=True)
    qtbot.mouseClick(canvas, L, NO, wpos(canvas, 40, 35))
    assert canvas.selected_ids() == [a.id]
    n = len(ctl.requests)
    drag(qtbot, canvas, wpos(canvas, 40, 35), wpos(canvas, 90, 80))
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    assert len(ctl.requests) == n and ctl.annotations()[0].geometry == Box(20, 20, 60, 50)


def test_polygon_vertex_drag_insert_delete(scene, qtbot):
    canvas, ctl, *_ = scene
    a = _add(ctl, canvas, Polygon(((100.0, 100.0), (200.0, 100.0), (200.0, 200.0), (100.0, 200.0))))
    canvas.select([a.id])
    drag(qtbot, canvas, wpos(canvas, 200, 200), wpos(canvas, 220, 230))
    g = ctl.annotations()[0].geometry
    assert g.points == ((100.0, 100.0), (200.0, 100.0), (220.0, 230.0), (100.0, 200.0))
    # double-click on the top edge inserts a vertex after vertex 0
    qtbot.mouseDClick(canvas, L, NO, wpos(canvas, 150, 100))
    g = ctl.annotations()[0].geometry
    assert g.points == ((100.0, 100.0), (150.0, 100.0), (200.0, 100.0), (220.0, 230.0), (100.0, 200.0))
    # ctrl+click on the left edge inserts another
    qtbot.mouseClick(canvas, L, Qt.KeyboardModifier.ControlModifier, wpos(canvas, 100, 150))
    assert len(ctl.annotations()[0].geometry.points) == 6
    assert ctl.annotations()[0].geometry.points[-1] == (100.0, 150.0)
    # hover a vertex and press Delete: that vertex goes
    qtbot.mouseMove(canvas, wpos(canvas, 150, 100))
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)
    assert (150.0, 100.0) not in ctl.annotations()[0].geometry.points
    assert len(ctl.annotations()[0].geometry.points) == 5


def test_polygon_keeps_three_vertices(scene, qtbot):
    canvas, ctl, *_ = scene
    a = _add(ctl, canvas, Polygon(((10.0, 10.0), (60.0, 10.0), (30.0, 50.0))))
    canvas.select([a.id])
    qtbot.mouseMove(canvas, wpos(canvas, 60, 10))
    n = len(ctl.requests)
    qtbot.keyClick(canvas, Qt.Key.Key_Backspace)
    assert len(ctl.requests) == n and len(ctl.annotations()[0].geometry.points) == 3
    assert "at least 3" in canvas._status


def test_arrow_nudge_and_shift_click_multi_select(scene, qtbot):
    canvas, ctl, *_ = scene
    a = _add(ctl, canvas, Box(20, 20, 60, 50))
    b = _add(ctl, canvas, Point(200, 200))
    qtbot.mouseClick(canvas, L, NO, wpos(canvas, 40, 35))
    qtbot.mouseClick(canvas, L, Qt.KeyboardModifier.ShiftModifier, wpos(canvas, 200, 200))
    assert set(canvas.selected_ids()) == {a.id, b.id}
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    qtbot.keyClick(canvas, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    geoms = {x.id: x.geometry for x in ctl.annotations()}
    assert geoms[a.id] == Box(21, 30, 61, 60) and geoms[b.id] == Point(201, 210)


def test_hidden_category_not_hit_and_undo_restores(scene, qtbot):
    canvas, ctl, *_ = scene
    a = _add(ctl, canvas, Box(20, 20, 60, 50))
    canvas.set_category_visible(a.category_id, False)
    qtbot.mouseClick(canvas, L, NO, wpos(canvas, 40, 35))
    assert canvas.selected_ids() == []
    canvas.set_category_visible(a.category_id, True)
    qtbot.mouseClick(canvas, L, NO, wpos(canvas, 40, 35))
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)
    assert ctl.annotations() == [] and canvas.selected_ids() == []
    ctl.undo()
    assert [x.id for x in canvas.annotations()] == [a.id]


def test_brush_paints_and_eraser_erases_mask(scene, qtbot):
    canvas, ctl, *_ = scene
    canvas.set_tool("brush")
    canvas.set_brush_radius(5)
    drag(qtbot, canvas, wpos(canvas, 50, 50), wpos(canvas, 100, 50), steps=10)
    assert len(ctl.requests) == 1  # one request per stroke, not per mouse move
    req = ctl.requests[-1]
    m = decode_mask(req.add[0].geometry)
    assert m.shape == (300, 400)
    assert m[50, 50] and m[50, 75] and m[50, 99] and m[54, 75] and not m[57, 75] and not m[50, 120]
    mask_ann = ctl.annotations()[0]
    canvas.set_tool("select")
    qtbot.mouseClick(canvas, L, NO, wpos(canvas, 30, 30))  # outside the stroke: nothing
    assert canvas.selected_ids() == []
    qtbot.mouseClick(canvas, L, NO, wpos(canvas, 75, 52))  # on the painted pixels
    assert canvas.selected_ids() == [mask_ann.id]
    canvas.set_tool("eraser")
    drag(qtbot, canvas, wpos(canvas, 75, 40), wpos(canvas, 75, 60), steps=5)
    m2 = decode_mask(ctl.annotations()[0].geometry)
    assert not m2[50, 75] and m2[50, 50] and m2[50, 99]
    assert ctl.requests[-1].update[0].id == mask_ann.id
    # brush again on the selected mask adds to it instead of making a new one
    canvas.set_tool("brush")
    drag(qtbot, canvas, wpos(canvas, 75, 50), wpos(canvas, 76, 50), steps=2)
    assert len(ctl.annotations()) == 1 and decode_mask(ctl.annotations()[0].geometry)[50, 75]


def test_grabcut_on_synthetic_square(scene, qtbot):
    canvas, ctl, store, img = scene
    canvas.set_tool("grabcut")
    drag(qtbot, canvas, wpos(canvas, 85, 85), wpos(canvas, 215, 195))
    qtbot.waitUntil(lambda: bool(ctl.requests), timeout=20000)
    g = ctl.requests[-1].add[0].geometry
    assert isinstance(g, MaskRLE)
    m = decode_mask(g).astype(bool)
    truth = np.zeros((300, 400), bool)
    truth[100:180, 100:200] = True
    iou = (m & truth).sum() / (m | truth).sum()
    assert iou > 0.8


def test_grabcut_result_for_previous_image_is_dropped(scene, qtbot, tmp_path):
    canvas, ctl, store, img = scene
    canvas.set_tool("grabcut")
    drag(qtbot, canvas, wpos(canvas, 85, 85), wpos(canvas, 215, 195))
    canvas.load(canvas.image(), tmp_path / "noise.png", [], store.categories())  # newer generation
    canvas.wait_workers()
    qtbot.wait(50)
    assert ctl.requests == []


def test_corrupt_mask_is_skipped_not_fatal(scene, qtbot):
    canvas, ctl, *_ = scene
    bad = Annotation(canvas.image().id, canvas.current_category(), MaskRLE((300, 400), "not-an-rle!!"), id=99)
    good = Annotation(canvas.image().id, canvas.current_category(), Box(10, 10, 50, 50), id=100)
    canvas.set_annotations([bad, good])
    frame = canvas.grab().toImage()  # paints without raising
    assert frame.width() == 800
    qtbot.mouseClick(canvas, L, NO, wpos(canvas, 30, 30))
    assert canvas.selected_ids() == [100]


def test_rubber_band_selects_enclosed_shapes_and_selection_survives_reload(scene, qtbot):
    canvas, ctl, *_ = scene
    a = _add(ctl, canvas, Box(20, 20, 40, 40))
    b = _add(ctl, canvas, Point(60, 60))
    c = _add(ctl, canvas, Box(150, 150, 200, 200))
    drag(qtbot, canvas, wpos(canvas, 10, 10), wpos(canvas, 100, 100))
    assert set(canvas.selected_ids()) == {a.id, b.id}
    canvas.set_annotations([x for x in ctl.annotations() if x.id != b.id])  # b vanished (undo elsewhere)
    assert canvas.selected_ids() == [a.id]
    assert {x.id for x in canvas.annotations()} == {a.id, c.id}


def test_delete_targets_vertex_only_while_hovered_or_clicked(scene, qtbot):
    canvas, ctl, *_ = scene
    square = ((100.0, 100.0), (200.0, 100.0), (200.0, 200.0), (100.0, 200.0))
    a = _add(ctl, canvas, Polygon(square))
    qtbot.mouseClick(canvas, L, NO, wpos(canvas, 150, 150))  # select by clicking inside
    qtbot.mouseClick(canvas, L, NO, wpos(canvas, 200, 200))  # click a vertex: it stays the target
    qtbot.mouseMove(canvas, wpos(canvas, 300, 280))
    qtbot.keyClick(canvas, Qt.Key.Key_Backspace)
    assert ctl.annotations()[0].geometry.points == (square[0], square[1], square[3])
    qtbot.mouseMove(canvas, wpos(canvas, 100, 100))  # hover a vertex, then leave it
    qtbot.mouseMove(canvas, wpos(canvas, 300, 280))
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)  # no vertex targeted: the selected shape goes
    assert ctl.annotations() == [] and ctl.requests[-1].delete == [a.id]
