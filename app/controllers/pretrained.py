"""Models > Pretrained models…: the dialog, and the jobs behind Get and Add from file….

Get is the workbench's only download and runs only on that click: ``engine.infer.pretrained.
download_job`` on the window's JobBridge (progress and cancel in the dialog and the Jobs panel).
Add from file… checks a file the user has (keys, then hash) in a job as well: reading 160 MB
is too slow for the GUI thread. Weights go to the user's model folder (``ModelsController.
model_folder``), else torch's hub cache; the detector pickers list them once a job ends.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QApplication

from app.controllers.actions import ActionSpec
from app.controllers.models_controller import make_action
from engine.jobs import Job

PRETRAINED_SPEC = ActionSpec("pretrained_models", "Pretrained models…", ("Ctrl+Shift+P",), "Models",
                             "COCO detectors from torchvision: what is here, Get (download on request) or "
                             "Add from file…")


class PretrainedController(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.dialog = None  # the dialog, once opened (tests drive it)
        self.job_id: int | None = None
        self._job_arch: str | None = None
        self._job_kind = ""
        self.last_error: str | None = None
        self.action = make_action(PRETRAINED_SPEC, window)
        self.action.triggered.connect(self.open_dialog)
        self.actions = {PRETRAINED_SPEC.name: self.action}
        window.jobs.progress.connect(self._progress)
        window.jobs.finished.connect(self._finished)

    # -- where weights are --------------------------------------------------------------------
    def custom_folder(self) -> Path | None:
        return self.window.models.model_folder()

    def destination(self) -> Path:
        from engine.infer.pretrained import hub_checkpoint_dir

        return self.custom_folder() or hub_checkpoint_dir()

    def where(self, model) -> Path | None:
        from engine.infer.pretrained import find_weights

        return find_weights(model, self.custom_folder())

    def busy_arch(self) -> str | None:
        return self._job_arch

    def choose_folder(self, folder) -> None:
        self.window.models.set_model_folder(folder)
        if self.dialog is not None:
            self.dialog.refresh()

    # -- the dialog -------------------------------------------------------------------------
    def open_dialog(self):
        """Show the dialog (built on first use: reading torchvision's catalogue imports torch)."""
        if self.dialog is None:
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                from app.dialogs.pretrained_dialog import PretrainedDialog
                from engine.infer import pretrained

                self.dialog = PretrainedDialog(self, pretrained.catalogue(), self.window)
            except Exception as exc:  # noqa: BLE001 - a broken torchvision install must not take the window down
                self.window._show_failure("Cannot list pretrained models", f"{type(exc).__name__}: {exc}")
                return None
            finally:
                QApplication.restoreOverrideCursor()
        self.dialog.refresh()
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def _say(self, text: str) -> None:
        if self.dialog is not None:
            self.dialog.show_message(text)
        self.window.statusBar().showMessage(text.splitlines()[0], 10000)

    # -- jobs ---------------------------------------------------------------------------------
    def get(self, model) -> int | None:
        """Download ``model``'s weights (the user clicked Get); returns the job id."""
        from engine.infer.pretrained import download_job, offline_hint

        if self.job_id is not None:
            return None
        dest = self.destination()
        job = Job(f"get {model.file_name}", download_job, url=model.url, dest_dir=str(dest),
                  offline=offline_hint(model, dest))
        return self._start(job, model, "download", f"Downloading {model.file_name} to {dest}…")

    def add_from_file(self, model, path) -> int | None:
        """Check ``path`` as ``model``'s weights and copy it to the model folder; returns the job id."""
        from engine.infer.pretrained import add_file_job

        if self.job_id is not None:
            return None
        job = Job(f"add {Path(path).name}", add_file_job, src=str(path), arch=model.arch,
                  dest_dir=str(self.destination()))
        return self._start(job, model, "add", f"Checking {path}…")

    def _start(self, job: Job, model, kind: str, text: str) -> int:
        self._job_arch, self._job_kind, self.last_error = model.arch, kind, None
        self.job_id = self.window.jobs.submit(job)
        self._say(text)
        if self.dialog is not None:
            self.dialog.show_progress(0, None, "starting")
            self.dialog.refresh()
        return self.job_id

    def cancel(self) -> None:
        if self.job_id is not None:
            self.window.jobs.cancel(self.job_id)

    def _progress(self, job_id: int, event) -> None:
        if job_id == self.job_id and self.dialog is not None:
            self.dialog.show_progress(event.step, event.total, event.message)

    def _finished(self, job_id: int, outcome) -> None:
        if job_id != self.job_id:
            return
        kind = self._job_kind
        self.job_id, self._job_arch = None, None
        if outcome.state == "finished":
            path = outcome.result["path"]
            self._say(f"{Path(path).name} is ready in {Path(path).parent}: pick it in Compare detectors, NMS, "
                      f"Inside R-CNN, Evaluate or Pre-label.")
            self.window.models.refresh_detectors()
        elif outcome.state == "cancelled":
            self._say("Download cancelled; nothing was kept." if kind == "download" else "Cancelled.")
        else:
            # "DownloadError: <message>" -> the message; the user needs no exception names
            message = (outcome.error or "").split(": ", 1)[-1]
            self.last_error = message
            self._say(message)
            self.window._show_failure("Cannot get the model" if kind == "download" else "Cannot add the file",
                                      message)
        if self.dialog is not None:
            self.dialog.end_progress()
            self.dialog.refresh()
