"""Siamese views of the workbench: verify two pictures, and search the project for look-alikes.

- ``VerificationDock``: pictures A and B (the selected shape, else the current image) -> their
  distance, the tau slider and the verdict; the ROC of the validation identities' pairs with its
  EER point and the point of the chosen tau, the accuracy at tau, and an N-way one-shot test
  (one gallery picture per identity; "not recognised" beyond tau) recomputed as tau moves.
- ``SearchDock``: the selected shape or the current image -> the k nearest images (or crops) of
  the project with their distances; a click opens the image (and selects the shape).
Embedding runs in jobs (engine.infer.siamese_views); the GUI thread only draws and does the
cheap numpy of a new tau.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget)

from app.views.model_docks import DetectorDock, _escape
from engine.jobs import Job

CHECKPOINT_FILTER = "Siamese checkpoints (*.ckpt);;All files (*)"
TAU_STEPS = 400  # the slider's steps over distances 0..2


def pixmap_of(rgb: np.ndarray, side: int = 96) -> QPixmap:
    rgb = np.ascontiguousarray(rgb[..., :3] if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=2))
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation)


def _name_checkpoint_picker(dock: DetectorDock) -> None:
    """The base dock says "Detector"; here it is an embedding checkpoint."""
    for i in range(dock.bar.count()):
        widget = dock.bar.itemAt(i).widget()
        if isinstance(widget, QLabel) and widget.text() == "Detector":
            widget.setText("Checkpoint")


def current_item(context) -> tuple[int, int | None] | None:
    """(image id, annotation id or None): the one selected shape of the current image, else the image."""
    record = context.current_record()
    if record is None:
        return None
    ids = context.window.selected_ids()
    return (record.id, int(ids[0]) if len(ids) == 1 else None)


def item_text(context, item) -> str:
    record = context.store.image(item[0])
    name = Path(record.path).name
    return f"{name}, shape #{item[1]}" if item[1] is not None else name


class VerificationDock(DetectorDock):
    title = "Verify identities"
    follows_image = False
    prefer = ("siamese",)

    def __init__(self, context, parent: QWidget | None = None) -> None:
        self.items: list = [None, None]
        self.distance: float | None = None
        self.roc_data: dict | None = None
        view = QWidget()
        super().__init__(context, view, parent)
        self.detector_combo.setToolTip("Siamese checkpoints under the project's models/ folder and files opened before")
        _name_checkpoint_picker(self)
        self.run_button.setText("Compare A and B")
        grid = QGridLayout(view)
        self.slots = []
        for k, name in enumerate(("A", "B")):
            picture = QLabel(f"{name}: —")
            picture.setFixedSize(110, 110)
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            picture.setStyleSheet("border: 1px solid #888;")
            caption = QLabel("pick a picture")
            caption.setWordWrap(True)
            button = QPushButton(f"Set {name} from selection")
            button.setToolTip("The selected shape of the current image, or the whole image when none is selected")
            button.clicked.connect(lambda _=False, k=k: self.set_item(k, current_item(self.context)))
            column = QVBoxLayout()
            column.addWidget(picture, 0, Qt.AlignmentFlag.AlignHCenter)
            column.addWidget(caption)
            column.addWidget(button)
            grid.addLayout(column, 0, k)
            self.slots.append((picture, caption))
        verdict = QVBoxLayout()
        self.distance_label = QLabel("distance: —")
        self.verdict_label = QLabel("")
        self.verdict_label.setStyleSheet("font-size: 18px; font-weight: bold;")
        self.tau_slider = QSlider(Qt.Orientation.Horizontal)
        self.tau_slider.setRange(0, TAU_STEPS)
        self.tau_slider.setValue(int(0.8 / 2.0 * TAU_STEPS))
        self.tau_label = QLabel()
        self.tau_slider.valueChanged.connect(self._tau_changed)
        self.eer_button = QPushButton("τ at EER")
        self.eer_button.setToolTip("Put τ where false accepts equal false rejects on the validation pairs")
        self.eer_button.clicked.connect(self._tau_at_eer)
        tau_row = QHBoxLayout()
        tau_row.addWidget(QLabel("τ"))
        tau_row.addWidget(self.tau_slider, 1)
        tau_row.addWidget(self.tau_label)
        tau_row.addWidget(self.eer_button)
        verdict.addWidget(self.distance_label)
        verdict.addLayout(tau_row)
        verdict.addWidget(self.verdict_label)
        verdict.addStretch(1)
        grid.addLayout(verdict, 0, 2)
        grid.setColumnStretch(2, 1)

        self.roc_button = QPushButton("Validation pairs: ROC")
        self.roc_button.setToolTip("Embed the validation identities (split by identity, as in training) "
                                   "and draw the ROC of their pairs")
        self.roc_button.clicked.connect(self.evaluate_pairs)
        self.ways = QSpinBox()
        self.ways.setRange(2, 100)
        self.ways.setValue(20)
        self.ways.setSuffix("-way")
        self.ways.valueChanged.connect(lambda _v: self._update_tests())
        self.pairs_label = QLabel("")
        self.pairs_label.setTextFormat(Qt.TextFormat.RichText)
        self.oneshot_label = QLabel("")
        self.oneshot_label.setTextFormat(Qt.TextFormat.RichText)
        tests = QHBoxLayout()
        tests.addWidget(self.roc_button)
        tests.addWidget(QLabel("one-shot test:"))
        tests.addWidget(self.ways)
        tests.addWidget(self.oneshot_label, 1)
        grid.addLayout(tests, 1, 0, 1, 3)
        grid.addWidget(self.pairs_label, 2, 0, 1, 3)
        self.roc_plot = pg.PlotWidget()
        self.roc_plot.setLabel("bottom", "false accept rate")
        self.roc_plot.setLabel("left", "true accept rate")
        self.roc_plot.setXRange(0, 1)
        self.roc_plot.setYRange(0, 1)
        self.roc_plot.addLegend(offset=(-10, -10))
        self.roc_plot.setMinimumHeight(240)
        grid.addWidget(self.roc_plot, 3, 0, 1, 3)
        grid.setRowStretch(3, 1)
        self._mode = "pair"
        self._tau_changed(self.tau_slider.value())

    # -- inputs ----------------------------------------------------------------------------------
    @property
    def tau(self) -> float:
        return self.tau_slider.value() * 2.0 / TAU_STEPS

    def set_tau(self, tau: float) -> None:
        self.tau_slider.setValue(int(round(min(max(tau, 0.0), 2.0) / 2.0 * TAU_STEPS)))

    def set_item(self, k: int, item) -> None:
        if item is None:
            self.set_status("Open an image in the workbench first.", error=True)
            return
        self.items[k] = item
        self.slots[k][1].setText(_escape(item_text(self.context, item)))
        self.image_label.setText(" · ".join(f"{n}: {item_text(self.context, it)}"
                                            for n, it in zip("AB", self.items) if it is not None))
        if all(self.items):
            self.run()

    def run(self) -> int | None:
        self._mode = "pair"
        if not all(self.items):
            self.set_status("Set A and B: select a shape (or none, for the whole image) and press Set.")
            return None
        if self.record is None:
            self.record = self.context.store.image(self.items[0][0])
        return super().run()

    def evaluate_pairs(self) -> int | None:
        self._mode = "roc"
        if self.record is None:
            self.record = self.context.current_record()
        return super().run()

    def make_job(self, record, image_path, detector, predictor) -> Job:
        from engine.infer.siamese_views import evaluate_pairs_job, verify_pair_job

        if not detector:
            raise_missing = "pick a Siamese checkpoint (train one with Models > Train & predict, family siamese)"
            return Job("verify: no checkpoint", _fail, message=raise_missing)
        project = str(self.context.store.path)
        if self._mode == "roc":
            return Job("verify: validation pairs", evaluate_pairs_job, checkpoint=detector, project=project,
                       device=self.context.device)
        return Job("verify: two pictures", verify_pair_job, checkpoint=detector, project=project, a=self.items[0],
                   b=self.items[1], device=self.context.device)

    # -- results ---------------------------------------------------------------------------------
    def show_result(self, record, result) -> None:
        if result["what"] == "pair":
            for (picture, _), rgb in zip(self.slots, result["pictures"]):
                picture.setPixmap(pixmap_of(rgb, 104))
            self.distance = float(result["distance"])
            if self.roc_data is None and result.get("tau") is not None and not getattr(self, "_tau_set", False):
                self._tau_set = True
                self.set_tau(float(result["tau"]))
        else:
            self.roc_data = result
            self._draw_roc()
            self.set_tau(float(result["tau"]))
        self._tau_changed(self.tau_slider.value())

    def _tau_at_eer(self) -> None:
        if self.roc_data is None:
            self.evaluate_pairs()
            return
        self.set_tau(float(self.roc_data["tau"]))

    def _tau_changed(self, _value: int) -> None:
        tau = self.tau
        self.tau_label.setText(f"{tau:.3f}")
        if self.distance is not None:
            self.distance_label.setText(f"distance d(A, B) = <b>{self.distance:.3f}</b>")
            same = self.distance <= tau
            colour = "#2e7d32" if same else "#c62828"
            self.verdict_label.setText(f"<span style='color:{colour}'>{'same' if same else 'different'} "
                                       f"identity</span> (d {'≤' if same else '>'} τ)")
        self._update_tests()

    def _draw_roc(self) -> None:
        r = self.roc_data
        self.roc_plot.clear()
        self.roc_plot.plot([0, 1], [0, 1], pen=pg.mkPen("#999", style=Qt.PenStyle.DashLine))
        self.roc_plot.plot(r["fpr"], r["tpr"], pen=pg.mkPen("#4363d8", width=2), name=f"ROC (AUC {r['auc']:.3f})")
        self.roc_plot.plot([r["eer"]], [1 - r["eer"]], pen=None, symbol="o", symbolBrush="#f58231", symbolSize=10,
                           name=f"EER {r['eer']:.3f} at τ {r['tau']:.3f}")
        self.tau_point = self.roc_plot.plot([], [], pen=None, symbol="x", symbolBrush="#e6194b", symbolPen="#e6194b",
                                            symbolSize=12, name="chosen τ")

    def _update_tests(self) -> None:
        r = self.roc_data
        if r is None:
            self.pairs_label.setText("Press <i>Validation pairs: ROC</i> for the ROC, the EER and the accuracy at τ.")
            return
        from engine.eval.verification import one_shot_accuracy

        tau = self.tau
        d, same = r["distances"], r["same"]
        accept = d <= tau
        far = float((accept & ~same).sum() / max(1, (~same).sum()))
        tar = float((accept & same).sum() / max(1, same.sum()))
        acc = float((accept == same).mean())
        if hasattr(self, "tau_point"):
            self.tau_point.setData([far], [tar])
        self.pairs_label.setText(
            f"{r['identities']} validation identities, {int(same.sum())} same and {int((~same).sum())} different "
            f"pairs · EER <b>{r['eer']:.3f}</b> · AUC {r['auc']:.3f} · at τ {tau:.3f}: accuracy <b>{acc:.3f}</b>, "
            f"false accepts {far:.3f}, true accepts {tar:.3f}")
        ways = self.ways.value()
        nearest = one_shot_accuracy(r["embeddings"], r["labels"], ways, episodes=300)
        at_tau = one_shot_accuracy(r["embeddings"], r["labels"], ways, episodes=300, tau=tau)
        if nearest is None:
            self.oneshot_label.setText("needs 2 identities with 2 pictures")
            return
        shown = min(ways, r["identities"])
        self.oneshot_label.setText(f"{shown}-way accuracy <b>{at_tau:.3f}</b> at τ ({nearest:.3f} without τ; "
                                   f"{nearest - at_tau:.3f} of queries 'not recognised' beyond τ)")


class SearchDock(DetectorDock):
    title = "Image search"
    follows_image = True
    prefer = ("siamese",)

    def __init__(self, context, parent: QWidget | None = None) -> None:
        view = QWidget()
        super().__init__(context, view, parent)
        self.follow_check.setChecked(False)
        _name_checkpoint_picker(self)
        self.run_button.setText("Search")
        self.run_button.setToolTip("Search for the selected shape, or the current image when none is selected")
        self.k = QSpinBox()
        self.k.setRange(1, 200)
        self.k.setValue(12)
        self.what = QComboBox()
        self.what.addItem("whole images", "images")
        self.what.addItem("shapes (crops)", "crops")
        self.bar.insertWidget(self.bar.count() - 1, QLabel("top"))
        self.bar.insertWidget(self.bar.count() - 1, self.k)
        self.bar.insertWidget(self.bar.count() - 1, self.what)
        layout = QHBoxLayout(view)
        self.query_label = QLabel("query")
        self.query_label.setFixedSize(120, 140)
        self.query_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignHCenter)
        self.results = QListWidget()
        self.results.setViewMode(QListWidget.ViewMode.IconMode)
        self.results.setIconSize(QSize(96, 96))
        self.results.setGridSize(QSize(132, 150))
        self.results.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.results.setMovement(QListWidget.Movement.Static)
        self.results.setWordWrap(True)
        self.results.itemClicked.connect(self.go_to)
        layout.addWidget(self.query_label)
        layout.addWidget(self.results, 1)
        self.query = None

    def make_job(self, record, image_path, detector, predictor) -> Job:
        from engine.infer.siamese_views import search_job

        if not detector:
            return Job("search: no checkpoint", _fail,
                       message="pick a Siamese checkpoint (train one with Models > Train & predict, family siamese)")
        ids = self.context.window.selected_ids()
        current = self.context.current_record()
        self.query = (record.id, int(ids[0]) if len(ids) == 1 and current is not None
                      and current.id == record.id else None)
        what = self.what.currentData() if self.query[1] is None else "crops"
        return Job("image search", search_job, checkpoint=detector, project=str(self.context.store.path),
                   query=self.query, k=self.k.value(), what=what, device=self.context.device)

    def show_result(self, record, result) -> None:
        self.query_label.setPixmap(pixmap_of(result["query_picture"], 110))
        self.results.clear()
        tau = result["tau"]
        for hit in result["results"]:
            name = Path(hit["path"]).name
            mark = "✓" if hit["distance"] <= tau else ""
            text = f"d={hit['distance']:.3f} {mark}\n{hit['identity'] or name}"
            item = QListWidgetItem(QIcon(pixmap_of(hit["picture"], 96)), text)
            item.setData(Qt.ItemDataRole.UserRole, (hit["image_id"], hit["annotation_id"]))
            item.setToolTip(f"{hit['path']}" + (f", shape #{hit['annotation_id']}" if hit["annotation_id"] else ""))
            self.results.addItem(item)
        how = result["index"]
        self.set_status(f"{len(result['results'])} nearest of the project (✓: within τ {tau:.3f}); "
                        f"{how['embedded']} embedded now, {how['reused']} from the stored index")

    def go_to(self, item: QListWidgetItem) -> None:
        image_id, annotation_id = item.data(Qt.ItemDataRole.UserRole)
        window = self.context.window
        window._browser_pick(int(image_id))
        if annotation_id is not None:
            window._select([int(annotation_id)])


def _fail(token, message: str):
    from engine.annotations.errors import BadInput

    raise BadInput("checkpoint", "checkpoint", message)
