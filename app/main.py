"""Start the workbench: `run(project_path)` -> exit code (0 ok, 2 the project cannot be opened).

The CLI (`visionbench gui [PROJECT]`) passes a path (the demo project when none was given).
"""
from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from engine.annotations.errors import BadInput
from engine.annotations.store import ProjectStore


def _application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("Visionbench")
        app.setOrganizationName("Visionbench")
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
    window.show()
    return int(app.exec())
