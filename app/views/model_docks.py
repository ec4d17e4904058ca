"""The detector views as workbench docks: pick a detector, follow the current image, run in the background.

Each dock wraps one teaching view (NMS steps, inside R-CNN, YOLO grid, compare, evaluation) with
what the workbench adds: a detector picker (files under the project's ``models/`` folder, files
the user browsed to, ONNX exports), the name of the image shown (the workbench's current image
unless "follow" is off), a status line with errors in red, and jobs on a JobBridge (a newer request
cancels the older one, and an answer for an image that is no longer asked for is dropped). The
per-image jobs report in the dock's status line, not in the Jobs panel, which would otherwise
pop up and fill with a row at every image step; evaluating a split is long work and goes to the
window's bridge and Jobs panel, like training. The views themselves stay reusable without a window.

``context`` is an :class:`app.controllers.models_controller.ModelsController` (store, jobs,
recent detectors, device).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel, QPushButton,
                               QVBoxLayout, QWidget)

from engine.jobs import Job

DETECTOR_FILTER = "Detectors (*.ckpt *.onnx *.pth *.pt);;All files (*)"


def _stamp(path: str | None):
    """(mtime, size) of a detector file, None when absent: a rewritten file is loaded again."""
    try:
        st = Path(path).stat() if path else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size) if st else None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class DetectorDock(QWidget):
    """Base of the docks: bar (detector, Browse, Run, follow), image line, status, the view.

    Subclasses give ``make_job(rec, image_path, detector, predictor) -> Job`` and
    ``show_result(rec, result)``. Signals: ``ready()`` after a result is shown, ``failed(str)``.
    """

    ready = Signal()
    failed = Signal(str)
    title = "Detector"
    uses_detector = True
    follows_image = True
    long_jobs = False  # True: jobs go to the window's bridge and its Jobs panel (evaluation)
    # the first pick: the newest file whose name holds one of these (the Train panel names its
    # checkpoints "<family>-<time>.ckpt"), else the newest file
    prefer: tuple[str, ...] = ()

    def __init__(self, context, view: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.view = view
        self.record = None  # the ImageRecord shown (or being read)
        self.predictor = None
        self.predictor_path: str | None = None
        self.last_result: dict | None = None
        self.last_error: str | None = None
        self._job_id: int | None = None
        self._job_detector: str | None = None
        self._predictor_stamp = None
        self._rerun = False
        self.bridge = context.window_jobs if self.long_jobs else context.jobs

        self.detector_combo = QComboBox()
        self.detector_combo.setMinimumWidth(260)
        self.detector_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.detector_combo.setToolTip("Detectors under the project's models/ folder and files opened before")
        self.browse_button = QPushButton("Browse…")
        self.browse_button.setToolTip("Open a checkpoint, an Ultralytics ONNX export or a torchvision .pth")
        self.run_button = QPushButton("Run")
        self.follow_check = QCheckBox("follow current image")
        self.follow_check.setChecked(self.follows_image)
        self.follow_check.setToolTip("Run again whenever the workbench opens another image")
        self.image_label = QLabel("no image")
        self.image_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.bar = QHBoxLayout()
        if self.uses_detector:
            self.bar.addWidget(QLabel("Detector"))
            self.bar.addWidget(self.detector_combo, 1)
            self.bar.addWidget(self.browse_button)
        self.bar.addWidget(self.run_button)
        if self.follows_image:
            self.bar.addWidget(self.follow_check)
        self.bar.addStretch(0)
        info = QHBoxLayout()
        info.addWidget(self.image_label)
        info.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(self.bar)
        layout.addLayout(info)
        layout.addWidget(view, 1)

        self.browse_button.clicked.connect(self.browse)
        self.run_button.clicked.connect(self.run)
        self.detector_combo.activated.connect(lambda _i: self.run())
        self.follow_check.toggled.connect(self._follow_toggled)
        self.bridge.finished.connect(self._on_finished)
        self.bridge.progress.connect(self._on_progress)
        self.refresh_detectors()

    # -- detectors -------------------------------------------------------------------------------
    def refresh_detectors(self) -> None:
        """Fill the picker: recent files first, then the project's models/ folder; keep the choice."""
        current = self.detector_path()
        self.detector_combo.blockSignals(True)
        self.detector_combo.clear()
        self.detector_combo.addItem("(none: image only)", None)
        for path in self.context.detector_files():
            self.detector_combo.addItem(self.context.display_name(path), str(path))
            self.detector_combo.setItemData(self.detector_combo.count() - 1, str(path), Qt.ItemDataRole.ToolTipRole)
        index = self.detector_combo.findData(current) if current else -1
        if index < 0 and self.detector_combo.count() > 1:
            names = [Path(self.detector_combo.itemData(i)).name.lower() for i in range(1, self.detector_combo.count())]
            index = next((i + 1 for i, n in enumerate(names) if any(p in n for p in self.prefer)), 1)
        self.detector_combo.setCurrentIndex(max(index, 0))
        self.detector_combo.blockSignals(False)

    def detector_path(self) -> str | None:
        return self.detector_combo.currentData()

    def set_detector(self, path, run: bool = True) -> None:
        """Pick the detector file ``path`` (remembered as recent) and, by default, run it."""
        self.context.remember_detector(path)
        self.refresh_detectors()
        self.detector_combo.setCurrentIndex(self.detector_combo.findData(str(path)))
        if run:
            self.run()

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a detector", str(self.context.models_folder()),
                                              DETECTOR_FILTER)
        if path:
            self.set_detector(path)

    # -- images and runs -------------------------------------------------------------------------
    def image_changed(self, record) -> None:
        """The workbench opened ``record``: run on it when following (and shown)."""
        if self.follow_check.isChecked() and record is not None:
            self.show_record(record)

    def _follow_toggled(self, on: bool) -> None:
        if on and self.context.current_record() is not None:
            self.show_record(self.context.current_record())
        else:
            self._update_image_label()

    def show_record(self, record) -> None:
        self.record = record
        self._update_image_label()
        self.run()

    def _update_image_label(self) -> None:
        if self.record is None:
            self.image_label.setText("no image")
            return
        how = "current image" if self.follow_check.isChecked() else "pinned"
        self.image_label.setText(f"<b>{_escape(Path(self.record.path).name)}</b> ({how})")

    def run(self) -> int | None:
        """Start the job for the image and detector chosen; returns its id.

        None without an image, and while an older job still runs: that one is cancelled and this
        request starts when it has ended, because it may be using the same predictor (a model
        is not safe to run from two threads at once).
        """
        if self.record is None:
            self.record = self.context.current_record()
            self._update_image_label()
        if self.record is None:
            self.set_status("Open an image in the workbench first.", error=True)
            return None
        if self._job_id is not None:
            self.bridge.cancel(self._job_id)
            self._rerun = True
            return None
        path = self.detector_path()
        stamp = _stamp(path)
        if (path, stamp) != (self.predictor_path, self._predictor_stamp):  # another file, or rewritten
            self.predictor, self.predictor_path, self._predictor_stamp = None, path, stamp
        job = self.make_job(self.record, str(self.context.store.image_path(self.record)), path, self.predictor)
        self._job_id = self.bridge.submit(job)
        self._job_detector = path
        what = Path(path).name if path else "no detector"
        self.set_status(f"running {_escape(what)} on {_escape(Path(self.record.path).name)}…")
        return self._job_id

    def busy(self) -> bool:
        return self._job_id is not None

    def _on_progress(self, job_id: int, progress) -> None:
        if job_id == self._job_id and progress.message and not self._rerun:
            self.set_status(f"{_escape(progress.message)}…")

    def _on_finished(self, job_id: int, outcome) -> None:
        if job_id != self._job_id:
            return
        self._job_id = None
        result = outcome.result if outcome.state == "finished" else None
        if result and result.get("predictor") is not None and self._job_detector == self.predictor_path:
            self.predictor = result["predictor"]  # loaded once, kept for the next images
        if self._rerun:  # a newer request waited for this job: its answer is stale
            self._rerun = False
            self.run()
            return
        if result is None:
            if outcome.state == "failed":
                self.last_error = str(outcome.error or "failed")
                self.set_status(self._readable(self.last_error), error=True)
                self.failed.emit(self.last_error)
            return
        self.last_result, self.last_error = result, None
        self.set_status("")
        try:
            shown = self.show_result(self.record, result)
        except (ValueError, KeyError, IndexError) as exc:  # a view refusing the data: say so, never crash
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.set_status(self._readable(self.last_error), error=True)
            self.failed.emit(self.last_error)
            return
        if shown is not False:  # False: the view goes on working (compare runs its detectors)
            self.ready.emit()

    @staticmethod
    def _readable(error: str) -> str:
        """'DetectorLoadError: /p/x.onnx: ...' -> the message without the Python type name."""
        head, sep, rest = error.partition(": ")
        return rest if sep and head.isidentifier() and head[:1].isupper() else error

    def set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(f"<span style='color:#d32f2f'>{_escape(text)}</span>" if error else text)
        self.status.setToolTip(self.status.text() if error else "")

    def note_classes(self, class_names, prefix: str = "") -> None:
        """Status: the detector's latency/notes and a warning if its classes are not the project's."""
        from engine.infer.views_api import class_mismatch

        warning = class_mismatch(class_names, [c.name for c in self.context.store.categories()])
        text = _escape(prefix)
        if warning:
            text += (" · " if text else "") + f"<span style='color:#e65100'>⚠ {_escape(warning)}</span>"
        self.set_status(text)

    # -- for subclasses --------------------------------------------------------------------------
    def make_job(self, record, image_path: str, detector: str | None, predictor) -> Job:
        raise NotImplementedError

    def show_result(self, record, result: dict) -> bool | None:
        """Show a finished job's result; return False when the view is not done yet."""
        raise NotImplementedError

    def shutdown(self) -> None:
        self._rerun = False
        if self._job_id is not None:
            self.bridge.cancel(self._job_id)
            self._job_id = None


class NmsDock(DetectorDock):
    """NMS step by step on the current image's candidates (``app.views.nms_view.NmsStepView``)."""

    title = "NMS"

    def __init__(self, context, parent: QWidget | None = None) -> None:
        from app.views.nms_view import NmsStepView

        super().__init__(context, NmsStepView(), parent)

    def make_job(self, record, image_path, detector, predictor) -> Job:
        from engine.infer.views_api import candidates_job

        return Job("NMS: candidates", candidates_job, image_path=image_path, detector_path=detector,
                   predictor=predictor, device=self.context.device)

    def show_result(self, record, result) -> None:
        from engine.infer.detections import RawCandidates

        raw = result["raw"]
        predictor = result["predictor"]
        names = list(predictor.class_names) if predictor is not None else []
        empty = RawCandidates(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
        self.view.set_data(result["image"], raw if raw is not None else empty, names)
        if predictor is None:
            self.set_status("Pick a detector to see its candidates" + self.context.no_detector_hint())
            return
        note = f"{predictor.name}: {len(raw)} candidates before NMS, {result['latency_ms']:.0f} ms"
        threshold = self.view.score_slider.value() / 100
        if len(raw) and float(raw.scores.max()) < threshold:
            # a barely trained model: show its best candidates rather than an empty picture
            lowered = max(0.0, np.floor(float(raw.scores.max()) * 20) / 20)
            self.view.set_score_threshold(lowered)
            note += f"; none reached score {threshold:.2f}, threshold lowered to {lowered:.2f}"
        self.note_classes(names, note)


class YoloGridDock(DetectorDock):
    """Our YOLO's grid, per-cell boxes and confidences (``app.views.yolo_grid_view.YoloGridView``)."""

    title = "YOLO grid"
    prefer = ("yolo",)

    def __init__(self, context, parent: QWidget | None = None) -> None:
        from app.views.yolo_grid_view import YoloGridView

        super().__init__(context, YoloGridView(bridge=context.jobs, device=context.device), parent)

    def make_job(self, record, image_path, detector, predictor) -> Job:
        from engine.infer.views_api import yolo_grid_job

        gt, _names = self.context.ground_truth(record)
        return Job("YOLO grid", yolo_grid_job, image_path=image_path, detector_path=detector, predictor=predictor,
                   gt_boxes=gt, device=self.context.device)

    def show_result(self, record, result) -> None:
        predictor = result["predictor"]
        names = list(predictor.class_names) if predictor is not None else []
        gt, _ = self.context.ground_truth(record)
        self.view.set_data(result["image"], result["explanation"], names, self.context.colors_for(names), gt)
        if predictor is None:
            self.set_status("Pick a YOLO checkpoint (family 'yolo') to see its grid" + self.context.no_detector_hint())
        else:
            self.note_classes(names, predictor.name)


class InsideRcnnDock(DetectorDock):
    """Anchors, objectness, proposals, RoI Align vs Pool (``app.views.inside_rcnn.InsideRcnnView``)."""

    title = "Inside R-CNN"
    prefer = ("rcnn",)

    def __init__(self, context, parent: QWidget | None = None) -> None:
        from app.views.inside_rcnn import InsideRcnnView

        super().__init__(context, InsideRcnnView(), parent)

    def make_job(self, record, image_path, detector, predictor) -> Job:
        from engine.infer.views_api import rcnn_inspection_job

        return Job("inside R-CNN", rcnn_inspection_job, image_path=image_path, detector_path=detector,
                   predictor=predictor, device=self.context.device)

    def show_result(self, record, result) -> None:
        if result["inspection"] is None:
            self.view.set_image(result["image"])
            self.set_status("Pick a Faster or Mask R-CNN checkpoint to look inside it"
                            + self.context.no_detector_hint())
            return
        self.view.set_inspection(result["inspection"])
        self.note_classes(result["predictor"].class_names, f"{result['predictor'].name} · click the image "
                                                            f"to show the anchors of that cell")


class CompareDock(DetectorDock):
    """2-4 detectors side by side (``app.views.compare_view.CompareView``): the dock reads the
    image and its ground truth in the background, the view runs the detectors."""

    title = "Compare"
    uses_detector = False

    def __init__(self, context, parent: QWidget | None = None) -> None:
        from app.views.compare_view import CompareView

        view = CompareView(bridge=context.jobs, device=context.device)
        super().__init__(context, view, parent)
        # one tool row: the view's own (picker, Add, Browse, Run) gets the follow switch
        self.run_button.hide()
        view.bar.insertWidget(view.bar.indexOf(view.gt_check) + 1, self.follow_check)
        view.ran.connect(self._ran)
        view.ran.connect(self.ready)

    def refresh_detectors(self) -> None:
        self.view.picker.clear()
        for path in self.context.detector_files():
            self.view.picker.addItem(self.context.display_name(path), str(path))

    def detector_path(self) -> str | None:
        return None

    def set_detector(self, path, run: bool = True) -> None:
        """Add the detector file ``path`` as a panel (at most four)."""
        self.context.remember_detector(path)
        self.refresh_detectors()
        if self.view.add_detector(path) is None:
            self.set_status("At most four detectors: remove one first (✕ on its panel).", error=True)
        elif run and self.view.image is not None:
            self.view.run()

    def _ran(self) -> None:
        rows = self.view.results()
        failed = [r["name"] for r in rows if r["error"]]
        text = f"{len(self.view.gt_boxes)} ground-truth objects; {len(rows) - len(failed)} detector(s) ran"
        if failed:
            self.set_status(text + f"; {len(failed)} failed (see its panel): {', '.join(failed)}", error=True)
            return
        from engine.infer.views_api import class_mismatch

        categories = [c.name for c in self.context.store.categories()]
        strangers = [p.name for p in self.view.panels if p.predictor is not None
                     and class_mismatch(p.predictor.class_names, categories)]
        text = _escape(text + ". Move a panel's sliders to re-filter; the wheel zooms all panels.")
        if strangers:  # classes are matched by name: another project's model scores only FPs
            text += (f" <span style='color:#e65100'>⚠ {_escape(', '.join(strangers))}: classes that are not "
                     f"categories of this project count as false positives</span>")
        self.set_status(text)

    def make_job(self, record, image_path, detector, predictor) -> Job:
        from engine.infer.views_api import candidates_job

        return Job("compare: read image", candidates_job, image_path=image_path)

    def show_result(self, record, result) -> None:
        gt, names = self.context.ground_truth(record)
        self.view.set_image(result["image"], gt, names)
        if self.view.panels:
            self.view.run()
            self.set_status(f"{len(gt)} ground-truth objects; running {len(self.view.panels)} detector(s)…")
            return False  # `ready` comes with the view's `ran`
        self.set_status(f"{len(gt)} ground-truth objects. Add 2–4 detectors (Add / Browse…), then Run"
                        + self.context.no_detector_hint())
        return None


class EvaluateDock(DetectorDock):
    """COCO AP per class, PR curves and the confusion matrix of a detector on a split
    (``app.views.pr_curves.PrCurvesView``). It does not follow the image: it scores a whole split."""

    title = "Evaluate"
    follows_image = False
    long_jobs = True

    def __init__(self, context, parent: QWidget | None = None) -> None:
        from app.views.pr_curves import PrCurvesView

        super().__init__(context, PrCurvesView(), parent)
        self.split_combo = QComboBox()
        for label, split in (("val split", "val"), ("test split", "test"), ("train split", "train"),
                             ("all images", None)):
            self.split_combo.addItem(label, split)
        self.bar.insertWidget(self.bar.indexOf(self.run_button), self.split_combo)
        self.run_button.setText("Evaluate")
        self.image_label.setText("whole split")
        self.detector_combo.activated.disconnect()  # evaluating takes a while: only on request
        # the confusion matrix's cut-offs: recounted from the stored detections, no new run
        self.result: dict | None = None
        self.confusion_score = QDoubleSpinBox()
        self.confusion_iou = QDoubleSpinBox()
        for box, value, tip in ((self.confusion_score, 0.3, "Detections scoring below this are left out of "
                                 "the confusion matrix (AP uses every detection)"),
                                (self.confusion_iou, 0.5, "A detection matches a ground-truth box at this IoU "
                                 "or more")):
            box.setRange(0.0, 1.0)
            box.setSingleStep(0.05)
            box.setDecimals(2)
            box.setValue(value)
            box.setToolTip(tip)
            box.valueChanged.connect(self.recount_confusion)
        at = self.bar.indexOf(self.run_button) + 1
        for i, widget in enumerate((QLabel("confusion: score ≥"), self.confusion_score, QLabel("IoU ≥"),
                                    self.confusion_iou)):
            self.bar.insertWidget(at + i, widget)

    def image_changed(self, record) -> None:
        pass

    def run(self) -> int | None:
        path = self.detector_path()
        if not path:
            self.set_status("Pick a detector to evaluate.", error=True)
            return None
        from engine.eval.detection import evaluate_job

        if self._job_id is not None:
            self.bridge.cancel(self._job_id)
        split = self.split_combo.currentData()
        self.image_label.setText(f"<b>{self.split_combo.currentText()}</b>")
        self._job_id = self.bridge.submit(Job(f"evaluate {Path(path).name}", evaluate_job, checkpoint=path,
                                              project=str(self.context.store.path), split=split,
                                              device=self.context.device))
        self.set_status(f"evaluating {_escape(Path(path).name)} on the {_escape(self.split_combo.currentText())}…")
        return self._job_id

    def show_result(self, record, result) -> None:
        names = result["class_names"]
        self.view.set_evaluation(result["box"], self.context.colors_for(names), result.get("mask"))
        self.result = result
        for box, key in ((self.confusion_score, "confusion_score"), (self.confusion_iou, "confusion_iou")):
            if result.get(key) is not None:
                box.blockSignals(True)
                box.setValue(float(result[key]))
                box.blockSignals(False)
        self.recount_confusion()

    def recount_confusion(self, *_args) -> None:
        """The confusion matrix at the cut-offs shown (the detections of the last run, recounted)."""
        result = self.result
        if result is None:
            return
        from engine.eval.confusion import confusion_over

        score, iou = self.confusion_score.value(), self.confusion_iou.value()
        pairs = result.get("confusion_pairs")
        matrix = (confusion_over(pairs, len(result["class_names"]), iou, score) if pairs is not None
                  else result["confusion"])
        self.view.set_confusion(matrix, result["labels"])
        top = result.get("top_score")
        note = (f"; the best detection scores {top:.2f}, below the confusion's score cut-off {score:.2f}: every "
                "object counts as missed — lower the cut-off" if top is not None and top < score else "")
        self.set_status(f"{result.get('images', '?')} images, {result.get('seconds', 0):.1f} s · confusion at "
                        f"score ≥ {score:.2f}, IoU ≥ {iou:.2f}{note}")
