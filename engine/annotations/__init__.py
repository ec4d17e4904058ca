"""Plain-Python annotation model and project store. Imports neither Qt nor torch."""
from .errors import BadInput, ImportFailed, Problem, ProjectLocked
from .model import (KINDS, MANUAL, SPLITS, STATUSES, Annotation, Box, Category, ImageRecord, MaskRLE,
                    Point, Polygon, Polyline)
from .store import AddFolderReport, ProjectStore

__all__ = ["BadInput", "ImportFailed", "Problem", "ProjectLocked", "KINDS", "MANUAL", "SPLITS", "STATUSES",
           "Annotation", "Box", "Category", "ImageRecord", "MaskRLE", "Point", "Polygon", "Polyline",
           "AddFolderReport", "ProjectStore"]
