"""Start the workbench: `run(project_path)` -> exit code (0 ok, 2 the project cannot be opened).

The CLI (`visionbench gui [PROJECT]`) passes a path (the demo project when none was given).
"""
from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from engine.annotations.errors import BadInput
from engine.annotations.store import ProjectStore


def _icon_file() -> Path | None:
    """The app icon: beside the frozen app (PyInstaller puts it in icons/) or in the source tree."""
    roots = [Path(getattr(sys, "_MEIPASS", "")) / "icons", Path(__file__).resolve().parents[1] / "packaging" / "icons"]
    for root in roots:
        for name in ("visionbench.svg", "visionbench-256.png"):
            if (root / name).is_file():
                return root / name
    return None


def _application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("Visionbench")
        app.setOrganizationName("Visionbench")
        icon = _icon_file()
        if icon is not None:
            app.setWindowIcon(QIcon(str(icon)))
    return app


def open_window(project_path: str):
    """Open the project and build its window (not shown). Raises BadInput (incl. ProjectLocked)."""
    from app.main_window import MainWindow

    store = ProjectStore(project_path)
    try:
        return MainWindow(store)
    except Exception:
        store.close()
        raise


def run(project_path: str | None) -> int:
    from app import heap

    heap.enable()  # the session's long-lived objects are frozen once torch is in (app.heap)
    app = _application()
    if not project_path:
        project_path, _ = QFileDialog.getOpenFileName(None, "Open a Visionbench project", "",
                                                      "Visionbench projects (*.vbproj)")
        if not project_path:
            return 0
    try:
        window = open_window(project_path)
    except BadInput as exc:
        QMessageBox.critical(None, "Cannot open project", str(exc))
        print(f"visionbench: {exc}", file=sys.stderr)
        return 2
    window.use_layout_settings(QSettings())  # dock layout and size persist between sessions
    window.show()
    return int(app.exec())
