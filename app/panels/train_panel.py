"""Train panel: pick any registered model family and categories, set its options and a time
budget, train in the background (pause, step, cancel), watch the live views, predict.

Self-contained: it needs a JobBridge, a way to get the project path and the current image,
and a callback that receives predicted annotations (the window adds them through its edit
history, so a prediction can be undone). Predictions are always proposals to review (the
ground-truth rule, engine.data.truth). The options come from the family's schema, so a new
family needs no code here. All model work runs in engine jobs; this module never imports torch.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QMainWindow, QProgressBar, QPushButton, QSpinBox, QVBoxLayout,
                               QWidget)

from app.jobs_bridge import JobBridge
from app.views.live_views import LiveViews
from engine.data.truth import as_proposal
from engine.jobs import Job, JobOutcome, Metrics, Preview, Progress

# Width the panel asks of its dock: three image views side by side need about this much.
PREFERRED_DOCK_WIDTH = 640

DEVICES = ("auto", "cpu", "cuda", "mps")


# the kinds whose training takes the checked categories (the others read every category or none)
CATEGORY_KINDS = ("segmentation", "detection", "instance")


class TrainPanel(QWidget):
    """Family combo, checkable categories, epochs, device, Start/Cancel/Predict, live views."""

    def __init__(self, bridge: JobBridge, get_store_path: Callable[[], object],
                 get_current_image: Callable[[], object], on_predicted: Callable[[list], None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.get_store_path = get_store_path
        self.get_current_image = get_current_image
        self.on_predicted = on_predicted
        self.config_overrides: dict = {}  # advanced settings (tests use tiny models)
        self.train_job_id: int | None = None
        self.predict_job_id: int | None = None
        self.checkpoint: Path | None = None
        self._pending_checkpoint: Path | None = None  # where the running job writes
        self.last_outcome: JobOutcome | None = None

        self.family_combo = QComboBox(self)
        self.family_combo.setToolTip("Model family (everything registered in engine.models)")
        self.categories = QListWidget(self)
        self.categories.setToolTip("Categories to train on (checked); the rest count as background")
        self.categories.setMaximumHeight(80)
        self.epochs = QSpinBox(self)
        self.epochs.setRange(1, 10000)
        self.epochs.setValue(10)
        self.minutes = QDoubleSpinBox(self)
        self.minutes.setRange(0.0, 100000.0)
        self.minutes.setDecimals(1)
        self.minutes.setSuffix(" min")
        self.minutes.setSpecialValueText("no limit")
        self.minutes.setToolTip("Time budget: training stops, validates and saves within it (0 = no limit)")
        self.device_combo = QComboBox(self)
        self.device_combo.addItems(DEVICES)
        self.options_box = QGroupBox("Options", self)
        self.options_box.setCheckable(True)
        self.options_box.setChecked(False)  # folded: the presets are the defaults users run
        self.options_box.setToolTip("The family's settings (its preset's values until you change them)")
        self.options_form = QFormLayout()
        self.options_form.setContentsMargins(4, 2, 4, 2)
        self.options_widget = QWidget(self.options_box)
        self.options_widget.setLayout(self.options_form)
        self.options_widget.setVisible(False)
        box_layout = QVBoxLayout(self.options_box)
        box_layout.setContentsMargins(2, 2, 2, 2)
        box_layout.addWidget(self.options_widget)
        self.options_box.toggled.connect(self.options_widget.setVisible)
        self.option_widgets: dict[str, QWidget] = {}
        self.start_button = QPushButton("Start training", self)
        self.pause_button = QPushButton("Pause", self)
        self.pause_button.setEnabled(False)
        self.pause_button.setToolTip("Pause after the current step; Resume goes on, Step runs one more")
        self.step_button = QPushButton("Step", self)
        self.step_button.setEnabled(False)
        self.step_button.setToolTip("While paused: run exactly one more training step")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.predict_button = QPushButton("Predict current image", self)
        self.predict_button.setToolTip("Run the last trained (or an opened) checkpoint on the current image; "
                                       "the results are proposals to accept (Ctrl+Shift+A) or reject (Del)")
        self.open_button = QPushButton("Open checkpoint…", self)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("idle", self)
        self.status.setWordWrap(True)
        self.checkpoint_label = QLabel("no checkpoint", self)
        self.checkpoint_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.views = LiveViews(self)

        # Settings stay compact (two columns) so the live views, the point of this panel, get
        # most of the height.
        form = QGridLayout()
        form.addWidget(QLabel("Family", self), 0, 0)
        form.addWidget(self.family_combo, 0, 1)
        form.addWidget(QLabel("Device", self), 0, 2)
        form.addWidget(self.device_combo, 0, 3)
        form.addWidget(QLabel("Epochs", self), 1, 2)
        form.addWidget(self.epochs, 1, 3)
        form.addWidget(QLabel("Time", self), 2, 2)
        form.addWidget(self.minutes, 2, 3)
        self.categories_label = QLabel("Categories", self)
        form.addWidget(self.categories_label, 1, 0, Qt.AlignmentFlag.AlignTop)
        form.addWidget(self.categories, 1, 1, 2, 1)
        form.addWidget(self.options_box, 3, 0, 1, 4)
        form.setColumnStretch(1, 2)
        form.setColumnStretch(3, 1)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.step_button, self.cancel_button, self.predict_button,
                  self.open_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.checkpoint_label)
        layout.addWidget(self.views, 1)
        self.views.setMinimumHeight(420)

        self.start_button.clicked.connect(self.start_training)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.step_button.clicked.connect(self.step_once)
        self.cancel_button.clicked.connect(self.cancel)
        self.family_combo.currentIndexChanged.connect(self._family_changed)
        self.device_combo.currentIndexChanged.connect(self._family_changed)
        self.predict_button.clicked.connect(self.predict_current)
        self.open_button.clicked.connect(self._choose_checkpoint)
        bridge.progress.connect(self._on_progress)
        bridge.metrics.connect(self._on_metrics)
        bridge.preview.connect(self._on_preview)
        bridge.log.connect(self._on_log)
        bridge.finished.connect(self._on_finished)
        self.refresh_families()
        self.refresh_categories()

    # ------------------------------------------------------------------ setup
    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        # Categories may have been added or renamed while the panel was hidden.
        if self.train_job_id is None:
            self.refresh_categories()
        super().showEvent(event)
        # After the window has placed (and maybe tabified) the dock, or the request is undone.
        QTimer.singleShot(0, self._widen_dock)

    def _widen_dock(self) -> None:
        """Ask the window for a dock wide enough for the live views (once per showing).

        A dock column sized for category lists leaves ~120 px per image view; the heatmaps
        are unreadable at that size.
        """
        dock, window = self.parent(), self.window()
        if not isinstance(dock, QDockWidget) or not isinstance(window, QMainWindow) or dock.isFloating():
            return
        want = min(PREFERRED_DOCK_WIDTH, int(window.width() * 0.45))
        if dock.width() < want:
            window.resizeDocks([dock], [want], Qt.Orientation.Horizontal)

    def refresh_families(self) -> None:
        from engine.models.registry import families

        current = self.family_combo.currentText()
        self.family_combo.clear()
        for spec in families():
            self.family_combo.addItem(spec.name)
            self.family_combo.setItemData(self.family_combo.count() - 1, spec.description, Qt.ItemDataRole.ToolTipRole)
        index = self.family_combo.findText(current or "unet")
        self.family_combo.setCurrentIndex(max(0, index))
        self._family_changed()

    # ------------------------------------------------------------------ family options
    def _device_type(self) -> str:
        from engine.device import pick_device

        try:
            return pick_device(self.device_combo.currentText()).type
        except ValueError:
            return "cpu"

    def _family_changed(self, *_args) -> None:
        """Show the chosen family's options, epochs and time budget at its preset's values."""
        name = self.family_combo.currentText()
        if not name:
            return
        from engine.models.registry import get_family

        spec = get_family(name)
        self._form_device = self._device_type()
        preset = spec.preset(self._form_device)
        self.epochs.setValue(int(preset.get("epochs") or 10))
        self.minutes.setValue(float(preset.get("max_seconds") or 0.0) / 60.0)
        while self.options_form.rowCount():
            self.options_form.removeRow(0)
        self.option_widgets = {}
        for opt in spec.schema(self._device_type()):
            widget = _option_widget(opt, self)
            widget.setToolTip(opt["help"])
            self.option_widgets[opt["key"]] = widget
            self.options_form.addRow(opt["key"], widget)
        self.options_box.setTitle(f"Options of {name}" if self.option_widgets else "Options (none)")
        # embeddings, image pairs and style take every category (or none): no list to check
        for w in (self.categories, self.categories_label):
            w.setVisible(spec.kind in CATEGORY_KINDS)

    def option_values(self) -> dict:
        """The options as the form shows them (typed like the preset's values)."""
        out = {}
        for key, w in self.option_widgets.items():
            if isinstance(w, QCheckBox):
                out[key] = w.isChecked()
            elif isinstance(w, QComboBox):
                out[key] = w.currentData()
            elif isinstance(w, QSpinBox):
                out[key] = int(w.value())
            elif isinstance(w, QDoubleSpinBox):
                out[key] = float(w.value())
            elif isinstance(w, QLineEdit):
                text = w.text().strip()
                out[key] = None if text in ("", "None") else text
        return out

    def refresh_categories(self) -> None:
        """Re-read the project's categories, keeping the check marks of names seen before."""
        checked = {n for n, on in self.category_states().items() if on}
        seen = set(self.category_states())
        self.categories.clear()
        path = self._store_path()
        if path is None:
            return
        from engine.annotations.store import ProjectStore

        try:
            store = ProjectStore(path, readonly=True)
        except Exception as exc:  # noqa: BLE001 - a bad project is reported, not raised
            self.status.setText(f"cannot read categories: {exc}")
            return
        try:
            for cat in store.categories():
                item = QListWidgetItem(cat.name, self.categories)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                on = cat.name in checked or cat.name not in seen
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
                item.setData(Qt.ItemDataRole.DecorationRole, _swatch(cat.color))
        finally:
            store.close()

    def category_states(self) -> dict[str, bool]:
        out = {}
        for i in range(self.categories.count()):
            item = self.categories.item(i)
            out[item.text()] = item.checkState() == Qt.CheckState.Checked
        return out

    def set_checkpoint(self, path) -> None:
        self.checkpoint = Path(path) if path else None
        self.checkpoint_label.setText(str(self.checkpoint) if self.checkpoint else "no checkpoint")

    def _store_path(self) -> Path | None:
        path = self.get_store_path()
        return Path(path) if path else None

    def _choose_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", "", "Checkpoints (*.ckpt *.pt *.pth)")
        if path:
            self.set_checkpoint(path)

    # ------------------------------------------------------------------ actions
    def start_training(self, out: str | os.PathLike | None = None) -> int | None:
        """Submit a training job; returns its id (None when the input is not usable)."""
        if self.train_job_id is not None:
            return None
        store_path = self._store_path()
        if store_path is None:
            self.status.setText("open a project first")
            return None
        from engine.models.registry import get_family

        from engine.device import pick_device

        family = self.family_combo.currentText()
        spec = get_family(family)
        classes = [n for n, on in self.category_states().items() if on]
        if not classes and spec.kind in CATEGORY_KINDS:
            self.status.setText("check at least one category to train on")
            return None
        device = self.device_combo.currentText()
        try:
            # "auto" on a CUDA machine gets the GPU preset; absent hardware is said before starting.
            device_type = pick_device(device).type
        except ValueError as exc:
            self.status.setText(str(exc))
            return None
        if device_type != getattr(self, "_form_device", None):
            self._family_changed()  # the form shows the other device's preset
        config = spec.preset(device_type)
        config.update(self.option_values())
        # Leave one core to the GUI so it keeps drawing while torch trains.
        minutes = float(self.minutes.value())
        config.update({"epochs": self.epochs.value(), "device": device, "classes": classes, "cpu_threads": -1,
                       "nice": 5, "max_seconds": minutes * 60.0 if minutes > 0 else None})
        config.update(self.config_overrides)
        if not out:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            out = store_path.parent / "models" / f"{family}-{stamp}.ckpt"
        self._pending_checkpoint = Path(out)
        self.views.clear_curves()
        self.views.clear_previews()
        self.views.prepare(spec.previews)  # the panes are built now, not while the run draws
        job = Job(f"train {family}", spec.train, store_path=str(store_path), out=str(out), config=config)
        self.train_job_id = self.bridge.submit(job)
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.pause_button.setEnabled(True)
        self.pause_button.setText("Pause")
        self.step_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.status.setText(f"training {family} on {', '.join(classes) or 'image pairs'}…")
        return self.train_job_id

    def _token(self):
        if self.train_job_id is None:
            return None
        return self.bridge.runner(self.train_job_id).token

    def toggle_pause(self) -> None:
        token = self._token()
        if token is None:
            return
        if token.paused:
            token.resume()
            self.pause_button.setText("Pause")
            self.step_button.setEnabled(False)
            self.status.setText("resumed")
        else:
            token.pause()
            self.pause_button.setText("Resume")
            self.step_button.setEnabled(True)
            self.status.setText("paused (after the current step); Step runs one more, Resume goes on")

    def step_once(self) -> None:
        token = self._token()
        if token is not None and token.paused:
            token.step()

    def cancel(self) -> None:
        if self.train_job_id is not None:
            self.bridge.cancel(self.train_job_id)
            self.cancel_button.setEnabled(False)
            self.pause_button.setEnabled(False)
            self.step_button.setEnabled(False)
            self.status.setText("cancelling at the next step…")

    def predict_current(self) -> int | None:
        """Predict the current image in the background; results go to ``on_predicted``.

        Works at any time: during training it uses the best checkpoint written so far.
        """
        if self.predict_job_id is not None:
            return None
        checkpoint = self.checkpoint
        running = self._pending_checkpoint
        if self.train_job_id is not None and running is not None and running.is_file():
            # While training, the best epoch so far (written atomically) is the model to try.
            checkpoint = running
        if checkpoint is None or not checkpoint.is_file():
            self.status.setText("train a model (one epoch is enough) or open a checkpoint first")
            return None
        image = self.get_current_image()
        image_id = getattr(image, "id", image)
        store_path = self._store_path()
        if image_id is None or store_path is None:
            self.status.setText("open an image first")
            return None
        from engine.infer.run import predict_image_job

        job = Job(f"predict {checkpoint.name}", predict_image_job, checkpoint=str(checkpoint),
                  store_path=str(store_path), image_id=int(image_id), device=self.device_combo.currentText())
        self.predict_job_id = self.bridge.submit(job)
        self.predict_button.setEnabled(False)
        self.status.setText(f"predicting image {image_id}…")
        return self.predict_job_id

    # ------------------------------------------------------------------ bridge slots
    def _mine(self, job_id: int) -> bool:
        return job_id in (self.train_job_id, self.predict_job_id)

    def _on_progress(self, job_id: int, event: Progress) -> None:
        if job_id != self.train_job_id:
            return
        if event.total:
            self.progress.setRange(0, int(event.total))
            self.progress.setValue(int(event.step))
        if event.message:
            self.status.setText(event.message)

    def _on_metrics(self, job_id: int, event: Metrics) -> None:
        if job_id == self.train_job_id:
            self.views.add_metrics(event)

    def _on_preview(self, job_id: int, event: Preview) -> None:
        if self._mine(job_id):
            self.views.show_preview(event)
            # A prediction brings heatmaps and argmax of the current image but no weight map
            # (that needs ground truth): say which image the weight map still shows.
            weight = self.views.weight_map
            if weight is not None and job_id == self.predict_job_id and event.name == "heatmaps":
                weight.title.setText("loss weight map (training preview)")

    def _on_log(self, job_id: int, event) -> None:
        if self._mine(job_id):
            self.status.setText(event.text)

    def _on_finished(self, job_id: int, outcome: JobOutcome) -> None:
        if job_id == self.train_job_id:
            self.train_job_id = None
            self.last_outcome = outcome
            self.start_button.setEnabled(True)
            self.cancel_button.setEnabled(False)
            self.pause_button.setEnabled(False)
            self.pause_button.setText("Pause")
            self.step_button.setEnabled(False)
            self.progress.setRange(0, 1)
            self.progress.setValue(1 if outcome.state == "finished" else 0)
            ckpt = self._pending_checkpoint
            if ckpt is not None and ckpt.is_file():
                self.set_checkpoint(ckpt)  # also after cancel/NaN: the last good epoch is usable
            if outcome.state == "finished":
                self.status.setText(finished_message(outcome.result or {}))
            elif outcome.state == "cancelled":
                self.status.setText("cancelled" + (" (last good checkpoint kept)" if self.checkpoint else ""))
            else:
                # The Jobs panel opens the error dialog (message + traceback) for every failed job;
                # a second one from here would make the user close the same error twice.
                self.status.setText(f"failed: {outcome.error}")
        elif job_id == self.predict_job_id:
            self.predict_job_id = None
            self.last_outcome = outcome
            self.predict_button.setEnabled(True)
            if outcome.state == "finished":
                # Always proposals: a prediction never becomes ground truth before a review.
                anns = [as_proposal(a) for a in (outcome.result or [])]
                self.status.setText(f"predicted {len(anns)} proposal{'' if len(anns) == 1 else 's'}: accept "
                                    f"(Ctrl+Shift+A) or reject (Del)")
                if self.on_predicted is not None:
                    self.on_predicted(anns)
            elif outcome.state == "failed":
                self.status.setText(f"prediction failed: {outcome.error}")  # the Jobs panel shows the dialog


def _swatch(color: str):
    from PySide6.QtGui import QColor, QPixmap

    pix = QPixmap(12, 12)
    pix.fill(QColor(color))
    return pix


def finished_message(result: dict) -> str:
    """"done: best val box_map50 0.734 at epoch 3 (612 steps, 598 s, time budget)"."""
    metric = result.get("metric") or "metric"
    best = result.get("best") or {}
    value = best.get(metric)
    said = (f"best val {metric} {float(value):.3f} at epoch {best.get('epoch')}" if value is not None
            else "no validation")
    why = {"budget": ", time budget", "steps": ", step limit"}.get(result.get("stopped"), "")
    return f"done: {said} ({result.get('steps', '?')} steps, {float(result.get('seconds') or 0):.0f} s{why})"


def _option_widget(opt: dict, parent: QWidget) -> QWidget:
    """An editor for one schema entry, showing its default."""
    default, kind = opt["default"], opt["type"]
    if kind == "bool":
        w = QCheckBox(parent)
        w.setChecked(bool(default))
    elif kind == "choice":
        w = QComboBox(parent)
        for choice in opt["choices"]:
            w.addItem(str(choice), choice)
        w.setCurrentIndex(max(0, w.findData(default)))
    elif kind == "int":
        w = QSpinBox(parent)
        w.setRange(int(opt["minimum"]) if opt["minimum"] is not None else -10**9,
                   int(opt["maximum"]) if opt["maximum"] is not None else 10**9)
        w.setValue(int(default or 0))
    elif kind == "float":
        w = QDoubleSpinBox(parent)
        w.setDecimals(6)
        w.setRange(float(opt["minimum"]) if opt["minimum"] is not None else -1e12,
                   float(opt["maximum"]) if opt["maximum"] is not None else 1e12)
        w.setValue(float(default or 0.0))
    else:
        w = QLineEdit("" if default is None else str(default), parent)
    return w
