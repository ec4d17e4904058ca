"""Model-assisted labelling in the workbench: pre-label the new images with a real (tiny) model in
the background, then review at speed: Enter accepts, Del rejects, N / Shift+N step between images
with proposals, the slider accepts all above a score, an edited proposal is counted as edited.
Proposals are drawn dashed with their score."""
import time
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from engine.annotations import Annotation, Box, ProjectStore
from engine.data.truth import is_proposal
from engine.infer.detections import Detections
from tests.app.workbench_project import make_project

LEFT = Qt.MouseButton.LeftButton


def open_window(qtbot, path) -> MainWindow:
    w = MainWindow(ProjectStore(path))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=3000)
    w.canvas.setFocus()
    return w


def proposal(image_id, cat, box, score):
    return Annotation(image_id, cat, Box(*box), source="yolo:run1", score=score, attributes={"proposal": True})


@pytest.fixture
def reviewed(tmp_path, qtbot):
    """Five images; the 2nd has proposals scored 0.9, 0.6 and 0.3, the 4th one scored 0.8."""
    path = make_project(tmp_path, n_images=5, size=(80, 60))
    with ProjectStore(path) as store:
        ids = [r.id for r in store.images()]
        store.add_annotations([proposal(ids[1], 1, (2, 2, 20, 20), 0.9), proposal(ids[1], 2, (30, 5, 50, 30), 0.6),
                               proposal(ids[1], 1, (5, 35, 25, 55), 0.3), proposal(ids[3], 2, (10, 10, 40, 40), 0.8),
                               Annotation(ids[1], 2, Box(60, 40, 75, 55))])
    w = open_window(qtbot, path)
    yield w, ids
    w.close()


def key(qtbot, k, mod=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(QApplication.focusWidget(), k, mod)


def test_review_with_the_keyboard_enter_accepts_del_rejects_n_steps(reviewed, qtbot):
    w, ids = reviewed
    store = w.store
    w.actions_by_name["review"].trigger()
    panel = w.assist.panel
    assert w.docks["Review"].isVisible()
    assert "2 images with proposals" in panel.open_label.text()
    key(qtbot, Qt.Key.Key_N)  # from the first image to the next one with proposals
    assert w.controller.image.id == ids[1]
    assert "3 open proposals" in panel.open_label.text()
    best = w.canvas.selected_ids()
    assert [w.controller.annotation(i).score for i in best] == [0.9]  # the best is selected at once
    key(qtbot, Qt.Key.Key_Return)
    accepted = store.annotation(best[0])
    assert not is_proposal(accepted) and accepted.attributes["model_score"] == pytest.approx(0.9)
    assert [w.controller.annotation(i).score for i in w.canvas.selected_ids()] == [0.6]  # the next one
    key(qtbot, Qt.Key.Key_Delete)  # reject it
    assert len([a for a in store.annotations(ids[1]) if is_proposal(a)]) == 1
    [last] = w.canvas.selected_ids()
    key(qtbot, Qt.Key.Key_Right)  # edit the last one (1 px to the right) ...
    assert store.annotation(last).attributes.get("edited") and is_proposal(store.annotation(last))
    key(qtbot, Qt.Key.Key_Return)  # ... then accept it
    assert not is_proposal(store.annotation(last)) and store.annotation(last).geometry.x1 == 6
    assert w.assist.counts.as_dict() == {"accepted": 1, "edited": 1, "rejected": 1}
    assert "edited then accepted 1" in panel.counts_label.text()
    assert "0 open proposals" in panel.open_label.text()
    key(qtbot, Qt.Key.Key_N)
    assert w.controller.image.id == ids[3]
    key(qtbot, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)  # the 2nd image has none left: none before
    assert w.controller.image.id == ids[3]
    assert "1 image with proposals" in panel.open_label.text()
    assert store.image(ids[1]).status == "in_progress"  # reviewing is labelling
    key(qtbot, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo goes back where the edit was
    assert w.controller.image.id == ids[1] and is_proposal(store.annotation(last))


def test_accept_all_above_the_slider(reviewed, qtbot):
    w, ids = reviewed
    w.controller.open_image(ids[1])
    panel = w.assist.open_review()
    panel.set_score(0.5)
    assert panel.accept_above_button.text() == "Accept all ≥ 0.50 on this image"
    assert panel.accept_above_button.isEnabled()
    qtbot.mouseClick(panel.accept_above_button, LEFT)
    scores = sorted((a.attributes.get("model_score", a.score), is_proposal(a))
                    for a in w.store.annotations(ids[1]) if a.source == "yolo:run1")
    assert scores == [(0.3, True), (0.6, False), (0.9, False)]
    assert w.assist.counts.accepted == 2
    assert not panel.accept_above_button.isEnabled()  # nothing left at or above 0.5


def test_proposals_are_drawn_dashed_with_their_score(tmp_path, qtbot):
    path = make_project(tmp_path, n_images=1, size=(200, 150))
    with ProjectStore(path) as store:
        img = store.images()[0].id
        store.add_annotations([proposal(img, 1, (20, 20, 120, 100), 0.87), Annotation(img, 2, Box(140, 20, 190, 100))])
    w = open_window(qtbot, path)
    w.canvas.resize(400, 300)
    w.canvas.zoom_to(2.0)
    w.canvas.pan_by(-w.canvas._ox, -w.canvas._oy)  # image origin at the widget's corner
    w.fill_box.setChecked(False)
    frame = w.canvas.render_static(400, 300)

    def edge(x0, x1, y, color):
        hits = [QColor(frame.pixel(x, y)) for x in range(x0, x1)]
        return [abs(c.red() - color.red()) + abs(c.green() - color.green()) + abs(c.blue() - color.blue()) < 60
                for c in hits]

    dashed = edge(50, 230, 40, QColor("#e6194b"))  # the proposal's top edge (y = 20 px at zoom 2)
    solid = edge(290, 370, 40, QColor("#3cb44b"))  # the accepted label's top edge
    assert 0.3 < np.mean(dashed) < 0.9  # gaps: dashed
    assert np.mean(solid) > 0.95
    tag = [QColor(frame.pixel(x, y)) for x in range(40, 90) for y in range(26, 39)]
    assert sum(c.red() > 140 and c.green() < 60 for c in tag) > 50  # the score tag sits above the box
    w.close()


class SlowOracle:
    """A detector proposing one box per image, slowly enough to be cancelled half-way."""

    class_names = ["cat", "dog"]
    has_masks = False
    name = "oracle"

    def predict(self, rgb, score_threshold=None, **_):
        time.sleep(0.15)
        return Detections(np.array([[2, 2, 12, 12]], np.float32), np.array([0.7]), [1], self.class_names, None)


def test_prelabel_new_images_from_the_dialog_with_a_real_model(tmp_path, qtbot):
    from tests.engine.infer.tiny_models import yolo_checkpoint

    path = make_project(tmp_path, n_images=4, size=(64, 64))
    (tmp_path / "models").mkdir()
    ckpt = yolo_checkpoint(tmp_path / "models" / "tiny.ckpt", classes=["cat", "dog"])
    w = open_window(qtbot, path)
    first = w.controller.image.id
    w.controller.set_status("done")
    w.actions_by_name["prelabel"].trigger()
    dialog = w.assist.dialog
    assert dialog.checkpoint_box.currentData() == str(ckpt)
    assert dialog.count_label.text() == "3 images to pre-label"  # status "new" by default
    dialog.score.setValue(0.0)
    qtbot.mouseClick(dialog.run_button, LEFT)
    qtbot.waitUntil(lambda: w.assist.last_prelabel is not None, timeout=60000)
    made = {r.id: [a for a in w.store.annotations(r.id)] for r in w.store.images()}
    assert made[first] == []
    assert all(made[i] and all(is_proposal(a) and a.source == "yolo:tiny" for a in made[i]) for i in made if i != first)
    assert all(w.store.image(i).status == "new" for i in made if i != first)  # nobody looked at them yet
    assert w.docks["Review"].isVisible() and w.actions_by_name["undo"].text() == "Undo pre-label"
    total = sum(len(v) for v in made.values())
    assert w.assist.last_prelabel["proposals"] == total
    # a second run replaces the proposals of the first instead of piling up
    w.assist.last_prelabel = None
    w.assist.start_prelabel(str(ckpt), [i for i in made if i != first], 0.0, device="cpu")
    qtbot.waitUntil(lambda: w.assist.last_prelabel is not None, timeout=60000)
    assert sum(w.store.count_annotations(i) for i in made) == total
    w.close()


def test_a_cancelled_prelabel_keeps_the_proposals_made_so_far(tmp_path, qtbot, monkeypatch):
    meta = {"family": "yolo", "classes": ["cat", "dog"]}
    spec = SimpleNamespace(name="yolo", kind="detection")
    monkeypatch.setattr("engine.infer.run.load_predictor", lambda ckpt, device="auto": (SlowOracle(), meta, spec))
    path = make_project(tmp_path, n_images=12)
    w = open_window(qtbot, path)
    ids = [r.id for r in w.store.images()]
    job = w.assist.start_prelabel(str(tmp_path / "oracle.ckpt"), ids, 0.5)
    qtbot.waitUntil(lambda: sum(w.store.count_annotations(i) for i in ids) >= 2, timeout=20000)
    w.jobs.cancel(job)
    qtbot.waitUntil(lambda: w.assist.job_id is None, timeout=20000)
    kept = sum(w.store.count_annotations(i) for i in ids)
    assert 2 <= kept < len(ids)
    assert "cancelled" in w.statusBar().currentMessage()
    w.close()


def _pixels(image) -> np.ndarray:
    image = image.convertToFormat(image.Format.Format_ARGB32)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
    return rows[:, : image.width()].copy()


def _crowded_review(tmp_path, qtbot, n: int, size: tuple[int, int], box: tuple[int, int], seed: int):
    """A window in review mode on one image holding `n` random proposals of `box` (w, h) pixels,
    its image tiles loaded."""
    path = make_project(tmp_path, n_images=1, size=size)
    rng = np.random.default_rng(seed)
    (w, h), (bw, bh) = size, box
    with ProjectStore(path) as store:
        img = store.images()[0].id
        store.add_annotations([proposal(img, 1 + i % 2, (x, y, x + bw, y + bh), float(s)) for i, (x, y, s) in
                               enumerate(zip(rng.uniform(0, w - bw, n).tolist(), rng.uniform(0, h - bh, n).tolist(),
                                             rng.uniform(0.3, 1.0, n).tolist()))])
    win = open_window(qtbot, path)
    win.actions_by_name["review"].trigger()
    qtbot.waitUntil(lambda: win.canvas.image_layer.pending_tiles() == 0 and win.canvas.image_layer.pyramid is not None)
    return win


@pytest.mark.parametrize("zoom", [1.3, 3.0])
def test_accepting_one_of_many_proposals_redraws_only_what_changed_and_looks_the_same(tmp_path, qtbot, zoom):
    """A reviewer pressing Enter through 300 crowded proposals: each Accept redraws a few small
    rects of the frame (the accepted box, the next one selected, tags that came or went), and the
    picture is the one a full redraw gives, tags of the best remaining proposals included."""
    w = _crowded_review(tmp_path, qtbot, n=300, size=(320, 240), box=(30, 25), seed=1)
    w.canvas.zoom_to(zoom)
    canvas = w.canvas
    canvas.repaint()
    partial = []
    redraw = canvas.redraw_damage

    def counting(damage):
        done = redraw(damage)
        partial.append(done)
        return done

    canvas.redraw_damage = counting
    for _ in range(12):
        key(qtbot, Qt.Key.Key_Return)
        canvas.repaint()
    assert w.assist.counts.accepted == 12
    assert partial and all(partial)  # never the whole frame again
    shown = _pixels(canvas._frame)
    canvas._base = None  # a full redraw from scratch
    full = _pixels(canvas.render_static(canvas.width(), canvas.height()))
    assert np.abs(shown.astype(int) - full.astype(int)).max() <= 2
    w.close()


class _PaintRects(QObject):
    """Records the rects of the paint events a widget receives."""

    def __init__(self, widget):
        super().__init__()
        self.widget, self.rects = widget, []
        widget.installEventFilter(self)

    def eventFilter(self, obj, ev):  # noqa: N802 - Qt override
        if obj is self.widget and ev.type() == QEvent.Type.Paint:
            self.rects.append(ev.rect())
        return False


@pytest.mark.parametrize("zoom", [1.0, 1.3])
def test_an_accept_repaints_only_the_changed_parts_of_the_window_and_the_screen_shows_a_full_redraw(
        tmp_path, qtbot, zoom):
    """Enter through crowded proposals with the event loop doing the painting: the canvas asks
    for small rects only (the accepted box, the next one selected with its handles and label,
    tags that came or went), and what the window shows is pixel for pixel what a full redraw of
    the canvas gives. (The whole image is in view: Qt phases the dashes of an outline cut by the
    widget's edge from the painted area, so such an outline may start its dashes elsewhere.)"""
    w = _crowded_review(tmp_path, qtbot, n=150, size=(150, 110), box=(20, 15), seed=2)
    canvas = w.canvas
    canvas.zoom_to(zoom)
    QApplication.processEvents()
    qtbot.wait(300)  # the smooth redraw after the zoom
    paints = _PaintRects(canvas)
    for _ in range(12):
        key(qtbot, Qt.Key.Key_Return)
        QApplication.processEvents()
    assert w.assist.counts.accepted == 12
    whole = canvas.width() * canvas.height()
    assert paints.rects and all(r.width() * r.height() < whole / 2 for r in paints.rects)
    corner = canvas.mapTo(w, QPoint(0, 0))
    shown = w.screen().grabWindow(w.winId(), corner.x(), corner.y(), canvas.width(), canvas.height()).toImage()
    assert np.array_equal(_pixels(shown), _pixels(canvas.grab().toImage()))
    w.close()


def test_pre_label_snaps_boxes_to_the_objects_unless_the_user_unticks_it(reviewed, qtbot, monkeypatch):
    w, ids = reviewed
    dialog = w.assist.prelabel_dialog()
    assert dialog.snap_box.isChecked()  # on by default: boxes a reviewer can accept as they are
    dialog.add_checkpoint(__file__)  # any file: the run is captured below, not started
    asked = {}
    monkeypatch.setattr(w.assist, "start_prelabel", lambda *args, **kw: asked.update(kw))
    dialog.snap_box.setChecked(False)
    qtbot.mouseClick(dialog.run_button, LEFT)
    assert asked == {"snap": False}
