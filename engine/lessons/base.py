"""The shape every lesson has, and the image it works on.

A lesson is prepared once for an image (``prepare``, a generator run as a job: it may take
seconds when a network runs), then answers cheap questions from the GUI thread: how many steps,
the caption and the scene of step ``i``, and what a click or a drag at a point of a panel does.
The computations live in the lesson modules beside this one and are tested without a GUI.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from engine.jobs import Progress
from engine.lessons.scene import Scene, Step

MAX_SIDE = 640  # lessons work on the image scaled to at most this many pixels on its long side


@dataclass
class LessonInput:
    """The teacher's image and what is drawn on it, scaled so its long side is at most MAX_SIDE.

    image: uint8 RGB [H, W, 3]; boxes: float [G, 4] xyxy pixels of the ground-truth objects;
    names: their category names; instances: int32 [H, W] (0 = none, k = the object of ``boxes[k - 1]``)
    painted only for objects drawn with a mask or polygon (None when there is none); scale: lesson
    px per original px.
    """

    image: np.ndarray
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    names: list[str] = field(default_factory=list)
    instances: np.ndarray | None = None
    name: str = "image"
    scale: float = 1.0

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in lesson pixels."""
        return int(self.image.shape[0]), int(self.image.shape[1])


def make_input(image: np.ndarray, boxes=None, names=None, instances=None, name: str = "image",
               max_side: int = MAX_SIDE) -> LessonInput:
    """A :class:`LessonInput` from full-size data: the image (uint8 RGB, grey or RGBA), its boxes
    (xyxy original pixels) and instance map, all scaled together."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"{name}: expected an RGB image [H, W, 3], got shape {img.shape}")
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(img[:, :, :3])
    h, w = img.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        if instances is not None:
            instances = cv2.resize(np.asarray(instances, np.int32).astype(np.float32), size,
                                   interpolation=cv2.INTER_NEAREST).astype(np.int32)
    b = np.asarray(boxes if boxes is not None else np.zeros((0, 4)), np.float32).reshape(-1, 4) * scale
    return LessonInput(img, b, list(names or []), None if instances is None else np.asarray(instances, np.int32),
                       name, scale)


def load_input(image_path, annotations=(), category_names: dict[int, str] | None = None,
               name: str | None = None) -> LessonInput:
    """Read an image of the project and its ground truth (boxes, masks) as a LessonInput.

    annotations: the image's ``Annotation`` s (proposals and points are left out by the
    ground-truth rule); category_names: project category id -> name.
    """
    from engine.annotations.imageio import read_image_rgb
    from engine.data.objects import ground_truth_objects

    image = np.asarray(read_image_rgb(image_path))
    h, w = image.shape[:2]
    objects = ground_truth_objects(list(annotations), h, w)
    names = category_names or {}
    instances = np.zeros((h, w), np.int32)
    for k, obj in enumerate(objects, start=1):
        if not obj.box_only:  # a box is not a mask: lessons that need one make it (GrabCut)
            instances[obj.mask(h, w).astype(bool) & (instances == 0)] = k
    boxes = np.array([o.box for o in objects], np.float32).reshape(-1, 4)
    return make_input(image, boxes, [names.get(o.category_id, str(o.category_id)) for o in objects],
                      instances if instances.any() else None, name or str(image_path))


class Lesson:
    """Base of the lessons. Subclasses set the class attributes and override ``build``.

    key: stable identifier (also the name of ``resources/lessons/<key>.md``); topic: menu group;
    needs: None, or which model the lesson uses: "lite0" (ships with the product), "rcnn" (a
    Faster/Mask R-CNN checkpoint of the project), "detector" (any detector), "unet";
    waits_for: the family a placeholder lesson waits for (then it has no steps).
    """

    key = ""
    title = ""
    topic = ""
    needs: str | None = None
    needs_optional = True  # the lesson still runs, with fewer steps, without the model
    waits_for: str | None = None

    def __init__(self) -> None:
        self.input: LessonInput | None = None
        self.model_path: str | None = None
        self.steps: list[Step] = []
        self.notes: list[str] = []  # what the lesson had to do without (no model, no boxes, ...)

    # -- preparation (a job) -------------------------------------------------------------------
    def prepare(self, token, data: "LessonInput | dict", model_path: str | None = None):
        """Generator: compute everything the steps need for ``data`` (yields Progress); ``data``
        may be the keyword arguments of :func:`load_input` instead."""
        if isinstance(data, dict):  # a request from the GUI: read the file here, off the GUI thread
            yield Progress(0, 1, "reading the image")
            data = load_input(**data)
        self.input = data
        self.model_path = model_path
        self.notes = []
        yield Progress(0, 1, f"preparing {self.title}")
        work = self.build(token)
        if hasattr(work, "__next__"):  # a build that reports progress is a generator
            yield from work
        yield Progress(1, 1, "ready")
        return self

    def build(self, token) -> None:
        """Heavy work, on a worker thread; fills ``self.steps`` (may call ``self.rebuild()``).
        May be a generator yielding Progress."""
        self.rebuild()

    def rebuild(self) -> None:
        """Recompute ``self.steps`` from the current state (cheap; after a click or a drag)."""

    # -- questions from the GUI ----------------------------------------------------------------
    @property
    def step_count(self) -> int:
        return len(self.steps)

    def step(self, i: int) -> Step:
        if not self.steps:
            return Step("", Scene([]))
        return self.steps[max(0, min(i, len(self.steps) - 1))]

    def press(self, step: int, panel: int, x: float, y: float) -> bool:
        """A click at world point (x, y) of panel ``panel`` of step ``step``; True when it changed
        something (the GUI redraws)."""
        return False

    def drag(self, step: int, panel: int, x: float, y: float) -> bool:
        """The mouse moved with the button down, after a ``press``; True when something changed."""
        return False

    def release(self) -> None:
        """The mouse button went up."""
