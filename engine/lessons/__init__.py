"""Lessons: the course's concepts as step-by-step views on the teacher's own image.

Each module holds one lesson's computations (tested without a GUI) and a :class:`Lesson` that
turns them into steps (``engine.lessons.scene``). The GUI has one player for all of them
(``app.lessons``). ``catalog()`` lists them in the course's order, most central first; texts
are Markdown files ``resources/lessons/<key>.md``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

LESSON_TEXTS = Path(__file__).resolve().parents[2] / "resources" / "lessons"


@dataclass(frozen=True)
class LessonEntry:
    """A menu entry: the lesson class's dotted path, or the family a future lesson waits for."""

    key: str
    title: str
    topic: str
    target: str = ""  # "module:Class"
    waits_for: str = ""

    def create(self):
        """A fresh lesson object (imports its module now: some pull in torch)."""
        if not self.target:
            raise ValueError(f"lesson {self.key!r} waits for the {self.waits_for} family")
        module, cls = self.target.split(":")
        return getattr(importlib.import_module(module), cls)()


_CATALOG = (
    LessonEntry("upsampling", "Upsampling: unpooling and transposed convolution", "Segmentation",
                "engine.lessons.upsampling:UpsamplingLesson"),
    LessonEntry("convolutionalization", "From classifier to heatmap", "Classification",
                "engine.lessons.convolutionalization:ConvolutionalizationLesson"),
    LessonEntry("localisation", "Localisation as regression: IoU, box targets, anchors", "Detection",
                "engine.lessons.localisation:LocalisationLesson"),
    LessonEntry("proposals", "Proposals: sliding windows, selective search, RPN", "Detection",
                "engine.lessons.proposals:ProposalsLesson"),
    LessonEntry("focal_loss", "Easy negatives and focal loss", "Detection",
                "engine.lessons.focal:FocalLossLesson"),
    LessonEntry("receptive_field", "Receptive field: theoretical and effective", "Classification",
                "engine.lessons.receptive_field:ReceptiveFieldLesson"),
    LessonEntry("semantic_segmentation", "Semantic segmentation: windows, FCN, encoder-decoder", "Segmentation",
                "engine.lessons.segmentation:SegmentationLesson"),
    LessonEntry("triplet", "Triplet loss geometry", "Embeddings",
                "engine.lessons.triplet:TripletLesson"),
    LessonEntry("gram_matrix", "Gram matrix of a layer", "Style and image-to-image",
                "engine.lessons.gram:GramLesson"),
    LessonEntry("patchgan", "PatchGAN receptive field", "Style and image-to-image",
                "engine.lessons.patchgan:PatchGANLesson"),
)


def catalog() -> list[LessonEntry]:
    """Every lesson, in the course's order."""
    return list(_CATALOG)


def lesson_text(key: str) -> str:
    """The Markdown text of a lesson ('' when the file is missing)."""
    path = LESSON_TEXTS / f"{key}.md"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""
