"""Images one at a time: File > Add images… (files), drag and drop of files and folders onto the
window, and pasting an image from the clipboard as a new image of the project.

Dropped or chosen paths are probed in a background job (``probe_paths_job``: folders as File >
Add images from folder does, files one by one) and inserted on the GUI thread by the
FileController, which reports what was added and skipped and offers annotation files found
beside them. A pasted image has no file yet: it is written as a PNG under
``<project folder>/pasted/`` and added at once (one small file; no job needed).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QUrl
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QFileDialog

from app.controllers.actions import ActionSpec
from app.controllers.add_images import probe_folder_job
from app.controllers.models_controller import make_action
from engine.annotations.errors import BadInput
from engine.annotations.imageio import IMAGE_EXTENSIONS, is_image_file, probe_image
from engine.jobs import Job, Progress

ADD_FILES_SPECS = (
    ActionSpec("add_image_files", "Add images…", ("Ctrl+Shift+O",), "File",
               "Add chosen image files to the project (you can also drop files and folders onto the window)"),
    ActionSpec("paste_image", "Paste image as new image", ("Ctrl+Alt+V",), "File",
               "Add the image on the clipboard (a screenshot, a copied picture) to the project"),
)
PASTE_FOLDER = "pasted"  # under the project folder


def probe_paths_job(token, paths: list[str]):
    """Probe image files and folders (folders recursively, as Add images from folder does).

    Yields Progress; returns {"found": [(path, w, h)], "skipped": [(path, reason)],
    "annotations": [FoundAnnotations]} like ``probe_folder_job``."""
    found, skipped, annotations = [], [], []
    files = [Path(p) for p in paths if not Path(p).is_dir()]
    for i, f in enumerate(files):
        yield Progress(i, len(files), f.name)
        if not is_image_file(f):
            skipped.append((str(f), "not an image file type"))
            continue
        try:
            w, h = probe_image(f)
        except BadInput as exc:
            skipped.append((str(f), exc.problem.message))
            continue
        found.append((str(f), w, h))
    for folder in (Path(p) for p in paths if Path(p).is_dir()):
        part = yield from probe_folder_job(token, str(folder))
        found += part["found"]
        skipped += part["skipped"]
        annotations += part["annotations"]
    return {"found": found, "skipped": skipped, "annotations": annotations}


def local_paths(urls: list[QUrl]) -> list[str]:
    return [u.toLocalFile() for u in urls if u.isLocalFile() and u.toLocalFile()]


class AddFilesController(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.last_pasted: Path | None = None
        self.actions = {spec.name: make_action(spec, window) for spec in ADD_FILES_SPECS}
        self.actions["add_image_files"].triggered.connect(self.add_files_dialog)
        self.actions["paste_image"].triggered.connect(self.paste_image)
        window.setAcceptDrops(True)
        # drags over panels that take no drops of their own reach the window: one filter sees them all
        window.installEventFilter(self)

    @property
    def store(self):
        return self.window.store

    # -- files and folders --------------------------------------------------------------------
    def add_files_dialog(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS))
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Add images", str(self.store.root),
                                                f"Images ({patterns});;All files (*)")
        if paths:
            self.add_paths(paths)

    def add_paths(self, paths) -> int | None:
        """Add image files and folders in the background; returns the job id (None: nothing to add)."""
        paths = [str(p) for p in paths]
        if not paths:
            return None
        what = Path(paths[0]).name + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
        return self.window.file._submit(Job(f"add {what}", probe_paths_job, paths=paths), self._probed)

    def _probed(self, outcome) -> None:
        self.window.file._probed(outcome)  # insert, report added/skipped, offer annotations found
        if outcome.state == "finished" and outcome.result["found"]:
            record = self.store.image_by_path(self.store._rel(Path(outcome.result["found"][0][0])))
            if record is not None:
                self.window.controller.open_image(record.id)  # show what was just added

    # -- drag and drop ------------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        kind = event.type()
        if obj is self.window and kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if self._acceptable(event.mimeData()):
                event.acceptProposedAction()
                return True
        elif obj is self.window and kind == QEvent.Type.Drop:
            if self._acceptable(event.mimeData()):
                event.acceptProposedAction()
                self.drop(event.mimeData())
                return True
        return super().eventFilter(obj, event)

    @staticmethod
    def _acceptable(mime) -> bool:
        return bool(local_paths(mime.urls())) if mime.hasUrls() else mime.hasImage()

    def drop(self, mime) -> None:
        """Files and folders dropped: projects open, the rest is added; a dropped picture (from a
        web browser, say) without a file becomes a new image like a pasted one."""
        paths = local_paths(mime.urls()) if mime.hasUrls() else []
        projects = [p for p in paths if p.lower().endswith(".vbproj")]
        if projects:
            self.window.open_project(projects[0])
            return
        if paths:
            self.add_paths(paths)
        elif mime.hasImage():
            self.add_qimage(QImage(mime.imageData()), "dropped")

    # -- clipboard ----------------------------------------------------------------------------
    def clipboard_has_image(self) -> bool:
        mime = QApplication.clipboard().mimeData()
        return mime is not None and (mime.hasImage() or bool(local_paths(mime.urls())))

    def paste_image(self):
        """The clipboard's image becomes a new image of the project (copied files are added as
        they are). Returns the new record, the job id for files, or None."""
        mime = QApplication.clipboard().mimeData()
        if mime is not None and local_paths(mime.urls()):
            return self.add_paths(local_paths(mime.urls()))
        image = QApplication.clipboard().image()
        if image.isNull():
            self.window.statusBar().showMessage("Nothing to paste: the clipboard holds no image", 6000)
            return None
        return self.add_qimage(image, "pasted")

    def add_qimage(self, image: QImage, stem: str):
        """Write ``image`` as ``<project folder>/pasted/<stem>-<time>.png`` and add it; open it."""
        folder = Path(self.store.root) / PASTE_FOLDER
        base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        path = folder / f"{base}.png"
        n = 1
        while path.exists():
            n += 1
            path = folder / f"{base}-{n}.png"
        tmp = path.with_name(path.stem + ".tmp.png")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not image.save(str(tmp), "PNG"):
                raise OSError(f"{tmp}: the image could not be written as PNG")
            os.replace(tmp, path)
            record = self.store.add_image(path, image.width(), image.height())
        except (OSError, BadInput) as exc:
            tmp.unlink(missing_ok=True)
            self.window._show_failure("Cannot add the image", str(exc))
            return None
        self.last_pasted = path
        self.window.browser.refresh()
        self.window.controller.open_image(record.id)
        self.window.statusBar().showMessage(f"Added {path.relative_to(self.store.root)} "
                                            f"({image.width()}×{image.height()})", 8000)
        return record
