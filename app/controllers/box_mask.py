"""Shapes > Box → Mask: the mask of the object inside the selected box, from GrabCut or from the
model chosen with "Box → Mask model…" (a Mask R-CNN or segmentation checkpoint).

The work (reading the image, GrabCut or the model) is ``engine.assist.box_mask.box_mask_job`` on
the window's JobBridge, so a model never freezes the window. The mask joins the box as one
object (they share an ``instance_id``, as boxes and masks of imported and demo projects do), and
adding it is one undo step. A result for an image or box that changed meanwhile is dropped.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QInputDialog

from app.controllers.actions import ActionSpec
from app.controllers.models_controller import make_action
from engine.annotations.geometry import encode_mask
from engine.annotations.model import Annotation, Box
from engine.assist.box_mask import box_mask_job
from engine.jobs import Job

GRABCUT = "GrabCut (no model)"
BOX_MASK_SPECS = (
    ActionSpec("box_to_mask", "Box → Mask", ("Ctrl+Shift+B",), "Shapes",
               "Make a mask of the object inside each selected box (GrabCut, or the chosen model)"),
    ActionSpec("box_mask_model", "Box → Mask model…", (), "Shapes",
               "Choose what Box → Mask uses: GrabCut, or a Mask R-CNN / segmentation checkpoint"),
)


class BoxMaskController(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.checkpoint: str | None = None  # None: GrabCut
        self.device: str | None = None
        self._jobs: dict[int, tuple[int, Annotation]] = {}  # job id -> (image id, the box)
        self.actions = {spec.name: make_action(spec, window) for spec in BOX_MASK_SPECS}
        self.actions["box_to_mask"].triggered.connect(self.box_to_mask)
        self.actions["box_mask_model"].triggered.connect(self.choose_model)
        window.jobs.finished.connect(self._job_finished)

    def busy(self) -> bool:
        return bool(self._jobs)

    def choose_model(self) -> str | None:
        files = [str(p) for p in self.window.models.detector_files()]
        items = [GRABCUT] + files
        current = items.index(self.checkpoint) if self.checkpoint in items else 0
        item, ok = QInputDialog.getItem(self.window, "Box → Mask", "Make masks with:", items, current, False)
        if ok:
            self.use(None if item == GRABCUT else item)
        return self.checkpoint

    def use(self, checkpoint: str | Path | None) -> None:
        self.checkpoint = str(checkpoint) if checkpoint else None
        how = Path(self.checkpoint).name if self.checkpoint else "GrabCut"
        self.window.statusBar().showMessage(f"Box → Mask uses {how}", 5000)

    def box_to_mask(self) -> list[int]:
        """Start one job per selected box; returns the job ids."""
        c = self.window.controller
        boxes = [c.annotation(i) for i in self.window.selected_ids()]
        boxes = [a for a in boxes if a is not None and isinstance(a.geometry, Box)]
        if c.image is None or not boxes:
            self.window.statusBar().showMessage("Select a box to make its mask", 4000)
            return []
        store, image = self.window.store, c.image
        names = {cat.id: cat.name for cat in store.categories()}
        ids = []
        for box in boxes:
            g = box.geometry
            job = Job("box → mask", box_mask_job, image_path=str(store.image_path(image)),
                      box_xyxy=(g.x1, g.y1, g.x2, g.y2), height=image.height, width=image.width,
                      checkpoint=self.checkpoint, category_name=names.get(box.category_id),
                      device=self.device or self.window.models.device)
            job_id = self.window.jobs.submit(job)
            self._jobs[job_id] = (image.id, box)
            ids.append(job_id)
        return ids

    def _job_finished(self, job_id: int, outcome) -> None:
        if job_id not in self._jobs:
            return
        image_id, box = self._jobs.pop(job_id)
        bar = self.window.statusBar()
        if outcome.state != "finished":
            if outcome.state == "failed":
                self.window._show_failure("Box → Mask failed", str(outcome.error))
            return
        c = self.window.controller
        now = self.window.store.annotation(box.id) if box.id is not None else None
        if now is None or now.geometry != box.geometry or now.image_id != image_id:
            bar.showMessage("Box → Mask: the box changed meanwhile; the mask was dropped", 6000)
            return
        result = outcome.result
        if result["mask"] is None:
            bar.showMessage(f"Box → Mask: {result['message']}", 6000)
            return
        update = []
        instance = now.instance_id
        if instance is None:
            row = self.window.store.execute("SELECT COALESCE(MAX(instance_id), 0) FROM annotations").fetchone()
            instance = int(row[0]) + 1
            update = [now.with_(instance_id=instance)]
        source = "manual" if result["method"] == "grabcut" else result["method"]
        mask = Annotation(image_id, now.category_id, encode_mask(result["mask"]), instance_id=instance, source=source)
        if c.record("box to mask", add=[mask], update=update):
            bar.showMessage(f"Box → Mask ({result['method']}): {int(result['mask'].sum())} px", 5000)
