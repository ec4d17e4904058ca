"""Every kind of edit, made with real mouse and key events in the main window, is undone and
redone through the project store, also after switching images and back (issue 3, point 4)."""
import json

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from app.main_window import MainWindow
from engine.annotations import Annotation, Box, Polygon, ProjectStore
from engine.annotations.geometry import bounds, decode_mask, encode_mask
from tests.app.test_workbench_window import CTRL, SHIFT, key, open_window

L, NO = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
W, H = 200, 150


def make_scene_project(root, n_images: int = 2):
    """Noise images W x H with a bright square at x 50..130, y 40..100 (GrabCut has an object)."""
    root.mkdir(parents=True, exist_ok=True)
    store = ProjectStore.create(root / "p.vbproj")
    store.add_category("cat", "#e6194b")
    store.add_category("dog", "#3cb44b")
    rng = np.random.default_rng(3)
    for i in range(n_images):
        px = rng.integers(0, 90, (H, W, 3), dtype=np.uint8)
        px[40:100, 50:130] = (235, 235, 235)
        f = root / f"img{i}.png"
        cv2.imwrite(str(f), px)
        store.add_image(f)
    store.close()
    return root / "p.vbproj"


def seed(w: MainWindow):
    """A box, a polygon and a two-blob mask on the first image (not part of what is undone)."""
    img = w.controller.image.id
    m = np.zeros((H, W), np.uint8)
    m[110:130, 20:40] = 1
    m[110:130, 60:80] = 1
    w.controller.record("seed", add=[
        Annotation(img, 1, Box(10, 10, 40, 30)),
        Annotation(img, 1, Polygon(((150.0, 10.0), (190.0, 10.0), (190.0, 50.0), (150.0, 50.0)))),
        Annotation(img, 2, encode_mask(m)),
    ])
    return {a.kind: a for a in w.controller.annotations()}


def wpos(w, x, y) -> QPoint:
    p = w.canvas.map_from_image(x, y)
    return QPoint(round(p.x()), round(p.y()))


def click(qtbot, w, x, y, mod=NO):
    qtbot.mouseClick(w.canvas, L, mod, wpos(w, x, y))


def drag(qtbot, w, a, b, steps=4):
    cv = w.canvas
    pa, pb = wpos(w, *a), wpos(w, *b)
    qtbot.mousePress(cv, L, NO, pa)
    for i in range(1, steps + 1):
        qtbot.mouseMove(cv, QPoint(pa.x() + (pb.x() - pa.x()) * i // steps, pa.y() + (pb.y() - pa.y()) * i // steps))
    qtbot.mouseRelease(cv, L, NO, pb)


def snapshot(store: ProjectStore):
    """Everything the store holds about annotations, comparable with ==."""
    return sorted((a.id, a.image_id, a.category_id, a.kind, json.dumps(a.geometry.to_json(), sort_keys=True),
                   a.hidden, a.locked, json.dumps(a.attributes, sort_keys=True), a.instance_id)
                  for anns in store.all_annotations().values() for a in anns)


# ---- the edits, each by real events (tool keys, clicks, drags, shortcuts) ----------------------
def e_add_box(w, qtbot, s):
    key(qtbot, w, Qt.Key.Key_R)
    drag(qtbot, w, (60, 110), (100, 140))


def e_add_polygon(w, qtbot, s):
    key(qtbot, w, Qt.Key.Key_P)
    for x, y in ((100, 110), (140, 110), (140, 140)):
        click(qtbot, w, x, y)
    key(qtbot, w, Qt.Key.Key_Return)


def e_add_point(w, qtbot, s):
    key(qtbot, w, Qt.Key.Key_O)
    click(qtbot, w, 120, 130)


def e_add_polyline(w, qtbot, s):
    key(qtbot, w, Qt.Key.Key_L)
    for x, y in ((100, 110), (140, 120), (170, 140)):
        click(qtbot, w, x, y)
    key(qtbot, w, Qt.Key.Key_Return)


def e_instance(w, qtbot, s):
    click(qtbot, w, 25, 20)
    spin = w.properties.instance
    spin.setValue(7)
    spin.editingFinished.emit()  # what leaving the field sends


def e_move(w, qtbot, s):
    click(qtbot, w, 25, 20)
    drag(qtbot, w, (25, 20), (35, 25))


def e_resize(w, qtbot, s):
    click(qtbot, w, 25, 20)
    drag(qtbot, w, (40, 30), (55, 38))  # south-east handle


def e_vertex(w, qtbot, s):
    click(qtbot, w, 170, 30)
    drag(qtbot, w, (190, 50), (195, 60))


def e_delete(w, qtbot, s):
    click(qtbot, w, 25, 20)
    key(qtbot, w, Qt.Key.Key_Delete)


def e_brush(w, qtbot, s):
    key(qtbot, w, Qt.Key.Key_B)
    drag(qtbot, w, (100, 120), (140, 120))


def e_erase(w, qtbot, s):
    click(qtbot, w, 30, 120)  # the mask
    key(qtbot, w, Qt.Key.Key_E)
    drag(qtbot, w, (30, 105), (30, 135))


def e_category(w, qtbot, s):
    click(qtbot, w, 25, 20)
    combo = w.properties.category
    i = combo.findData(2)
    combo.setCurrentIndex(i)
    combo.activated.emit(i)  # what picking an entry with the mouse sends


def e_hide(w, qtbot, s):
    click(qtbot, w, 25, 20)
    key(qtbot, w, Qt.Key.Key_H)


def e_lock(w, qtbot, s):
    click(qtbot, w, 25, 20)
    key(qtbot, w, Qt.Key.Key_L, CTRL)


def e_attributes(w, qtbot, s):
    click(qtbot, w, 25, 20)
    props = w.properties
    props._add_attribute()
    props.attributes.item(0, 1).setText("red")   # no key yet: nothing to store
    props.attributes.item(0, 0).setText("colour")  # now one edit: {"colour": "red"}


def e_merge(w, qtbot, s):
    click(qtbot, w, 25, 20)
    click(qtbot, w, 170, 30, SHIFT)
    key(qtbot, w, Qt.Key.Key_M, CTRL)


def e_split(w, qtbot, s):
    click(qtbot, w, 30, 120)
    key(qtbot, w, Qt.Key.Key_M, CTRL | SHIFT)


def e_to_mask(w, qtbot, s):
    click(qtbot, w, 170, 30)
    key(qtbot, w, Qt.Key.Key_K, CTRL)


def e_to_polygons(w, qtbot, s):
    click(qtbot, w, 30, 120)
    key(qtbot, w, Qt.Key.Key_K, CTRL | SHIFT)


def e_paste(w, qtbot, s):
    click(qtbot, w, 25, 20)
    key(qtbot, w, Qt.Key.Key_C, CTRL)
    key(qtbot, w, Qt.Key.Key_V, CTRL)


def e_duplicate(w, qtbot, s):
    click(qtbot, w, 170, 30)
    key(qtbot, w, Qt.Key.Key_D, CTRL)


EDITS = {f.__name__[2:]: f for f in (e_add_box, e_add_polygon, e_add_point, e_add_polyline, e_instance, e_move,
                                      e_resize, e_vertex, e_delete, e_brush, e_erase, e_category, e_hide, e_lock,
                                      e_attributes, e_merge, e_split, e_to_mask, e_to_polygons, e_paste,
                                      e_duplicate)}


def _by_id(anns, a):
    return next((x for x in anns if x.id == a.id), None)


def _near(a, b, tol=0.5):
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def _kinds(anns):
    return sorted(x.kind for x in anns)


# what the store must hold on the first image after each edit (seed: box, polygon, 2-blob mask)
EXPECT = {
    "add_box": lambda anns, s: _kinds(anns) == ["box", "box", "mask", "polygon"],
    "add_polygon": lambda anns, s: _kinds(anns) == ["box", "mask", "polygon", "polygon"],
    "add_point": lambda anns, s: _kinds(anns) == ["box", "mask", "point", "polygon"],
    "add_polyline": lambda anns, s: _kinds(anns) == ["box", "mask", "polygon", "polyline"],
    "instance": lambda anns, s: _by_id(anns, s["box"]).instance_id == 7,
    # widget points are whole pixels at a fractional scale: image coordinates agree within 0.5 px
    "move": lambda anns, s: _near(bounds(_by_id(anns, s["box"]).geometry), (20, 15, 50, 35)),
    "resize": lambda anns, s: _near(bounds(_by_id(anns, s["box"]).geometry), (10, 10, 55, 38)),
    "vertex": lambda anns, s: _near(_by_id(anns, s["polygon"]).geometry.points[2], (195, 60)),
    "delete": lambda anns, s: _by_id(anns, s["box"]) is None and len(anns) == 2,
    "brush": lambda anns, s: _kinds(anns) == ["box", "mask", "mask", "polygon"],
    "erase": lambda anns, s: decode_mask(_by_id(anns, s["mask"]).geometry)[120, 30] == 0
    and decode_mask(_by_id(anns, s["mask"]).geometry)[120, 70] == 1,
    "category": lambda anns, s: _by_id(anns, s["box"]).category_id == 2,
    "hide": lambda anns, s: _by_id(anns, s["box"]).hidden,
    "lock": lambda anns, s: _by_id(anns, s["box"]).locked,
    "attributes": lambda anns, s: _by_id(anns, s["box"]).attributes == {"colour": "red"},
    "merge": lambda anns, s: _kinds(anns) == ["mask", "mask"] and _by_id(anns, s["mask"]) is not None,
    "split": lambda anns, s: _kinds(anns) == ["box", "mask", "mask", "polygon"],
    "to_mask": lambda anns, s: _kinds(anns) == ["box", "mask", "mask"],
    "to_polygons": lambda anns, s: _kinds(anns) == ["box", "polygon", "polygon", "polygon"],
    "paste": lambda anns, s: _kinds(anns) == ["box", "box", "mask", "polygon"],
    "duplicate": lambda anns, s: _kinds(anns) == ["box", "mask", "polygon", "polygon"],
}


@pytest.mark.parametrize("kind", list(EDITS))
def test_every_edit_undoes_and_redoes_across_image_switches(kind, tmp_path, qtbot):
    w = open_window(qtbot, make_scene_project(tmp_path))
    try:
        shapes = seed(w)
        w.canvas.setFocus()
        before = snapshot(w.store)
        steps = len(w.controller.history._undo)
        EDITS[kind](w, qtbot, shapes)
        key(qtbot, w, Qt.Key.Key_Escape)  # leave nothing half-drawn
        w.canvas.setFocus()  # back from a text field, where Ctrl+Z is the field's own text undo
        after = snapshot(w.store)
        assert after != before, f"{kind}: the edit did not reach the store"
        assert len(w.controller.history._undo) == steps + 1, f"{kind}: not exactly one undo step"
        first = w.controller.image.id
        assert EXPECT[kind](w.store.annotations(first), shapes), (kind, w.store.annotations(first))
        key(qtbot, w, Qt.Key.Key_Z, CTRL)
        assert snapshot(w.store) == before
        key(qtbot, w, Qt.Key.Key_D)  # next image, and back
        assert w.controller.image.id != first
        key(qtbot, w, Qt.Key.Key_A)
        key(qtbot, w, Qt.Key.Key_Y, CTRL)
        assert snapshot(w.store) == after
        key(qtbot, w, Qt.Key.Key_D)  # undo from another image opens the edited one
        key(qtbot, w, Qt.Key.Key_Z, CTRL)
        assert snapshot(w.store) == before and w.controller.image.id == first
        key(qtbot, w, Qt.Key.Key_Y, CTRL)
        assert snapshot(w.store) == after
        # the widgets show what the store holds
        stored = {a.id: a for a in w.store.annotations(first)}
        assert {a.id for a in w.canvas.annotations()} == set(stored)
        assert w.annotations.model.rowCount() == len(stored)
    finally:
        w.close()


def test_brush_paints_the_mask_in_the_store(tmp_path, qtbot):
    w = open_window(qtbot, make_scene_project(tmp_path, 1))
    try:
        key(qtbot, w, Qt.Key.Key_B)
        w.brush.setValue(5)
        drag(qtbot, w, (20, 20), (60, 20), steps=8)
        (a,) = w.store.annotations(w.controller.image.id)
        m = decode_mask(a.geometry)
        assert m[20, 20] and m[20, 40] and m[20, 60] and not m[30, 40]
    finally:
        w.close()


def test_copy_on_one_image_paste_on_another_with_mouse_and_keys(tmp_path, qtbot):
    w = open_window(qtbot, make_scene_project(tmp_path))
    try:
        shapes = seed(w)
        first = w.controller.image.id
        click(qtbot, w, 25, 20)
        click(qtbot, w, 170, 30, SHIFT)  # box and polygon
        assert sorted(w.canvas.selected_ids()) == sorted([shapes["box"].id, shapes["polygon"].id])
        key(qtbot, w, Qt.Key.Key_C, CTRL)
        key(qtbot, w, Qt.Key.Key_D)
        second = w.controller.image.id
        assert second != first and w.store.count_annotations(second) == 0
        key(qtbot, w, Qt.Key.Key_V, CTRL)
        pasted = w.store.annotations(second)
        assert sorted((a.kind, bounds(a.geometry)) for a in pasted) == sorted(
            (a.kind, bounds(a.geometry)) for a in (shapes["box"], shapes["polygon"]))  # same place
        assert sorted(w.canvas.selected_ids()) == sorted(a.id for a in pasted)  # the copies are selected
        assert w.store.count_annotations(first) == 3  # originals untouched
        key(qtbot, w, Qt.Key.Key_Z, CTRL)  # one undo step removes both copies
        assert w.store.count_annotations(second) == 0
        key(qtbot, w, Qt.Key.Key_A)
        key(qtbot, w, Qt.Key.Key_Y, CTRL)  # redo from the other image goes back to the pasted one
        assert w.controller.image.id == second and w.store.count_annotations(second) == 2
    finally:
        w.close()


def test_grabcut_in_the_window_makes_an_undoable_mask(tmp_path, qtbot):
    w = open_window(qtbot, make_scene_project(tmp_path, 1))
    try:
        qtbot.waitUntil(lambda: w.canvas.image_layer.ready, timeout=10000)
        img = w.controller.image.id
        key(qtbot, w, Qt.Key.Key_G)
        assert w.actions_by_name["tool_grabcut"].isChecked()
        drag(qtbot, w, (38, 28), (142, 112))  # a loose box around the bright square
        qtbot.waitUntil(lambda: w.store.count_annotations(img) == 1, timeout=30000)  # runs off the GUI thread
        (a,) = w.store.annotations(img)
        m = decode_mask(a.geometry).astype(bool)
        truth = np.zeros((H, W), bool)
        truth[40:100, 50:130] = True
        assert (m & truth).sum() / (m | truth).sum() > 0.8
        assert w.store.image(img).status == "in_progress"
        key(qtbot, w, Qt.Key.Key_Z, CTRL)
        assert w.store.count_annotations(img) == 0 and w.canvas.annotations() == []
    finally:
        w.close()
