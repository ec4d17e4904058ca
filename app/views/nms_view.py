"""NMS, one decision at a time: the teaching view over ``engine.viz.nms_trace``.

The view draws an image and a detector's candidate boxes (``RawCandidates``) and lets a teacher
step through greedy NMS: each Step keeps the best remaining box (yellow), shows the IoU of every
box it is compared with, and strikes out (red, dashed) those above the IoU threshold. Earlier
decisions stay visible: kept boxes green, suppressed ones grey and dashed. Moving a slider re-runs
the whole trace at once (it is cheap numpy) and stays at the same step, so the class sees what
the threshold changes. All computation is in ``engine.viz.nms_trace``; this file only draws.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QKeySequence, QPen, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.views.fit_view import FitView
from engine.infer.detections import RawCandidates
from engine.viz.nms_trace import CandidateState, NmsTrace, nms_trace

# One meaning per colour; the legend in the side panel repeats them.
COLOURS = {
    "pending": QColor("#40c4ff"),
    "current": QColor("#ffd600"),
    "kept": QColor("#00e676"),
    "suppressing": QColor("#ff5252"),
    "suppressed": QColor(190, 190, 190, 150),
}
_LEGEND = (("current", "kept at this step"), ("suppressing", "suppressed at this step"),
           ("kept", "kept earlier"), ("suppressed", "suppressed earlier"),
           ("pending", "not decided yet"))


def _pen(colour: QColor, width: float, dashed: bool = False) -> QPen:
    pen = QPen(colour, width)
    pen.setCosmetic(True)  # same on-screen width at any zoom
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def _rgb_to_pixmap(image_rgb: np.ndarray) -> QPixmap:
    arr = np.ascontiguousarray(np.asarray(image_rgb, dtype=np.uint8))
    if arr.ndim == 2:
        arr = np.ascontiguousarray(np.stack([arr] * 3, axis=-1))
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"image: expected an RGB array [H, W, 3], got shape {arr.shape}")
    arr = np.ascontiguousarray(arr[:, :, :3])
    h, w = arr.shape[:2]
    qimage = QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(qimage.copy())  # copy: the numpy buffer may go away


class _Tag(QGraphicsRectItem):
    """A small readable label (text on a dark plate) that ignores zoom."""

    def __init__(self, text: str, colour: QColor, anchor: tuple[int, bool]):
        super().__init__()
        self.anchor = anchor  # (candidate index, True = name tag of a kept box)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        label = QGraphicsSimpleTextItem(text, self)
        label.setBrush(QBrush(colour))
        r = label.boundingRect()
        label.setPos(3, 1)
        self.setRect(QRectF(0, 0, r.width() + 6, r.height() + 2))
        self.setBrush(QBrush(QColor(0, 0, 0, 190)))
        self.setPen(QPen(Qt.PenStyle.NoPen))
        self.setZValue(10)




class NmsStepView(QWidget):
    """Step through NMS on one image. ``set_data(image_rgb, candidates, class_names)``.

    Signal ``changed(int steps_applied, int steps_total)`` fires after every redraw.
    """

    changed = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._candidates = RawCandidates(np.zeros((0, 4)), np.zeros(0), np.zeros(0))
        self._class_names: list[str] = []
        self._trace: NmsTrace = nms_trace(np.zeros((0, 4)), np.zeros(0))
        self._applied = 0
        # one rectangle per candidate, made when it is first shown: an untrained 9-class R-CNN
        # gives ~900 candidates, nearly all under the score threshold, and making them all cost
        # the GUI thread tens of ms while a detector ran on another thread
        self._box_items: list[QGraphicsRectItem | None] = []
        self._tags: list[_Tag] = []

        self.scene = QGraphicsScene(self)
        self.view = FitView(self.scene, self)
        self.view.rescaled.connect(self._place_tags)
        self._pixmap_item = QGraphicsPixmapItem()
        self.scene.addItem(self._pixmap_item)

        self.step_button = QPushButton("Step ▶")
        self.back_button = QPushButton("◀ Back")
        self.run_button = QPushButton("Run all ▶▶")
        self.reset_button = QPushButton("◀◀ Reset")
        for button, slot, key in ((self.step_button, self.step, Qt.Key.Key_Right),
                                  (self.back_button, self.back, Qt.Key.Key_Left),
                                  (self.run_button, self.run_all, Qt.Key.Key_End),
                                  (self.reset_button, self.reset, Qt.Key.Key_Home)):
            button.clicked.connect(slot)
            shortcut = QShortcut(QKeySequence(key), self, activated=slot)
            # Only while this view has focus: the annotation canvas uses arrows too.
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

        self.iou_slider = self._slider(50)
        self.score_slider = self._slider(25)
        self.iou_label, self.score_label = QLabel(), QLabel()
        self.agnostic_box = QCheckBox("Class-agnostic")
        self.agnostic_box.setToolTip("When on, a box can suppress boxes of any class; when off, "
                                     "NMS runs separately per class.")
        self.iou_slider.valueChanged.connect(self._rerun)
        self.score_slider.valueChanged.connect(self._rerun)
        self.agnostic_box.toggled.connect(self._rerun)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.status.setMinimumWidth(260)
        self.status.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        self._build_layout()
        self._rerun()

    # -- layout -------------------------------------------------------------------------------
    @staticmethod
    def _slider(value: int) -> QSlider:
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(0, 100)
        slider.setValue(value)
        slider.setMinimumWidth(140)
        return slider

    def _build_layout(self) -> None:
        buttons = QGridLayout()
        buttons.addWidget(self.back_button, 0, 0)
        buttons.addWidget(self.step_button, 0, 1)
        buttons.addWidget(self.reset_button, 1, 0)
        buttons.addWidget(self.run_button, 1, 1)

        form = QFormLayout()
        form.addRow(self.iou_label, self.iou_slider)
        form.addRow(self.score_label, self.score_slider)
        form.addRow(self.agnostic_box)

        legend = QVBoxLayout()
        legend.setSpacing(2)
        for key, text in _LEGEND:
            c = COLOURS[key]
            style = "dashed" if key in ("suppressing", "suppressed") else "solid"
            swatch = QLabel()
            swatch.setFixedSize(26, 12)
            swatch.setStyleSheet(f"border: 2px {style} rgba({c.red()},{c.green()},{c.blue()},"
                                 f"{c.alpha()}); background: transparent;")
            row = QHBoxLayout()
            row.addWidget(swatch)
            row.addWidget(QLabel(text), 1)
            legend.addLayout(row)

        side = QVBoxLayout()
        title = QLabel("<b>Non-maximum suppression</b>")
        side.addWidget(title)
        side.addWidget(self.status, 1)
        side.addLayout(buttons)
        side.addLayout(form)
        side.addLayout(legend)
        panel = QWidget()
        panel.setLayout(side)
        panel.setFixedWidth(300)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.view, 1)
        layout.addWidget(panel)

    # -- public API ---------------------------------------------------------------------------
    def set_data(self, image_rgb: np.ndarray, candidates: RawCandidates,
                 class_names: list[str] | None = None) -> None:
        """Show ``image_rgb`` (uint8 [H, W, 3]) and its pre-NMS ``candidates`` (pixel xyxy)."""
        self._pixmap_item.setPixmap(_rgb_to_pixmap(image_rgb))
        self.scene.setSceneRect(self._pixmap_item.boundingRect())
        self._candidates = candidates
        self._class_names = list(class_names or [])
        for item in self._box_items:
            if item is not None:
                self.scene.removeItem(item)
        self._box_items = [None] * len(candidates)
        self._applied = 0
        self._rerun()
        self.view.fit()

    @property
    def trace(self) -> NmsTrace:
        return self._trace

    @property
    def steps_applied(self) -> int:
        return self._applied

    def kept_indices(self) -> list[int]:
        """Candidate indices kept so far, in the order NMS kept them."""
        return [s.kept for s in self._trace.steps[: self._applied]]

    def set_iou_threshold(self, value: float) -> None:
        self.iou_slider.setValue(int(round(value * 100)))

    def set_score_threshold(self, value: float) -> None:
        self.score_slider.setValue(int(round(value * 100)))

    def step(self) -> None:
        if self._applied < len(self._trace.steps):
            self._applied += 1
            self._redraw()

    def back(self) -> None:
        if self._applied > 0:
            self._applied -= 1
            self._redraw()

    def run_all(self) -> None:
        self._applied = len(self._trace.steps)
        self._redraw()

    def reset(self) -> None:
        self._applied = 0
        self._redraw()

    # -- internals ----------------------------------------------------------------------------
    def _iou(self) -> float:
        return self.iou_slider.value() / 100

    def _score(self) -> float:
        return self.score_slider.value() / 100

    def _name(self, label: int) -> str:
        return self._class_names[label] if 0 <= label < len(self._class_names) else f"class_{label}"

    def _rerun(self, *_):
        """Recompute the trace for the current thresholds; stay at the same step if possible."""
        self.iou_label.setText(f"IoU > {self._iou():.2f}")
        self.score_label.setText(f"score ≥ {self._score():.2f}")
        c = self._candidates
        self._trace = nms_trace(c.boxes, c.scores, c.labels, self._iou(), self._score(),
                                class_agnostic=self.agnostic_box.isChecked())
        self._applied = min(self._applied, len(self._trace.steps))
        self._redraw()

    def _redraw(self) -> None:
        trace, k = self._trace, self._applied
        states = trace.states_after(k)
        current = trace.steps[k - 1] if k > 0 else None
        just_suppressed = set(current.suppressed.tolist()) if current else set()
        for tag in self._tags:
            self.scene.removeItem(tag)
        self._tags = []

        shown = states != CandidateState.BELOW_SCORE
        for i, item in enumerate(self._box_items):
            if item is not None and not shown[i]:
                item.setVisible(False)
        for i in np.flatnonzero(shown).tolist():
            item = self._box_item(i)
            state = int(states[i])
            item.setVisible(True)
            if current is not None and i == current.kept:
                item.setPen(_pen(COLOURS["current"], 3.5))
                item.setZValue(5)
            elif i in just_suppressed:
                item.setPen(_pen(COLOURS["suppressing"], 2.5, dashed=True))
                item.setZValue(4)
            elif state == CandidateState.KEPT:
                item.setPen(_pen(COLOURS["kept"], 2.5))
                item.setZValue(3)
            elif state == CandidateState.SUPPRESSED:
                item.setPen(_pen(COLOURS["suppressed"], 1.2, dashed=True))
                item.setZValue(1)
            else:
                item.setPen(_pen(COLOURS["pending"], 1.5))
                item.setZValue(2)

        for i in trace.keep[:k].tolist():
            colour = COLOURS["current"] if current is not None and i == current.kept else COLOURS["kept"]
            self._add_tag(i, f"{self._name(int(self._candidates.labels[i]))} "
                             f"{self._candidates.scores[i]:.2f}", colour, above=True)
        if current is not None:
            for j, iou in self._tagged_comparisons(current):
                colour = COLOURS["suppressing"] if j in just_suppressed else COLOURS["pending"]
                self._add_tag(j, "IoU —" if np.isnan(iou) else f"IoU {iou:.2f}", colour, above=False)
        self._place_tags()
        self._update_status(current)
        self.step_button.setEnabled(k < len(trace.steps))
        self.run_button.setEnabled(k < len(trace.steps))
        self.back_button.setEnabled(k > 0)
        self.reset_button.setEnabled(k > 0)
        self.changed.emit(k, len(trace.steps))

    def _box_item(self, i: int) -> QGraphicsRectItem:
        """The rectangle of candidate ``i``, made on first use."""
        item = self._box_items[i]
        if item is None:
            x1, y1, x2, y2 = self._candidates.boxes[i].tolist()
            item = self._box_items[i] = QGraphicsRectItem(QRectF(x1, y1, x2 - x1, y2 - y1))
            self.scene.addItem(item)
        return item

    @staticmethod
    def _tagged_comparisons(current, limit: int = 40) -> list[tuple[int, float]]:
        """Compared boxes worth a tag: those touching the kept box, highest IoU first.

        Boxes that do not overlap it (IoU 0) would only add clutter; the side panel lists them.
        """
        pairs = [(j, iou) for j, iou in zip(current.considered.tolist(), current.ious.tolist())
                 if not iou <= 0.0]  # keeps NaN (two empty boxes) visible
        pairs.sort(key=lambda p: -p[1] if p[1] == p[1] else 0.0)
        return pairs[:limit]

    def _add_tag(self, index: int, text: str, colour: QColor, above: bool) -> None:
        tag = _Tag(text, colour, (index, above))
        self.scene.addItem(tag)
        self._tags.append(tag)

    def _place_tags(self) -> None:
        """Put each tag at its box and push it down until it overlaps no earlier tag.

        Tags ignore zoom (they stay readable), so their size in scene pixels depends on the
        current zoom: this runs again whenever the view is resized.
        """
        scale = self.view.transform().m11() or 1.0
        bottom = self.scene.sceneRect().bottom()
        placed: list[QRectF] = []
        for tag in self._tags:
            index, above = tag.anchor
            x1, y1, x2, y2 = self._candidates.boxes[index].tolist()
            w, h = tag.rect().width() / scale, tag.rect().height() / scale
            # The kept box's name sits inside its top-left corner, an IoU just below its box.
            start = QRectF(x1, min(y1 if above else y2, bottom - h), w, h)
            rect = self._free_spot(start, placed, bottom, 1) or self._free_spot(
                start, placed, bottom, -1) or start
            tag.setPos(rect.topLeft())
            placed.append(QRectF(rect))

    def _comparison_lines(self, current, limit: int = 8) -> str:
        """HTML list: each compared box, its IoU with the kept box, and the verdict."""
        suppressed = set(current.suppressed.tolist())
        lines = []
        for j, iou in list(zip(current.considered.tolist(), current.ious.tolist()))[:limit]:
            verdict = ("<span style='color:#d32f2f'>suppressed</span>" if j in suppressed
                       else "stays")
            value = "—" if np.isnan(iou) else f"{iou:.2f}"
            lines.append(f"&nbsp;&nbsp;#{j} {self._name(int(self._candidates.labels[j]))} "
                         f"{self._candidates.scores[j]:.2f}: IoU {value} → {verdict}")
        more = len(current.considered) - limit
        if more > 0:
            lines.append(f"&nbsp;&nbsp;… and {more} more")
        return "<br>".join(lines) + ("<br>" if lines else "")

    @staticmethod
    def _free_spot(rect: QRectF, placed: list[QRectF], bottom: float, direction: int):
        """Slide ``rect`` down (direction 1) or up (-1) past placed tags; None if it leaves the
        image."""
        rect = QRectF(rect)
        while True:
            hit = next((r for r in placed if r.intersects(rect)), None)
            if hit is None:
                return rect
            rect.moveTop(hit.bottom() + 1e-3 if direction > 0 else hit.top() - rect.height() - 1e-3)
            if rect.bottom() > bottom or rect.top() < 0:
                return None

    def _update_status(self, current) -> None:
        trace, k = self._trace, self._applied
        n_active = len(trace.order)
        head = (f"{len(self._candidates)} candidates, {n_active} with score ≥ "
                f"{trace.score_threshold:.2f}.<br>")
        if not n_active:
            self.status.setText(head + "Nothing to do: lower the score threshold.")
            return
        if current is None:
            rule = ("any class" if trace.class_agnostic else "the same class")
            text = (f"Press <b>Step</b>: NMS keeps the highest-scoring box, then removes every "
                    f"box of {rule} overlapping it with IoU &gt; {trace.iou_threshold:.2f}, "
                    f"and repeats with what is left.")
            self.status.setText(head + text)
            return
        name = self._name(current.label)
        n_sup = len(current.suppressed)
        pending = int((trace.states_after(k) == CandidateState.PENDING).sum())
        text = (f"<b>Step {k} of {len(trace.steps)}</b>: keep <b>{name} {current.score:.2f}</b> "
                f"(box #{current.kept}).<br>Compared with {len(current.considered)} box(es); "
                f"{n_sup} with IoU &gt; {trace.iou_threshold:.2f} suppressed.<br>")
        text += self._comparison_lines(current)
        if k == len(trace.steps):
            text += (f"<b>Done</b>: {len(trace.keep)} kept, "
                     f"{len(trace.suppressed_by)} suppressed.")
        else:
            text += f"{pending} box(es) still undecided."
        self.status.setText(head + text)
