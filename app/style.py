"""Shared look: status colours, colour swatches and a light style sheet for the workbench."""
from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

# Image workflow status -> badge colour (grey: untouched, amber: being worked on, green, blue).
STATUS_COLORS = {
    "new": "#9e9e9e",
    "in_progress": "#f5a623",
    "done": "#2e9e44",
    "reviewed": "#2f6fdb",
}
STATUS_LABELS = {"new": "new", "in_progress": "in progress", "done": "done", "reviewed": "reviewed"}

STYLE_SHEET = """
QDockWidget::title { padding: 4px 6px; font-weight: 600; }
QToolBar { spacing: 3px; }
QToolButton:checked { background: palette(highlight); color: palette(highlighted-text); border-radius: 3px; }
QStatusBar QLabel { padding: 0 6px; }
"""


@lru_cache(maxsize=512)
def swatch(color: str, size: int = 14, border: str = "#333333") -> QIcon:
    """A small filled square icon of `color` ('#rrggbb'); cached, lists ask for it on every paint."""
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setPen(QColor(border))
    p.setBrush(QColor(color))
    p.drawRoundedRect(0, 0, size - 1, size - 1, 3, 3)
    p.end()
    return QIcon(pm)


def status_color(status: str) -> QColor:
    return QColor(STATUS_COLORS.get(status, "#9e9e9e"))
