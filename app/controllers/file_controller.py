"""The File menu's project round trip: New project, Import…, Export…, Recent projects, and the
offer to import annotation files found beside added images or opened directly.

Parsing a source and writing an export run as engine jobs on the window's JobBridge (progress
and cancel in the Jobs panel). Only the final write of an import happens on the GUI thread, in
one transaction, because the project store belongs to that thread. Dialogs are opened with
``open()`` (never a blocking ``exec()``) and kept as ``self.dialog`` so tests can answer them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QLabel, QMessageBox, QVBoxLayout

from app.controllers.add_images import insert_found, probe_folder_job
from app.controllers.recent import RecentProjects
from app.dialogs.export_dialog import ExportDialog
from app.dialogs.import_dialog import IMPORT_FORMATS, ImportDialog, ProblemsDialog
from engine.annotations.errors import BadInput
from engine.annotations.interop import (FoundAnnotations, export_job, export_losses, import_source_of,
                                        is_nonempty_folder, read_job, store_bundle)
from engine.annotations.store import ProjectStore
from engine.jobs import Job


class FileController(QObject):
    def __init__(self, window, recent: RecentProjects | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.recent = recent or RecentProjects()
        self.recent.add(window.store.path)
        self.dialog: QDialog | QMessageBox | None = None  # the last dialog shown (tests answer it)
        self.last_import: dict | None = None
        self.last_export: dict | None = None
        self._pending: dict[int, Callable] = {}  # job id -> what to do with its outcome
        window.jobs.finished.connect(self._job_finished)

    @property
    def store(self) -> ProjectStore:
        return self.window.store

    def _show(self, dialog):
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        self.dialog = dialog
        dialog.open()
        return dialog

    def _submit(self, job: Job, then: Callable) -> int:
        job_id = self.window.jobs.submit(job)
        self._pending[job_id] = then
        return job_id

    def _job_finished(self, job_id: int, outcome) -> None:
        then = self._pending.pop(job_id, None)
        if then is not None:
            then(outcome)

    def _failed(self, title: str, outcome) -> bool:
        """True when the job did not finish (the user was told why, unless they cancelled)."""
        if outcome.state == "finished":
            return False
        if outcome.state == "failed":
            self.window._show_failure(title, outcome.error or "")
        else:
            self.window.statusBar().showMessage(f"{title}: cancelled", 6000)
        return True

    # ---- new project / recent -----------------------------------------------------------------
    def new_project_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "New Visionbench project", str(self.store.root),
                                              "Visionbench projects (*.vbproj)")
        if path:
            self.new_project(path)

    def new_project(self, path) -> object | None:
        """Create an empty project at ``path`` (.vbproj added) and open it in place of this one."""
        path = Path(path)
        if path.suffix.lower() != ".vbproj":
            path = path.with_name(path.name + ".vbproj")
        if path.exists():
            self.window._show_failure("Cannot create project", f"{path}: project: already exists; open it instead")
            return None
        try:
            ProjectStore.create(path).close()
        except (BadInput, OSError) as exc:
            self.window._show_failure("Cannot create project", str(exc))
            return None
        return self.window.open_project(path)

    def fill_recent_menu(self, menu) -> None:
        menu.clear()
        paths = [p for p in self.recent.paths() if Path(p) != self.store.path]
        for p in paths:
            act = menu.addAction(p)
            act.triggered.connect(lambda _=False, q=p: self.window.open_project(q))
        if not paths:
            menu.addAction("(none yet)").setEnabled(False)

    # ---- add images ---------------------------------------------------------------------------
    def add_images_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Add images from folder", str(self.store.root))
        if folder:
            self.add_images(folder)

    def add_images(self, folder) -> int:
        """Probe `folder` in the background; the images are added when the job ends. Returns the job id."""
        return self._submit(Job(f"add images from {Path(folder).name}", probe_folder_job, folder=str(folder)),
                            self._probed)

    def _probed(self, outcome) -> None:
        w = self.window
        if outcome.state != "finished":
            if outcome.state == "failed":
                w._show_failure("Cannot add images", outcome.error or "")
            return
        found, skipped = outcome.result["found"], outcome.result["skipped"]
        try:
            added, known = insert_found(self.store, found)
        except Exception as exc:  # noqa: BLE001 - the transaction rolled back
            w._show_failure("Cannot add images", f"{type(exc).__name__}: {exc}")
            return
        w.browser.refresh()
        note = f"Added {added} image(s)" + (f", {known} already in the project" if known else "")
        note += f", skipped {len(skipped)} file(s)" if skipped else ""
        w.last_add_report = {"added": added, "known": known, "skipped": skipped}
        w.statusBar().showMessage(note, 10000)
        if skipped:  # say which files and why, without blocking (open(), not exec())
            box = QMessageBox(QMessageBox.Icon.Information, "Add images", note + ".", QMessageBox.StandardButton.Close,
                              w)
            box.setDetailedText("\n".join(f"{p}: {why}" for p, why in skipped))
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
            box.open()
            w.last_error_box = box
        if w.controller.image is None and w.controller.order:
            w.controller.open_image(w.controller.order[0])
        self.offer_found(outcome.result.get("annotations", []))

    # ---- import ---------------------------------------------------------------------------------
    def import_dialog(self, fmt: str | None = None, src: str = "") -> ImportDialog:
        dialog = ImportDialog(self.window, fmt, src, start_dir=str(self.store.root))
        dialog.accepted.connect(lambda: self.start_import(*dialog.choice()))
        return self._show(dialog)

    def start_import(self, fmt: str, src: str) -> int:
        """Read ``src`` in the background; problems are shown before anything is stored."""
        return self._submit(Job(f"import {fmt} from {Path(src).name}", read_job, fmt=fmt, src=src),
                            lambda outcome: self._read(fmt, src, outcome))

    def _read(self, fmt: str, src: str, outcome) -> None:
        if self._failed("Cannot import", outcome):
            return
        bundle = outcome.result
        if not bundle.problems:
            self.store_import(fmt, src, bundle)
            return
        n_anns = sum(len(e.annotations) for e in bundle.images)
        dialog = ProblemsDialog(bundle.problems, src, len(bundle.images), n_anns, self.window)
        dialog.accepted.connect(lambda: self.store_import(fmt, src, bundle))
        self._show(dialog)

    def store_import(self, fmt: str, src: str, bundle) -> dict | None:
        try:
            report = store_bundle(self.store, fmt, bundle)
        except BadInput as exc:  # the transaction rolled back: the project is as it was
            self.window._show_failure("Cannot import", str(exc))
            return None
        self.last_import = {"format": fmt, "src": src, **report.as_dict()}
        self.window.project_changed()
        skipped = f", {len(report.skipped)} problem(s) left out" if report.skipped else ""
        self.window.statusBar().showMessage(
            f"Imported {report.annotations_added} shape(s) on {report.images_added + report.images_updated} "
            f"image(s) ({report.images_added} new) from {Path(src).name}{skipped}", 10000)
        return self.last_import

    # ---- annotation files found beside images, or opened --------------------------------------
    def offer_found(self, found: list[FoundAnnotations]) -> QDialog | None:
        """Ask which of the annotation files found beside added images to import (the first kind
        is ticked; several kinds usually describe the same objects)."""
        if not found:
            return None
        dialog = QDialog(self.window)
        dialog.setWindowTitle("Annotations found beside the images")
        layout = QVBoxLayout(dialog)
        note = QLabel("These annotation files lie beside the images just added. Import them?\n"
                      "Several formats often describe the same objects: tick one of them.", dialog)
        layout.addWidget(note)
        dialog.checks = []
        for i, f in enumerate(found):
            box = QCheckBox(f.describe(), dialog)
            box.setChecked(i == 0)
            layout.addWidget(box)
            dialog.checks.append((box, f))
        buttons = QDialogButtonBox(dialog)
        buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton("Not now", QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        dialog.buttons = buttons

        def start():
            for box, f in dialog.checks:
                if box.isChecked():
                    self.start_import(f.fmt, f.src)
        dialog.accepted.connect(start)
        return self._show(dialog)

    def offer_file(self, path) -> QMessageBox | None:
        """An annotation file was opened as if it were a project: offer to import it."""
        path = Path(path)
        fmt, src, others = import_source_of(path)
        if fmt is None:
            self.window._show_failure("Cannot open", f"{path}: file: neither a Visionbench project (.vbproj) nor "
                                      "an annotation file Visionbench can import (LabelMe, COCO JSON, VOC XML)")
            return None
        if fmt == "labelme":
            what = f"{path.name} is a LabelMe / X-AnyLabeling file. Import it"
            what += f" together with the {others} other .json file(s) of its folder" if others else ""
        elif fmt == "voc":
            what = f"{path.name} is a Pascal VOC file. Import the VOC folder {src}"
        else:
            what = f"{path.name} is a COCO annotations file. Import it"
        box = QMessageBox(QMessageBox.Icon.Question, "Import annotations", f"{what} into {self.store.path.name}?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self.window)
        _on_yes(box, lambda: self.start_import(fmt, str(src)))
        return self._show(box)

    # ---- export ---------------------------------------------------------------------------------
    def export_dialog(self) -> ExportDialog:
        dialog = ExportDialog(self.store, self.window, start_dir=str(self.store.root))
        dialog.accepted.connect(lambda: self.export(*dialog.choice()))
        return self._show(dialog)

    def export(self, fmt: str, dst: str, split: str | None, options: dict, overwrite: bool = False):
        """Export in the background; a folder that holds files is only written after the user agrees."""
        if not overwrite and is_nonempty_folder(dst):
            box = QMessageBox(QMessageBox.Icon.Warning, "Export",
                              f"{dst} is not empty. Files of the same names will be replaced "
                              "(nothing else is deleted). Export there anyway?",
                              QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self.window)
            _on_yes(box, lambda: self.export(fmt, dst, split, options, overwrite=True))
            return self._show(box)
        return self._submit(Job(f"export {fmt} to {Path(dst).name}", export_job, project=str(self.store.path),
                                fmt=fmt, dst=dst, split=split, overwrite=overwrite, **options),
                            lambda outcome: self._exported(fmt, dst, outcome))

    def _exported(self, fmt: str, dst: str, outcome) -> None:
        if self._failed("Cannot export", outcome):
            return
        summary = outcome.result
        self.last_export = summary
        counts = ", ".join(f"{summary[k]} {k}" for k in ("images", "annotations", "objects", "shapes")
                           if isinstance(summary.get(k), int))
        losses = export_losses(summary)
        text = f"Exported {IMPORT_FORMATS[fmt][0]} to {dst}: {counts}."
        text += ("\n\nWhat the format could not hold or changed:\n• " + "\n• ".join(losses)) if losses else (
            "\n\nEverything in the project fits this format.")
        box = QMessageBox(QMessageBox.Icon.Information, "Export finished", text, QMessageBox.StandardButton.Close,
                          self.window)
        self._show(box)
        self.window.statusBar().showMessage(f"Exported {counts} to {dst}", 10000)


def _on_yes(box: QMessageBox, then: Callable) -> None:
    """Call ``then`` when the user answers ``box`` with Yes."""
    yes = QMessageBox.StandardButton.Yes
    box.buttonClicked.connect(lambda button: box.standardButton(button) == yes and then())
