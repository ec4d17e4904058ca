"""Models > Translate with…: run an image-to-image checkpoint (pix2pix, colorization, …) on the
current image, or on its masks for a masks -> photo model, and add the result to the project.

The model runs as ``engine.infer.translate.translate_image_job`` on the window's JobBridge (the
Jobs panel shows its progress and can cancel it), writing a new PNG into the project's
``translated/`` folder; the image is added to the project on the GUI thread (the store belongs
to it), in the split of its source image, and opened.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from app.controllers.actions import ActionSpec
from app.controllers.models_controller import make_action
from engine.infer.translate import translate_image_job
from engine.jobs import Job

TRANSLATE_SPEC = ActionSpec("translate_with", "Translate with…", ("Ctrl+Shift+T",), "Models",
                            "Run an image-to-image model (pix2pix, colorization) on this image and add the result "
                            "to the project")
OUT_FOLDER = "translated"


class TranslateController(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.checkpoint: str | None = None  # the last one used, offered first next time
        self._jobs: dict[int, int] = {}  # job id -> source image id
        self.last_result: dict | None = None
        self.action = make_action(TRANSLATE_SPEC, window)
        self.action.triggered.connect(self.choose_and_translate)
        window.jobs.finished.connect(self._job_finished)

    def busy(self) -> bool:
        return bool(self._jobs)

    def choose_and_translate(self) -> int | None:
        start = self.checkpoint or str(Path(self.window.store.path).parent)
        path, _ = QFileDialog.getOpenFileName(self.window, "Translate with…", start,
                                              "Checkpoints (*.ckpt *.pt *.pth);;All files (*)")
        return self.translate(path) if path else None

    def translate(self, checkpoint: str | Path) -> int | None:
        """Start translating the current image with ``checkpoint``; returns the job id."""
        c = self.window.controller
        if c.image is None:
            self.window.statusBar().showMessage("Open an image to translate", 4000)
            return None
        self.checkpoint = str(checkpoint)
        store = self.window.store
        job = Job(f"translate {Path(checkpoint).name}", translate_image_job, checkpoint=self.checkpoint,
                  store_path=str(store.path), image_id=c.image.id, out_folder=str(Path(store.root) / OUT_FOLDER),
                  device=self.window.models.device)
        job_id = self.window.jobs.submit(job)
        self._jobs[job_id] = c.image.id
        return job_id

    def _job_finished(self, job_id: int, outcome) -> None:
        if job_id not in self._jobs:
            return
        source_id = self._jobs.pop(job_id)
        w = self.window
        if outcome.state != "finished":
            if outcome.state == "failed":
                w._show_failure("Translate failed", str(outcome.error))
            return
        r = outcome.result
        store = w.store
        try:
            split = store.image(source_id).split
        except Exception:  # noqa: BLE001 - the source image was deleted meanwhile
            split = "train"
        rec = store.add_image(r["file"], r["width"], r["height"], split=split)
        self.last_result = {**r, "image_id": rec.id}
        w.browser.refresh()
        w.controller.open_image(rec.id)
        w.statusBar().showMessage(f"Translated {r['source_image']} ({r['input']}) with {r['model']}: added "
                                  f"{rec.path}", 10000)
