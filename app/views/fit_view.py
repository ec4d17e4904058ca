"""A dark graphics view that keeps its whole scene in view, shared by the detector views."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView, QWidget


class FitView(QGraphicsView):
    """Keeps the whole scene in view when resized; ``rescaled`` says the zoom changed."""

    rescaled = Signal()

    def __init__(self, scene: QGraphicsScene, parent: QWidget | None = None,
                 minimum: tuple[int, int] = (320, 240)) -> None:
        super().__init__(scene, parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setBackgroundBrush(QBrush(QColor("#202124")))
        self.setMinimumSize(*minimum)

    def fit(self) -> None:
        if not self.scene().sceneRect().isEmpty():
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self.fit()
        self.rescaled.emit()
