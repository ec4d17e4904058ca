"""Guard against PySide6 6.12's none_dealloc crash (see README, "Dependencies").

On Python 3.11, PySide6/shiboken6 6.12.0 drops a reference to None on every call of methods like
QGraphicsItem.setPen/setBrush; after a few thousand calls Python aborts with
"Fatal Python error: none_dealloc". The workbench calls them constantly while drawing annotations,
so a wheel with that bug must fail the tests. It runs in a subprocess because the failure is an abort.
"""
import os
import subprocess
import sys

_SCRIPT = """
import sys
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QApplication, QGraphicsRectItem, QGraphicsScene
app = QApplication([])
scene = QGraphicsScene()
item = QGraphicsRectItem(0, 0, 10, 10)
scene.addItem(item)
pen, brush = QPen(QColor("#e6194b"), 2), QBrush(QColor(0, 0, 255, 60), Qt.SolidPattern)
refs = sys.getrefcount(None)
for i in range(20_000):
    item.setPen(pen)
    item.setBrush(brush)
assert item.pen().width() == 2 and item.brush().color().alpha() == 60
print("ok", refs, sys.getrefcount(None))
"""


def test_set_pen_and_brush_20000_times_does_not_abort():
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    run = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr[-2000:]}"
    assert run.stdout.startswith("ok")
    _, before, after = run.stdout.split()
    # the 6.12 bug loses one reference to None per call; a healthy build keeps the count steady
    assert int(before) - int(after) < 1000
