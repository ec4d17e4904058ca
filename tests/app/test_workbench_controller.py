"""The annotator's stories through the AnnotationController; the STORE is checked each time."""
from dataclasses import dataclass, field

import numpy as np
import pytest

from app.controllers import AnnotationController
from engine.annotations import Annotation, Box, Polygon, ProjectStore
from engine.annotations import geometry as geo
from tests.app.workbench_project import make_project


@dataclass
class Req:  # same shape as app.canvas.EditRequest
    label: str
    add: list = field(default_factory=list)
    update: list = field(default_factory=list)
    delete: list = field(default_factory=list)


@pytest.fixture
def ctl(tmp_path, qtbot):
    path = make_project(tmp_path)
    store = ProjectStore(path)
    c = AnnotationController(store)
    c.set_order([im.id for im in store.images()])
    c.open_image(store.images()[0].id)
    yield c
    store.close()


def box(ctl, x=1, y=1, s=5, cat=1):
    return Annotation(ctl.image.id, cat, Box(x, y, x + s, y + s))


def test_draw_undo_redo_across_image_switches(ctl):
    store = ctl.store
    first, second = [im.id for im in store.images()[:2]]
    seen = []
    ctl.annotationsChanged.connect(lambda a, u, d: seen.append((a, u, d)))
    assert ctl.apply_request(Req("draw box", add=[box(ctl)]))
    (a,) = store.annotations(first)
    assert seen[-1][0][0].id == a.id and ctl.annotations() == [a]
    assert ctl.undo() and store.count_annotations(first) == 0 and seen[-1][2] == [a.id]
    assert ctl.redo() and store.annotation(a.id).geometry == Box(1, 1, 6, 6)
    ctl.step_image(+1)
    assert ctl.image.id == second
    ctl.apply_request(Req("draw box", add=[box(ctl, 3, 3)]))
    ctl.step_image(-1)
    assert ctl.image.id == first
    # undoing the second image's box from the first image takes the user there
    assert ctl.undo() and ctl.image.id == second and store.count_annotations(second) == 0
    assert ctl.annotations() == []
    ctl.undo()
    assert ctl.image.id == first and store.count_annotations(first) == 0
    ctl.redo()
    ctl.redo()
    assert ctl.image.id == second and store.count_annotations() == 2


def test_edit_moves_new_image_to_in_progress_then_done(ctl):
    img = ctl.image.id
    assert ctl.store.image(img).status == "new"
    updates = []
    ctl.imageUpdated.connect(updates.append)
    ctl.apply_request(Req("draw", add=[box(ctl)]))
    assert ctl.store.image(img).status == "in_progress" and updates[-1].status == "in_progress"
    ctl.set_status("done")
    assert ctl.store.image(img).status == "done" and ctl.image.status == "done"
    ctl.apply_request(Req("draw", add=[box(ctl, 10)]))
    assert ctl.store.image(img).status == "done"  # only 'new' moves by itself


def test_mixed_request_is_one_undo_step(ctl):
    ctl.apply_request(Req("draw", add=[box(ctl), box(ctl, 10)]))
    a, b = ctl.annotations()
    ctl.apply_request(Req("erase", update=[a.with_(geometry=Box(1, 1, 3, 3))], delete=[b.id],
                          add=[box(ctl, 20)]))
    assert ctl.store.count_annotations() == 2 and ctl.store.annotation(a.id).geometry == Box(1, 1, 3, 3)
    ctl.undo()
    assert [x.geometry for x in ctl.store.annotations(ctl.image.id)] == [Box(1, 1, 6, 6), Box(10, 1, 15, 6)]
    assert [x.geometry for x in ctl.annotations()] == [Box(1, 1, 6, 6), Box(10, 1, 15, 6)]


def test_copy_paste_across_images_clips_to_target(tmp_path, qtbot):
    path = make_project(tmp_path, n_images=1)
    store = ProjectStore(path)
    small = tmp_path / "images" / "img00000.png"
    from PIL import Image
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tmp_path / "small.png")
    target = store.add_image(tmp_path / "small.png")
    ctl = AnnotationController(store)
    src = store.images()[0]
    ctl.open_image(src.id)
    ctl.apply_request(Req("draw", add=[Annotation(src.id, 1, Box(5, 5, 30, 20))]))
    ctl.copy([a.id for a in ctl.annotations()])
    ctl.open_image(target.id)
    pasted = ctl.paste()
    assert [p.geometry for p in pasted] == [Box(5, 5, 12, 10)]
    assert store.annotations(target.id)[0].geometry == Box(5, 5, 12, 10)
    # on its own image a paste is offset so it does not hide the original
    ctl.open_image(src.id)
    assert ctl.paste()[0].geometry == Box(15, 15, 40, 30)
    ctl.undo()
    assert store.count_annotations(src.id) == 1
    assert small.exists()
    store.close()


def test_merge_split_convert_each_one_undo_step(ctl):
    h, w = ctl.image.height, ctl.image.width
    ctl.apply_request(Req("draw", add=[box(ctl, 1, 1, 4), box(ctl, 20, 10, 4),
                                       Annotation(ctl.image.id, 2, Polygon(((2, 20), (8, 20), (8, 26), (2, 26))))]))
    a, b, poly = ctl.annotations()
    assert ctl.merge([a.id, b.id])
    (merged,) = [x for x in ctl.store.annotations(ctl.image.id) if x.kind == "mask"]
    assert geo.area(merged.geometry) == 32 and ctl.store.count_annotations() == 2
    assert ctl.split([merged.id])
    parts = [x for x in ctl.store.annotations(ctl.image.id) if x.kind == "mask"]
    assert sorted(geo.area(p.geometry) for p in parts) == [16, 16]
    ctl.undo()  # split undone in one step
    assert [x.id for x in ctl.store.annotations(ctl.image.id) if x.kind == "mask"] == [merged.id]
    ctl.undo()  # merge undone in one step
    assert {x.id for x in ctl.store.annotations(ctl.image.id)} == {a.id, b.id, poly.id}
    assert ctl.to_mask([poly.id])
    (m,) = [x for x in ctl.store.annotations(ctl.image.id) if x.kind == "mask"]
    assert m.category_id == 2 and geo.decode_mask(m.geometry).shape == (h, w)
    assert ctl.to_polygons([m.id])
    kinds = sorted(x.kind for x in ctl.store.annotations(ctl.image.id))
    assert kinds == ["box", "box", "polygon"]
    ctl.undo()
    ctl.undo()
    assert ctl.store.annotation(poly.id).geometry == poly.geometry


def test_wrong_operations_explain_instead_of_failing(ctl):
    notes = []
    ctl.message.connect(notes.append)
    ctl.apply_request(Req("draw", add=[box(ctl)]))
    (a,) = ctl.annotations()
    assert not ctl.merge([a.id]) and "two or more" in notes[-1]
    assert not ctl.split([a.id]) and "nothing to split" in notes[-1]
    assert not ctl.to_polygons([a.id]) and "not a mask" in notes[-1]
    ctl.set_locked([a.id], True)
    assert not ctl.delete([a.id]) and "locked" in notes[-1]
    assert ctl.store.count_annotations() == 1


def test_category_hide_lock_are_undoable_updates(ctl):
    ctl.apply_request(Req("draw", add=[box(ctl)]))
    (a,) = ctl.annotations()
    ctl.set_category([a.id], 2)
    ctl.set_hidden([a.id], True)
    ctl.set_locked([a.id], True)
    s = ctl.store.annotation(a.id)
    assert (s.category_id, s.hidden, s.locked) == (2, True, True)
    ctl.undo()
    ctl.undo()
    s = ctl.store.annotation(a.id)
    assert (s.category_id, s.hidden, s.locked) == (2, False, False)


def test_failing_store_call_shows_error_and_changes_nothing(ctl):
    errors = []
    ctl.failed.connect(lambda t, m: errors.append((t, m)))
    bad = Annotation(ctl.image.id, 999, Box(0, 0, 2, 2))  # no such category: foreign key fails
    assert not ctl.apply_request(Req("draw", add=[box(ctl), bad]))
    assert errors and "draw" in errors[0][0]
    assert ctl.store.count_annotations() == 0 and ctl.annotations() == [] and not ctl.history.can_undo
    assert ctl.store.image(ctl.image.id).status == "new"


def test_delete_category_removes_its_shapes_and_clears_history(ctl):
    ctl.apply_request(Req("draw", add=[box(ctl, cat=1), box(ctl, 10, cat=2)]))
    assert ctl.delete_category(1)
    assert [c.name for c in ctl.store.categories()] == ["dog"]
    assert [a.category_id for a in ctl.annotations()] == [2] and not ctl.history.can_undo


def test_step_image_stops_at_ends(ctl):
    ids = ctl.order
    assert not ctl.step_image(-1) and ctl.image.id == ids[0]
    assert ctl.step_image(+1) and ctl.step_image(+1) and ctl.image.id == ids[2]
    assert not ctl.step_image(+1)
