"""Glue between the project store and the widgets: edits, undo/redo, clipboard, navigation."""
from .annotation_controller import AnnotationController

__all__ = ["AnnotationController"]
