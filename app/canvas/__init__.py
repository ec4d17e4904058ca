"""The annotation canvas: fast drawing and editing of shapes on images of any size.

`Canvas` never writes the project store: it emits `editRequested(EditRequest)` and the controller
applies the edit through EditHistory, then calls `apply_changes` / `set_annotations`.
"""
from .canvas import TOOLS, Canvas
from .edit import EditRequest

__all__ = ["Canvas", "EditRequest", "TOOLS"]
