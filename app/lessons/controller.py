"""The Lessons menu of the workbench: lessons grouped by topic, one player window.

The player asks this controller for the image (the workbench's current image and its ground
truth, read in the lesson's job) and for models: what the project holds (checkpoints under
``models/``, named ``<family>-<time>.ckpt`` by the Train panel, and torchvision COCO weights in
the model folder or torch's cache) and what ships with the product (EfficientNet-Lite0).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction

from engine.lessons import catalog

LITE0 = "EfficientNet-Lite0 (ImageNet, ships with Visionbench)"
# which checkpoint files fit which need, by the family prefix of their name
_FAMILIES = {"rcnn": ("fasterrcnn", "maskrcnn"), "unet": ("unet",), "detector": ("fasterrcnn", "maskrcnn", "yolo"),
             "pix2pix": ("pix2pix", "colorize")}


class LessonsController(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.player = None
        self.actions: dict[str, QAction] = {}
        self.menu = self._build_menu()

    def _build_menu(self):
        bar = self.window.menuBar()
        help_action = next((a for a in bar.actions() if a.text().replace("&", "") == "Help"), None)
        menu = bar.addMenu("&Lessons")
        if help_action is not None:
            bar.insertMenu(help_action, menu)
        topics: dict[str, object] = {}
        for entry in catalog():
            sub = topics.get(entry.topic)
            if sub is None:
                sub = topics[entry.topic] = menu.addMenu(entry.topic)
            text = entry.title if not entry.waits_for else f"{entry.title} (waits for the {entry.waits_for} family)"
            act = QAction(text + ("…" if not entry.waits_for else ""), self.window)
            act.setObjectName(f"lesson_{entry.key}")
            act.setEnabled(not entry.waits_for)
            act.triggered.connect(lambda _=False, e=entry: self.open_lesson(e))
            sub.addAction(act)
            self.actions[entry.key] = act
        return menu

    def open_lesson(self, entry):
        from app.lessons.player import LessonPlayer

        if self.player is None:
            self.player = LessonPlayer(self, self.window)
        self.player.show()
        self.player.raise_()
        self.player.open_lesson(entry)
        return self.player

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Close the player and wait for its jobs (a lesson may be reading the store's image)."""
        if self.player is None:
            return True
        self.player.pause()
        self.player.hide()
        return self.player.bridge.shutdown(timeout)

    # -- what the player asks for -------------------------------------------------------------------
    def lesson_input(self):
        rec = self.window.controller.image
        if rec is None:
            return None
        store = self.window.store
        names = {c.id: c.name for c in store.categories()}
        return {"image_path": str(store.image_path(rec)), "annotations": store.annotations(rec.id),
                "category_names": names, "name": Path(rec.path).name}

    def model_options(self, needs: str | None) -> list[tuple[str, str | None]]:
        if needs == "lite0":
            return [(LITE0, None)]
        from engine.infer.views_api import list_detector_files, torchvision_cache_files

        folder = Path(self.window.store.root) / "models"
        prefixes = _FAMILIES.get(needs, ())
        found = [p for p in list_detector_files(folder) if p.name.lower().startswith(prefixes)]
        if needs in ("rcnn", "detector"):
            folder_of = getattr(getattr(self.window, "models", None), "model_folder", None)
            cached = torchvision_cache_files(folder_of() if folder_of else None)
            found += [p for p in cached if needs == "detector" or "rcnn" in p.name.lower()]
        out = [(self._display(p), str(p)) for p in found]
        fallback = {"rcnn": "no Faster R-CNN checkpoint in this project: lesson without RPN",
                    "detector": "no detector in this project: RetinaNet-style prior scores",
                    "unet": "no U-Net checkpoint in this project: untrained networks",
                    "pix2pix": "no pix2pix checkpoint in this project: geometry only"}
        out.append((fallback.get(needs, "none"), None))
        return out

    def _display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.window.store.root))
        except ValueError:
            return path.name
