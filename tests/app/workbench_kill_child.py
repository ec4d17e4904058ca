"""Child process of test_workbench_kill: edits a project in the real window with real mouse and
key events (QTest), prints one JSON line per COMMITTED edit, then waits to be killed.

`python -m tests.app.workbench_kill_child PROJECT`. Each line: {"step", "annotations": {id:
[image_id, kind, bounds] or null (deleted)}, "status": {image_id: status}} — what the store
must hold from then on, as the window's controller (which mirrors the store) reports it.
"""
from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from engine.annotations.geometry import bounds

L, NO = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
CTRL = Qt.KeyboardModifier.ControlModifier


def main(project: str) -> None:
    app = QApplication(sys.argv[:1])
    from app.main import open_window

    w = open_window(project)
    w.labeling.set_ask(False)  # the shapes take the current category: no label prompt to answer
    w.show()
    w.activateWindow()
    deadline = time.monotonic() + 10
    while QApplication.activeWindow() is not w and time.monotonic() < deadline:  # shortcuts need it
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()
    cv, ctl = w.canvas, w.controller
    cv.setFocus()

    def pos(x, y) -> QPoint:
        p = cv.map_from_image(x, y)
        return QPoint(round(p.x()), round(p.y()))

    def press(k, mod=NO) -> None:
        QTest.keyClick(QApplication.focusWidget() or cv, k, mod)

    def drag(a, b) -> None:
        QTest.mousePress(cv, L, NO, pos(*a))
        for t in (0.25, 0.5, 0.75, 1.0):
            QTest.mouseMove(cv, pos(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t))
        QTest.mouseRelease(cv, L, NO, pos(*b))

    state: dict[int, object] = {}

    def report(step: str) -> None:
        cur = ctl.image.id
        for k in [k for k, v in state.items() if v is not None and v[0] == cur]:
            state[k] = None  # gone unless still listed below
        for a in ctl.annotations():
            state[a.id] = [a.image_id, a.kind, [round(v, 3) for v in bounds(a.geometry)]]
        status = {r.id: r.status for r in (w.store.image(i) for i in ctl.order)}
        print(json.dumps({"step": step, "annotations": state, "status": status}), flush=True)

    press(Qt.Key.Key_R)
    drag((10, 10), (60, 40))
    report("draw box")
    press(Qt.Key.Key_V)
    QTest.mouseClick(cv, L, NO, pos(30, 25))
    press(Qt.Key.Key_Right)  # nudge one pixel
    report("move box")
    press(Qt.Key.Key_P)
    for x, y in ((100, 20), (150, 20), (150, 70), (100, 70)):
        QTest.mouseClick(cv, L, NO, pos(x, y))
    press(Qt.Key.Key_Return)
    report("draw polygon")
    press(Qt.Key.Key_Return, CTRL)  # mark done
    report("mark done")
    press(Qt.Key.Key_D)  # next image
    press(Qt.Key.Key_B)
    drag((40, 60), (120, 60))
    report("brush")
    press(Qt.Key.Key_V)
    QTest.mouseClick(cv, L, NO, pos(80, 60))
    press(Qt.Key.Key_Delete)
    report("delete mask")
    press(Qt.Key.Key_Z, CTRL)  # undo brings it back
    report("undo delete")
    print("READY", flush=True)
    while True:  # the parent kills us here, without any chance to clean up
        app.processEvents()
        time.sleep(0.05)


if __name__ == "__main__":
    main(sys.argv[1])
