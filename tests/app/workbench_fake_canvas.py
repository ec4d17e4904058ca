"""A stand-in with the app.canvas.Canvas API, recording calls; used when the real canvas is absent."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget


class FakeCanvas(QWidget):
    zoomChanged = Signal(float)
    cursorMoved = Signal(float, float)
    selectionChanged = Signal(list)
    editRequested = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.anns: dict[int, object] = {}
        self.image = None
        self.tool = "select"
        self._sel: list[int] = []
        self.hidden_categories: set[int] = set()
        self.calls: list[str] = []

    def load(self, image, path, annotations, categories):
        self.image, self.path = image, path
        self.anns = {a.id: a for a in annotations}
        self._sel = []

    def set_annotations(self, anns):
        self.anns = {a.id: a for a in anns}

    def apply_changes(self, added, updated, deleted_ids):
        for i in deleted_ids:
            self.anns.pop(i, None)
        for a in list(added) + list(updated):
            self.anns[a.id] = a
        self._sel = [i for i in self._sel if i in self.anns]

    def set_categories(self, cats): self.calls.append("set_categories")
    def set_current_category(self, cid): self.current_category = cid
    def set_category_visible(self, cid, visible):
        (self.hidden_categories.discard if visible else self.hidden_categories.add)(cid)
    def set_opacity(self, f): self.opacity = f
    def set_fill(self, on): self.fill = on
    def set_brush_radius(self, r): self.brush = r
    def set_tool(self, name): self.tool = name
    def fit(self): self.calls.append("fit")
    def zoom_to(self, z): self.calls.append(f"zoom_to {z}")
    def zoom(self): return 1.0
    def selected_ids(self): return list(self._sel)
    def select(self, ids): self._sel = [i for i in ids if i in self.anns]
    def message_text(self): return ""
