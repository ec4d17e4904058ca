"""Show an error without blocking: a QMessageBox opened window-modal, never exec()'d.

``exec()`` would start a nested event loop that freezes tests and lets queued job signals
re-enter the GUI at odd moments; ``open()`` returns at once and the app keeps running.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def show_error(parent: QWidget | None, title: str, message: str, details_traceback: str | None = None) -> QMessageBox:
    """Open a non-blocking error box; the full traceback sits behind "Show Details...".

    Returns the box (already shown) so callers and tests can inspect or close it.
    """
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    box.setText(message)
    if details_traceback:
        box.setDetailedText(details_traceback)
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    box.open()
    return box
