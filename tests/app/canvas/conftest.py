"""A real project store + EditHistory acting as the controller around a Canvas."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from app.canvas import Canvas
from engine.annotations.history import EditHistory
from engine.annotations.store import ProjectStore


class Controller:
    """What the main window's controller does: apply requests through history, feed back results."""

    def __init__(self, store: ProjectStore, canvas: Canvas):
        self.store, self.canvas = store, canvas
        self.history = EditHistory(store)
        self.requests = []
        canvas.editRequested.connect(self.apply)

    def apply(self, req) -> None:
        self.requests.append(req)
        added, updated, deleted = self.history.apply(req.label, req.add, req.update, req.delete)
        self.canvas.apply_changes(added, updated, [a.id for a in deleted])

    def undo(self) -> None:
        self.history.undo()
        self.canvas.set_annotations(self.store.annotations(self.canvas.image().id))

    def annotations(self):
        return self.store.annotations(self.canvas.image().id)


@pytest.fixture
def scene(qtbot, tmp_path):
    """An 800x600 canvas showing a 400x300 image at scale 2 (widget = 2 * image), noise + white square."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 120, (300, 400, 3), dtype=np.uint8)
    img[100:180, 100:200] = 255
    path = tmp_path / "noise.png"
    cv2.imwrite(str(path), img)
    store = ProjectStore.create(tmp_path / "p.vbproj")
    rec = store.add_image(path)
    cat = store.add_category("thing", "#e6194b")
    store.add_category("other", "#3cb44b")
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(800, 600)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.load(rec, path, [], store.categories())
    canvas.set_current_category(cat.id)
    ctl = Controller(store, canvas)
    wait_loaded(qtbot, canvas)
    yield canvas, ctl, store, img
    canvas.shutdown()
    store.close()


def wait_loaded(qtbot, canvas, timeout=10.0) -> None:
    qtbot.waitUntil(lambda: bool(canvas.image_layer.ready or canvas.message_text()), timeout=int(timeout * 1000))


def wpos(canvas, x: float, y: float) -> QPoint:
    """Image px -> integer widget point."""
    p = canvas.map_from_image(x, y)
    return QPoint(round(p.x()), round(p.y()))


def drag(qtbot, w, a: QPoint, b: QPoint, button=Qt.MouseButton.LeftButton, steps: int = 4,
         modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.mousePress(w, button, modifier, a)
    for i in range(1, steps + 1):
        qtbot.mouseMove(w, QPoint(a.x() + (b.x() - a.x()) * i // steps, a.y() + (b.y() - a.y()) * i // steps))
    qtbot.mouseRelease(w, button, modifier, b)


def settle(qtbot, ms: int = 30) -> None:
    qtbot.wait(ms)
    time.sleep(0)
