"""The Models menu's detector views: their actions, their docks, and what they share.

``ModelsController(window)`` adds one QAction per view to ``window.actions_by_name`` (group
"Models", so F1's help lists them with their shortcuts), builds each dock on first use (the views
import the engine's detector code, which takes seconds, so the window does not pay at start),
and tells the open docks when the workbench opens another image. Docks start floating, as
non-modal windows big enough for an image and its controls; they can be docked like any panel.

Shared state lives here: the project store (read only from the GUI thread), a job bridge for
the per-image view jobs (evaluation uses the window's, see app.views.model_docks), the detector
files the user opened this session (listed first in every picker), the user's folder for
pretrained weights (Models > Pretrained models; kept in the window's settings), and the device
("auto": CUDA, then MPS, then CPU).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget

from app.controllers.actions import ActionSpec
from app.jobs_bridge import JobBridge

# name, menu text, shortcuts, group, tip. Ctrl+Shift+letter: single letters and Ctrl+letter are
# taken by the annotation tools and edits (app/controllers/actions.py).
VIEW_SPECS = (
    ActionSpec("nms_view", "NMS step by step…", ("Ctrl+Shift+N",), "Models",
               "Run a detector on this image and step through greedy non-maximum suppression"),
    ActionSpec("inside_rcnn", "Inside R-CNN…", ("Ctrl+Shift+R",), "Models",
               "Anchors, RPN objectness, proposals before/after NMS, RoI Align vs RoI Pool"),
    ActionSpec("yolo_grid", "YOLO grid…", ("Ctrl+Shift+Y",), "Models",
               "Our YOLO's S×S grid on this image: per-cell boxes and confidences"),
    ActionSpec("compare_detectors", "Compare detectors…", ("Ctrl+Shift+C",), "Models",
               "2–4 detectors side by side on this image: TP/FP/misses, latency, thresholds"),
    ActionSpec("evaluate_detector", "Evaluate detector…", ("Ctrl+Shift+E",), "Models",
               "COCO AP per class, precision–recall curves and confusion matrix on a split"),
    ActionSpec("verify_identities", "Verify identities…", ("Ctrl+Shift+D",), "Models",
               "Siamese: distance of two pictures, the τ verdict, ROC with EER and an N-way one-shot test"),
    ActionSpec("image_search", "Image search…", ("Ctrl+Shift+J",), "Models",
               "Siamese: the project's pictures nearest to the selected shape or the current image"),
)

DOCK_TITLES = {"nms_view": "NMS", "inside_rcnn": "Inside R-CNN", "yolo_grid": "YOLO grid",
               "compare_detectors": "Compare detectors", "evaluate_detector": "Evaluate",
               "verify_identities": "Verify identities", "image_search": "Image search"}
DOCK_SIZES = {"compare_detectors": (1400, 760), "evaluate_detector": (1100, 760), "verify_identities": (900, 760),
              "image_search": (1000, 620)}
DEFAULT_SIZE = (1150, 720)
MODEL_FOLDER_KEY = "models/pretrained_folder"  # settings key; unset: torch's hub cache


def _dock_class(name: str):
    from app.views import model_docks as d
    from app.views import siamese_docks as s

    return {"nms_view": d.NmsDock, "inside_rcnn": d.InsideRcnnDock, "yolo_grid": d.YoloGridDock,
            "compare_detectors": d.CompareDock, "evaluate_detector": d.EvaluateDock,
            "verify_identities": s.VerificationDock, "image_search": s.SearchDock}[name]


def make_action(spec: ActionSpec, parent) -> QAction:
    """A QAction described the way ``app.controllers.actions.build_actions`` describes its own."""
    act = QAction(spec.text, parent)
    act.setObjectName(spec.name)
    act.setShortcuts([QKeySequence(k) for k in spec.shortcuts])
    keys = " or ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in spec.shortcuts)
    act.setToolTip(f"{spec.text} ({keys})" if keys else spec.text)
    act.setStatusTip(spec.tip)
    act.setProperty("group", spec.group)
    act.setProperty("tip", spec.tip)
    act.setProperty("command", spec.text)
    parent.addAction(act)
    return act


class ModelsController(QObject):
    """Owns the detector docks of one MainWindow. ``open_view(name)`` -> the dock's widget."""

    def __init__(self, window, device: str = "auto") -> None:
        super().__init__(window)
        self.window = window
        self.device = device
        self.recent: list[str] = []
        self._model_folder: str | None = None  # when the window keeps no settings (tests)
        self.views: dict[str, object] = {}
        # per-image view jobs (seconds each, one per image step): reported in the docks' own
        # status lines, so the Jobs panel does not pop up and fill with a row per image
        self.jobs = JobBridge(self)
        self.actions: dict[str, QAction] = {}
        for spec in VIEW_SPECS:
            act = make_action(spec, window)
            act.triggered.connect(lambda _=False, n=spec.name: self.open_view(n))
            self.actions[spec.name] = act
        window.controller.imageOpened.connect(self._image_opened)
        # a training job of the window writes a new checkpoint under models/: list it at once
        window.jobs.finished.connect(lambda *_: self.refresh_detectors())

    # -- what the docks share ----------------------------------------------------------------------
    @property
    def store(self):
        return self.window.store

    @property
    def window_jobs(self):
        """The window's bridge: long work (evaluating a split) that the Jobs panel shows."""
        return self.window.jobs

    def current_record(self):
        return self.window.controller.image

    def models_folder(self) -> Path:
        """Where the Train panel writes checkpoints: <project folder>/models."""
        return Path(self.store.root) / "models"

    def model_folder(self) -> Path | None:
        """The folder the user chose for pretrained weights, or None (torch's hub cache)."""
        settings = self.window.layout_settings
        value = settings.value(MODEL_FOLDER_KEY) if settings is not None else self._model_folder
        return Path(str(value)) if value else None

    def set_model_folder(self, folder) -> None:
        self._model_folder = str(folder) if folder else None
        settings = self.window.layout_settings
        if settings is not None:
            settings.setValue(MODEL_FOLDER_KEY, self._model_folder or "")
        self.refresh_detectors()

    def detector_files(self) -> list[Path]:
        """Detectors opened this session (most recent first), those under models/ (newest first),
        then torchvision COCO weights in the user's model folder and torch's hub cache."""
        from engine.infer.views_api import list_detector_files, torchvision_cache_files

        seen, out = set(), []
        found = list_detector_files(self.models_folder()) + torchvision_cache_files(self.model_folder())
        for path in [Path(p) for p in self.recent] + found:
            key = str(path.resolve()) if path.exists() else str(path)
            if key not in seen:
                seen.add(key)
                out.append(path)
        return out

    def no_detector_hint(self) -> str:
        """The end of a "pick a detector" sentence: where detectors come from when none is known."""
        if self.detector_files():
            return "."
        return (f" — none yet: train one with Models > Train & predict (Ctrl+T; it is saved under "
                f"{self.models_folder()}), get a COCO detector with Models > Pretrained models, or "
                f"Browse… for a checkpoint, an Ultralytics ONNX export or a torchvision .pth.")

    def display_name(self, path) -> str:
        path = Path(path)
        try:
            return str(path.relative_to(self.store.root))
        except ValueError:
            return path.name

    def remember_detector(self, path) -> None:
        path = str(path)
        if path in self.recent:
            self.recent.remove(path)
        self.recent.insert(0, path)
        del self.recent[10:]

    def ground_truth(self, record):
        """(boxes float64 [G, 4] xyxy pixels, class names [G]) of ``record``'s ground-truth objects
        (``engine.data.objects``: the objects every evaluation scores against)."""
        from engine.data.objects import ground_truth_boxes

        names = {c.id: c.name for c in self.store.categories()}
        return ground_truth_boxes(self.store.annotations(record.id), names, record.height, record.width)

    def colors_for(self, class_names) -> list[str]:
        """The project's colour of each class name (the palette's colour for unknown names)."""
        from engine.annotations.model import default_color

        by_name = {c.name: c.color for c in self.store.categories()}
        return [by_name.get(n) or default_color(i) for i, n in enumerate(class_names)]

    # -- docks -----------------------------------------------------------------------------------
    def open_view(self, name: str):
        """Show the dock of view ``name`` (a VIEW_SPECS name), building it on first use, and run
        it on the current image. Returns the dock's widget, or None when it cannot be built."""
        title = DOCK_TITLES[name]
        if name not in self.views:
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                widget = _dock_class(name)(self)
            except Exception as exc:  # noqa: BLE001 - a broken model install must not take the window down
                self.window._show_failure(f"Cannot open {title}", f"{type(exc).__name__}: {exc}")
                return None
            finally:
                QApplication.restoreOverrideCursor()
            self.views[name] = widget
            dock = self.window.add_panel(title, widget)
            dock.setFloating(True)
            w, h = DOCK_SIZES.get(name, DEFAULT_SIZE)
            geo = self.window.geometry()
            dock.resize(min(w, max(geo.width() - 40, 640)), min(h, max(geo.height() - 40, 480)))
            dock.move(geo.x() + 30 + 25 * len(self.views), geo.y() + 60 + 25 * len(self.views))
            dock.visibilityChanged.connect(lambda visible, n=name: visible and self._shown(n))
        widget = self.views[name]
        dock: QDockWidget = self.window.docks[title]
        widget.refresh_detectors()
        dock.show()
        dock.raise_()
        self._shown(name)
        return widget

    def _shown(self, name: str) -> None:
        """A dock became visible: bring it to the current image if it follows and shows another."""
        widget = self.views[name]
        record = self.current_record()
        if not widget.follows_image:
            return
        if widget.busy():
            return
        if widget.record is None or (widget.follow_check.isChecked() and record is not None
                                     and widget.record.id != record.id):
            if record is not None:
                widget.show_record(record)

    def _image_opened(self, record, _annotations) -> None:
        for name, widget in self.views.items():
            dock = self.window.docks.get(DOCK_TITLES[name])
            if dock is not None and dock.isVisible():
                widget.image_changed(record)

    def refresh_detectors(self) -> None:
        """Every open dock's picker lists the detector files as they are now."""
        for widget in self.views.values():
            widget.refresh_detectors()

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Cancel every view job and wait for their threads; True when all ended."""
        for widget in self.views.values():
            widget.shutdown()
        return self.jobs.shutdown(timeout)
