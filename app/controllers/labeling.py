"""Labelling comfort: the label prompt after drawing and the current-category indicator.

Every shape drawn on the canvas passes through ``edit_requested``: with the prompt on (the
default, as in LabelMe) the new shape waits for its label and is recorded only once one is
picked (Esc drops it); with the prompt off it takes the current category, which the toolbar
shows by name and colour.
"""
from __future__ import annotations

import html

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QLabel

from app.dialogs.label_prompt import LabelPrompt

DRAWN = ("Add box", "Add polygon", "Add polyline", "Add point", "Paint mask", "GrabCut")
MAX_RECENT = 8


class LabelingController(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.ask = True
        self.recent: list[str] = []
        self.prompt: LabelPrompt | None = None
        self.indicator = QLabel(window)
        self.indicator.setToolTip("New shapes take this category (keys 1-9 or the Categories panel pick another)")
        window.categories.currentCategoryChanged.connect(lambda *_: self.show_current())
        window.controller.categoriesChanged.connect(lambda *_: self.show_current())

    def set_ask(self, on: bool) -> None:
        self.ask = bool(on)
        act = self.window.actions_by_name.get("label_prompt")
        if act is not None and act.isChecked() != self.ask:
            act.setChecked(self.ask)

    def show_current(self) -> None:
        cid = self.window.categories.current_id()
        cat = next((c for c in self.window.store.categories() if c.id == cid), None)
        if cat is None:
            self.indicator.setText("  no category  ")
            return
        self.indicator.setText(f" <span style='background-color:{cat.color}'>&nbsp;&nbsp;&nbsp;&nbsp;"
                               f"</span> <b>{html.escape(cat.name)}</b> ")

    def edit_requested(self, req) -> None:
        """The canvas's edit: a newly drawn shape asks for its label first (when asked to)."""
        c = self.window.controller
        drawn = req.label in DRAWN and len(req.add) == 1 and not req.update and not req.delete
        if not (drawn and self.ask):
            if drawn and req.add[0].category_id in {x.id for x in self.window.store.categories()}:
                self._remember(self.window.store.category(req.add[0].category_id).name)
            c.apply_request(req)
            return
        if self.prompt is not None:
            self.prompt.reject()
        cats = self.window.store.categories()
        current = next((x.name for x in cats if x.id == self.window.categories.current_id()), None)
        prompt = LabelPrompt(cats, self.recent, self.window, current)
        prompt.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        prompt.move(QCursor.pos())
        prompt.accepted.connect(lambda: self._labelled(req, prompt.label(), prompt.keep_asking.isChecked()))
        prompt.finished.connect(lambda *_: setattr(self, "prompt", None))
        self.prompt = prompt
        prompt.open()

    def _labelled(self, req, name: str, keep_asking: bool) -> None:
        c = self.window.controller
        name = name.strip()
        if not keep_asking:
            self.set_ask(False)
        if not name:
            return
        cat = self.window.store.category_by_name(name) or c.add_category(name)
        if not cat:
            return  # refused (the controller said why)
        self._remember(cat.name)
        self.window.categories.select(cat.id)
        c.apply_request(type(req)(req.label, [req.add[0].with_(category_id=cat.id)], [], []))
        self.window.canvas.setFocus()

    def _remember(self, name: str) -> None:
        self.recent = [name] + [n for n in self.recent if n != name]
        del self.recent[MAX_RECENT:]
