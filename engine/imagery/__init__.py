"""Qt-free tiled image pyramids for viewing images of any size (see pyramid.py)."""
from .pyramid import ImagePyramid, display_window, to_display_rgb

__all__ = ["ImagePyramid", "display_window", "to_display_rgb"]
