"""Models > Style transfer… and Stylise with…: the actions and the style dock (built on first use:
it imports the engine's style code, which loads torch)."""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QApplication

from app.controllers.actions import ActionSpec
from app.controllers.models_controller import make_action

STYLE_SPECS = (
    ActionSpec("style_transfer", "Style transfer…", ("Ctrl+Shift+G",), "Models",
               "Paint the current image in the style of a texture, a project image or a file (Gatys), "
               "watching the Gram matrices converge layer by layer"),
    ActionSpec("stylise_with", "Stylise with…", ("Ctrl+Shift+F",), "Models",
               "Run a trained fast-style network on the current image"),
)
DOCK_TITLE = "Style transfer"


class StyleController(QObject):
    """Owns the style dock of one MainWindow."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.dock_widget = None
        self.actions = {}
        for spec in STYLE_SPECS:
            act = make_action(spec, window)
            self.actions[spec.name] = act
        self.actions["style_transfer"].triggered.connect(lambda: self.open_dock())
        self.actions["stylise_with"].triggered.connect(self._stylise_with)

    @property
    def store(self):
        return self.window.store

    def current_record(self):
        return self.window.controller.image

    def open_dock(self):
        """Show the style dock (built on first use); returns its widget, or None when it cannot be built."""
        if self.dock_widget is None:
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                from app.views.style_dock import StyleDock

                self.dock_widget = StyleDock(self)
                from app.heap import settle_heap

                settle_heap()  # torch is in: no full collection walks it during a run
            except Exception as exc:  # noqa: BLE001 - a broken model install must not take the window down
                self.window._show_failure("Cannot open style transfer", f"{type(exc).__name__}: {exc}")
                return None
            finally:
                QApplication.restoreOverrideCursor()
            dock = self.window.add_panel(DOCK_TITLE, self.dock_widget)
            dock.setFloating(True)
            geo = self.window.geometry()
            dock.resize(min(1400, max(geo.width() - 40, 800)), min(900, max(geo.height() - 40, 600)))
            dock.move(geo.x() + 40, geo.y() + 50)
        dock = self.window.docks[DOCK_TITLE]
        dock.show()
        dock.raise_()
        return self.dock_widget

    def _stylise_with(self) -> None:
        widget = self.open_dock()
        if widget is not None:
            widget.pick_checkpoint()

    def shutdown(self) -> None:
        if self.dock_widget is not None:
            self.dock_widget.shutdown()
