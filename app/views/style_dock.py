"""The style dock: Gatys style transfer of the current image, watched live, and fast-style
networks applied to it. Both run as jobs on the window's bridge (progress and cancel in the Jobs
panel too); pause, single steps and stop act on the run's token; the result can be saved into the
project as a new image.

What it draws comes from the job's previews (engine.train.gatys): the picture, content | style,
loss curves (log scale), the per-layer style loss, and the three Gram matrices of the layer the
picker chooses, on one colour scale.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QGridLayout, QHBoxLayout, QInputDialog,
                               QLabel, QPushButton, QSpinBox, QSplitter, QVBoxLayout, QWidget)

from app.views.live_views import CurvesView, ImageRowView, ImageView, MatrixGridView, SeriesView
from app.views.pacing import PaintPacer
from engine.jobs import Job, Log, Metrics, Preview, Progress

TEXTURES = ("brick", "grass", "gravel")
PHOTOS = ("coffee", "chelsea", "rocket", "astronaut")
SIZES = (("small (128 px)", 128), ("medium (256 px)", 256), ("large (384 px)", 384), ("full (512 px)", 512))


def _channels(gram: Preview) -> int:
    """Channels of a layer's Gram preview (the side of its matrices)."""
    matrices = gram.data.get("matrices") or [np.zeros((0, 0))]
    return int(np.asarray(matrices[0]).shape[0])


class StyleDock(QWidget):
    """Controls on top, live views below. ``start()`` runs style transfer on the current image,
    ``stylise_with(ckpt)`` a fast-style network; ``save_result()`` adds the picture to the project."""

    follows_image = False

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.jobs = controller.window.jobs
        self.job_id: int | None = None
        self.token = None
        self.kind = ""  # "gatys" | "faststyle" while a job runs
        self.result_path: Path | None = None
        self.content_path: Path | None = None
        self.style_source = TEXTURES[0]
        self.vgg_file: str | None = None
        self.grams: dict[str, Preview] = {}
        self._tmp = Path(tempfile.mkdtemp(prefix="visionbench-style-"))

        self.style_combo = QComboBox(self)
        self.style_combo.addItems([*TEXTURES, *PHOTOS])
        self.style_combo.setToolTip("Style image: textures and photos that ship with scikit-image, a project "
                                    "image or any file")
        self.style_combo.currentTextChanged.connect(self._style_picked)
        self.style_project = QPushButton("Project image…", self)
        self.style_project.clicked.connect(self.pick_project_style)
        self.style_file = QPushButton("File…", self)
        self.style_file.clicked.connect(self.pick_style_file)
        self.network = QComboBox(self)
        self.network.addItems(["auto", "lite0", "vgg19"])
        self.network.setToolTip("Feature network: VGG-19 only when its ImageNet weights are on this machine "
                                "(torch's hub cache or a file you pick); else the shipped EfficientNet-Lite0")
        self.vgg_button = QPushButton("VGG-19 file…", self)
        self.vgg_button.clicked.connect(self.pick_vgg_file)
        self.optimizer = QComboBox(self)
        self.optimizer.addItems(["lbfgs", "adam"])
        self.init = QComboBox(self)
        self.init.addItems(["content", "noise", "style"])
        self.init.setToolTip("Start the picture from the content image, from noise or from the style image")
        self.size = QComboBox(self)
        for text, px in SIZES:
            self.size.addItem(text, px)
        self.size.setCurrentIndex(1)
        self.steps = QSpinBox(self)
        self.steps.setRange(1, 100000)
        self.steps.setValue(200)
        self.beta = QDoubleSpinBox(self)
        self.beta.setDecimals(1)
        self.beta.setRange(0, 1e12)
        self.beta.setValue(100.0)
        self.beta.setToolTip("Style weight β (content weight α = 1); each style layer's loss and the content "
                             "loss are measured relative to their size at the start")
        self.tv = QDoubleSpinBox(self)
        self.tv.setDecimals(1)
        self.tv.setRange(0, 1e9)
        self.tv.setValue(0.0)
        self.tv.setToolTip("Total-variation weight (smoothness)")

        self.start_button = QPushButton("Start", self)
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause", self)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.step_button = QPushButton("Step", self)
        self.step_button.clicked.connect(self.single_step)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("Stop; the picture so far is kept")
        self.stop_button.clicked.connect(self.stop)
        self.save_button = QPushButton("Save into project", self)
        self.save_button.clicked.connect(self.save_result)
        self.fast_button = QPushButton("Stylise with…", self)
        self.fast_button.setToolTip("Run a trained fast-style network (Models > Train: faststyle) on this image")
        self.fast_button.clicked.connect(self.pick_checkpoint)
        self.network_label = QLabel("Feature network: chosen when a run starts", self)
        self.status = QLabel("Style transfer of the current image.", self)
        self.status.setWordWrap(True)

        self.picture = ImageView(self)
        self.inputs = ImageRowView(self)
        self.curves = CurvesView(self)
        self.curves.loss_plot.setLogMode(y=True)
        self.curves.loss_plot.setTitle("loss (log)")
        self.curves.val_plot.hide()
        self.per_layer = SeriesView(self)
        self.per_layer.plot.setLogMode(y=True)
        self.per_layer.title.setText("style loss per layer (log)")
        self.gram = MatrixGridView(self)
        self.gram.title.setText("Gram matrices: style | picture | |difference| (one scale)")
        self.layer = QComboBox(self)
        self.layer.setToolTip("The layer whose Gram matrices are shown")
        self.layer.currentTextChanged.connect(self._show_gram)
        self._layer_picked = False  # the user chose a layer in this run
        self.layer.activated.connect(lambda _: setattr(self, "_layer_picked", True))
        self.gram.header.insertWidget(1, QLabel("layer", self))
        self.gram.header.insertWidget(2, self.layer)
        # one view repainted per turn of the event loop (a preview step changes four of them)
        self.pacer = PaintPacer(self)
        self.curves.pacer = self.pacer

        self._layout_controls()
        self._update_buttons()
        self.jobs.progress.connect(self._on_progress)
        self.jobs.metrics.connect(self._on_metrics)
        self.jobs.preview.connect(self._on_preview)
        self.jobs.log.connect(self._on_log)
        self.jobs.finished.connect(self._on_finished)

    def _layout_controls(self) -> None:
        row1 = QHBoxLayout()
        for w in (QLabel("Style", self), self.style_combo, self.style_project, self.style_file,
                  QLabel("Network", self), self.network, self.vgg_button, QLabel("Optimiser", self), self.optimizer,
                  QLabel("Start from", self), self.init):
            row1.addWidget(w)
        row1.addStretch(1)
        row2 = QHBoxLayout()
        for w in (QLabel("Size", self), self.size, QLabel("Steps", self), self.steps, QLabel("β", self), self.beta,
                  QLabel("TV", self), self.tv, self.start_button, self.pause_button, self.step_button,
                  self.stop_button, self.save_button, self.fast_button):
            row2.addWidget(w)
        row2.addStretch(1)
        pictures = QSplitter(Qt.Orientation.Horizontal, self)
        pictures.addWidget(self.picture)
        pictures.addWidget(self.inputs)
        pictures.setStretchFactor(0, 2)
        pictures.setStretchFactor(1, 2)
        plots = QWidget(self)
        grid = QGridLayout(plots)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.curves, 0, 0)
        grid.addWidget(self.per_layer, 0, 1)
        lower = QSplitter(Qt.Orientation.Horizontal, self)
        lower.addWidget(plots)
        lower.addWidget(self.gram)
        lower.setStretchFactor(0, 3)
        lower.setStretchFactor(1, 2)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(pictures)
        split.addWidget(lower)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addWidget(self.network_label)
        layout.addWidget(self.status)
        layout.addWidget(split, 1)

    # -- choices ---------------------------------------------------------------------------------
    def _style_picked(self, text: str) -> None:
        if text:
            self.style_source = text

    def set_style(self, source: str) -> None:
        """A texture/photo name or a file path."""
        self.style_source = str(source)
        if self.style_combo.findText(self.style_source) < 0:
            self.style_combo.addItem(self.style_source)
        self.style_combo.setCurrentText(self.style_source)

    def pick_project_style(self) -> None:
        store = self.controller.store
        names = [r.path for r in store.images()]
        if not names:
            self.status.setText("The project has no images to take a style from.")
            return
        name, ok = QInputDialog.getItem(self, "Style from the project", "Image", names, 0, False)
        if ok and name:
            self.set_style(str(store.image_path(store.image_by_path(name))))

    def pick_style_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Style image", "", "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp)")
        if path:
            self.set_style(path)

    def pick_vgg_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "VGG-19 ImageNet weights", "", "State dict (*.pth *.pt)")
        if path:
            self.vgg_file = path
            self.network.setCurrentText("vgg19")

    def config(self) -> dict:
        cfg = {"content": str(self.content_path), "style": self.style_source, "network": self.network.currentText(),
               "optimizer": self.optimizer.currentText(), "init": self.init.currentText(),
               "size": int(self.size.currentData()), "steps": int(self.steps.value()),
               "beta": float(self.beta.value()), "tv_weight": float(self.tv.value()), "nice": 5}
        if self.vgg_file:
            cfg["vgg19_weights"] = self.vgg_file
        return cfg

    # -- runs ------------------------------------------------------------------------------------
    def busy(self) -> bool:
        return self.job_id is not None

    def _current_image(self) -> Path | None:
        record = self.controller.current_record()
        if record is None:
            self.status.setText("Open an image first: it is the content of the style transfer.")
            return None
        return self.controller.store.image_path(record)

    def _clear_views(self) -> None:
        self.curves.clear()
        self.per_layer.clear()
        self.grams.clear()
        self.layer.clear()
        self._layer_picked = False

    def start(self) -> int | None:
        """Style transfer of the current image with the chosen style; returns the job id."""
        if self.busy():
            return None
        path = self._current_image()
        if path is None:
            return None
        from engine.train.gatys import stylize

        self.content_path = path
        self._clear_views()
        out = self._tmp / f"{path.stem}_{Path(self.style_source).stem}.png"
        self.result_path = None
        job = Job(f"style transfer: {path.name}", stylize, out=str(out), config=self.config())
        self._run(job, "gatys", out)
        self.status.setText(f"Style transfer of {path.name} in the style of {Path(self.style_source).name}…")
        return self.job_id

    def pick_checkpoint(self) -> None:
        folder = str(Path(self.controller.store.root) / "models")
        path, _ = QFileDialog.getOpenFileName(self, "Fast-style checkpoint", folder, "Checkpoints (*.ckpt *.pt *.pth)")
        if path:
            self.stylise_with(path)

    def stylise_with(self, checkpoint: str | Path) -> int | None:
        """Run a fast-style checkpoint on the current image; returns the job id."""
        if self.busy():
            return None
        path = self._current_image()
        if path is None:
            return None
        from engine.infer.faststyle_predictor import stylise_image_job

        self.content_path = path
        out = self._tmp / f"{path.stem}_{Path(checkpoint).stem}.png"
        self.result_path = None
        job = Job(f"stylise: {path.name}", stylise_image_job, checkpoint=str(checkpoint), image=str(path),
                  out=str(out))
        self._run(job, "faststyle", out)
        self.status.setText(f"Stylising {path.name} with {Path(checkpoint).name}…")
        return self.job_id

    def _run(self, job: Job, kind: str, out: Path) -> None:
        out.unlink(missing_ok=True)  # a picture of an earlier run is not this run's result
        self.kind = kind
        self._out = out
        self.token = job.token
        self.job_id = self.jobs.submit(job)
        self._update_buttons()

    def toggle_pause(self) -> None:
        if self.token is None:
            return
        if self.token.paused:
            self.token.resume()
            self.status.setText("running…")
        else:
            self.token.pause()
            self.status.setText("paused: Step runs one step, Resume goes on")
        self._update_buttons()

    def single_step(self) -> None:
        if self.token is not None:
            if not self.token.paused:
                self.token.pause()
            self.token.step()
            self._update_buttons()

    def stop(self) -> None:
        if self.job_id is not None:
            self.jobs.cancel(self.job_id)
            self.status.setText("stopping; the picture so far is kept…")

    def save_result(self) -> Path | None:
        """Copy the picture into <project>/styled/ and add it to the project as a new image."""
        if self.result_path is None or not self.result_path.is_file():
            self.status.setText("No picture to save yet.")
            return None
        store = self.controller.store
        folder = Path(store.root) / "styled"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / self.result_path.name
        k = 1
        while target.exists():
            target = folder / f"{self.result_path.stem}_{k}.png"
            k += 1
        shutil.copyfile(self.result_path, target)
        record = store.add_image(target)
        window = self.controller.window
        window.browser.refresh()
        self.status.setText(f"Saved into the project as {store._rel(target)}")
        self.saved_record = record
        return target

    def _update_buttons(self) -> None:
        running = self.busy()
        gatys = running and self.kind == "gatys"
        self.start_button.setEnabled(not running)
        self.fast_button.setEnabled(not running)
        self.pause_button.setEnabled(gatys)
        self.step_button.setEnabled(gatys)
        self.stop_button.setEnabled(running)
        self.pause_button.setText("Resume" if gatys and self.token is not None and self.token.paused else "Pause")
        self.save_button.setEnabled(not running and self.result_path is not None)

    # -- events ----------------------------------------------------------------------------------
    def _mine(self, job_id: int) -> bool:
        return job_id == self.job_id

    def _on_progress(self, job_id: int, event: Progress) -> None:
        if self._mine(job_id) and event.message and not (self.token is not None and self.token.paused):
            self.status.setText(f"step {event.step} of {event.total}: {event.message}")

    def _on_metrics(self, job_id: int, event: Metrics) -> None:
        if self._mine(job_id) and "loss" in event.values:
            self.curves.add(Metrics({k: v for k, v in event.values.items() if k in ("loss", "content", "style")},
                                    event.step))

    def _on_log(self, job_id: int, event: Log) -> None:
        if self._mine(job_id) and event.text.startswith("feature network"):
            self.network_label.setText("Feature network: " + event.text.split(":", 1)[1].strip())

    def _on_preview(self, job_id: int, event: Preview) -> None:
        if not self._mine(job_id):
            return
        if event.name == "picture":
            self.pacer.hold(self.picture)
            self.picture.title.setText(event.title or "picture")
            self.picture.set_data(event.data)
        elif event.name == "inputs":
            self.pacer.hold(self.inputs)
            self.inputs.set_data(event.data)
        elif event.name == "stylised":
            self.pacer.hold(self.inputs)
            self.pacer.hold(self.picture)
            self.inputs.set_data(event.data)
            self.picture.title.setText("stylised")
            self.picture.set_data({"image": event.data["images"][-1]})
        elif event.name == "style per layer":
            self.pacer.hold(self.per_layer)
            self.per_layer.set_data(event.data)
        elif event.name.startswith("gram "):
            layer = event.name[5:]
            self.grams[layer] = event
            if self.layer.findText(layer) < 0:
                self.layer.addItem(layer)
                # a colour term (3 x 3) says little: until the user picks a layer, the first
                # feature layer is shown
                current = self.grams.get(self.layer.currentText())
                if (not self._layer_picked and current is not None and _channels(current) <= 3 < _channels(event)):
                    self.layer.setCurrentText(layer)
            if self.layer.currentText() == layer:
                self._show_gram(layer)

    def _show_gram(self, layer: str) -> None:
        event = self.grams.get(layer)
        if event is not None:
            self.pacer.hold(self.gram)
            self.gram.title.setText(f"{layer}: style | picture | |difference| (one scale)")
            self.gram.set_data(event.data)

    def _on_finished(self, job_id: int, outcome) -> None:
        if not self._mine(job_id):
            return
        self.job_id = None
        self.token = None
        out = self._out
        if out.is_file():
            from engine.infer.run import read_model_image

            self.result_path = out
            self.picture.title.setText("result")
            self.picture.set_data({"image": np.ascontiguousarray(read_model_image(out))})
        if outcome.state == "finished":
            seconds = (outcome.result or {}).get("seconds")
            self.status.setText("done" + (f" in {seconds} s" if seconds else "") + ": Save into project keeps it")
        elif outcome.state == "cancelled":
            self.status.setText("stopped: the picture so far is kept (Save into project)" if self.result_path
                                else "stopped before the first step")
        else:
            self.status.setText(f"failed: {outcome.error}")
        self._update_buttons()

    def shutdown(self) -> None:
        if self.job_id is not None:
            self.jobs.cancel(self.job_id)
        shutil.rmtree(self._tmp, ignore_errors=True)
