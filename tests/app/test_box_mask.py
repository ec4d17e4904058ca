"""Shapes > Box → Mask: with a box selected the user gets the object's mask inside it, from
GrabCut or from a chosen Mask R-CNN checkpoint, in the background and as one undo step; the mask
and the box become one object (a shared instance id)."""
import numpy as np
from PySide6.QtCore import Qt

from engine.annotations import Annotation, Box, ProjectStore
from engine.annotations.geometry import decode_mask
from tests.app.test_workbench_window import key, open_window
from tests.app.workbench_project import make_project
from tests.engine.infer.tiny_models import rcnn_checkpoint


def window_with_box(tmp_path, qtbot):
    """An 80 x 60 image with a red patch at x 5..20, y 5..15 and a box drawn around it."""
    path = make_project(tmp_path, n_images=1, size=(80, 60))
    with ProjectStore(path) as store:
        image = store.images()[0].id
        box = store.add_annotation(Annotation(image, 1, Box(2, 2, 23, 18)))
    w = open_window(qtbot, path)
    w._select([box.id])
    return w, box


def run_box_to_mask(qtbot, w):
    key(qtbot, w, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert w.box_mask.busy()
    qtbot.waitUntil(lambda: not w.box_mask.busy(), timeout=30000)
    return [a for a in w.store.annotations(w.controller.image.id) if a.kind == "mask"]


def test_grabcut_box_to_mask_is_one_object_and_one_undo_step(tmp_path, qtbot):
    w, box = window_with_box(tmp_path, qtbot)
    assert "Box → Mask" in [a.text() for a in w.edit_menu.actions()]
    [mask] = run_box_to_mask(qtbot, w)
    m = decode_mask(mask.geometry)
    truth = np.zeros_like(m)
    truth[5:15, 5:20] = 1
    assert (m & truth).sum() / (m | truth).sum() > 0.9
    now = w.store.annotation(box.id)
    assert mask.instance_id is not None and now.instance_id == mask.instance_id and mask.category_id == 1
    assert mask.id in w.controller._anns  # drawn at once
    key(qtbot, w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [a.kind for a in w.store.annotations(now.image_id)] == ["box"]
    assert w.store.annotation(box.id).instance_id is None
    w.close()


def test_a_mask_rcnn_checkpoint_makes_the_mask(tmp_path, qtbot):
    w, box = window_with_box(tmp_path, qtbot)
    ckpt = rcnn_checkpoint(tmp_path / "tiny-mask.ckpt", classes=["cat", "dog"])
    w.box_mask.use(ckpt)
    w.box_mask.device = "cpu"
    [mask] = run_box_to_mask(qtbot, w)
    assert mask.source == "maskrcnn:tiny-mask"
    m = decode_mask(mask.geometry)
    outside = np.ones_like(m)
    outside[2:18, 2:23] = 0
    assert m.any() and not (m & outside).any()  # never outside the box
    w.close()
